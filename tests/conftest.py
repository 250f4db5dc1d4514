"""Shared test setup: single-threaded torch keeps the suite predictable on 2-core CI."""

import importlib.util
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lpmatte.model.registry import create_config

torch.set_num_threads(1)
# eager PyTorch in tests: the ONNX backends export (and cache) a model on first load,
# which tests of other features should neither wait for nor write into the user's cache
os.environ.setdefault("LPMATTE_BACKEND", "eager-fp32")
os.environ.setdefault("LPMATTE_CACHE", tempfile.mkdtemp(prefix="lpmatte-test-cache-"))


def portrait_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A synthetic portrait-like uint8 image: smooth background and a textured head blob."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    background = np.stack([xx / width, yy / height, 0.5 + 0 * xx], -1) * 0.6 + 0.2
    head = ((yy - 0.45 * height) / (0.3 * height)) ** 2 + ((xx - 0.5 * width) / (0.2 * width)) ** 2
    body = (yy > 0.65 * height) & (np.abs(xx - 0.5 * width) < 0.35 * width)
    person = (head < 1) | body
    skin = np.array([0.8, 0.6, 0.5], np.float32) + rng.normal(0, 0.05, (height, width, 3))
    image = np.where(person[..., None], skin, background)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


@pytest.fixture
def portrait():
    return portrait_image


@pytest.fixture(autouse=True)
def single_torch_thread():
    """Every test starts on one thread, whatever an earlier test or CLI call left behind
    (index backward sums in a thread-dependent order, so resume checks need this)."""
    torch.set_num_threads(1)
    yield


SOURCE = Path(__file__).resolve().parents[1] / "src" / "lpmatte"


def source_files() -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file of the package source, bytecode caches left out."""
    return {str(path.relative_to(SOURCE)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in SOURCE.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


@pytest.fixture(scope="session", autouse=True)
def source_tree_untouched():
    """Tests write into tmp_path only: a run that rewrites, adds or removes a file under
    src/lpmatte (even one put back afterwards: its mtime changes) ends in an error."""
    before = source_files() if SOURCE.is_dir() else {}
    yield
    after = source_files() if SOURCE.is_dir() else {}
    changed = sorted(name for name in before.keys() | after.keys()
                     if before.get(name) != after.get(name))
    if changed:
        pytest.fail("src/lpmatte changed while the tests ran (a test writes into the source "
                    "tree, or it was edited meanwhile): " + ", ".join(changed[:10]))


REFERENCE = Path(__file__).resolve().parent / "fixtures" / "metric_reference"


@pytest.fixture(scope="session")
def reference():
    """(cases, expected) of the committed metric reference cases (tests/fixtures)."""
    spec = importlib.util.spec_from_file_location("metric_cases", REFERENCE / "metric_cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = json.loads((REFERENCE / "metric_expected.json").read_text())
    return [case() for case in module.CASES], expected


class DiskBackend:
    """Low-res network: a hard disk of fixed relative size (alpha logits +-8, trimap
    foreground inside, background outside, no unknown); refiner: returns 0.25 everywhere.
    Records the sizes the low-res network was called with."""

    def __init__(self):
        self.config = create_config("lpm-s")
        self.lowres_sizes = []

    def lowres(self, padded):
        h, w = padded.shape[-2:]
        self.lowres_sizes.append((h, w))
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, h // 8), torch.linspace(-1, 1, w // 8),
                                indexing="ij")
        inside = ((yy ** 2 + xx ** 2) < 0.5)[None, None].float()
        trimap = torch.cat([1 - inside, torch.zeros_like(inside), inside], 1) * 10
        return (inside * 16 - 8), trimap

    def refine(self, crops, regions, neighbours, valid):
        return torch.full((len(crops), 1, 8, 8), 0.25)


@pytest.fixture
def disk_backend():
    """:class:`DiskBackend`, the class: call it for a fresh backend."""
    return DiskBackend
