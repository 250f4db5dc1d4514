"""Foreground and background colours behind an alpha matte: I = alpha * F + (1 - alpha) * B.

:func:`estimate_foreground_background` wraps pymatting's multilevel estimator
(Germer et al. 2021, ``estimate_foreground_ml``) at full resolution. :func:`estimate_foreground`
is the fast variant for cutouts: the same estimator on a downscaled copy gives smooth
colours F0, B0, then one closed-form step per full-resolution pixel adds back what they
miss of the image (see :func:`match_composite`).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from lpmatte.errors import LpmatteError


def _check(image: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image, np.float32)
    alpha = np.asarray(alpha, np.float32)
    if image.ndim != 3 or image.shape[2] != 3 or alpha.shape != image.shape[:2]:
        raise LpmatteError(f"expected an HxWx3 image and HxW alpha, got {image.shape} "
                           f"and {alpha.shape}")
    return np.ascontiguousarray(image), np.ascontiguousarray(alpha)


def estimate_foreground_background(image: np.ndarray, alpha: np.ndarray,
                                   regularization: float = 1e-5,
                                   gradient_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """pymatting's multilevel foreground and background estimation at full resolution.

    Args:
        image: HxWx3 float in [0, 1].
        alpha: HxW float in [0, 1].
    Returns:
        (F, B), each HxWx3 float32 in [0, 1]. The first call in a process compiles
        pymatting's numba kernel (about 5 s unless numba's cache already has it).
    """
    image, alpha = _check(image, alpha)
    try:
        from pymatting import estimate_foreground_ml
    except ImportError as error:  # pragma: no cover - pymatting is a dependency
        raise LpmatteError(f"pymatting is needed for foreground estimation ({error}); "
                           "pip install pymatting") from None
    fg, bg = estimate_foreground_ml(image, alpha, regularization=regularization,
                                    gradient_weight=gradient_weight, return_background=True)
    return fg.astype(np.float32), bg.astype(np.float32)


def match_composite(image: np.ndarray, alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray,
                    smoothness: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Move F and B as little as possible so that alpha * F + (1 - alpha) * B meets I.

    Per pixel, with v = (alpha, 1 - alpha) and residual r = I - (alpha F + (1 - alpha) B),
    the minimiser of |v . (dF, dB) - r|^2 + smoothness * (dF^2 + dB^2) is
    (dF, dB) = v r / (|v|^2 + smoothness). Where alpha = 1 this sets F to the image (B is
    left alone), where alpha = 0 the reverse. Arrays are HxWx3 (alpha HxW) float32; ``fg``
    and ``bg`` are updated in place (clipped to [0, 1]) and returned. Only the mixed pixels
    are computed, through flat indices, which is far faster than boolean masks on 3-D arrays.
    """
    np.copyto(fg, image, where=(alpha >= 1)[..., None])
    np.copyto(bg, image, where=(alpha <= 0)[..., None])
    mixed = np.flatnonzero((alpha > 0) & (alpha < 1))
    flat_fg, flat_bg, flat_image = fg.reshape(-1, 3), bg.reshape(-1, 3), image.reshape(-1, 3)
    a = np.take(alpha.reshape(-1), mixed)[:, None]
    f, b = np.take(flat_fg, mixed, axis=0), np.take(flat_bg, mixed, axis=0)
    residual = np.take(flat_image, mixed, axis=0) - (a * f + (1 - a) * b)
    step = residual / (a * a + (1 - a) * (1 - a) + smoothness)
    flat_fg[mixed] = np.clip(f + a * step, 0, 1)
    flat_bg[mixed] = np.clip(b + (1 - a) * step, 0, 1)
    return fg, bg


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, work_side: int = 512,
                        return_background: bool = False):
    """Fast foreground colours for a cutout: multilevel estimation on a copy at most
    ``work_side`` pixels on its longest side, upsampled, then :func:`match_composite`.

    Args:
        image: HxWx3 float in [0, 1].
        alpha: HxW float in [0, 1].
    Returns:
        F HxWx3 float32 in [0, 1] (and B if ``return_background``).
    """
    image, alpha = _check(image, alpha)
    height, width = alpha.shape
    scale = work_side / max(height, width)
    if scale >= 1.0:
        fg, bg = estimate_foreground_background(image, alpha)
    else:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small_fg, small_bg = estimate_foreground_background(
            cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(alpha, size, interpolation=cv2.INTER_AREA))
        fg = cv2.resize(small_fg, (width, height), interpolation=cv2.INTER_LINEAR)
        bg = cv2.resize(small_bg, (width, height), interpolation=cv2.INTER_LINEAR)
        fg, bg = match_composite(image, alpha, fg, bg)
    return (fg, bg) if return_background else fg


# --- whole folders (``lpmatte data solve-fg-bg``) -------------------------------------------

COLOUR_FORMATS = ("jpg", "png")


def save_rgb(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Float HxWx3 in [0, 1] -> 8-bit PNG or JPEG (quality 95) by suffix, atomically."""
    from lpmatte.media.image_io import atomic_write, to_uint8

    image = Image.fromarray(to_uint8(rgb))
    options = {"quality": 95} if Path(path).suffix.lower() in (".jpg", ".jpeg") else {}
    atomic_write(path, lambda tmp: image.save(tmp, **options))


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
                     description: str = "") -> list[str]:
    """Call ``function(*job)`` for every job in ``workers`` processes (in this one when
    ``workers`` <= 1), with a progress bar. Returns the error messages of failed jobs;
    other exceptions propagate."""
    from tqdm import tqdm

    tasks = [(function, job) for job in jobs]
    progress = dict(total=len(tasks), desc=description, unit="img", disable=not tasks)
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


def solve_fg_bg_folder(root: str | os.PathLike, workers: int = 1,
                       suffix: str = "jpg") -> tuple[int, list[str]]:
    """Estimate F and B for every P3M-10K training image not done yet (resumable).
    Returns (jobs attempted, error messages)."""
    jobs = p3m_fg_bg_jobs(root, suffix)
    return len(jobs), run_in_processes(solve_fg_bg_file, jobs, workers, "fg/bg")
