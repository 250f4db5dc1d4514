"""Training checkpoints: the files of a run directory, RNG states, and weight export.

Every file is written atomically and loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from lpmatte.errors import LpmatteError
from lpmatte.files import atomic_write
from lpmatte.model.weights import load_checkpoint


def rng_state() -> dict:
    """torch / numpy / python global RNG states as tensors and plain lists."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)},
             "python": [version, list(internal), gauss_next]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointFiles:
    """``ckpt_step_XXXXXXX.pt`` (the last ``keep_last``), ``last.pt`` and ``best.pt``."""

    def __init__(self, folder: Path, keep_last: int = 3):
        self.folder, self.keep_last = Path(folder), keep_last
        self.last, self.best = self.folder / "last.pt", self.folder / "best.pt"

    def periodic(self, step: int) -> Path:
        return self.folder / f"ckpt_step_{step:07d}.pt"

    def write(self, path: Path, state: dict) -> None:
        atomic_write(path, lambda tmp: torch.save(state, tmp))

    def save(self, step: int, state: dict, periodic: bool) -> Path:
        """Write the state as ``last.pt`` (and as the step's periodic file), then prune."""
        if not periodic:
            self.write(self.last, state)
            return self.last
        path = self.periodic(step)
        self.write(path, state)
        self.alias(path, self.last)
        self.prune()
        return path

    def alias(self, source: Path, target: Path) -> None:
        """``target`` becomes the same file as ``source`` (a hard link, else a copy), atomically."""
        def link(tmp: str) -> None:
            os.unlink(tmp)
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)

        atomic_write(target, link)

    def prune(self) -> None:
        periodic = sorted(self.folder.glob("ckpt_step_*.pt"))
        for old in periodic[:max(0, len(periodic) - self.keep_last)]:
            old.unlink(missing_ok=True)


def load_weights_only(path: str | Path, failure: str, mmap: bool = False):
    """``torch.load(path, weights_only=True)`` on the CPU; a file it cannot read is the
    one-line error "{path}: {failure} ({why})"."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as error:  # missing, truncated or foreign files raise many types
        raise LpmatteError(f"{path}: {failure} ({error})") from None


def read_training_checkpoint(path: Path, mmap: bool = False) -> dict:
    """A trainer checkpoint as saved (weights_only), with a one-line error if unusable;
    ``mmap`` maps the tensors instead of reading them (for a look at the small entries)."""
    state = load_weights_only(path, "not a readable training checkpoint", mmap)
    needed = {"model", "config", "optimizer", "scheduler", "step"}
    if not isinstance(state, dict) or not needed <= set(state):
        raise LpmatteError(f"{path}: not a training checkpoint (weights only?); "
                           "resume needs the optimizer and step as well")
    return state


def export_weights(checkpoint: str | Path, out: str | Path, half: bool = True,
                   **metadata: str) -> Path:
    """Write a checkpoint's model as ``.safetensors`` (fp16 by default) for shipping;
    ``metadata`` (e.g. ``warning="..."``, shown by the CLI on every use) joins its header."""
    from lpmatte.model.factory import build_model
    from lpmatte.model.weights import save_safetensors

    out = Path(out)
    if out.suffix != ".safetensors":
        raise LpmatteError(f"{out}: the exported weights file must end in .safetensors")
    loaded = load_checkpoint(checkpoint)
    model = build_model(loaded.config, loaded.state_dict)
    header = {k: v for k, v in loaded.metadata.items() if k != "config"}
    header.update(untrained="false", **metadata)
    save_safetensors(out, model, loaded.config, half=half, **header)
    return out
