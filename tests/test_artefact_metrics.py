"""lpmatte.metrics.artefacts: the texture figures and the cell-border excess."""

import numpy as np

from lpmatte.metrics.artefacts import cell_border_excess, texture_figures


def person() -> np.ndarray:
    truth = np.zeros((120, 120), np.float32)
    truth[40:80, 40:80] = 1
    return truth


def test_texture_splits_a_false_blobs_edge_from_dotted_patterns():
    """The texture figure counts both a checkerboard in a flat area and the sharp edge of a
    false blob; "texture off edges" keeps the first and drops the second, and the two parts
    are sums over the same pixels (the off-edge part never exceeds the whole)."""
    truth = person()
    blob, dotted, haze = truth.copy(), truth.copy(), truth.copy()
    blob[5:25, 5:25] = 1  # a false blob: sharp edges where the truth is flat
    dotted[5:25, 5:25] = 0.25 * ((np.indices((20, 20)).sum(0) % 2) == 0)  # period-2 dots < 0.5
    haze[5:25, 5:25] = 0.2  # a flat haze: texture only along its rim
    assert texture_figures(truth, truth) == {"texture": 0.0, "texture off edges": 0.0}
    on_blob, on_dots, on_haze = (texture_figures(p, truth) for p in (blob, dotted, haze))
    assert on_blob["texture"] > 1e-3 and on_blob["texture off edges"] == 0
    assert on_dots["texture off edges"] == on_dots["texture"] > 2e-3
    assert on_haze["texture off edges"] == on_haze["texture"] < on_dots["texture"] / 3


def test_texture_is_zero_where_the_truth_is_nowhere_flat():
    stripes = (np.indices((40, 40))[1] % 2).astype(np.float32)
    assert texture_figures(np.random.default_rng(0).random((40, 40)), stripes)["texture"] == 0


def test_cell_border_excess_is_the_step_at_8px_borders_beyond_the_steps_elsewhere():
    """A ramp (equal steps everywhere) scores 0; 8x8 blocks of alternating 0 and 1 score
    the hand-computed value: along each axis every border step is 1 and every other 0."""
    ramp = np.tile(np.linspace(0, 1, 64), (64, 1))
    assert abs(cell_border_excess(ramp)) < 1e-12
    blocks = (np.indices((64, 64)) // 8).sum(0) % 2.0
    assert np.isclose(cell_border_excess(blocks), 1.0)
    blocks16 = (np.indices((64, 64)) // 16).sum(0) % 2.0
    # of the 7 borders at 8, 16, ..., 56 px, those at 16, 32 and 48 step by 1
    assert np.isclose(cell_border_excess(blocks16), 3 / 7)
    assert cell_border_excess(np.zeros((5, 5))) == 0.0  # no border inside a 5x5 matte
