"""Matting metrics: reference values, hand-computed cases and invariances."""

import math

import numpy as np
import pytest
from scipy import ndimage

from lpmatte.metrics import (
    METRIC_NAMES,
    compute_metrics,
    conn_error_dim,
    conn_error_p3m,
    gaussian_gradient_kernel,
    grad_error_dim,
    grad_error_p3m,
    largest_component,
    mad,
    metric_names,
    mse,
    p3m_trimap_errors,
    sad,
)
from lpmatte.metrics.gradient import dim_gradient_magnitude, gaussian_gradient_halfsize
from lpmatte.metrics.quantize import to_8bit, to_float32


def reference_key(key: str) -> tuple[str, str]:
    """``"P3M_SAD_T"`` -> ``("p3m", "SAD-T")``, ``"Conn_T"`` -> ``("dim", "Conn-T")``."""
    protocol = "p3m" if key.startswith("P3M_") else "dim"
    name = key.removeprefix("P3M_").removesuffix("_f32").replace("_T", "-T")
    return protocol, name


def assert_close(actual: float, expected: float, rel: float = 1e-4) -> None:
    assert actual == pytest.approx(expected, rel=rel, abs=1e-12)


def test_reference_values_both_protocols(reference):
    cases, expected = reference
    checked = 0
    for name, pred, gt, trimap in cases:
        results = {p: compute_metrics(pred, gt, trimap, protocol=p) for p in ("dim", "p3m")}
        for key, value in expected[name].items():
            protocol, metric = reference_key(key)
            assert_close(results[protocol][metric], value)
            checked += 1
    assert checked == sum(len(v) for v in expected.values()) == 72


def test_reference_values_from_float_inputs(reference):
    """Alphas given as float32 v / 255 (how files load) give the same numbers."""
    cases, expected = reference
    for name, pred, gt, trimap in cases:
        for protocol in ("dim", "p3m"):
            values = compute_metrics(to_float32(pred), to_float32(gt), trimap, protocol)
            for key, value in expected[name].items():
                if reference_key(key)[0] == protocol:
                    assert_close(values[reference_key(key)[1]], value)


# --- SAD / MSE / MAD ------------------------------------------------------------------------

def test_pixel_errors_by_hand():
    pred, gt = np.ones((10, 10)), np.zeros((10, 10))
    region = np.zeros((10, 10), bool)
    region[:2] = True  # 20 pixels
    assert sad(pred, gt) == pytest.approx(0.1)
    assert sad(pred, gt, region) == pytest.approx(0.02)
    pred[:2] = 0.5
    assert mse(pred, gt, region) == pytest.approx(0.25)
    assert mad(pred, gt, region) == pytest.approx(0.5)
    assert mse(pred, gt) == pytest.approx((80 + 20 * 0.25) / 100)


def test_uint8_inputs_are_scaled_to_unit_range():
    pred = np.full((4, 4), 255, np.uint8)
    assert sad(pred, np.zeros_like(pred)) == pytest.approx(16 / 1000)


def test_empty_region_gives_nan_means_and_zero_sums():
    pred, gt = np.ones((3, 3)), np.zeros((3, 3))
    none = np.zeros((3, 3), bool)
    assert sad(pred, gt, none) == 0
    assert math.isnan(mse(pred, gt, none)) and math.isnan(mad(pred, gt, none))


def test_p3m_trimap_errors_clamp_and_divide_by_unknown_count():
    pred, gt = np.full((4, 5), 0.5), np.zeros((4, 5))
    trimap = np.zeros((4, 5), np.uint8)
    trimap[0] = 255  # 5 px forced to 1: error 1 each
    trimap[1, :2] = 128  # 2 px unknown: error 0.5 each; the rest forced to 0
    errors = p3m_trimap_errors(pred, gt, trimap)
    assert errors["SAD-T"] == pytest.approx((5 + 1.0) / 1000)
    assert errors["MAD-T"] == pytest.approx((5 + 1.0) / 2)
    assert errors["MSE-T"] == pytest.approx((5 + 0.5) / 2)
    assert pred[0, 0] == 0.5  # input not modified


# --- Grad -----------------------------------------------------------------------------------

