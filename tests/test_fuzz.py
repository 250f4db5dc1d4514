"""A short, fixed-seed run of benchmarks/fuzz_inputs.py: every mutated file is a result or
an LpmatteError (the long runs are in the benchmark script)."""

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_inputs.py"


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_inputs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "tiff", "gif", "bmp", "mp4", "webm"])
def test_mutated_files_give_results_or_lpmatte_errors(fuzz, fmt):
    if fmt in fuzz.VIDEO_FORMATS:
        pytest.importorskip("av")
    import signal

    previous = signal.signal(signal.SIGPROF, fuzz.on_alarm)
    try:
        tally = fuzz.fuzz_random(fmt, seconds=0, count=120, seed=7, timeout=10, findings=None)
    finally:
        signal.signal(signal.SIGPROF, previous)
    assert tally["inputs"] == 120 and tally["findings"] == 0
    assert tally["ok"] > 0 or fmt == "png", "the mutations should not all break the file"
    assert tally["error"] > 0, "some mutations should be refused"


def test_corrupt_size_field_asking_for_gigabytes_is_an_lpmatte_error(tmp_path, monkeypatch):
    # found by fuzzing: a PNG chunk length of ~4 GB made Pillow's reader raise MemoryError
    from PIL import Image, ImageFile

    from lpmatte.errors import LpmatteError
    from lpmatte.media.image_io import load_rgb

    path = tmp_path / "p.png"
    Image.new("RGB", (8, 8)).save(path)

    def ask_too_much(self):
        raise MemoryError

    monkeypatch.setattr(ImageFile.ImageFile, "load", ask_too_much)
    with pytest.raises(LpmatteError, match="more memory than there is"):
        load_rgb(path)
