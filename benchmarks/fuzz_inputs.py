"""Fuzz the image and video readers with mutated real files.

Every outcome must be a decoded result or an ``LpmatteError``: any other exception, an
input that takes longer than ``--timeout`` seconds, or memory above ``--rss-mb`` is a
finding (saved under ``--findings`` and reported). Seeds are made here from
``examples/astronaut.png``: PNG, JPEG, WebP, TIFF, GIF and BMP images, and small H.264 MP4
and VP9 WebM videos.

    nice -n 19 python benchmarks/fuzz_inputs.py --format png --seconds 600      # random mutator
    nice -n 19 python benchmarks/fuzz_inputs.py --format mp4 --seconds 600 --engine atheris

``--engine random`` (default) mutates seeds with a seeded generator (flips, inserts,
deletes, truncation, chunk copies), so a run is repeatable; ``--engine atheris`` hands the
seeds to libFuzzer's coverage-guided mutator (``pip install atheris``).
"""

from __future__ import annotations

import argparse
import faulthandler
import io
import os
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from lpmatte.errors import LpmatteError
from lpmatte.media.image_io import load_rgb

ROOT = Path(__file__).resolve().parents[1]
IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "tiff": "TIFF", "gif": "GIF",
                 "bmp": "BMP"}
VIDEO_FORMATS = {"mp4": "libx264", "webm": "libvpx-vp9"}
FORMATS = (*IMAGE_FORMATS, *VIDEO_FORMATS)
MAX_PIXELS = 4_000_000  # a mutated header may declare anything; the reader must refuse it


class Hang(Exception):
    """An input ran past the per-input timeout."""


def astronaut(side: int = 64) -> Image.Image:
    with Image.open(ROOT / "examples" / "astronaut.png") as image:
        return image.convert("RGB").resize((side, side), Image.BILINEAR)


def image_seed(fmt: str) -> bytes:
    buffer = io.BytesIO()
    image = astronaut()
    image = image.convert("P") if fmt == "gif" else image
    image.save(buffer, format=IMAGE_FORMATS[fmt])
    return buffer.getvalue()


def video_seed(fmt: str, frames: int = 6, side: int = 32) -> bytes:
    import av

    still = np.asarray(astronaut(side))
    with tempfile.TemporaryDirectory(prefix="lpmatte-fuzz-") as folder:
        path = Path(folder) / f"seed.{fmt}"
        with av.open(str(path), "w") as container:
            stream = container.add_stream(VIDEO_FORMATS[fmt], rate=10)
            stream.width = stream.height = side
            stream.pix_fmt = "yuv420p"
            for index in range(frames):
                frame = av.VideoFrame.from_ndarray(np.roll(still, index * 3, axis=1),
                                                   format="rgb24")
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        return path.read_bytes()


def seed_for(fmt: str) -> bytes:
    return image_seed(fmt) if fmt in IMAGE_FORMATS else video_seed(fmt)


def read(path: Path, fmt: str) -> None:
    """What users run on a file: the image loader, or decoding every video frame."""
    if fmt in IMAGE_FORMATS:
        load_rgb(path, max_pixels=MAX_PIXELS)
        return
    from lpmatte.media.video.reader import VideoSource

    for allow_partial in (False, True):
        source = VideoSource(path, allow_partial=allow_partial, max_pixels=MAX_PIXELS)
        try:
            for _ in source.decode():
                pass
        except LpmatteError:
            if allow_partial:
                raise
        finally:
            source.close()


def on_alarm(signum, frame):
    raise Hang("input used more CPU time than the timeout")


