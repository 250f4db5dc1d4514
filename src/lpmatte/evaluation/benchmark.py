"""Run a model over a benchmark dataset, save its mattes and score them (``lpmatte benchmark``).

Resize policy (after the reference benchmark script): P3M-500 at full resolution; PPM-100
and PhotoMatte85 downscaled to at most the HD area (1920 x 1080 = 2,073,600 px, aspect
kept, OpenCV INTER_AREA), the predicted alpha upscaled back bilinearly; metrics are always
computed at the original resolution. Predictions are saved as 8-bit PNGs and scored as
saved, so ``lpmatte evaluate`` on the saved folder reproduces the CSV.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from lpmatte.data.datasets import build_dataset, canonical_kind
from lpmatte.errors import LpmatteError
from lpmatte.evaluation.folders import mean_metrics, write_csv
from lpmatte.media.image_io import save_png, to_uint8
from lpmatte.media.resize import fit_area
from lpmatte.metrics import compute_metrics, metric_names

HD_AREA = 1920 * 1080
DEFAULT_MAX_AREA = {"p3m": None, "ppm100": HD_AREA, "photomatte85": HD_AREA, "folder": None}
COST_COLUMNS = ("GFLOPs", "regions", "latency_ms", "pixels")


@dataclass
class BenchmarkResult:
    """What one benchmark run measured; ``rows[name]`` has the metrics and cost columns."""

    model: str
    protocol: str
    metrics: tuple[str, ...]
    rows: dict[str, dict[str, float]]
    mean: dict[str, float]
    params: int | None
    header: dict[str, str] = field(default_factory=dict)
    csv_path: Path | None = None
    pred_dir: Path | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.metrics, *COST_COLUMNS)


def git_commit() -> str:
    """Short commit of the lpmatte source tree, or ``"unknown"`` (no git, not a checkout)."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, cwd=Path(__file__).parent)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def resize_policy(max_area: int | None) -> str:
    """One line describing the resize policy, for the CSV header."""
    if not max_area:
        return "none (full resolution)"
    return (f"inputs above {max_area} px downscaled to that area (aspect kept, INTER_AREA), "
            "alpha upscaled back bilinearly; metrics at original resolution")


def predict_at_policy(matter, image: np.ndarray, max_area: int | None):
    """``(alpha float32 HxW at the image's size, model input, seconds spent in predict)``."""
    model_input = fit_area(image, max_area)
    start = time.perf_counter()
    alpha = matter.predict(model_input)
    seconds = time.perf_counter() - start
    if alpha.shape != image.shape[:2]:
        alpha = cv2.resize(alpha, (image.shape[1], image.shape[0]),
                           interpolation=cv2.INTER_LINEAR)
    return np.clip(alpha, 0, 1), model_input, seconds


def default_out_dir(model: str) -> Path:
    """A checkpoint's folder / ``benchmark``, or ``./benchmark/<name>`` for registered names."""
    path = Path(model)
    if path.is_file():
        return path.parent / "benchmark"
    return Path("benchmark") / model


def _check_not_a_dataset_folder(pred_dir: Path, dataset) -> None:
    folders = {path.parent.resolve() for files in dataset.files
               for path in (files.image, files.alpha, files.trimap) if path is not None}
    if pred_dir.resolve() in folders:
        raise LpmatteError(f"{pred_dir}: is a folder of the dataset; choose another --out")


