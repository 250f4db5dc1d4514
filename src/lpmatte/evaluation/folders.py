"""Score a folder of predicted alpha mattes against ground truth (``lpmatte evaluate``).

Files are paired by stem (``a.png`` predicts ``a.jpg``); any of png/jpg, 8 or 16 bit,
gray or RGBA (its alpha channel is the matte). Metrics come from :mod:`lpmatte.metrics`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lpmatte.data.datasets.files import describe_missing, files_by_stem, pair_by_stem, require_dir
from lpmatte.data.datasets.trimap import load_trimap
from lpmatte.errors import LpmatteError
from lpmatte.files import atomic_write
from lpmatte.media.image_io import load_alpha
from lpmatte.metrics import compute_metrics, metric_names


@dataclass
class EvaluationResult:
    """Per-image and mean metrics of one evaluation.

    Attributes:
        protocol: ``"dim"`` or ``"p3m"``.
        metrics: metric names, in column order.
        per_image: ``{stem: {metric: value}}`` in stem order.
        mean: ``{metric: mean over images}`` (NaN values, e.g. MSE-T of an image without
            unknown pixels, are left out of the mean).
        missing: ground-truth stems that had no prediction (only with ``allow_missing``).
        unmatched: prediction stems without ground truth (ignored).
    """

    protocol: str
    metrics: tuple[str, ...]
    per_image: dict[str, dict[str, float]]
    mean: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        """``{"protocol", "mean", "per_image"}`` (+ ``"missing"`` if any); NaN -> None."""
        result = {"protocol": self.protocol, "mean": _finite_or_none(self.mean),
                  "per_image": {k: _finite_or_none(v) for k, v in self.per_image.items()}}
        if self.missing:
            result["missing"] = list(self.missing)
        return result


def _finite_or_none(values: dict[str, float]) -> dict:
    return {k: (v if math.isfinite(v) else None) for k, v in values.items()}


def mean_metrics(per_image: dict[str, dict[str, float]], names) -> dict[str, float]:
    """Mean of each metric over images, ignoring NaN (NaN if no image has a value)."""
    means = {}
    for name in names:
        values = np.array([row[name] for row in per_image.values()], dtype=np.float64)
        finite = values[~np.isnan(values)]
        means[name] = float(finite.mean()) if finite.size else float("nan")
    return means


def evaluate_pair(pred_path: Path, gt_path: Path, trimap_path: Path | None,
                  protocol: str) -> dict[str, float]:
    """Metrics of one prediction file against one ground-truth (and trimap) file."""
    pred, gt = load_alpha(pred_path), load_alpha(gt_path)  # errors name the file
    if pred.shape != gt.shape:
        raise LpmatteError(f"{pred_path}: size {pred.shape[1]}x{pred.shape[0]} differs from "
                           f"the ground truth {gt_path} ({gt.shape[1]}x{gt.shape[0]})")
    trimap = None
    if trimap_path is not None:
        trimap = load_trimap(trimap_path)
        if trimap.shape != gt.shape:
            raise LpmatteError(f"{trimap_path}: size {trimap.shape[1]}x{trimap.shape[0]} "
                               f"differs from the ground truth {gt_path}")
    return compute_metrics(pred, gt, trimap, protocol)


def evaluate_folders(pred_dir: str | Path, gt_dir: str | Path,
                     trimap_dir: str | Path | None = None, protocol: str = "dim",
                     allow_missing: bool = False, progress: bool = False) -> EvaluationResult:
    """Evaluate every ground-truth matte in ``gt_dir`` against ``pred_dir/<stem>.*``.

    Args:
        pred_dir, gt_dir: folders of alpha mattes, paired by file stem.
        trimap_dir: optional folder of 0/128/255 trimaps (same stems); enables -T metrics.
        protocol: ``"dim"`` or ``"p3m"`` (:mod:`lpmatte.metrics.protocols`).
        allow_missing: evaluate what is there when predictions are missing (they are
            listed in ``result.missing``); otherwise a missing prediction is an error.
        progress: show a progress bar on stderr.
    Raises:
        LpmatteError: missing folders/files, size mismatches, non-alpha images.
    """
    pred_dir, gt_dir = require_dir(Path(pred_dir), "predictions"), require_dir(Path(gt_dir),
                                                                                "ground truth")
    gts, preds = files_by_stem(gt_dir), files_by_stem(pred_dir)
    if not gts:
        raise LpmatteError(f"{gt_dir}: no ground-truth mattes found")
    missing = [stem for stem in gts if stem not in preds]
    if missing and (not allow_missing or len(missing) == len(gts)):
        raise LpmatteError(f"{pred_dir}: no prediction for {describe_missing(missing)} "
                           f"of {len(gts)} mattes in {gt_dir}")
    stems = [stem for stem in gts if stem in preds]
    trimaps = {}
    if trimap_dir is not None:
        trimap_dir = require_dir(Path(trimap_dir), "trimaps")
        trimaps = files_by_stem(trimap_dir)
        pair_by_stem(dict.fromkeys(stems), trimaps, gt_dir, trimap_dir)
    names = metric_names(protocol, trimap_dir is not None)
    per_image = {}
    for stem in _progress(stems, progress, f"evaluate ({protocol})"):
        per_image[stem] = evaluate_pair(preds[stem], gts[stem], trimaps.get(stem), protocol)
    return EvaluationResult(protocol, names, per_image, mean_metrics(per_image, names), missing,
                            [stem for stem in preds if stem not in gts])


def _progress(items, enabled: bool, description: str):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=description, unit="img")


def format_value(value: float) -> str:
    """Six significant digits (``nan`` for NaN)."""
    return f"{value:.6g}"


def format_table(columns, rows: dict[str, dict[str, float]], mean: dict[str, float]) -> str:
    """A plain-text table: one line per row, then the mean row."""
    lines = [["name", *columns]]
    lines += [[name, *(format_value(row[c]) for c in columns)] for name, row in rows.items()]
    lines.append(["mean", *(format_value(mean[c]) for c in columns)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["  ".join(cell.rjust(w) if i else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(line, widths))) for line in lines]
    rule = "-" * len(text[0])
    text.insert(1, rule)
    if rows:
        text.insert(len(text) - 1, rule)
    return "\n".join(text)


def write_csv(path: str | Path, columns, rows: dict[str, dict[str, float]],
              mean: dict[str, float], header: dict[str, str] | None = None) -> Path:
    """Write ``# key: value`` header lines, then ``name,<columns>``, the rows and a ``mean`` row.

    Values are written at full precision; read back with ``pandas.read_csv(path, comment="#")``
    or ``csv`` skipping lines that start with ``#``. The file appears atomically.
    """
    path = Path(path)

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            for key, value in (header or {}).items():
                handle.write(f"# {key}: {value}\n")
            writer = csv.writer(handle)
            writer.writerow(["name", *columns])
            for name, row in rows.items():
                writer.writerow([name, *(repr(float(row[c])) for c in columns)])
            writer.writerow(["mean", *(repr(float(mean[c])) for c in columns)])

    atomic_write(path, write)
    return path


def read_csv(path: str | Path) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """Read a file of :func:`write_csv`: ``(header, {name: {column: value}})`` incl. ``mean``."""
    header, body = {}, []
    for line in Path(path).read_text().splitlines():
        if line.startswith("# "):
            key, _, value = line[2:].partition(": ")
            header[key] = value
        elif line:
            body.append(line)
    reader = csv.reader(body)
    columns = next(reader)[1:]
    return header, {row[0]: dict(zip(columns, map(float, row[1:]))) for row in reader}
