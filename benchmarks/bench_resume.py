"""Acceptance check for resumable folder runs: matte N small images, SIGKILL the run half
way, rerun it, and check that every output is present exactly once, none is partial, the
manifest names every input once, and the total work is about one pass.

    python benchmarks/bench_resume.py --count 2000

Images are crops of examples/astronaut.png made under --workdir (default: a temporary
folder, deleted afterwards); nothing is written into the repository.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_batch import cpu_name, make_images
from PIL import Image

from lpmatte.apps.manifest import parse_rows


def matte_command(folder: Path, model: str) -> list[str]:
    return [sys.executable, "-m", "lpmatte", "matte", str(folder / "in"), "-o",
            str(folder / "out"), "--manifest", str(folder / "manifest.csv"), "--model", model,
            "--device", "cpu", "--quiet"]


def outputs(folder: Path) -> list[Path]:
    return [p for p in (folder / "out").rglob("*.png") if not p.name.startswith(".")]


def run_until_killed(folder: Path, model: str, count: int) -> tuple[float, int]:
    """Start the run, SIGKILL it once half the outputs exist; (seconds, outputs then)."""
    started = time.perf_counter()
    child = subprocess.Popen(matte_command(folder, model), stderr=subprocess.DEVNULL)
    while len(outputs(folder)) < count // 2:
        if child.poll() is not None:
            raise SystemExit(f"the run ended (exit {child.returncode}) before half way")
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    return time.perf_counter() - started, len(outputs(folder))


def broken_outputs(paths: list[Path]) -> list[Path]:
    broken = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.load()
        except Exception:  # noqa: BLE001 - any failure to decode means a partial file
            broken.append(path)
    return broken


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--model", default="default")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lpmatte-bench-resume-") as scratch:
        folder = args.workdir or Path(scratch)
        inputs = make_images(folder / "in", args.count)
        print(f"CPU: {cpu_name()}; {args.count} images, model {args.model}")
        killed_after, at_kill = run_until_killed(folder, args.model, args.count)
        leftovers = [p for p in (folder / "out").rglob(".*") if p.is_file()]
        rows_at_kill = len(parse_rows(folder / "manifest.csv"))
        print(f"run 1: SIGKILL after {killed_after:.1f} s with {at_kill} outputs, "
              f"{rows_at_kill} manifest rows, {len(leftovers)} temporary files left")
        started = time.perf_counter()
        rerun = subprocess.run(matte_command(folder, args.model), capture_output=True, text=True)
        resumed = time.perf_counter() - started
        rows = parse_rows(folder / "manifest.csv")
        written = sum(row.status == "written" for row in rows)
        skipped_now = rerun.stderr.strip().splitlines()[-1] if rerun.stderr.strip() else ""
        print(f"run 2: exit {rerun.returncode} in {resumed:.1f} s; {skipped_now}")
        found = outputs(folder)
        expected = {(folder / "out" / p.relative_to(folder / "in")).with_suffix(".png")
                    for p in inputs}
        broken = broken_outputs(found)
        temporaries = [p for p in (folder / "out").rglob(".*") if p.is_file()]
        inputs_in_manifest = [row.input for row in rows]
        redone = args.count - at_kill  # outputs the rerun had to make
        checks = {
            "every output present exactly once": set(found) == expected
            and len(found) == args.count,
            "no partial output": not broken and not temporaries,
            "manifest names every input once": len(inputs_in_manifest) == args.count
            and set(inputs_in_manifest) == {str(p) for p in inputs},
            "manifest all written": written == args.count,
        }
        images_done = at_kill + redone
        print(f"work: {at_kill} images before the kill + {redone} after = {images_done} "
              f"({images_done / args.count:.3f} passes; the images in flight at the kill, "
              f"at most the pipeline depth, were decoded twice); wall {killed_after:.1f} + "
              f"{resumed:.1f} = {killed_after + resumed:.1f} s")
        for name, ok in checks.items():
            print(f"  {'ok  ' if ok else 'FAIL'} {name}")
        return 0 if all(checks.values()) and rerun.returncode == 0 else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    raise SystemExit(main())
