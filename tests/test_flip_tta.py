"""Mirror averaging of the low-res network (lpmatte.inference.pipeline.MirrorAveraged, flip_tta)."""

import json

import numpy as np
import pytest
import torch

import lpmatte
from lpmatte.cli import main
from lpmatte.errors import LpmatteError
from lpmatte.inference.backends import TorchBackend
from lpmatte.inference.options import InferenceOptions
from lpmatte.inference.pipeline import MirrorAveraged, run_inference
from lpmatte.model.model import LightweightPortraitMatting
from lpmatte.model.registry import create_config
from lpmatte.model.two_stage import pad_to_multiple
from lpmatte.model.weights import save_safetensors


class RampBackend:
    """Low-res network whose alpha logits rise from left to right whatever the image, so
    it is as far from mirror-symmetric as a network can be; records its inputs."""

    def __init__(self):
        self.config = create_config("lpm-s")
        self.inputs = []

    def lowres(self, padded):
        self.inputs.append(padded)
        h, w = padded.shape[-2:]
        ramp = torch.linspace(-4, 4, w // 8).expand(1, 1, h // 8, w // 8)
        return ramp.clone(), torch.cat([-ramp, 0 * ramp, ramp], 1)

    def refine(self, crops, regions, neighbours, valid):
        return torch.full((len(crops), 1, 8, 8), 0.5)


def test_the_mirrored_view_cancels_a_left_right_bias():
    backend = RampBackend()
    image = torch.rand(1, 3, 64, 96)
    alpha, trimap = MirrorAveraged(backend).lowres(image)
    assert torch.allclose(alpha, torch.zeros_like(alpha), atol=1e-6)
    assert torch.allclose(trimap, torch.zeros_like(trimap), atol=1e-6)
    assert torch.equal(backend.inputs[1], image.flip(-1))
    assert MirrorAveraged(backend).config is backend.config  # the rest is the backend's


def test_a_real_network_becomes_mirror_equivariant():
    torch.manual_seed(0)
    model = LightweightPortraitMatting(create_config("lpm-s")).eval()
    backend = TorchBackend(model, torch.device("cpu"))
    mirrored = MirrorAveraged(backend)
    image = pad_to_multiple(torch.rand(1, 3, 72, 100))
    with torch.inference_mode():
        alpha, trimap = mirrored.lowres(image)
        flipped_alpha, flipped_trimap = mirrored.lowres(image.flip(-1))
        plain_alpha, _ = backend.lowres(image)
    assert torch.allclose(flipped_alpha, alpha.flip(-1), atol=1e-4)
    assert torch.allclose(flipped_trimap, trimap.flip(-1), atol=1e-4)
    assert not torch.allclose(plain_alpha, alpha, atol=1e-3)  # it did change the output


def test_run_inference_uses_it_only_when_asked():
    backend = RampBackend()
    plain = run_inference(backend, torch.rand(1, 3, 64, 96))
    assert len(backend.inputs) == 1
    averaged = run_inference(backend, torch.rand(1, 3, 64, 96), InferenceOptions(flip_tta=True))
    assert len(backend.inputs) == 3
    assert plain.alpha[..., 0].mean() < 0.1 and plain.alpha[..., -1].mean() > 0.9
    assert torch.allclose(averaged.alpha, torch.full_like(averaged.alpha, 0.5), atol=1e-6)


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    model = LightweightPortraitMatting(create_config("lpm-s"))
    path = tmp_path / "w.safetensors"
    save_safetensors(path, model, model.config, untrained="false", flip_tta="true")
    return path


def test_weights_ask_for_it_and_the_caller_decides(weights, portrait):
    matter = lpmatte.load(weights, device="cpu", backend="eager-fp32")
    assert matter.flip_tta is True
    off = lpmatte.load(weights, device="cpu", backend="eager-fp32", flip_tta=False)
    assert off.flip_tta is False and lpmatte.load("lpm-s", device="cpu").flip_tta is False
    image = portrait(96, 128)
    assert matter.cost(image).flops["lowres"] == 2 * off.cost(image).flops["lowres"]
    assert not np.array_equal(matter.predict(image), off.predict(image))
    with pytest.raises(LpmatteError, match="flip_tta"):
        lpmatte.load("lpm-s", device="cpu", flip_tta="yes")


def test_cli_option_profile_and_errors(tmp_path, weights, portrait, capsys):
    from PIL import Image

    Image.fromarray(portrait(96, 128)).save(tmp_path / "p.png")
    args = ["matte", str(tmp_path / "p.png"), "-o", str(tmp_path / "out"), "--model",
            str(weights), "--backend", "eager-fp32", "--quiet"]
    assert main([*args, "--flip-tta", "off"]) == 0
    off = np.asarray(Image.open(tmp_path / "out" / "p.png"))
    assert main([*args, "--flip-tta", "auto", "--overwrite"]) == 0  # the output exists
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "out" / "p.png")), off)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--flip-tta", "maybe"])
    assert exit_info.value.code == 2 and "--flip-tta" in capsys.readouterr().err
    fast = ["profile", "--model", "lpm-s", "--size", "96x128", "--runs", "1", "--warmup", "0",
            "--backend", "eager-fp32", "--device", "cpu", "--json"]
    reports = []
    for switch in ("off", "on"):
        assert main([*fast, "--flip-tta", switch]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert [r["flip_tta"] for r in reports] == [False, True]
    assert reports[1]["gflops"] > reports[0]["gflops"]


def test_onnx_export_carries_it(weights, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "w.onnx"
    assert main(["export", "onnx", "--model", str(weights), "--size", "96x128",
                 "-o", str(out)]) == 0
    assert lpmatte.load(out, device="cpu").flip_tta is True
    assert lpmatte.load(out, device="cpu", flip_tta=False).flip_tta is False
