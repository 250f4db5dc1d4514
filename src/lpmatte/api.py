"""The Python API: ``lpmatte.load(...)`` returns a :class:`Matter` whose ``predict`` mattes images.

>>> import numpy as np, lpmatte
>>> matter = lpmatte.load("lpm-s", device="cpu")
>>> alpha = matter.predict(np.zeros((60, 100, 3), np.uint8))
>>> alpha.shape, alpha.dtype
((60, 100), dtype('float32'))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lpmatte.errors import LpmatteError
from lpmatte.inference.backends import create_backend, resolve_backend
from lpmatte.inference.pipeline import NO_CLOCK, host_threads, run_inference
from lpmatte.media.image_io import load_rgb
from lpmatte.model.config import ModelConfig
from lpmatte.model.model import LightweightPortraitMatting
from lpmatte.model.registry import create_config, list_models
from lpmatte.model.weights import load_checkpoint

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "default.safetensors"
UNTRAINED_DEFAULT = "lpm-s"  # what "default" builds, flagged untrained, when no weights ship
TRIMAP_LEVELS = torch.tensor([0, 128, 255], dtype=torch.uint8)

CoarseFilter = Callable[[torch.Tensor, torch.Tensor, torch.Tensor],
                        tuple[torch.Tensor, torch.Tensor]]


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LpmatteError("--device cuda asked for, but this PyTorch build sees no CUDA GPU")
    try:
        return torch.device(device)
    except RuntimeError:
        raise LpmatteError(f"unknown device '{device}' (use cpu, cuda or auto)") from None


class Matter:
    """A loaded model ready to matte images. Build it with :func:`load`.

    ``backend`` (a name of :data:`lpmatte.inference.backends.BACKENDS` other than ``auto``, or a
    backend object) runs the two networks; ``model`` is None for an exported ONNX file.
    ``lowres_side``: images with a longer side run in two passes, the first at this long
    side (:func:`lpmatte.inference.pipeline.run_two_passes`); None: one pass at full resolution.
    ``flip_tta``: the low-res network also sees the mirrored image and the two coarse
    predictions are averaged (:class:`lpmatte.inference.pipeline.MirrorAveraged`).
    """

    def __init__(self, model: LightweightPortraitMatting | None, device: torch.device, name: str,
                 untrained: bool = False, backend="eager-fp32", caveat: str | None = None,
                 lowres_side: int | None = None, flip_tta: bool = False):
        self.model = model.to(device).eval() if model is not None else None
        self.device = device
        self.name = name
        self.untrained = untrained
        self.caveat = caveat  # from the weights' metadata, e.g. "early training checkpoint"
        self.lowres_side = lowres_side or None
        self.flip_tta = flip_tta
        if isinstance(backend, str):
            backend = create_backend(backend, device, self.model)
        self.backend = backend

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

    def predict(self, image, return_trimap: bool = False,
                coarse_filter: CoarseFilter | None = None, *,
                region_mask: torch.Tensor | None = None, clock=NO_CLOCK):
        """Alpha matte of ``image`` at its own resolution.

        Args:
            image: path, PIL image, numpy HxW / HxWx3 / HxWx4 array, or torch tensor
                3xHxW / 1x3xHxW (uint8, uint16, or float in [0, 1]; floats above 1 are
                read as 0..255).
            return_trimap: also return the coarse trimap, uint8 HxW with 0/128/255.
            coarse_filter: called between the stages as
                ``coarse_filter(image_lowres, coarse_alpha, trimap_probs)`` on (1, 3, h, w),
                (1, 1, h, w), (1, 3, h, w) tensors (h, w = ceil(H / 8), ceil(W / 8)) and
                returning new ``(coarse_alpha, trimap_probs)``; video uses it for stability.
            region_mask: (1, 1, h, w) bool forcing which 8x8 cells are refined.
            clock: a :class:`lpmatte.inference.pipeline.StageClock` collecting per-stage times.
        Returns:
            float32 HxW alpha in [0, 1], or ``(alpha, trimap)``.
        """
        with host_threads(self.backend):
            with clock.stage("preprocess"):
                x = self._image_tensor(image)
            with torch.inference_mode():
                output = run_inference(self.backend, x, coarse_filter, region_mask, clock,
                                       self.lowres_side, self.flip_tta)
            with clock.stage("postprocess"):
                alpha = output.alpha[0, 0].float().cpu().numpy()
                if not return_trimap:
                    return alpha
                return alpha, self._full_res_trimap(output.trimap_scores, x.shape[-2:])

    def _image_tensor(self, image) -> torch.Tensor:
        """(1, 3, H, W) float32 in [0, 1] on the device, contiguous. uint8 RGB arrays (video
        frames) are moved and converted as bytes: the same values as :func:`load_rgb`, with
        a quarter of the memory traffic."""
        if (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                and image.shape[2] == 3 and image.size):
            x = torch.from_numpy(np.require(image, requirements=["C", "W"])).to(self.device)
            return x.permute(2, 0, 1).contiguous()[None].float().div_(255.0)
        x = torch.from_numpy(load_rgb(image)).to(self.device)
        return x.permute(2, 0, 1).contiguous()[None]

    @staticmethod
    def _full_res_trimap(trimap_scores: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        classes = trimap_scores[0].argmax(0).cpu()
        trimap = TRIMAP_LEVELS[classes].repeat_interleave(8, 0).repeat_interleave(8, 1)
        return trimap[: size[0], : size[1]].numpy()

    def cost(self, image):
        """Parameters and FLOPs per stage: a :class:`lpmatte.inference.cost.CostReport`."""
        from lpmatte.inference.cost import measure_cost

        if self.model is None:
            raise LpmatteError(f"'{self.name}' is an ONNX export: costing needs the PyTorch "
                               "weights (or use 'lpmatte profile', which counts FLOPs itself)")
        rgb = load_rgb(image)
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(self.device)
        return measure_cost(self.model, x, lowres_side=self.lowres_side,
                            flip_tta=self.flip_tta)

    def __repr__(self) -> str:
        flag = ", untrained" if self.untrained else ""
        return f"Matter({self.name!r}, device={self.device}, backend={self.backend.name}{flag})"


def _build(config: ModelConfig, state_dict=None, seed: int = 0) -> LightweightPortraitMatting:
    torch.manual_seed(seed)  # untrained models are reproducible
    model = LightweightPortraitMatting(config)
    if state_dict is not None:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
        if missing or unexpected:
            raise LpmatteError(f"weights do not match model '{config.name}' "
                               f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)")
    return model


def load(name_or_path: str | Path = "default", device: str = "auto", backend: str = "auto",
         lowres_side: int | str | None = "auto", flip_tta: bool | str = "auto",
         **refiner_options) -> Matter:
    """Load ``"default"``, a registered name (:func:`lpmatte.list_models`), a weights file or
    an ONNX export (``.onnx``, from ``lpmatte export onnx``).

    Registered names without shipped weights build an untrained model (``.untrained``
    is True): useful for tests, profiling and as a training starting point.
    ``backend`` picks what runs the networks (:data:`lpmatte.inference.backends.BACKENDS`; ``auto``:
    the fastest that agrees with ``eager-fp32`` on ``device``; :mod:`lpmatte.inference.backends`).
    ``lowres_side``: larger images run in two passes, the first with this long side
    (see :class:`Matter`); ``"auto"``: what the weights' metadata says (the scale their
    training saw), else one full-resolution pass as the paper; None or 0: one pass.
    ``flip_tta``: also run the low-res network on the mirrored image and average (about
    twice its cost); ``"auto"``: what the weights' metadata says, else off.
    ``refiner_options`` (e.g. ``max_regions=4000``) override the refiner config.
    """
    matter = _load(name_or_path, resolve_device(device), backend, refiner_options)
    if lowres_side != "auto":
        matter.lowres_side = check_lowres_side(lowres_side)
    if flip_tta != "auto":
        if not isinstance(flip_tta, bool):
            raise LpmatteError(f"flip_tta must be True, False or 'auto' (got {flip_tta!r})")
        matter.flip_tta = flip_tta
    return matter


def check_lowres_side(value) -> int | None:
    """A valid ``lowres_side``: None (0 or None given) or a whole number of pixels >= 16."""
    if value is None or value == 0:
        return None
    if not isinstance(value, int) or value < 16:
        raise LpmatteError(f"lowres_side must be a whole number of pixels >= 16, or 0 for "
                           f"full resolution (got {value!r})")
    return value


def _load(name_or_path, torch_device: torch.device, backend: str, refiner_options) -> Matter:
    name = str(name_or_path)
    if Path(name).suffix == ".onnx":
        return _from_onnx(Path(name), torch_device, backend, refiner_options)
    backend = resolve_backend(backend, torch_device)
    if name == "default":
        if DEFAULT_WEIGHTS.is_file():
            return _from_file(DEFAULT_WEIGHTS, torch_device, "default", refiner_options, backend)
        config = create_config(UNTRAINED_DEFAULT, **refiner_options)
        return Matter(_build(config), torch_device, f"{UNTRAINED_DEFAULT}-untrained", True,
                      backend)
    if name in list_models():
        config = create_config(name, **refiner_options)
        return Matter(_build(config), torch_device, name, True, backend)
    path = Path(name)
    if path.suffix in (".safetensors", ".pt", ".pth") or path.exists():
        return _from_file(path, torch_device, path.stem, refiner_options, backend)
    raise LpmatteError(f"unknown model '{name}': not a registered name "
                       f"({', '.join(list_models())}) nor a weights file")


def _from_file(path: Path, device: torch.device, name: str, refiner_options,
               backend: str) -> Matter:
    from dataclasses import replace

    checkpoint = load_checkpoint(path)
    config = checkpoint.config
    if refiner_options:
        config = replace(config, refiner=replace(config.refiner, **refiner_options))
    untrained = checkpoint.metadata.get("untrained", "false") == "true"
    return Matter(_build(config, checkpoint.state_dict), device, name, untrained, backend,
                  checkpoint.metadata.get("warning"),
                  **_stored_inference(checkpoint.metadata, path))


def _from_onnx(path: Path, device: torch.device, backend: str, refiner_options) -> Matter:
    """An exported file: runs as exported with ``auto``/``onnx``, quantized with ``onnx-int8``."""
    from dataclasses import replace

    fixed = set(refiner_options) - {"max_regions"}
    if fixed:
        raise LpmatteError(f"{path}: {', '.join(sorted(fixed))} is fixed in the exported "
                           "graph (only max_regions can change)")
    name = "onnx" if backend == "auto" else resolve_backend(backend, device)
    runner = create_backend(name, device, onnx_path=path)
    if refiner_options:
        runner.config = replace(runner.config,
                                refiner=replace(runner.config.refiner, **refiner_options))
    untrained = runner.metadata.get("lpmatte_untrained") == "true"
    return Matter(None, device, path.stem, untrained, runner,
                  **_stored_inference(runner.metadata, path, prefix="lpmatte_"))


def _stored_inference(metadata: dict[str, str], path: Path, prefix: str = "") -> dict:
    """The ``lowres_side`` and ``flip_tta`` a weights file or an ONNX export asks for
    (metadata are strings; ONNX keys carry ``prefix``)."""
    return {"lowres_side": _stored_side(metadata.get(f"{prefix}lowres_side"), path),
            "flip_tta": metadata.get(f"{prefix}flip_tta") == "true"}


def _stored_side(text: str | None, path: Path) -> int | None:
    """The ``lowres_side`` a weights file asks for (metadata are strings)."""
    if not text:
        return None
    try:
        return check_lowres_side(int(text))
    except (ValueError, LpmatteError):
        raise LpmatteError(f"{path}: bad lowres_side '{text}' in its metadata") from None
