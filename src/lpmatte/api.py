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
import torch.nn.functional as F

from lpmatte.checkpoint import load_checkpoint
from lpmatte.config import ModelConfig
from lpmatte.errors import LpmatteError
from lpmatte.image_io import load_rgb
from lpmatte.model import LightweightPortraitMatting, grid_size, pad_to_multiple
from lpmatte.registry import create_config, list_models

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
    """A loaded model ready to matte images. Build it with :func:`load`."""

    def __init__(self, model: LightweightPortraitMatting, device: torch.device, name: str,
                 untrained: bool = False):
        self.model = model.to(device).eval()
        self.device = device
        self.name = name
        self.untrained = untrained

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def predict(self, image, return_trimap: bool = False,
                coarse_filter: CoarseFilter | None = None):
        """Alpha matte of ``image`` at its own resolution.

        Args:
            image: path, PIL image, or numpy HxW / HxWx3 / HxWx4 array (uint8, uint16 or
                float in [0, 1]).
            return_trimap: also return the coarse trimap, uint8 HxW with 0/128/255.
            coarse_filter: called between the stages as
                ``coarse_filter(image_lowres, coarse_alpha, trimap_probs)`` on (1, 3, h, w),
                (1, 1, h, w), (1, 3, h, w) tensors (h, w = ceil(H / 8), ceil(W / 8)) and
                returning new ``(coarse_alpha, trimap_probs)``; video uses it for stability.
        Returns:
            float32 HxW alpha in [0, 1], or ``(alpha, trimap)``.
        """
        rgb = load_rgb(image)
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(self.device)
        with torch.inference_mode():
            alpha, trimap_scores = self._run(x, coarse_filter)
        alpha = alpha[0, 0].float().cpu().numpy()
        if not return_trimap:
            return alpha
        return alpha, self._full_res_trimap(trimap_scores, rgb.shape[:2])

    def _run(self, x: torch.Tensor, coarse_filter: CoarseFilter | None):
        height, width = x.shape[-2:]
        if coarse_filter is None:
            output = self.model(x)
            return output.alpha, output.trimap_logits
        rows, cols = grid_size(height, width)
        padded = pad_to_multiple(x)
        main = self.model.lowres(padded)[-1]
        coarse = main.alpha_logits.sigmoid()
        probs = main.trimap_logits.softmax(1)
        lowres_image = F.adaptive_avg_pool2d(x, (rows, cols))
        new_coarse, new_probs = coarse_filter(lowres_image, coarse[..., :rows, :cols],
                                              probs[..., :rows, :cols])
        coarse[..., :rows, :cols] = new_coarse  # cells past the image keep their values
        probs[..., :rows, :cols] = new_probs
        alpha, _, _ = self.model.refine(padded, coarse, probs, (rows, cols))
        return alpha[..., :height, :width], probs[..., :rows, :cols]

    @staticmethod
    def _full_res_trimap(trimap_scores: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        classes = trimap_scores[0].argmax(0).cpu()
        trimap = TRIMAP_LEVELS[classes].repeat_interleave(8, 0).repeat_interleave(8, 1)
        return trimap[: size[0], : size[1]].numpy()

    def cost(self, image):
        """Parameters and FLOPs per stage for ``image``: a :class:`lpmatte.cost.CostReport`."""
        from lpmatte.cost import measure_cost

        rgb = load_rgb(image)
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(self.device)
        return measure_cost(self.model, x)

    def __repr__(self) -> str:
        flag = ", untrained" if self.untrained else ""
        return f"Matter({self.name!r}, device={self.device}{flag})"


def _build(config: ModelConfig, state_dict=None, seed: int = 0) -> LightweightPortraitMatting:
    torch.manual_seed(seed)  # untrained models are reproducible
    model = LightweightPortraitMatting(config)
    if state_dict is not None:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
        if missing or unexpected:
            raise LpmatteError(f"weights do not match model '{config.name}' "
                               f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)")
    return model


def load(name_or_path: str | Path = "default", device: str = "auto", **refiner_options) -> Matter:
    """Load ``"default"``, a registered name (:func:`lpmatte.list_models`) or a weights file.

    Registered names without shipped weights build an untrained model (``.untrained``
    is True): useful for tests, profiling and as a training starting point.
    ``refiner_options`` (e.g. ``max_regions=4000``) override the refiner config.
    """
    torch_device = resolve_device(device)
    name = str(name_or_path)
    if name == "default":
        if DEFAULT_WEIGHTS.is_file():
            return _from_file(DEFAULT_WEIGHTS, torch_device, "default", refiner_options)
        config = create_config(UNTRAINED_DEFAULT, **refiner_options)
        return Matter(_build(config), torch_device, f"{UNTRAINED_DEFAULT}-untrained", True)
    if name in list_models():
        config = create_config(name, **refiner_options)
        return Matter(_build(config), torch_device, name, untrained=True)
    path = Path(name)
    if path.suffix in (".safetensors", ".pt", ".pth") or path.exists():
        return _from_file(path, torch_device, path.stem, refiner_options)
    raise LpmatteError(f"unknown model '{name}': not a registered name "
                       f"({', '.join(list_models())}) nor a weights file")


def _from_file(path: Path, device: torch.device, name: str, refiner_options) -> Matter:
    from dataclasses import replace

    checkpoint = load_checkpoint(path)
    config = checkpoint.config
    if refiner_options:
        config = replace(config, refiner=replace(config.refiner, **refiner_options))
    untrained = checkpoint.metadata.get("untrained", "false") == "true"
    return Matter(_build(config, checkpoint.state_dict), device, name, untrained)
