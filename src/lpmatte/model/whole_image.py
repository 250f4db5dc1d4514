"""What every whole-image model of the zoo (MMNet, PSPM) shares: its output and its contract.

A whole-image model has no refinement stage: the pipeline resizes the image to the
config's ``input_size`` (and pads it to ``input_multiple``), runs ``forward`` once and
resizes the alpha back. Nothing is resized inside ``forward``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class WholeImageOutput:
    """What a whole-image model returns for a (B, 3, H, W) image.

    alpha: (B, 1, H, W) in [0, 1].
    trimap_logits: (B, 3, H, W), classes 0 background, 1 unknown, 2 foreground, from
        models with a segmentation decoder (PSPM); None otherwise (MMNet).
    aux: what the losses need besides, e.g. ``alpha_logits`` (B, 1, H, W) before the
        sigmoid, MMNet's ``encoder10_logits`` (B, 1, H / 16, W / 16).
    """

    alpha: torch.Tensor
    trimap_logits: torch.Tensor | None
    aux: dict[str, torch.Tensor] = field(default_factory=dict)


class WholeImageModel(nn.Module):
    """Base class: subclasses set ``input_multiple`` and implement ``predict``."""

    kind = "whole-image"
    input_multiple = 16

    def forward(self, image: torch.Tensor) -> WholeImageOutput:
        """image (B, 3, H, W) in [0, 1], H and W multiples of ``input_multiple``."""
        height, width = image.shape[-2:]
        if height % self.input_multiple or width % self.input_multiple:
            raise ValueError(f"{type(self).__name__} needs sides that are multiples of "
                             f"{self.input_multiple}, got {height}x{width} (pad first)")
        return self.predict(image)

    def predict(self, image: torch.Tensor) -> WholeImageOutput:
        raise NotImplementedError


def count_flops(model: nn.Module, height: int, width: int) -> int:
    """FLOPs of one eval-mode forward pass on a (1, 3, height, width) image, as counted by
    :class:`torch.utils.flop_counter.FlopCounterMode` (a multiply-add counts as 2)."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.rand(1, 3, height, width))
    model.train(was_training)
    return counter.get_total_flops()
