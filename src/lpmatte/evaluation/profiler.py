"""Latency, FLOPs and memory of end-to-end matting: the library behind ``lpmatte profile``.

Sizes follow the paper's profiling: HD is a 1152x1792 (W x H) portrait, about 2.07 MP,
and 4K is 2304x3456, about 8 MP. Without ``images`` the input is a synthetic portrait
(:mod:`lpmatte.data.synthetic`) whose refined cells are forced to its soft-alpha boundary,
so an untrained model refines as many regions as a trained one would on such a
portrait (about 1.9k at HD) instead of its random trimap's count. With ``images`` the
model's own trimap decides, which is only realistic for trained weights.

Each run times one ``Matter.predict`` call on an in-memory uint8 image (decoding the
file is not included) and splits it into the stages of :data:`lpmatte.inference.pipeline.STAGES`.
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from lpmatte.devices import freed_memory_kept
from lpmatte.errors import LpmatteError
from lpmatte.inference.cost import flops_by_regions
from lpmatte.inference.options import TRANSITION_MARGIN
from lpmatte.inference.pipeline import STAGES, StageClock, working_size

SIZES = {"hd": (1792, 1152), "4k": (3456, 2304)}  # (H, W)


def parse_size(text: str) -> tuple[int, int]:
    """``hd``, ``4k`` or ``WxH`` (e.g. ``1152x1792``) -> (H, W) in pixels."""
    if text.lower() in SIZES:
        return SIZES[text.lower()]
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise LpmatteError(f"bad size '{text}': use hd, 4k or WxH such as 1152x1792") from None
    if not (16 <= width <= 16384 and 16 <= height <= 16384):
        raise LpmatteError(f"bad size '{text}': width and height must be in 16..16384")
    return height, width


@dataclass
class ProfileReport:
    """One profiling session; times in milliseconds, ``stages`` holds per-stage medians."""

    model: str
    size: str
    backend: str
    device: str
    e2e_ms_median: float
    e2e_ms_p90: float
    fps: float
    gflops: float
    regions: float
    peak_mem_mb: float
    stages: dict[str, float]
    cpu_ms_median: float  # process CPU time per run, all threads: robust on a busy machine
    runs: int
    inputs: str
    untrained: bool
    threads: int
    hardware: str
    lowres_side: int | None = None  # two passes above this long side (None: one pass)
    flip_tta: bool = False  # the low-res network also ran on the mirrored image
    person_height: int | None = None  # zoom for people shorter than this (GFLOPs leave it out)
    transition_margin: float = TRANSITION_MARGIN  # the second pass refines (M, 1 - M)
    versions: dict[str, str] = field(default_factory=dict)
    backend_reason: str = ""  # why ``auto`` chose the backend, when it did
    freed_memory_kept: bool = False  # lpmatte.devices.keep_freed_memory was in effect

    def as_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """A human-readable summary."""
        flip = ", flip TTA" if self.flip_tta else ""
        if self.person_height:
            flip += f", zoom for people under {self.person_height} px"
        if self.transition_margin != TRANSITION_MARGIN:
            flip += f", transition margin {self.transition_margin:g}"
        lines = [f"model {self.model} ({'untrained' if self.untrained else 'trained'}{flip}), "
                 f"size {self.size}, backend {self.backend}, device {self.device} "
                 f"({self.hardware}, {self.threads} threads)",
                 *([f"backend chosen by auto: {self.backend_reason}"]
                   if self.backend_reason else []),
                 *(["freed memory kept for reuse (LPMATTE_MALLOC=system: glibc's default)"]
                   if self.freed_memory_kept else []),
                 f"inputs: {self.inputs}; {self.runs} timed runs after warm-up", ""]
        lines += [f"  {name:<12} {ms:9.1f} ms" for name, ms in self.stages.items()]
        lines += ["", f"  end to end   {self.e2e_ms_median:9.1f} ms median, "
                      f"{self.e2e_ms_p90:.1f} ms p90, {self.fps:.2f} FPS",
                  f"  CPU time     {self.cpu_ms_median:9.1f} ms median (all threads)",
                  f"  GFLOPs       {self.gflops:9.2f}  (multiply-add = 2 FLOPs)",
                  f"  regions      {self.regions:9.0f}",
                  f"  peak memory  {self.peak_mem_mb:9.0f} MB"]
        return "\n".join(lines)


def profile(model="lpm", size: tuple[int, int] = SIZES["hd"], images=None,
            device: str = "auto", backend: str = "auto", runs: int = 20,
            warmup: int = 3) -> ProfileReport:
    """Profile ``model`` (a loaded :class:`lpmatte.Matter`, or a name or path for
    :func:`lpmatte.load` with ``device`` and ``backend``) at ``size`` (H, W).

    ``images``: a folder of photos resized to ``size``, or None for the synthetic portrait.
    """
    from lpmatte.api import as_matter

    if runs < 1 or warmup < 0:
        raise LpmatteError("--runs must be at least 1 and --warmup at least 0")
    matter = as_matter(model, device, backend)
    inputs = profile_inputs(size, images)
    warm_up(matter, inputs, warmup)
    reset_peak_memory(matter.device)
    timings = timed_runs(matter, inputs, runs)
    return summarize(matter, size, inputs, timings)


@dataclass
class ProfileInputs:
    """uint8 HxWx3 images, their forced region masks (or None) and a description."""

    images: list[np.ndarray]
    masks: list
    description: str

    def __getitem__(self, i: int):
        return self.images[i % len(self.images)], self.masks[i % len(self.masks)]


@dataclass
class Timings:
    """Per run: end-to-end ms, stage ms and refined regions."""

    totals: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    stages: list[dict[str, float]] = field(default_factory=list)
    regions: list[int] = field(default_factory=list)


def summarize(matter, size: tuple[int, int], inputs: ProfileInputs,
              timings: Timings) -> ProfileReport:
    """The report of ``timings``, with GFLOPs and the peak memory so far."""
    first_pass = working_size(*size, matter.lowres_side) or size
    totals = timings.totals
    flops_per = flops_by_regions(matter.config, first_pass, 2 if matter.flip_tta else 1)
    return ProfileReport(
        model=matter.name, size=f"{size[1]}x{size[0]}", backend=matter.backend.name,
        device=str(matter.device), e2e_ms_median=_round(np.median(totals)),
        e2e_ms_p90=_round(np.percentile(totals, 90)), fps=_round(1e3 / np.median(totals)),
        gflops=_round(np.mean([flops_per(n) for n in timings.regions]) / 1e9),
        regions=_round(np.mean(timings.regions)),
        peak_mem_mb=_round(peak_memory_mb(matter.device)),
        stages={s: _round(np.median([r.get(s, 0.0) for r in timings.stages])) for s in STAGES},
        cpu_ms_median=_round(np.median(timings.cpu)),
        runs=len(totals), inputs=inputs.description, untrained=matter.untrained,
        threads=torch.get_num_threads(), hardware=hardware_name(matter.device),
        lowres_side=matter.lowres_side, flip_tta=matter.flip_tta,
        person_height=matter.options.person_height,
        transition_margin=matter.options.transition_margin, versions=_versions(),
        backend_reason=getattr(matter, "backend_reason", ""),
        freed_memory_kept=freed_memory_kept())


def _round(value) -> float:
    return round(float(value), 2)


def profile_inputs(size: tuple[int, int], images=None) -> ProfileInputs:
    """The synthetic portrait with its boundary cells forced, or photos from ``images``."""
    if images is None:
        from lpmatte.data.synthetic import boundary_region_mask, synthetic_portrait

        image, alpha = synthetic_portrait(*size)
        return ProfileInputs([image], [boundary_region_mask(alpha)],
                             "synthetic portrait, boundary cells forced")
    photos = _load_folder(Path(images), size)
    return ProfileInputs(photos, [None], f"{len(photos)} images from {images}, own trimap")


def _load_folder(folder: Path, size: tuple[int, int], limit: int = 50) -> list[np.ndarray]:
    from PIL import Image

    from lpmatte.media.image_io import IMAGE_SUFFIXES, open_image

    if not folder.is_dir():
        raise LpmatteError(f"{folder}: not a folder of images")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not paths:
        raise LpmatteError(f"{folder}: no images found")
    resize = (size[1], size[0])
    return [np.asarray(open_image(p).convert("RGB").resize(resize, Image.BILINEAR))
            for p in paths]


def warm_up(matter, inputs: ProfileInputs, runs: int) -> None:
    for i in range(runs):
        image, mask = inputs[i]
        matter.run(image, region_mask=mask)


def timed_runs(matter, inputs: ProfileInputs, runs: int, timings: Timings | None = None,
               start: int = 0) -> Timings:
    """Time ``runs`` predictions (inputs ``start``, ``start + 1``, ...) into ``timings``."""
    timings = timings if timings is not None else Timings()
    sync = getattr(matter.backend, "synchronize", None)
    for i in range(start, start + runs):
        image, mask = inputs[i]
        clock = StageClock(sync)
        begin, begin_cpu = time.perf_counter(), time.process_time()
        matter.run(image, region_mask=mask, clock=clock)
        if sync:
            sync()
        timings.totals.append((time.perf_counter() - begin) * 1e3)
        timings.cpu.append((time.process_time() - begin_cpu) * 1e3)
        timings.stages.append(clock.times)
        timings.regions.append(clock.counts.get("regions", 0))
    return timings


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA allocator stats, or the process's peak RSS on Linux."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM
    except OSError:
        pass  # not Linux: the lifetime peak is reported


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated, or the process's peak resident memory (CPU)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hardware_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    versions = {"torch": torch.__version__}
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return versions
