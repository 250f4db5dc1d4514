"""The Python API: ``lpmatte.load(...)`` returns a :class:`Matter` whose ``predict`` mattes images.

>>> import numpy as np, lpmatte
>>> matter = lpmatte.load("lpm-s", device="cpu")
>>> alpha = matter.predict(np.zeros((60, 100, 3), np.uint8))
>>> alpha.shape, alpha.dtype
((60, 100), dtype('float32'))
>>> matter.cutout(np.zeros((60, 100, 3), np.uint8)).shape
(60, 100, 4)
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from lpmatte.devices import resolve_device
from lpmatte.errors import LpmatteError
from lpmatte.inference.backends import backend_reason, create_backend, resolve_backend
from lpmatte.inference.options import InferenceOptions
from lpmatte.inference.pipeline import clip_zoom, host_threads, run_inference
from lpmatte.media.compose import composite_image, cutout_image, parse_background
from lpmatte.media.image_io import load_rgb, read_rgb
from lpmatte.model.config import WHOLE_IMAGE, ModelConfig
from lpmatte.model.factory import build_model
from lpmatte.model.region_selection import unit_float
from lpmatte.model.registry import create_config, list_models
from lpmatte.model.two_stage import NO_CLOCK, TwoStageOutput
from lpmatte.model.weights import load_checkpoint
from lpmatte.trimap import TRIMAP_VALUES

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "default.safetensors"
UNTRAINED_DEFAULT = "lpm-s"  # what "default" builds, flagged untrained, when no weights ship
TRIMAP_LEVELS = torch.tensor(TRIMAP_VALUES, dtype=torch.uint8)


class Matter:
    """A loaded model ready to matte images. Build it with :func:`load`.

    ``backend`` (a name of :data:`lpmatte.inference.backends.BACKENDS` other than ``auto``,
    or a backend object) runs the two networks; ``model`` is None for an exported ONNX file.
    ``options`` (:class:`~lpmatte.inference.options.InferenceOptions`): two passes for large
    images, mirror averaging, a region cap.
    """

    def __init__(self, model: torch.nn.Module | None, device: torch.device, name: str,
                 untrained: bool = False, backend="eager-fp32", caveat: str | None = None,
                 options: InferenceOptions = InferenceOptions()):
        self.model = model.to(device).eval() if model is not None else None
        self.device = device
        self.name = name
        self.untrained = untrained
        self.caveat = caveat  # from the weights' metadata, e.g. "early training checkpoint"
        self.options = options
        self.backend_reason = ""  # why ``auto`` chose the backend (lpmatte profile says it)
        if isinstance(backend, str):
            kind = self.model.config.kind if self.model is not None else "two-stage"
            resolved = resolve_backend(backend, device, kind)
            if backend == "auto":
                self.backend_reason = backend_reason(resolved, device, kind)
            backend = create_backend(resolved, device, self.model)
        self.backend = backend

    @property
    def lowres_side(self) -> int | None:
        return self.options.lowres_side

    @property
    def flip_tta(self) -> bool:
        return self.options.flip_tta

    @property
    def warning(self) -> str | None:
        """What a user should be told before trusting these mattes, or None."""
        if self.untrained:
            return (f"model '{self.name}' is untrained; its mattes are meaningless "
                    "(use trained weights)")
        return f"model '{self.name}': {self.caveat}" if self.caveat else None

    @property
    def config(self) -> ModelConfig:
        return self.backend.config

    def predict(self, image, return_trimap: bool = False):
        """Alpha matte of ``image`` at its own resolution.

        Args:
            image: path, PIL image, numpy HxW / HxWx3 / HxWx4 array, or torch tensor
                3xHxW / 1x3xHxW (uint8, uint16, or float in [0, 1]: a resampling
                overshoot is clipped; floats above 2 are read as 0..255).
            return_trimap: also return the coarse trimap, uint8 HxW with 0/128/255.
        Returns:
            float32 HxW alpha in [0, 1], or ``(alpha, trimap)``.
        """
        output = self.run(image)
        alpha = output.alpha_array()
        if not return_trimap:
            return alpha
        return alpha, full_res_trimap(output.trimap_probs, alpha.shape)

    def cutout(self, image) -> np.ndarray:
        """uint8 HxWx4 RGBA: the person with estimated foreground colours (no halo of the old
        background at soft edges) and the predicted alpha."""
        rgb = read_rgb(image)
        return cutout_image(rgb, self.predict(rgb))

    def composite(self, image, background="#00ff00") -> np.ndarray:
        """uint8 HxWx3: the person (estimated foreground colours) over ``background``, a
        colour (name, ``#rrggbb``, ``r,g,b``, an RGB tuple in [0, 1]) or an image (path or
        float HxWx3 array, scaled to cover)."""
        rgb = read_rgb(image)
        if isinstance(background, (str, Path)):
            background = parse_background(background)
        return composite_image(rgb, self.predict(rgb), background)

    def run(self, image, coarse_filter=None, region_mask: torch.Tensor | None = None,
            clock=NO_CLOCK) -> TwoStageOutput:
        """The whole :class:`~lpmatte.model.two_stage.TwoStageOutput` (tensors on the
        device, batch 1), with the pipeline's hooks: ``coarse_filter`` (video stability,
        see :func:`lpmatte.model.two_stage.run_two_stages`), ``region_mask`` (forced 8x8
        cells) and ``clock`` (a :class:`lpmatte.inference.pipeline.StageClock`)."""
        with host_threads(self.backend):
            with clock.stage("preprocess"):
                x = self._image_tensor(image)
            with torch.inference_mode():
                return run_inference(self.backend, x, self.options, coarse_filter,
                                     region_mask, clock)

    def with_options(self, **changes) -> Matter:
        """A copy sharing this model and backend, with ``options.updated(**changes)``."""
        matter = copy.copy(self)
        matter.options = self.options.updated(**changes)
        return matter

    def for_clip(self, first_frame) -> Matter:
        """This matter with the zoom for people (``options.person_height``) fixed by a
        video's first frame: the first pass of every frame at the scale chosen for it
        (:func:`lpmatte.inference.pipeline.clip_zoom`). Itself when there is no zoom to fix."""
        if not self.options.person_height or self.config.kind == WHOLE_IMAGE:
            return self
        with host_threads(self.backend):
            x = self._image_tensor(first_frame)
            with torch.inference_mode():
                scale = clip_zoom(self.backend, x, self.options)
        return self.with_options(person_height=None, first_pass_scale=scale or "auto")

    def _image_tensor(self, image) -> torch.Tensor:
        """(1, 3, H, W) on the device: for 8-bit input (files, Pillow images, uint8 arrays:
        :func:`read_rgb`) a uint8 view on the CPU, which the pipeline reads as bytes
        (:func:`lpmatte.inference.pipeline.run_inference`), or moved as bytes to another
        device and converted there; else float32 in [0, 1], contiguous. The same values as
        :func:`load_rgb`, with a quarter of the memory traffic or less."""
        rgb = np.require(read_rgb(image), requirements=["W"])  # torch wants a writeable array
        planar = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1)[None]
        if rgb.dtype != np.uint8:
            return planar.contiguous()
        return planar if self.device.type == "cpu" else unit_float(planar)

    def cost(self, image):
        """Parameters and FLOPs per stage: a :class:`lpmatte.inference.cost.CostReport`."""
        from lpmatte.inference.cost import measure_cost

        if self.model is None:
            raise LpmatteError(f"'{self.name}' is an ONNX export: costing needs the PyTorch "
                               "weights (or use 'lpmatte profile', which counts FLOPs itself)")
        rgb = load_rgb(image)
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(self.device)
        return measure_cost(self.model, x, self.options)

    def __repr__(self) -> str:
        flag = ", untrained" if self.untrained else ""
        return f"Matter({self.name!r}, device={self.device}, backend={self.backend.name}{flag})"


def full_res_trimap(trimap_probs: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """uint8 HxW 0/128/255 trimap from (1, 3, h, w) probabilities on the 1/8 grid."""
    classes = trimap_probs[0].argmax(0).cpu()
    trimap = TRIMAP_LEVELS[classes].repeat_interleave(8, 0).repeat_interleave(8, 1)
    return trimap[: size[0], : size[1]].numpy()


def load(name_or_path: str | Path = "default", device: str = "auto", backend: str = "auto",
         lowres_side: int | str | None = "auto", flip_tta: bool | str = "auto",
         max_regions: int | str | None = "auto", settle: bool | str = "auto",
         deblock: bool | str = "auto", person_height: int | str | None = "auto",
         first_pass_scale: float | str | None = "auto",
         transition_margin: float | str = "auto", **refiner_options) -> Matter:
    """Load ``"default"``, a registered name (:func:`lpmatte.list_models`), a weights file or
    an ONNX export (``.onnx``, from ``lpmatte export onnx``).

    Registered names without shipped weights build an untrained model (``.untrained``
    is True): useful for tests, profiling and as a training starting point.
    ``backend`` picks what runs the networks (``auto``: the fastest that agrees with
    ``eager-fp32`` on ``device``; :mod:`lpmatte.inference.backends`).
    ``lowres_side``, ``flip_tta``, ``max_regions``, ``settle``, ``deblock``,
    ``person_height`` (0 or None: off), ``first_pass_scale``, ``transition_margin``: the
    :class:`~lpmatte.inference.options.InferenceOptions`; ``"auto"`` keeps what the
    weights' metadata says (the scale their training saw), else the paper's single
    full-resolution pass; ``lowres_side`` 0 or None: one pass.
    ``refiner_options`` (e.g. ``num_neighbors=16``) override the refiner config.
    """
    matter = _load(name_or_path, resolve_device(device), backend, refiner_options)
    matter.options = matter.options.updated(lowres_side=lowres_side, flip_tta=flip_tta,
                                            max_regions=max_regions, settle=settle,
                                            deblock=deblock, person_height=person_height,
                                            first_pass_scale=first_pass_scale,
                                            transition_margin=transition_margin)
    return matter


def as_matter(model, device: str = "auto", backend: str = "auto") -> Matter:
    """``model`` itself when it is a loaded :class:`Matter`, else :func:`load` of that name
    or path: what the applications (benchmark, profile, video) take."""
    return model if isinstance(model, Matter) else load(model, device=device, backend=backend)


def stored_options(name_or_path: str | Path = "default") -> InferenceOptions:
    """The options a model's file holds, which :func:`load` keeps for ``"auto"``, read
    without building the model or a backend (a Ray driver resolves them once for every
    worker); the paper's defaults for a model built from its registered name."""
    path = _weights_file(str(name_or_path))
    if path is None:
        return InferenceOptions()
    if path.suffix == ".onnx":
        from lpmatte.inference.onnx.graphs import read_onnx  # onnx only when asked for

        return InferenceOptions.from_metadata(read_onnx(path).metadata, str(path))
    return InferenceOptions.from_metadata(load_checkpoint(path).metadata, str(path))


