"""The whole two-stage model (Fig. 1): low-res network -> region selection -> refiner -> paste.

The pipeline itself is :func:`lpmatte.model.two_stage.run_two_stages`, shared with every
inference backend; this module only owns the two networks and their weights.
"""

from __future__ import annotations

import torch
from torch import nn

from lpmatte.model.config import ModelConfig
from lpmatte.model.lowres_network import LowResNetwork, LowResOutput
from lpmatte.model.refiner import Refiner
from lpmatte.model.two_stage import TwoStageOutput, run_two_stages


class LightweightPortraitMatting(nn.Module):
    """Zhong & Zharkov (WACV 2024): trimap-free matting whose cost follows the boundary length."""

    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.config = config
        self.lowres = LowResNetwork(config.lowres)
        self.refiner = Refiner(config.refiner)

    def forward(self, image: torch.Tensor, region_mask: torch.Tensor | None = None,
                choose_regions=None) -> TwoStageOutput:
        """image (B, 3, H, W) in [0, 1] -> :class:`TwoStageOutput` (see
        :func:`run_two_stages` for ``region_mask`` and ``choose_regions``). Neighbours are
        searched pairwise in training, as the paper, and on the grid in eval mode."""
        return run_two_stages(self, image, region_mask, choose_regions, pairwise=self.training)

    def lowres_heads(self, padded: torch.Tensor) -> list[LowResOutput]:
        return self.lowres(padded)

    def refine(self, crops, regions, neighbours, valid) -> torch.Tensor:
        return self.refiner(crops, regions, neighbours, valid)
