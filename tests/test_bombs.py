"""Inputs that declare huge sizes are refused from their header, before decoding."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import lpmatte
from lpmatte.cli import main
from lpmatte.errors import LpmatteError
from lpmatte.media.image_io import load_rgb


def png_declaring(path, width, height):
    """A valid-looking PNG of a few dozen bytes whose header declares width x height."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


def test_cli_gives_one_line_naming_the_file(tmp_path, capsys):
    bomb = png_declaring(tmp_path / "bomb.png", 60000, 60000)
    code = main(["matte", str(bomb), "-o", str(tmp_path / "out"), "--model", "lpm-s",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("lpmatte: error")]
    assert lines == [f"lpmatte: error: {bomb}: image has 3600000000 pixels (60000x60000), "
                     "more than the limit of 100000000 (--max-pixels)"]
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "bomb.png").exists()


def test_limit_is_configurable(tmp_path, portrait):
    path = tmp_path / "small.png"
    Image.fromarray(portrait(40, 50)).save(path)
    with pytest.raises(LpmatteError, match="2000 pixels .* limit of 1999"):
        load_rgb(path, max_pixels=1999)
    assert load_rgb(path, max_pixels=2000).shape == (40, 50, 3)
    assert load_rgb(path, max_pixels=None).shape == (40, 50, 3)


def test_api_refuses_bombs(tmp_path):
    bomb = png_declaring(tmp_path / "bomb.png", 30000, 20000)
    matter = lpmatte.load("lpm-s", device="cpu", backend="eager-fp32")
    with pytest.raises(LpmatteError, match="600000000 pixels"):
        matter.predict(bomb)


def test_pillow_bomb_error_becomes_a_one_line_error(tmp_path):
    # above the library limit Pillow's own check (2 x MAX_IMAGE_PIXELS) can still trigger
    bomb = png_declaring(tmp_path / "bomb.png", 60000, 60000)
    with pytest.raises(LpmatteError, match="decompression-bomb|not a readable image"):
        load_rgb(bomb, max_pixels=None)


def test_max_pixels_option_parses_suffixes(tmp_path, portrait, capsys):
    path = tmp_path / "p.png"
    Image.fromarray(np.asarray(portrait(40, 50))).save(path)
    code = main(["matte", str(path), "-o", str(tmp_path / "out"), "--model", "lpm-s",
                 "--max-pixels", "1k", "--quiet"])
    assert code == 1
    assert "limit of 1000 (--max-pixels)" in capsys.readouterr().err


def cut_video(tmp_path, suffix=".webm", frames=20):
    """A ``frames``-frame 32x32 video whose second half is cut off."""
    av = pytest.importorskip("av")
    path = tmp_path / f"full{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx-vp9" if suffix == ".webm" else "libx264", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(frames):
            image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path, cut


def test_truncated_video_is_an_error_unless_allow_partial(tmp_path, capsys):
    full, cut = cut_video(tmp_path)
    out = tmp_path / "out.webm"
    base = ["video", str(cut), "-o", str(out), "--format", "alpha", "--model", "lpm-s",
            "--no-progress", "--device", "cpu", "--backend", "eager-fp32"]
    assert main(base) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "of the declared 2.00 s" in errors[0], errors
    assert errors[0].startswith(f"lpmatte: error: {cut}: only ")
    assert "--allow-partial" in errors[0] and not out.exists()
    assert main([*base, "--allow-partial"]) == 0
    captured = capsys.readouterr()
    assert "lost about" in captured.err and "of 20 frames" in captured.err
    kept = int(captured.out.split(": ")[1].split()[0])
    assert 0 < kept < 20 and out.exists()


def test_complete_video_is_not_reported_as_partial(tmp_path):
    from lpmatte.media.video.reader import VideoSource

    full, _ = cut_video(tmp_path)
    notices = []
    source = VideoSource(full, notice=notices.append)
    assert sum(1 for _ in source.decode()) == 20 and not notices and source.lost_frames == 0
    source.close()


def test_video_frames_above_max_pixels_are_refused(tmp_path):
    from lpmatte.media.video.reader import VideoSource

    full, _ = cut_video(tmp_path)
    with pytest.raises(LpmatteError, match="1024 pixels .* limit of 1000"):
        VideoSource(full, max_pixels=1000)