def _weights_file(name: str) -> Path | None:
    """The file that model ``name`` is read from: an ONNX export or a weights file (also
    the package's own for ``default`` and registered names that ship weights); None for
    a name built untrained."""
    path = Path(name)
    if path.suffix == ".onnx":
        return path
    if name == "default":
        return DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file() else None
    if name in list_models():
        return shipped_weights(name)
    if path.suffix in (".safetensors", ".pt", ".pth") or path.exists():
        return path
    raise LpmatteError(f"unknown model '{name}': not a registered name "
                       f"({', '.join(list_models())}) nor a weights file")


def shipped_weights(name: str) -> Path | None:
    """The weights file shipped in the package for registered model ``name``
    (``weights/<name>.safetensors``), or None: that name then builds untrained."""
    path = WEIGHTS_DIR / f"{name}.safetensors"
    return path if path.is_file() else None


def _load(name_or_path, torch_device: torch.device, backend: str, refiner_options) -> Matter:
    name = str(name_or_path)
    path = _weights_file(name)
    if path is not None and path.suffix == ".onnx":
        return _from_onnx(path, torch_device, backend, refiner_options)
    resolve_backend(backend, torch_device)  # a bad name fails before any weights are read
    if path is not None:
        shown = name if name == "default" or name in list_models() else path.stem
        return _from_file(path, torch_device, shown, refiner_options, backend)
    registered = UNTRAINED_DEFAULT if name == "default" else name
    shown = f"{UNTRAINED_DEFAULT}-untrained" if name == "default" else name
    config = create_config(registered, **refiner_options)
    return Matter(build_model(config), torch_device, shown, True, backend)


