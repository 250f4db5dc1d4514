"""kill -9 during a checkpoint write: --resume continues from the last complete checkpoint."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from lpmatte.cli import main

# Runs `lpmatte train` with torch.save slowed on the second checkpoint: half of the real
# bytes reach the file, then the process waits to be killed mid-write.
CHILD = r"""
import io, sys, time
from pathlib import Path
import torch
from lpmatte.cli import main

marker, original, calls = Path(sys.argv[1]), torch.save, []

def save_then_hang(obj, f, *args, **kwargs):
    calls.append(f)
    if len(calls) < 2:
        return original(obj, f, *args, **kwargs)
    buffer = io.BytesIO()
    original(obj, buffer)
    with open(f, "wb") as handle:
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        handle.flush()
    marker.write_text(str(f))
    time.sleep(120)

torch.save = save_then_hang
sys.exit(main(sys.argv[2:]))
"""


def make_data(root: Path) -> Path:
    from test_train_cli import make_folder

    return make_folder(root, 8)


def args(run: Path, data: Path, steps: int, *extra: str) -> list[str]:
    return ["train", "--model-version", "lpm-s", "--train-dir", str(run), "--data", str(data),
            "--crop", "64", "--batch-size", "2", "--workers", "0", "--quiet", "--precision",
            "fp32", "--steps", str(steps), "--checkpoint-every", "1", *extra]


def test_sigkill_mid_checkpoint_write_then_resume(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).parent))
    data, run, marker = make_data(tmp_path / "data"), tmp_path / "run", tmp_path / "writing"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(marker), *args(run, data, 3)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the child never reached its second checkpoint"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    half_written = Path(marker.read_text())
    assert half_written.exists() and half_written.name.startswith(".")  # a temporary name
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 1
    assert sorted(p.name for p in run.glob("ckpt_step_*.pt")) == ["ckpt_step_0000001.pt"]

    assert main(args(run, data, 3, "--resume")) == 0
    assert "steps 1..3" in capsys.readouterr().err
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 3
