"""Foreground and background colours for whole training sets (``lpmatte data solve-fg-bg``),
and the resumable process pool that this and the soft-alpha conversion run on."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from lpmatte.errors import LpmatteError
from lpmatte.media.foreground import estimate_foreground_background

COLOUR_FORMATS = ("jpg", "png")


def save_rgb(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Float HxWx3 in [0, 1] -> 8-bit PNG or JPEG (quality 95) by suffix, atomically."""
    from lpmatte.files import atomic_write
    from lpmatte.media.image_io import save_png, to_uint8

    if Path(path).suffix.lower() not in (".jpg", ".jpeg"):
        save_png(path, to_uint8(rgb))
        return
    image = Image.fromarray(to_uint8(rgb))
    atomic_write(path, lambda tmp: image.save(tmp, format="JPEG", quality=95))


def solve_fg_bg_file(image_path: Path, alpha_path: Path, fg_path: Path, bg_path: Path) -> None:
    """One training image: full-resolution F and B from its alpha, saved as 8-bit images."""
    from lpmatte.media.image_io import load_alpha, load_rgb

    image, alpha = load_rgb(image_path), load_alpha(alpha_path)
    if alpha.shape != image.shape[:2]:
        raise LpmatteError(f"{alpha_path}: size {alpha.shape[::-1]} differs from its image "
                           f"{image_path} {image.shape[1::-1]}")
    fg, bg = estimate_foreground_background(image, alpha)
    save_rgb(bg_path, bg)
    save_rgb(fg_path, fg)  # written last: its presence marks the job as done


def p3m_train_dir(root: str | os.PathLike) -> Path:
    """The P3M-10K training folder (``train/`` under ``root``, or ``root`` itself) that
    holds ``blurred_image/*.jpg`` and their alpha mattes ``mask/*.png``."""
    root = Path(root)
    for folder in (root / "train", root):
        if (folder / "blurred_image").is_dir() and (folder / "mask").is_dir():
            return folder
    raise LpmatteError(f"{root}: not a P3M-10K folder (expected train/blurred_image/ and "
                       "train/mask/)")


def p3m_fg_bg_jobs(root: str | os.PathLike, suffix: str = "jpg") -> list[tuple[Path, ...]]:
    """(image, alpha, fg, bg) paths for every P3M-10K training image whose foreground or
    background is missing; fg/ and bg/ sit next to blurred_image/."""
    from lpmatte.media.image_io import IMAGE_SUFFIXES

    train = p3m_train_dir(root)
    alphas = {path.stem: path for path in (train / "mask").iterdir()
              if path.suffix.lower() in IMAGE_SUFFIXES}
    jobs = []
    for image in sorted((train / "blurred_image").iterdir()):
        if image.suffix.lower() not in IMAGE_SUFFIXES or image.stem not in alphas:
            continue
        fg, bg = train / "fg" / f"{image.stem}.{suffix}", train / "bg" / f"{image.stem}.{suffix}"
        if not (fg.exists() and bg.exists()):
            jobs.append((image, alphas[image.stem], fg, bg))
    return jobs


def _single_thread_worker() -> None:
    cv2.setNumThreads(1)


def _call(function_and_args):
    function, args = function_and_args
    try:
        function(*args)
        return None
    except LpmatteError as error:
        return str(error)


def run_in_processes(function, jobs: list[tuple], workers: int = 1,
                     description: str = "", show_progress: bool = True) -> list[str]:
    """Call ``function(*job)`` for every job in ``workers`` processes (in this one when
    ``workers`` <= 1), with a progress bar. Returns the error messages of failed jobs;
    other exceptions propagate."""
    from tqdm import tqdm

    tasks = [(function, job) for job in jobs]
    progress = dict(total=len(tasks), desc=description, unit="img",
                    disable=not tasks or not show_progress)
    if workers <= 1:
        results = [_call(task) for task in tqdm(tasks, **progress)]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawned, not forked: cv2.setNumThreads deadlocks in a child forked from a process
        # whose OpenCV thread pool was running (pthread_cond_destroy never returns)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, context, initializer=_single_thread_worker) as pool:
            results = list(tqdm(pool.map(_call, tasks, chunksize=4), **progress))
    return [error for error in results if error]


def solve_fg_bg_folder(root: str | os.PathLike, workers: int = 1, suffix: str = "jpg",
                       progress: bool = True) -> tuple[int, list[str]]:
    """Estimate F and B for every P3M-10K training image not done yet (resumable).
    Returns (jobs attempted, error messages)."""
    jobs = p3m_fg_bg_jobs(root, suffix)
    return len(jobs), run_in_processes(solve_fg_bg_file, jobs, workers, "fg/bg",
                                            progress)
