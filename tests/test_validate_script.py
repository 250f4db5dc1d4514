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
    predictions = _script().run_model("mmnet-128", view, tmp_path / "out", "cpu",
                                      lowres_side="auto", flip_tta=True)
    written = sorted(p.stem for p in Path(predictions).glob("*.png"))
    assert written == ["a", "b"]
    assert np.asarray(Image.open(Path(predictions) / "a.png")).shape == (40, 56)


def test_paired_difference_is_exact_for_a_constant_shift_and_zero_for_equal_models():
    script = _script()
    reference = list(np.random.default_rng(1).random(25) * 0.1)
    mean, low, high = script.paired_difference([r + 0.002 for r in reference], reference)
    assert np.isclose(mean, 0.002) and np.isclose(low, 0.002) and np.isclose(high, 0.002)
    assert script.paired_difference(reference, reference) == (0.0, 0.0, 0.0)
    noisy = [r + d for r, d in zip(reference, np.random.default_rng(2).normal(0, 0.01, 25))]
    mean, low, high = script.paired_difference(noisy, reference)
    assert low < mean < high


def test_paired_table_compares_rows_on_the_same_images_only():
    script = _script()
    key = script.PER_IMAGE["MAD"]
    table = {"set": {"old": {key: {"a": 0.1, "b": 0.2, "c": 0.3}},
                     "new": {key: {"c": 0.2, "a": 0.1, "b": 0.1}},
                     "peer": {key: {"a": 0.5, "b": 0.1, "d": 0.3}},
                     "older json": {"MAD": 0.2}}}
    lines = script.paired_table(table, "old").splitlines()
    assert len(lines) == 5 and lines[2].startswith("| set | new | -0.06667")
    assert "not paired: scored on other images" in lines[3]
    assert "not paired: no per-image values" in lines[4]
    unpaired = script.paired_table({"set": {"old": {"MAD": 0.1}, "new": table["set"]["new"]}},
                                   "old")
    assert "no per-image values for old" in unpaired


def test_an_image_without_a_boundary_is_left_out_of_the_band_mad_only(tmp_path):
    """Fails when one empty target turns the set's band MAD into NaN (it did, on groups)."""
    script = _script()
    view, preds = tmp_path / "view", tmp_path / "pred"
    (view / "alpha").mkdir(parents=True)
    preds.mkdir()
    person = np.zeros((48, 48), np.uint8)
    person[10:40, 12:36] = 255
    for stem, truth in (("person", person), ("empty", np.zeros_like(person))):
        Image.fromarray(truth).save(view / "alpha" / f"{stem}.png")
        Image.fromarray(np.roll(truth, 2, axis=1)).save(preds / f"{stem}.png")
    both = script.score_folder(preds, view)
    (view / "alpha" / "empty.png").unlink()
    alone = script.score_folder(preds, view)
    assert np.isfinite(both["band MAD"]) and np.isclose(both["band MAD"], alone["band MAD"])
    assert np.isclose(both["MAD"], alone["MAD"] / 2)  # the empty image still counts for MAD


def test_box_mad_ignores_a_bystander_far_from_the_person_but_not_an_error_beside_it():
    """ccp-people's masks mark the main person only: a matte that also finds a bystander at
    the border loses MAD, not box MAD; a false blob next to the person costs both."""
    script = _script()
    truth = np.zeros((100, 100), np.float32)
    truth[30:70, 40:60] = 1
    bystander, beside = truth.copy(), truth.copy()
    bystander[30:70, 2:12] = 1  # outside the person's box grown by 10%
    beside[30:70, 60:62] = 1  # inside it
    assert script.scores(truth, truth)["box MAD"] == 0
    found = script.scores(bystander, truth)
    assert found["MAD"] > 0.03 and found["box MAD"] == 0
    assert script.scores(beside, truth)["box MAD"] > 0.01
    assert np.isnan(script.scores(truth, np.zeros_like(truth))["box MAD"])
    box = script.subject_box(truth)
    assert box[26:74, 38:62].all() and box.sum() == 48 * 24


def test_paired_box_mad_leaves_out_images_without_people():
    script = _script()
    key = script.PER_IMAGE["box MAD"]
    table = {"set": {"old": {key: {"a": 0.1, "b": float("nan")}},
                     "new": {key: {"a": 0.05, "b": float("nan")}}}}
    row = script.paired_table(table, "old", "box MAD").splitlines()[2]
    assert row.startswith("| set | new | -0.05000") and row.endswith("| 1 |")
