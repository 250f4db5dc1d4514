"""On-the-fly exports for ``lpmatte.load(name, backend="onnx")``, kept in the cache folder
under a key derived from the traced code, the config and the weights."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import torch

from lpmatte.errors import LpmatteError
from lpmatte.inference.onnx.export import FORMAT_VERSION, export_graphs
from lpmatte.inference.onnx.graphs import OnnxGraphs, read_onnx, save_onnx
from lpmatte.inference.onnx.quantize import quantize_int8
from lpmatte.model import fused_refiner
from lpmatte.model.weights import config_to_dict
from lpmatte.paths import cache_dir

CACHE_ENTRIES = 6  # exports kept in the cache (each 10-130 MB)


def traced_sources(model) -> list[Path]:
    """The source files of every module class in ``model`` and of this ONNX package, sorted:
    derived from the model itself, so a new backbone is covered without a list to keep."""
    files = {Path(inspect.getfile(type(module))) for module in model.modules()}
    files.add(Path(inspect.getfile(fused_refiner)))  # the refiner is exported in that form
    files.update(Path(__file__).parent.glob("*.py"))
    return sorted(path.resolve() for path in files)


def _fingerprint(model, precision: str) -> str:
    import onnxruntime

    digest = hashlib.sha256()
    for source in traced_sources(model):  # an edit of the traced code invalidates old exports
        digest.update(source.read_bytes())
    text = json.dumps(config_to_dict(model.config), sort_keys=True)
    digest.update(f"{text}|{precision}|{FORMAT_VERSION}|{torch.__version__}|"
                  f"{onnxruntime.__version__}".encode())
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def cached_graphs(model, precision: str = "fp32", name: str | None = None) -> OnnxGraphs:
    """The graphs of ``model``, exported once and kept in :func:`cache_dir` by a hash of the
    weights, config, model code and library versions (an export takes ~10-40 s for ``lpm``).
    Only the :data:`CACHE_ENTRIES` most recently used exports are kept."""
    folder = cache_dir() / "onnx"
    path = folder / f"{model.config.name}-{_fingerprint(model, precision)}.onnx"
    if path.is_file():
        try:
            graphs = read_onnx(path)
            path.touch()  # recently used: pruned last
            return graphs
        except LpmatteError:
            path.unlink(missing_ok=True)  # a damaged cache entry: export again
    if precision == "int8":  # quantize the cached fp32 export rather than trace again
        graphs = quantize_int8(cached_graphs(model, "fp32", name))
    else:
        graphs = export_graphs(model, name=name)
    save_onnx(graphs, path)
    _prune(folder, keep=CACHE_ENTRIES)
    return graphs


def _prune(folder: Path, keep: int) -> None:
    entries = sorted(folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        stale.unlink(missing_ok=True)
