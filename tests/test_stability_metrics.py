"""benchmarks/bench_stability.py's figures: flicker on static pixels, and "still" flicker
away from any change of the true alpha."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_stability.py"


def _script():
    spec = importlib.util.spec_from_file_location("bench_stability", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _moving_edge(frames: int = 4, size: int = 48) -> np.ndarray:
    """A vertical edge moving right one pixel per frame."""
    true = np.zeros((frames, size, size), np.float32)
    for t in range(frames):
        true[t, :, :20 + t] = 1
    return true


def test_still_pixels_keep_clear_of_the_changing_true_alpha():
    bench = _script()
    static = np.abs(np.diff(_moving_edge(), axis=0)) < bench.STATIC_TOLERANCE
    still = bench.away_from_change(static, distance=5)
    changed_columns = [20, 21, 22]
    for t, column in enumerate(changed_columns):
        assert not static[t, :, column].any()
        assert not still[t, :, column - 5:column + 6].any()
        assert still[t, :, column + 6:].all() and still[t, :, :column - 5].all()


def test_a_soft_edge_that_moves_with_the_person_flickers_only_near_the_edge():
    bench = _script()
    true = _moving_edge()
    soft = np.stack([np.clip((np.arange(48) - (19.5 + t)) / -3 + 0.5, 0, 1)[None].repeat(48, 0)
                     for t in range(len(true))]).astype(np.float32)
    row = bench.scores(soft, true)
    assert row["flicker"] > 0  # static pixels next to the moving edge change
    assert row["still"] == 0  # nothing changes away from it


def test_noise_far_from_any_edge_counts_as_still_flicker():
    bench = _script()
    true = _moving_edge()
    noisy = true.copy()
    noisy[1::2, 5:10, 40:45] = 0.5  # a speckle in the background that comes and goes
    row = bench.scores(noisy, true)
    assert row["still"] > 0 and row["flicker"] > 0


def test_model_cache_key_is_a_file_name_that_changes_with_the_weights(tmp_path):
    bench = _script()
    weights = tmp_path / "runs" / "model.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"first")
    first = bench.model_cache_key(str(weights))
    assert "/" not in first and first.startswith("model-")
    weights.write_bytes(b"retrained")
    assert bench.model_cache_key(str(weights)) != first
    assert bench.model_cache_key("default").startswith("default-")  # the shipped file's digest
    assert bench.model_cache_key("lpm") == "lpm"  # nothing ships: untrained
    from lpmatte.inference.options import InferenceOptions

    settled = bench.model_cache_key("default", InferenceOptions(settle=True))
    assert settled != bench.model_cache_key("default", InferenceOptions(settle=False))
    assert settled.startswith(bench.model_cache_key("default"))


def _row(flicker, still, moving=float("nan")):
    return {"flicker": flicker, "still": still, "moving": moving}


def test_acceptance_row_reports_how_many_times_lower_and_against_modnet():
    bench = _script()
    rows = {"per-frame": _row(1.0, 0.2, 250.0), "default": _row(0.1, 0.01, 246.0),
            "baseline": _row(2.0, 0.5), "MODNet": _row(0.3, 0.005)}
    row = bench.acceptance_row(rows)
    assert row["flicker_ratio"] == 20.0 and row["still_ratio"] == 50.0
    assert row["flicker_below_modnet"] is True and row["still_below_modnet"] is False
    assert row["moving_ok"] is True
    rows["default"]["moving"] = 251.0  # a lag: worse than matting every frame
    assert bench.acceptance_row(rows)["moving_ok"] is False
    line = bench.acceptance_line("walk-zoom", bench.acceptance_row(rows))
    assert "20.0x" in line and "50.0x" in line and line.split()[-1] == "no"


def test_acceptance_row_of_a_static_clip_without_modnet():
    bench = _script()
    rows = {"per-frame": _row(0.3, 0.3), "default": _row(0.0, 0.0), "baseline": _row(0.5, 0.5)}
    row = bench.acceptance_row(rows)
    assert row["flicker_ratio"] == float("inf") and "flicker_below_modnet" not in row
    assert row["moving_ok"] is True  # nothing moves, so nothing can lag


def test_explain_flicker_splits_carried_from_new_and_adds_up():
    """A still, noise-free shot whose matte jitters: the hold keeps the carried matte
    everywhere, so its flicker is all "carried"; new content the flow cannot explain
    moves part of it to "new". The parts add up to the held matte's flicker."""
    bench = _script()
    rng = np.random.default_rng(0)
    wall = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    frames = np.stack([wall] * 5)
    frames[3:, 10:30, 10:30] = 255 - frames[3:, 10:30, 10:30]  # new content from frame 3
    true = np.zeros((5, 48, 64), np.float32)
    alphas = np.clip(0.5 + rng.normal(0, 0.1, (5, 48, 64)), 0, 1).astype(np.float32)
    parts = bench.explain_flicker(frames, alphas, true)
    held = bench.hold_clip(frames, alphas)
    total = bench.scores(held, true)["flicker"]
    assert parts["carried"] + parts["new"] == pytest.approx(total, rel=1e-4)
    assert parts["new"] > 0 and 0.5 < parts["carried share"] < 1
    assert parts["5-frame mean"] <= total + 1e-9
