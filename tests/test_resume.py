"""Resumable folder runs: skip complete outputs, ignore leftovers, merge the manifest,
and keep every output inside -o."""

import csv
import json
import os

import pytest
from PIL import Image

import lpmatte
from lpmatte.apps.images import matte_files
from lpmatte.apps.manifest import Manifest, Row, parse_rows
from lpmatte.cli import main


@pytest.fixture(scope="module")
def matter():
    return lpmatte.load("lpm-s", device="cpu", backend="eager-fp32")


@pytest.fixture
def folder(tmp_path, portrait):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for index in range(5):
        Image.fromarray(portrait(48, 40, seed=index)).save(src / f"p{index}.png")
    Image.fromarray(portrait(40, 48, seed=9)).save(src / "sub" / "q.jpg")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return src


def test_rerun_skips_complete_outputs_and_redoes_missing(matter, folder, tmp_path):
    out = tmp_path / "out"
    first = matte_files(matter, [str(folder)], out, progress=False)
    assert len(first.written) == 6
    assert [f[0] for f in first.failures] == [str(folder / "broken.png")]
    original = (out / "p1.png").read_bytes()
    (out / "p3.png").unlink()  # as if the run had been killed before writing it
    (out / ".p4.png.part-abc123.png").write_bytes(b"half a png")  # leftover of a killed write
    (out / "p1.png").write_bytes(original)
    mtime = (out / "p1.png").stat().st_mtime_ns
    second = matte_files(matter, [str(folder)], out, progress=False)
    assert second.written == [out / "p3.png"]
    assert len(second.skipped) == 5
    assert (out / "p1.png").stat().st_mtime_ns == mtime
    assert not [p for p in out.rglob(".*")], "leftover temporary files must be removed"
    redone = matte_files(matter, [str(folder)], out, progress=False, overwrite=True)
    assert len(redone.written) == 6 and not redone.skipped


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_manifest_lists_every_input_once_after_a_rerun(matter, folder, tmp_path, suffix):
    out, log = tmp_path / "out", tmp_path / f"log{suffix}"
    matte_files(matter, [str(folder / "p0.png"), str(folder / "p1.png")], out, progress=False,
                manifest=log)
    with open(log, "a") as handle:
        handle.write('{"input": "cut sho' if suffix == ".jsonl" else "cut,sho")  # killed mid-row
    matte_files(matter, [str(folder)], out, progress=False, manifest=log)
    rows = parse_rows(log)
    by_input = {row.input: row for row in rows}
    assert len(rows) == len(by_input) == 7
    assert by_input[str(folder / "p0.png")].status == "written"  # earlier row kept
    assert by_input[str(folder / "p2.png")].bytes == (out / "p2.png").stat().st_size
    failed = by_input[str(folder / "broken.png")]
    assert failed.status == "failed" and "not a readable image" in failed.error
    text = log.read_text()
    if suffix == ".csv":
        assert next(csv.reader([text.splitlines()[0]])) == ["input", "status", "output", "bytes",
                                                             "ms", "error"]
    else:
        assert all(json.loads(line) for line in text.splitlines())


def test_manifest_rows_are_on_disk_before_the_run_ends(tmp_path):
    log = tmp_path / "m.jsonl"
    with Manifest(log) as manifest:
        manifest.add(Row("a.png", "written", "out/a.png", 10, 1.0, ""))
        assert parse_rows(log) == [Row("a.png", "written", "out/a.png", 10, 1.0, "")]


def test_cli_summary_and_exit_code_count_failures(folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["matte", str(folder), "-o", str(out), "--model", "lpm-s", "--quiet",
                 "--device", "cpu", "--backend", "eager-fp32"])
    err = capsys.readouterr().err
    assert code == 1
    assert "6 written, 0 already done (skipped), 1 failed" in err
    (folder / "broken.png").unlink()
    assert main(["matte", str(folder), "-o", str(out), "--model", "lpm-s", "--quiet",
                 "--device", "cpu", "--backend", "eager-fp32"]) == 0
    assert "0 written, 6 already done (skipped), 0 failed" in capsys.readouterr().err


def test_symlink_out_of_the_output_folder_is_refused(matter, folder, tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "sub")
    os.symlink(elsewhere / "x.png", out / "p0.png")
    result = matte_files(matter, [str(folder)], out, progress=False)
    messages = dict(result.failures)
    assert "outside" in messages[str(folder / "sub" / "q.jpg")]
    assert "symbolic link" in messages[str(folder / "p0.png")]
    assert not list(elsewhere.iterdir())


def test_output_folder_that_is_an_input_file_is_refused(folder, capsys):
    code = main(["matte", str(folder), "-o", str(folder / "p0.png"), "--model", "lpm-s"])
    assert code == 2
    assert "must be a folder" in capsys.readouterr().err


def test_output_never_replaces_an_input(matter, folder):
    before = (folder / "p0.png").read_bytes()
    result = matte_files(matter, [str(folder / "p0.png")], folder, progress=False)
    assert "overwrite an input" in result.failures[0][1]
    assert (folder / "p0.png").read_bytes() == before


def test_overlapped_and_serial_runs_write_the_same_bytes(matter, folder, tmp_path):
    matte_files(matter, [str(folder)], tmp_path / "a", progress=False, overlap=True)
    matte_files(matter, [str(folder)], tmp_path / "b", progress=False, overlap=False)
    names = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert len(names) == 6
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
