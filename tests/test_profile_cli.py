"""``lpmatte profile``: the JSON contract, the human table and user errors."""

import json

import numpy as np
import pytest
from PIL import Image

from lpmatte.cli import main
from lpmatte.evaluation.profiler import parse_size
from lpmatte.inference.pipeline import STAGES

FAST = ["--model", "lpm-s", "--size", "96x128", "--runs", "2", "--warmup", "1",
        "--backend", "eager-fp32", "--device", "cpu"]


def test_json_has_the_promised_fields(capsys):
    assert main(["profile", *FAST, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("model", "size", "backend", "device", "e2e_ms_median", "e2e_ms_p90", "fps",
                "gflops", "regions", "peak_mem_mb", "stages", "freed_memory_kept"):
        assert key in report
    assert report["model"] == "lpm-s" and report["size"] == "96x128"
    assert report["backend"] == "eager-fp32" and report["device"] == "cpu"
    assert set(report["stages"]) == set(STAGES)
    assert 0 < report["e2e_ms_median"] <= report["e2e_ms_p90"]
    assert report["fps"] == pytest.approx(1000 / report["e2e_ms_median"], rel=0.01)
    assert report["regions"] > 0  # the synthetic portrait's boundary is refined
    assert report["gflops"] > 0 and report["peak_mem_mb"] > 0


def test_more_regions_cost_more_flops(capsys):
    main(["profile", *FAST, "--json"])
    small = json.loads(capsys.readouterr().out)
    main(["profile", *FAST[:2], "--size", "192x256", *FAST[4:], "--json"])
    large = json.loads(capsys.readouterr().out)
    assert large["regions"] > small["regions"] and large["gflops"] > small["gflops"]


def test_table_and_images_folder(tmp_path, capsys):
    for i in range(2):
        Image.fromarray(np.full((40, 30, 3), 60 * i, np.uint8)).save(tmp_path / f"{i}.png")
    assert main(["profile", *FAST, "--images", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "end to end" in out and "2 images from" in out and "lowres" in out


@pytest.mark.parametrize("args, message", [
    (["--size", "big"], "bad size"),
    (["--size", "0x100"], "bad size"),
    (["--runs", "0"], "--runs"),
    (["--images", "/no/such/folder"], "not a folder"),
    (["--model", "nope"], "unknown model"),
])
def test_user_errors(args, message, capsys):
    assert main(["profile", *FAST, *args]) == 2
    assert message in capsys.readouterr().err


def test_parse_size():
    assert parse_size("hd") == (1792, 1152)
    assert parse_size("4K") == (3456, 2304)
    assert parse_size("640x480") == (480, 640)