def direct_gaussian_gradient_kernel(sigma=1.4, epsilon=1e-2):
    """The MATLAB ``gaussgradient`` loops, written out element by element."""
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
    size = 2 * half + 1

    def gauss(x):
        return math.exp(-x * x / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi))

    kernel = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            u, v = i - half, j - half
            kernel[i, j] = gauss(u) * (-v * gauss(v) / sigma**2)
    return kernel / math.sqrt((kernel**2).sum())


def test_gaussian_gradient_kernel_matches_direct_formula():
    assert gaussian_gradient_halfsize(1.4) == 4
    kernel = gaussian_gradient_kernel(1.4)
    assert kernel.shape == (9, 9)
    np.testing.assert_allclose(kernel, direct_gaussian_gradient_kernel(1.4), rtol=1e-12,
                               atol=1e-15)
    assert (kernel**2).sum() == pytest.approx(1.0)
    np.testing.assert_allclose(kernel[:, ::-1], -kernel, atol=1e-15)  # odd along columns


def test_separable_gradient_equals_2d_replicate_convolution():
    image = np.random.default_rng(1).random((23, 31))
    kernel = gaussian_gradient_kernel()
    gx = ndimage.convolve(image, kernel, mode="nearest")
    gy = ndimage.convolve(image, kernel.T, mode="nearest")
    np.testing.assert_allclose(dim_gradient_magnitude(image), np.hypot(gx, gy), atol=1e-12)


def test_dim_grad_normalises_but_p3m_grad_does_not():
    rng = np.random.default_rng(2)
    pred, gt = rng.random((32, 32)), rng.random((32, 32))
    assert grad_error_dim(0.5 * pred, 0.5 * gt) == pytest.approx(grad_error_dim(pred, gt))
    assert grad_error_p3m(0.5 * pred, 0.5 * gt) == pytest.approx(0.25 * grad_error_p3m(pred, gt))


def test_grad_of_constant_images_is_zero():
    assert grad_error_dim(np.zeros((8, 8)), np.ones((8, 8))) == 0
    assert grad_error_p3m(np.full((8, 8), 0.3), np.ones((8, 8))) == pytest.approx(0, abs=1e-20)


# --- Conn -----------------------------------------------------------------------------------

def test_largest_component_never_is_the_background():
    mask = np.zeros((50, 50), bool)
    mask[10:12, 10:12] = True  # 4 px blob in 2496 px of background
    mask[30, 30] = True
    np.testing.assert_array_equal(largest_component(mask), mask & (np.arange(50) < 20)[:, None])
    assert not largest_component(np.zeros((5, 5), bool)).any()


def test_largest_component_is_four_connected():
    mask = np.eye(4, dtype=bool)  # diagonal pixels touch only by corners
    mask[3, 2] = True  # joins (2, 2) and (3, 3) through edges
    assert largest_component(mask).sum() == 3  # 8-connectivity would give all 5


def test_conn_ignores_background_component():
    """A 4 px blob, pred 255 / gt 217 (0.851). Correct DIM: the blob survives to t = 0.8,
    gets l = 0.8, phi_p = 0.8, phi_a = 1 -> 0.2 per px. Counting the background as the
    largest component would give l = 0 and 1 - 0.851 = 0.149 per px."""
    pred, gt = np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8)
    pred[5:7, 5:7], gt[5:7, 5:7] = 255, 217
    assert conn_error_dim(pred, gt) == pytest.approx(4 * 0.2 / 1000)
    assert conn_error_p3m(pred, gt) == pytest.approx(0.0, abs=1e-9)  # empty steps skipped


def tie_case():
    """Disk A (pred 153 = 0.6, gt 255) bigger than square B (255 / 255)."""
    rows, cols = np.mgrid[0:40, 0:40]
    disk = np.hypot(rows - 12, cols - 12) <= 9
    square = (rows >= 30) & (cols >= 30)
    pred, gt = np.zeros((40, 40), np.uint8), np.zeros((40, 40), np.uint8)
    pred[disk], gt[disk] = 153, 255
    pred[square], gt[square] = 255, 255
    assert disk.sum() > square.sum()
    return pred, gt, int(disk.sum())


