"""Every inference backend agrees with eager fp32 on a portrait-like image.

Tolerances (issue 6): mean |alpha difference| < 2e-3 and coarse-trimap agreement > 99%.
The models are untrained but seeded, so the comparison is deterministic.
"""

import numpy as np
import pytest
import torch

import lpmatte
from lpmatte.data.synthetic import boundary_region_mask, synthetic_portrait
from lpmatte.errors import LpmatteError
from lpmatte.inference.backends import has_onnxruntime, resolve_backend
from lpmatte.model.config import WHOLE_IMAGE

CPU = torch.device("cpu")
needs_onnxruntime = pytest.mark.skipif(not has_onnxruntime(), reason="onnxruntime not installed")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """Keep on-the-fly ONNX exports out of the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LPMATTE_CACHE", str(tmp_path_factory.mktemp("cache")))
        patch.delenv("LPMATTE_BACKEND", raising=False)
        yield


@pytest.fixture(scope="module")
def scene():
    image, alpha = synthetic_portrait(256, 192, seed=3)
    return image, boundary_region_mask(alpha)


@pytest.fixture(scope="module")
def reference(scene):
    matter = lpmatte.load("lpm-s", device="cpu", backend="eager-fp32")
    image, mask = scene
    return (matter, matter.predict(image, return_trimap=True),
            matter.run(image, region_mask=mask).alpha_array())


def _assert_agree(expected, actual):
    (alpha, trimap), (other_alpha, other_trimap) = expected, actual
    assert np.abs(other_alpha - alpha).mean() < 2e-3
    assert (other_trimap == trimap).mean() > 0.99


@pytest.mark.parametrize("backend", [
    "channels-last", "bf16",
    pytest.param("onnx", marks=needs_onnxruntime),
    pytest.param("onnx-int8", marks=needs_onnxruntime),
    pytest.param("onnx-int8-bf16", marks=needs_onnxruntime)])
def test_backend_agrees_with_eager_fp32(backend, cache, scene, reference):
    _, expected, expected_forced = reference
    image, mask = scene
    matter = lpmatte.load("lpm-s", device="cpu", backend=backend)
    assert matter.backend.name == backend
    _assert_agree(expected, matter.predict(image, return_trimap=True))
    forced = matter.run(image, region_mask=mask).alpha_array()  # realistic boundary: ~600 regions
    assert np.abs(forced - expected_forced).mean() < 2e-3


def test_eager_pipeline_reproduces_the_model_forward(scene):
    # deblocking post-processes the pipeline's matte; the model's forward has none
    matter = lpmatte.load("lpm-s", device="cpu", backend="eager-fp32", deblock=False)
    image, mask = scene
    alpha = matter.predict(image)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        assert torch.equal(matter.model(x).alpha[0, 0], torch.from_numpy(alpha))
        forced = matter.model(x, region_mask=mask).alpha[0, 0]
    assert torch.equal(forced, torch.from_numpy(matter.run(image, region_mask=mask).alpha_array()))


@needs_onnxruntime
def test_onnx_backend_follows_the_coarse_filter(cache, scene, reference):
    eager = reference[0]
    matter = lpmatte.load("lpm-s", device="cpu", backend="onnx")

    def everything_unknown(lowres, coarse, probs):
        probs = torch.zeros_like(probs)
        probs[:, 1] = 1
        return coarse, probs

    image = scene[0][:100, :60]
    expected = eager.run(image, coarse_filter=everything_unknown).alpha_array()
    got = matter.run(image, coarse_filter=everything_unknown).alpha_array()
    assert np.abs(got - expected).max() < 1e-4


@needs_onnxruntime
def test_onnx_predict_leaves_torch_threads_alone(cache, scene):
    matter = lpmatte.load("lpm-s", device="cpu", backend="onnx")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        matter.predict(scene[0][:64, :48])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_auto_resolution(monkeypatch):
    import lpmatte.inference.backends as backends

    monkeypatch.delenv("LPMATTE_BACKEND", raising=False)
    monkeypatch.setattr(backends, "has_onnxruntime", lambda: True)
    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: False)
    assert resolve_backend("auto", CPU) == "onnx-int8"
    assert resolve_backend("auto", CPU, WHOLE_IMAGE) == "onnx"  # no int8 export for them
    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: True)
    assert resolve_backend("auto", CPU) == "onnx-int8-bf16"
    assert resolve_backend("auto", CPU, WHOLE_IMAGE) == "onnx"
    monkeypatch.setattr(backends, "has_onnxruntime", lambda: False)
    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: True)
    assert resolve_backend("auto", CPU) == "bf16"
    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: False)
    assert resolve_backend("auto", CPU) == "eager-fp32"
    assert resolve_backend("auto", CPU, WHOLE_IMAGE) == "eager-fp32"
    assert resolve_backend("auto", torch.device("cuda")) == "fp16"
    assert resolve_backend("bf16", CPU) == "bf16"
    monkeypatch.setenv("LPMATTE_BACKEND", "eager-fp32")
    assert resolve_backend("auto", CPU) == "eager-fp32"


def test_bad_backends_are_user_errors():
    with pytest.raises(LpmatteError, match="unknown backend"):
        resolve_backend("tpu", CPU)
    with pytest.raises(LpmatteError, match="CUDA"):
        lpmatte.load("lpm-s", device="cpu", backend="fp16")
    with pytest.raises(LpmatteError, match="whole-image models"):
        resolve_backend("onnx-int8-bf16", CPU, WHOLE_IMAGE)
    with pytest.raises(LpmatteError, match="for CPUs"):
        resolve_backend("onnx-int8-bf16", torch.device("cuda"))


def test_auto_says_why_it_chose_its_backend(monkeypatch):
    from lpmatte.inference.backends import backend_reason

    monkeypatch.delenv("LPMATTE_BACKEND", raising=False)
    chosen = resolve_backend("auto", CPU)
    reason = backend_reason(chosen, CPU)
    assert ("AVX512-BF16/AMX" in reason) or ("AVX2" in reason)
    assert ("onnxruntime installed" in reason) == (chosen in ("onnx-int8", "onnx-int8-bf16"))
    whole = resolve_backend("auto", CPU, WHOLE_IMAGE)
    assert ("onnxruntime installed" in backend_reason(whole, CPU, WHOLE_IMAGE)) == (
        whole == "onnx")
    monkeypatch.setenv("LPMATTE_BACKEND", "eager-fp32")
    assert backend_reason(resolve_backend("auto", CPU), CPU) == "LPMATTE_BACKEND asks for it"


@pytest.mark.parametrize("backend", ["bf16", pytest.param("onnx-int8-bf16",
                                                         marks=needs_onnxruntime)])
def test_the_shipped_default_in_bf16_agrees_with_eager_fp32(backend, cache):
    """The trained default, not only seeded untrained weights: with its refiner in bf16
    weights and activations its matte of the example photo stays within the tolerance."""
    from pathlib import Path

    photo = Path(__file__).parents[1] / "examples" / "astronaut.png"
    eager = lpmatte.load("default", device="cpu", backend="eager-fp32")
    expected = eager.predict(photo, return_trimap=True)
    _assert_agree(expected, lpmatte.load("default", device="cpu", backend=backend)
                  .predict(photo, return_trimap=True))