def benchmark(model="default", dataset: str = "folder", root: str | Path = ".",
              split: str | None = None, protocol: str = "p3m", out_dir: str | Path | None = None,
              device: str = "auto", max_area: int | None = -1, flops: bool = True,
              progress: bool = True, dataset_options: dict | None = None,
              backend: str = "eager-fp32") -> BenchmarkResult:
    """Matte every image of a dataset, save the mattes, score them and write a CSV.

    Args:
        model: a loaded :class:`lpmatte.Matter`, or a registered name, ``"default"`` or a
            weights file (:func:`lpmatte.load` with ``device`` and ``backend``).
        backend: what runs the networks; eager fp32 by default, so scores are the model's
            own, not those of a faster approximation.
        dataset: ``p3m``, ``ppm100``, ``photomatte85`` or ``folder`` (:mod:`lpmatte.data.datasets`).
        root, split: the dataset's folder and split (P3M: ``P3M-500-P`` / ``P3M-500-NP``).
        protocol: ``"p3m"`` (the paper's tables) or ``"dim"``.
        out_dir: where ``<tag>/<name>.png`` and ``<tag>-<protocol>.csv`` go
            (default: :func:`default_out_dir`).
        max_area: pixel cap of the model input; -1: the dataset's policy, None/0: full size.
        flops: count FLOPs per image (a second forward pass under a FLOP counter).
    Returns:
        :class:`BenchmarkResult`; ``result.csv_path`` is the written CSV.
    """
    from lpmatte.api import as_matter

    kind = canonical_kind(dataset)
    if kind not in DEFAULT_MAX_AREA:
        raise LpmatteError(f"cannot benchmark on '{dataset}' "
                           f"(choose from {', '.join(DEFAULT_MAX_AREA)})")
    data = build_dataset(kind, root, split, **(dataset_options or {}))
    area = DEFAULT_MAX_AREA[kind] if max_area == -1 else (max_area or None)
    matter = as_matter(model, device, backend)
    tag = kind + (f"-{data.split}" if getattr(data, "split", None) else
                  f"-{split}" if split else "")
    out_dir = Path(out_dir) if out_dir else default_out_dir(
        model if isinstance(model, (str, Path)) else matter.name)
    flops = flops and matter.model is not None  # an ONNX export has no PyTorch modules to count
    pred_dir = out_dir / tag
    _check_not_a_dataset_folder(pred_dir, data)
    names = metric_names(protocol, data.has_trimaps)
    rows = {sample.name: score_sample(matter, sample, area, protocol, pred_dir, flops)
            for sample in _progress(data, progress, f"benchmark {tag}")}
    params = (sum(p.numel() for p in matter.model.parameters())
              if matter.model is not None else None)
    mean = mean_metrics(rows, (*names, *COST_COLUMNS))
    if len(rows) > 1:  # the first image pays for warm-up (allocations, kernel selection)
        mean["latency_ms"] = float(np.mean([r["latency_ms"] for r in list(rows.values())[1:]]))
    result = BenchmarkResult(
        model=matter.name + (" (untrained)" if matter.untrained else ""), protocol=protocol,
        metrics=names, rows=rows, mean=mean, params=params, pred_dir=pred_dir)
    result.header = csv_header(result, model, data, area, flops, matter)
    result.csv_path = write_csv(out_dir / f"{tag}-{protocol}.csv", result.columns, rows, mean,
                                result.header)
    return result


def score_sample(matter, sample, area, protocol: str, pred_dir: Path, flops: bool) -> dict:
    """Matte one sample at the resize policy, save the 8-bit matte, return its CSV row."""
    alpha, model_input, seconds = predict_at_policy(matter, sample.image, area)
    alpha8 = to_uint8(alpha)
    save_png(pred_dir / f"{sample.name}.png", alpha8)
    row = compute_metrics(alpha8, sample.alpha, sample.trimap, protocol)
    row |= {"GFLOPs": float("nan"), "regions": float("nan"), "latency_ms": 1e3 * seconds,
            "pixels": float(model_input.shape[0] * model_input.shape[1])}
    if flops:
        cost = matter.cost(model_input)
        row |= {"GFLOPs": cost.gflops, "regions": float(cost.regions)}
    return row


def csv_header(result: BenchmarkResult, model: str, data, area, flops: bool, matter) -> dict:
    """What the CSV's comment lines record about the run."""
    from lpmatte.version import __version__

    return {
        "lpmatte benchmark": __version__, "model": result.model,
        "model source": str(model if isinstance(model, (str, Path)) else matter.name),
        "dataset": f"{data.description}", "protocol": result.protocol,
        "resize": resize_policy(area), "predictions": f"8-bit PNG in {result.pred_dir}",
        "images": str(len(result.rows)),
        "params": "n/a (ONNX export)" if result.params is None else str(result.params),
        "device": str(matter.device),
        "two passes above": str(matter.lowres_side or "never (one full-resolution pass)"),
        "flip tta": "on" if matter.flip_tta else "off",
        "zoom for people": (f"first pass enlarged for people under "
                            f"{matter.options.person_height} px" if matter.options.person_height
                            else "off"),
        "flops": "torch FlopCounterMode, 1 multiply-add = 2 FLOPs" if flops else "not counted",
        "latency": "mean ms of predict on the model input, first image excluded",
        "commit": git_commit(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _progress(dataset, enabled: bool, description: str):
    from tqdm import tqdm

    return tqdm(dataset, total=len(dataset), desc=description, unit="img",
                disable=None if enabled else True)
