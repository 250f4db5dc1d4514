"""Folder matting on a Ray cluster (Ray Data): ``lpmatte matte --ray [ADDRESS] IN -o OUT``.

Ray schedules; this module only describes the work. The driver plans the jobs exactly as
the local path (:func:`lpmatte.apps.images.prepare`: naming, resume, path checks), builds a
Ray Dataset of (input, output) paths and runs ``map_batches`` with :class:`MattingActor`,
one model per actor. Each actor decodes, mattes and writes with the local path's
:func:`~lpmatte.apps.images.process` (atomic rename included), so outputs are the same
files; the manifest rows stream back to the driver, which writes the manifest. Inputs and
the output folder must be paths every node sees (a shared or network file system).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from lpmatte.apps.images import (
    BatchResult,
    Job,
    RenderOptions,
    prepare,
    process,
    record_planned,
)
from lpmatte.apps.manifest import COLUMNS, Manifest, Row
from lpmatte.errors import LpmatteError
from lpmatte.inference.options import InferenceOptions
from lpmatte.media.image_io import DEFAULT_MAX_PIXELS, PNG_COMPRESSION


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run: ``address`` for ``ray.init`` ("auto": the cluster started
    with ``ray start``; "local": a new one on this machine), ``actors`` model replicas (None:
    one per CPU, or per GPU share), images per ``batch_size``, ``gpus`` per actor (0: CPU
    actors), ``cpus`` per actor, and the torch ``device`` inside each actor."""

    address: str | None = "auto"
    actors: int | None = None
    batch_size: int = 8
    gpus: float = 0
    device: str = "auto"
    cpus: float = 1


@dataclass(frozen=True)
class ModelSpec:
    """What each actor loads: :func:`lpmatte.load` of ``model`` on ``backend``, run with
    ``options``, resolved once on the driver so that every actor runs the same settings."""

    model: str = "default"
    backend: str = "auto"
    options: InferenceOptions = InferenceOptions()

    @classmethod
    def resolve(cls, model: str = "default", backend: str = "auto", **choices) -> ModelSpec:
        """``choices`` (the InferenceOptions fields: lowres_side, flip_tta, ...) as
        :func:`lpmatte.load` takes them: ``"auto"`` keeps what the model's file stores."""
        from lpmatte.api import stored_options  # torch, as in the actors: only when used

        return cls(model, backend, stored_options(model).updated(**choices))


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (the Data library is a separate extra)
    except ImportError:
        raise LpmatteError("--ray needs Ray Data: pip install 'lpmatte[distributed]'") from None
    return ray


class MattingActor:
    """A Ray Data callable class: one loaded model per actor, reused for every batch."""

    def __init__(self, spec: ModelSpec, device: str, cpus: float, options: RenderOptions):
        import torch

        from lpmatte.api import load

        torch.set_num_threads(max(1, int(cpus)))  # one actor per CPU must not oversubscribe
        self.matter = load(spec.model, device=device, backend=spec.backend)
        self.matter.options = spec.options
        self.options = options

    def __call__(self, batch: dict) -> dict:
        rows = [process(self.matter, Job(Path(source), Path(target)), self.options)
                for source, target in zip(batch["source"], batch["target"])]
        return {name: [getattr(row, name) for row in rows] for name in COLUMNS}


def connect(ray, address: str | None) -> None:
    """Join the cluster at ``address`` unless this process is already connected."""
    if ray.is_initialized():
        return
    try:
        ray.init(address=None if address in (None, "local") else address,
                 log_to_driver=False, include_dashboard=False)
    except ConnectionError as error:
        raise LpmatteError(f"--ray {address}: no Ray cluster there ({error}); start one "
                           "with 'ray start --head' or give its address") from None


def actor_count(ray, options: RayOptions) -> int:
    if options.actors is not None:
        if options.actors < 1:
            raise LpmatteError(f"--ray-actors must be at least 1, got {options.actors}")
        return options.actors
    resources = ray.cluster_resources()
    if options.gpus:
        return max(1, int(resources.get("GPU", 0) / options.gpus))
    return max(1, int(resources.get("CPU", os.cpu_count() or 1) / options.cpus))


def matte_dataset(ray, jobs: list[Job], options: RenderOptions, spec: ModelSpec,
                  cluster: RayOptions):
    """The lazy Ray Dataset of manifest rows for ``jobs``."""
    items = [{"source": str(job.source), "target": str(job.target)} for job in jobs]
    blocks = max(1, -(-len(items) // cluster.batch_size))  # one block would feed one actor
    return ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        MattingActor, fn_constructor_kwargs={
            "spec": spec, "device": cluster.device if not cluster.gpus else "cuda",
            "cpus": cluster.cpus, "options": options},
        batch_size=cluster.batch_size, concurrency=actor_count(ray, cluster),
        num_cpus=cluster.cpus, num_gpus=cluster.gpus or None)


def matte_files_ray(inputs: list[str], outdir: str | Path, fmt: str = "alpha",
                    background=None, cluster: RayOptions = RayOptions(),
                    model: str = "default", backend: str = "auto", overwrite: bool = False,
                    manifest: str | Path | None = None,
                    max_pixels: int | None = DEFAULT_MAX_PIXELS,
                    png_compression: int = PNG_COMPRESSION,
                    **inference_choices) -> BatchResult:
    """:func:`lpmatte.apps.images.matte_files` on Ray: same outputs, manifest and result.
    ``inference_choices`` (lowres_side, flip_tta, max_regions, settle, deblock) as
    :func:`lpmatte.load` takes them."""
    ray = import_ray()
    spec = ModelSpec.resolve(model, backend, **inference_choices)  # fails before Ray starts
    options, todo, done, failures = prepare(inputs, outdir, fmt, background, overwrite,
                                            max_pixels, png_compression)
    with Manifest(manifest) as log:
        result = record_planned(log, failures, done)
        if todo:
            connect(ray, cluster.address)
            for record in matte_dataset(ray, todo, options, spec, cluster).iter_rows():
                row = Row(**{name: record[name] for name in COLUMNS})
                row = Row(**{**asdict(row), "bytes": int(row.bytes), "ms": float(row.ms)})
                log.add(row)
                result.add(row)
    return result
