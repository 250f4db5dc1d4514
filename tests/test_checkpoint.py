import pytest
import torch

import lpmatte
from lpmatte.errors import LpmatteError
from lpmatte.model.model import LightweightPortraitMatting
from lpmatte.model.registry import create_config
from lpmatte.model.weights import config_to_dict, load_checkpoint, save_safetensors


def _model():
    torch.manual_seed(3)
    return LightweightPortraitMatting(create_config("lpm-s", num_neighbors=4)).eval()


def test_safetensors_round_trip(tmp_path, portrait):
    model = _model()
    save_safetensors(tmp_path / "m.safetensors", model, model.config, untrained="false")
    matter = lpmatte.load(tmp_path / "m.safetensors", device="cpu")
    assert not matter.untrained and matter.config == model.config
    image = torch.from_numpy(portrait(48, 40)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        assert torch.allclose(matter.model(image).alpha, model(image).alpha, atol=1e-6)


def test_torch_checkpoint_loads_with_weights_only(tmp_path):
    model = _model()
    torch.save({"model": model.state_dict(), "config": config_to_dict(model.config),
                "metadata": {"step": 5}}, tmp_path / "c.pt")
    checkpoint = load_checkpoint(tmp_path / "c.pt")
    assert checkpoint.config == model.config and checkpoint.metadata == {"step": "5"}


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"model": Evil(), "config": {}}, tmp_path / "evil.pt")
    with pytest.raises(LpmatteError, match="not a valid lpmatte checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_corrupt_file_is_a_clear_error(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(LpmatteError, match="bad.safetensors"):
        lpmatte.load(tmp_path / "bad.safetensors")


def test_weights_warning_reaches_the_user(tmp_path, portrait, capsys):
    from PIL import Image

    from lpmatte.cli import main

    model = _model()
    save_safetensors(tmp_path / "early.safetensors", model, model.config, untrained="false",
                     warning="early training checkpoint (step 600)")
    matter = lpmatte.load(tmp_path / "early.safetensors", device="cpu", backend="eager-fp32")
    assert not matter.untrained and "step 600" in matter.warning
    Image.fromarray(portrait(32, 32)).save(tmp_path / "p.png")
    code = main(["matte", str(tmp_path / "p.png"), "-o", str(tmp_path / "out"),
                 "--model", str(tmp_path / "early.safetensors")])
    assert code == 0 and "early training checkpoint" in capsys.readouterr().err
