"""Summarise a training run's TensorBoard logs for MODEL_CARD.md's training log.

    python training/summarize_run.py /work/runs/default-lpm-s [--every 250]

Prints, per window of --every steps: the mean total loss, mean images/s and the latest
validation scores logged in it (if any), and the run's wall-clock time per log file.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def scalars(run: Path) -> tuple[dict[str, list], list[tuple[float, float, int, int]]]:
    series, files = defaultdict(list), []
    for path in sorted((run / "logger").glob("events.out.tfevents.*")):
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        times = []
        for tag in events.Tags()["scalars"]:
            for event in events.Scalars(tag):
                series[tag].append((event.step, event.value))
                times.append((event.wall_time, event.step))
        if times:
            files.append((min(times)[0], max(times)[0], min(times)[1], max(times)[1]))
    return series, files


def window_means(points: list[tuple[int, float]], every: int) -> dict[int, float]:
    buckets = defaultdict(list)
    for step, value in points:
        buckets[step // every * every].append(value)
    return {start: sum(v) / len(v) for start, v in sorted(buckets.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--every", type=int, default=250)
    args = parser.parse_args()
    series, files = scalars(args.run)
    hours = sum(end - start for start, end, _, _ in files) / 3600
    print(f"log files: {len(files)}, logged wall time {hours:.2f} h, "
          f"steps {min(f[2] for f in files)}-{max(f[3] for f in files)}")
    loss = window_means(series["loss/total"], args.every)
    speed = window_means(series.get("train/images_per_second", []), args.every)
    validation = {tag: dict(points) for tag, points in series.items() if tag.startswith("val/")}
    header = ["steps", "mean loss", "images/s", *validation]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for start, value in loss.items():
        vals = [next((f"{v:.4f}" for s, v in sorted(points.items(), reverse=True)
                      if start <= s < start + args.every), "") for points in validation.values()]
        cells = [f"{start}-{start + args.every - 1}", f"{value:.3f}",
                 f"{speed.get(start, 0):.2f}", *vals]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