def _from_file(path: Path, device: torch.device, name: str, refiner_options,
               backend: str) -> Matter:
    checkpoint = load_checkpoint(path)
    config = _with_refiner_options(checkpoint.config, refiner_options)
    untrained = checkpoint.metadata.get("untrained", "false") == "true"
    return Matter(build_model(config, checkpoint.state_dict), device, name, untrained, backend,
                  checkpoint.metadata.get("warning"),
                  InferenceOptions.from_metadata(checkpoint.metadata, str(path)))


def _from_onnx(path: Path, device: torch.device, backend: str, refiner_options) -> Matter:
    """An exported file: runs as exported with ``auto``/``onnx``, quantized with ``onnx-int8``."""
    if refiner_options:
        raise LpmatteError(f"{path}: {', '.join(sorted(refiner_options))} is fixed in the "
                           "exported graph")
    name = "onnx" if backend == "auto" else resolve_backend(backend, device)
    runner = create_backend(name, device, onnx_path=path)
    untrained = runner.metadata.get("lpmatte_untrained") == "true"
    return Matter(None, device, path.stem, untrained, runner,
                  options=InferenceOptions.from_metadata(runner.metadata, str(path)))


def _with_refiner_options(config: ModelConfig, refiner_options: dict) -> ModelConfig:
    if not refiner_options:
        return config
    try:
        return replace(config, refiner=replace(config.refiner, **refiner_options))
    except TypeError:
        raise LpmatteError(f"unknown refiner option(s): {', '.join(sorted(refiner_options))}"
                           ) from None