def check(data: bytes, fmt: str, folder: Path, timeout: float) -> str:
    """'ok' or 'error' (an LpmatteError); anything else propagates as a finding."""
    path = folder / f"input.{fmt}"
    path.write_bytes(data)
    # CPU time, not wall time: under `nice -n 19` on a busy machine a quick input can wait
    # seconds for a core, while a real hang (a loop) burns CPU
    signal.setitimer(signal.ITIMER_PROF, timeout)
    # a wait that uses no CPU, or a loop in C code that never returns to Python for the
    # signal handler: dump the stacks and exit instead (wall time, generous)
    faulthandler.dump_traceback_later(timeout * 10, exit=True)
    try:
        read(path, fmt)
        return "ok"
    except LpmatteError:
        return "error"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        faulthandler.cancel_dump_traceback_later()


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to eight random edits: byte flips, inserts, deletes, chunk copies, truncation."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        kind = rng.random()
        at = rng.randrange(len(buffer)) if buffer else 0
        if kind < 0.4 and buffer:
            buffer[at] = rng.randrange(256)
        elif kind < 0.55:
            buffer[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind < 0.7 and buffer:
            del buffer[at:at + rng.randint(1, 64)]
        elif kind < 0.85 and buffer:
            start = rng.randrange(len(buffer))
            buffer[at:at] = buffer[start:start + rng.randint(1, 256)]
        elif kind < 0.95:
            buffer = buffer[:rng.randrange(len(buffer) + 1)]
        elif len(buffer) > 24:  # big numbers where headers keep sizes
            buffer[at:at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\xff\xff",
                                            b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00"])
    return bytes(buffer)


def save_finding(data: bytes, fmt: str, findings: Path, error: BaseException) -> Path:
    findings.mkdir(parents=True, exist_ok=True)
    path = findings / f"{fmt}-{abs(hash(data)) % 10**12:012d}.{fmt}"
    path.write_bytes(data)
    path.with_suffix(".txt").write_text("".join(traceback.format_exception(error)))
    return path


def fuzz_random(fmt: str, seconds: float, count: int | None, seed: int, timeout: float,
                findings: Path | None) -> dict:
    """Mutate the seed file for ``seconds`` (or ``count`` inputs); returns the tallies."""
    rng, original = random.Random(seed), seed_for(fmt)
    tally = {"ok": 0, "error": 0, "findings": 0, "inputs": 0, "seconds": 0.0}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lpmatte-fuzz-") as folder:
        while True:
            elapsed = time.monotonic() - started
            if (count is not None and tally["inputs"] >= count) or (
                    count is None and elapsed >= seconds):
                break
            data = mutate(original, rng)
            tally["inputs"] += 1
            try:
                tally[check(data, fmt, Path(folder), timeout)] += 1
            except Exception as error:  # noqa: BLE001 - every other exception is a finding
                tally["findings"] += 1
                where = save_finding(data, fmt, findings, error) if findings else None
                print(f"finding ({fmt}): {type(error).__name__}: {error} {where or ''}",
                      file=sys.stderr)
                if findings is None:
                    raise
    tally["seconds"] = round(time.monotonic() - started, 1)
    return tally


def fuzz_atheris(fmt: str, seconds: float, timeout: float, rss_mb: int) -> None:
    import atheris

    corpus = Path(tempfile.mkdtemp(prefix=f"lpmatte-corpus-{fmt}-"))
    (corpus / f"seed.{fmt}").write_bytes(seed_for(fmt))
    folder = Path(tempfile.mkdtemp(prefix="lpmatte-fuzz-"))

    def one_input(data: bytes) -> None:
        check(data, fmt, folder, timeout)

    atheris.instrument_all()  # coverage of the Python readers (Pillow plugins, ours)
    atheris.Setup([sys.argv[0], str(corpus), f"-max_total_time={int(seconds)}",
                   f"-rss_limit_mb={rss_mb}", "-max_len=65536", f"-timeout={int(timeout * 10) + 1}",
                   "-print_final_stats=1"], one_input)
    atheris.Fuzz()


def cap_memory(rss_mb: int) -> None:
    """Address-space cap: a memory blow-up becomes a MemoryError (a finding), not a swap storm."""
    limit = rss_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=(*FORMATS, "all"), default="all")
    parser.add_argument("--seconds", type=float, default=60, help="per format (default 60)")
    parser.add_argument("--count", type=int, help="inputs per format instead of --seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=("random", "atheris"), default="random")
    parser.add_argument("--timeout", type=float, default=10, help="seconds per input")
    parser.add_argument("--rss-mb", type=int, default=4096, help="memory cap in MiB")
    parser.add_argument("--findings", type=Path, default=Path("fuzz-findings"))
    args = parser.parse_args(argv)
    signal.signal(signal.SIGPROF, on_alarm)
    warnings.simplefilter("ignore")  # Pillow warns on every corrupt tag: noise here
    formats = FORMATS if args.format == "all" else (args.format,)
    if args.engine == "atheris":
        if len(formats) != 1:
            parser.error("--engine atheris fuzzes one --format per run")
        fuzz_atheris(formats[0], args.seconds, args.timeout, args.rss_mb)
        return 0
    cap_memory(args.rss_mb)
    found = 0
    for fmt in formats:
        tally = fuzz_random(fmt, args.seconds, args.count, args.seed, args.timeout,
                            args.findings)
        found += tally["findings"]
        print(f"{fmt}: {tally['inputs']} inputs in {tally['seconds']} s: {tally['ok']} decoded, "
              f"{tally['error']} LpmatteError, {tally['findings']} findings", flush=True)
    return 1 if found else 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
