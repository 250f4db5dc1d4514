"""benchmarks/validate_default.py's model step runs on the current API (it once broke
silently when the inference options moved into lpmatte.load)."""

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "validate_default.py"


def _script():
    spec = importlib.util.spec_from_file_location("validate_default", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_model_mattes_a_folder_view(tmp_path):
    view = tmp_path / "view"
    (view / "images").mkdir(parents=True)
    (view / "alpha").mkdir()
    rng = np.random.default_rng(0)
    for stem in ("a", "b"):
        Image.fromarray((rng.random((40, 56, 3)) * 255).astype(np.uint8)).save(
            view / "images" / f"{stem}.png")
        Image.fromarray((rng.random((40, 56)) > 0.5).astype(np.uint8) * 255).save(
            view / "alpha" / f"{stem}.png")
    predictions = _script().run_model("mmnet-128", view, tmp_path / "out", "cpu", "auto", True)
    written = sorted(p.stem for p in Path(predictions).glob("*.png"))
    assert written == ["a", "b"]
    assert np.asarray(Image.open(Path(predictions) / "a.png")).shape == (40, 56)