def test_conn_float_tie_at_153_counts_as_060():
    """153 / 255 >= 0.6 must hold: A stays the largest component up to t = 0.6, then gets
    l = 0.6, so |phi_p - phi_a| = |1 - 0.6| = 0.4 per px (0.5 if the tie is lost)."""
    pred, gt, disk_pixels = tie_case()
    expected = 0.4 * disk_pixels / 1000
    assert conn_error_dim(pred, gt) == pytest.approx(expected)
    assert conn_error_p3m(pred, gt) == pytest.approx(expected, rel=1e-6)
    # float64 alphas (where 153/255 < np.arange(0, 1.1, 0.1)[6]) must not change it
    assert conn_error_p3m(pred / 255.0, gt / 255.0) == pytest.approx(expected, rel=1e-6)
    assert conn_error_dim(pred / 255.0, gt / 255.0) == pytest.approx(expected)


def test_conn_tie_between_components_follows_each_reference_scan_order():
    """Two 1-px components of equal size: A at (0, 4) pred = gt = 255, B at (4, 0) pred 255,
    gt 115. MATLAB (column-major) keeps B -> B gets l = 0.4: error 0.6. skimage (row-major)
    keeps A -> B gets l = 0: error 1 - 115/255."""
    pred, gt = np.zeros((5, 5), np.uint8), np.zeros((5, 5), np.uint8)
    pred[0, 4] = gt[0, 4] = 255
    pred[4, 0], gt[4, 0] = 255, 115
    assert conn_error_dim(pred, gt) == pytest.approx(0.6 / 1000)
    assert conn_error_p3m(pred, gt) == pytest.approx((1 - 115 / 255) / 1000, rel=1e-6)


def test_conn_region_restricts_the_sum():
    pred, gt, _ = tie_case()
    region = np.zeros(pred.shape, bool)
    region[:20] = True
    parts = conn_error_dim(pred, gt, region) + conn_error_dim(pred, gt, ~region)
    assert parts == pytest.approx(conn_error_dim(pred, gt))


# --- protocols ------------------------------------------------------------------------------

def random_case(seed=3, shape=(48, 40)):
    rng = np.random.default_rng(seed)
    gt = ndimage.gaussian_filter(rng.random(shape), 3)
    gt = np.clip((gt - gt.mean()) * 20 + 0.5, 0, 1)
    pred = np.clip(gt + rng.normal(0, 0.1, shape), 0, 1)
    trimap = np.full(shape, 128, np.uint8)
    trimap[gt == 0], trimap[gt == 1] = 0, 255
    return to_8bit(pred), to_8bit(gt), trimap


@pytest.mark.parametrize("protocol", ["dim", "p3m"])
def test_identical_inputs_give_zero_error(protocol):
    _, gt, trimap = random_case()
    values = compute_metrics(gt, gt, trimap, protocol)
    assert values and all(v == pytest.approx(0, abs=1e-12) for v in values.values())


@pytest.mark.parametrize("protocol", ["dim", "p3m"])
def test_metrics_are_symmetric(protocol):
    pred, gt, trimap = random_case()
    with_trimap = trimap if protocol == "dim" else None  # P3M's -T clamp is one-sided
    forward = compute_metrics(pred, gt, with_trimap, protocol)
    backward = compute_metrics(gt, pred, with_trimap, protocol)
    for name, value in forward.items():
        assert backward[name] == pytest.approx(value, rel=1e-9), name


def test_metric_names_per_protocol():
    assert metric_names("dim", True) == METRIC_NAMES
    pred, gt, trimap = random_case()
    assert tuple(compute_metrics(pred, gt, None, "dim")) == ("SAD", "MSE", "MAD", "Grad", "Conn")
    assert "Grad-T" not in compute_metrics(pred, gt, trimap, "p3m")
    with pytest.raises(ValueError, match="unknown protocol"):
        compute_metrics(pred, gt, protocol="matlab")


def test_input_checks():
    pred, gt, trimap = random_case()
    with pytest.raises(ValueError, match="differ in size"):
        compute_metrics(pred[:-1], gt)
    bad = trimap.copy()
    bad[0, 0] = 127
    with pytest.raises(ValueError, match="0/128/255"):
        compute_metrics(pred, gt, bad)


def test_dim_rounds_other_bit_depths_to_8_bits():
    pred, gt, trimap = random_case()
    as16 = compute_metrics(pred.astype(np.uint16) * 257, gt.astype(np.uint16) * 257, trimap)
    assert as16 == pytest.approx(compute_metrics(pred, gt, trimap))
    assert to_8bit(np.array([0.5 / 255, 1.5 / 255, 2.0])).tolist() == [0, 2, 255]
