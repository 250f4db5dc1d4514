"""Validation of a model on the held-out ids of training/val_ids.txt, next to MediaPipe.

For each shared set (flickr-portraits, ccp-people) the held-out images are matted by the
model through lpmatte's own benchmark pipeline (`lpmatte.evaluation.benchmark`, p3m protocol, whole
image) and by MediaPipe selfie segmentation (run in its own virtual environment, see
bench_mediapipe.py) on the same images; both are scored by the same code:
MAD, MSE, SAD, Grad, Conn (p3m), IoU of alpha > 0.5, and MAD inside a 20-px band around
the person's boundary (|distance to the ground truth's 0.5 contour| <= 20 px).

Ground truth is the soft alpha that `lpmatte data soft-alpha` made from each binary mask
(--soft DIR/<set>/alpha), the same kind of target the model was trained on.

    python benchmarks/validate_default.py --model default --soft /work/data/soft --out val/
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from lpmatte.cli.common import parse_lowres_side, parse_switch
from lpmatte.evaluation.benchmark import benchmark
from lpmatte.media.image_io import load_alpha, load_rgb, save_png, to_uint8
from lpmatte.metrics import compute_metrics, mad

ROOT = Path(__file__).resolve().parents[1]
SETS = ("flickr-portraits", "ccp-people")
METRICS = ("MAD", "MSE", "SAD", "Grad", "Conn", "IoU", "band MAD")
BAND_PX = 20


def boundary_band(gt: np.ndarray, width: int = BAND_PX) -> np.ndarray:
    """Pixels within ``width`` px of the ground truth's 0.5 contour."""
    inside = (gt >= 0.5).astype(np.uint8)
    to_edge_in = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    to_edge_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    return np.where(inside > 0, to_edge_in, to_edge_out) <= width


def extra_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    fg, truth = pred >= 0.5, gt >= 0.5
    iou = float((fg & truth).sum() / max((fg | truth).sum(), 1))
    return {"IoU": iou, "band MAD": mad(pred, gt, boundary_band(gt))}


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


def run_model(model: str, view: Path, out: Path, device: str, lowres_side, flip_tta) -> Path:
    result = benchmark(model=model, dataset="folder", root=view, protocol="p3m",
                       out_dir=out / "model", device=device, flops=False,
                       lowres_side=lowres_side, flip_tta=flip_tta)
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


def score_folder(pred_dir: Path, view: Path) -> dict[str, float]:
    per_image = []
    for gt_path in sorted((view / "alpha").iterdir()):
        pred = load_alpha(pred_dir / f"{gt_path.stem}.png")
        per_image.append(scores(pred, load_alpha(gt_path)))
    return {m: float(np.mean([s[m] for s in per_image])) for m in METRICS}


def markdown(table: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = ["| set | method | " + " | ".join(METRICS) + " |", "|" + "---|" * (2 + len(METRICS))]
    for set_name, methods in table.items():
        for method, values in methods.items():
            cells = [f"{values[m]:.4f}" if m in ("MAD", "MSE", "IoU", "band MAD")
                     else f"{values[m]:.2f}" for m in METRICS]
            lines.append(f"| {set_name} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--soft", type=Path, required=True, help="soft-alpha root (<set>/alpha)")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--val-ids", type=Path, default=ROOT / "training" / "val_ids.txt")
    parser.add_argument("--out", type=Path, default=Path("validation"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-mediapipe", action="store_true")
    parser.add_argument("--lowres-side", default="auto", type=parse_lowres_side,
                        help="two-pass threshold (lpmatte.load); default: the weights'")
    parser.add_argument("--flip-tta", default="auto", type=parse_switch, metavar="on|off",
                        help="mirror averaging (lpmatte.load); default: the weights'")
    args = parser.parse_args()
    table = {}
    for set_name in SETS:
        stems = held_out(set_name, args.val_ids)
        print(f"{set_name}: {len(stems)} held-out images", file=sys.stderr)
        out = args.out / set_name
        view = build_view(set_name, stems, args.shared, args.soft, args.out)
        table[set_name] = {f"lpmatte {args.model}": score_folder(
            run_model(args.model, view, out, args.device, args.lowres_side, args.flip_tta),
            view)}
        masks = None if args.no_mediapipe else run_mediapipe(view, out)
        if masks is not None:
            table[set_name]["MediaPipe selfie (general)"] = score_folder(masks, view)
    text = markdown(table)
    print(text)
    (args.out / "validation.md").write_text(text + "\n")
    (args.out / "validation.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
