"""One constructor for every model of the zoo, chosen by the config's type, with or without
weights: what loading, exporting and training share."""

from __future__ import annotations

import torch
from torch import nn

from lpmatte.errors import LpmatteError
from lpmatte.model.config import MMNetConfig, ModelConfig, PSPMConfig


def network_for(config: ModelConfig | MMNetConfig | PSPMConfig) -> nn.Module:
    """The (untrained) network a config describes.

    >>> from lpmatte.model.registry import create_config
    >>> type(network_for(create_config("mmnet"))).__name__
    'MMNet'
    """
    if isinstance(config, ModelConfig):
        from lpmatte.model.model import LightweightPortraitMatting

        return LightweightPortraitMatting(config)
    if isinstance(config, MMNetConfig):
        from lpmatte.model.mmnet import MMNet

        return MMNet(config)
    if isinstance(config, PSPMConfig):
        from lpmatte.model.pspm import PSPM

        return PSPM(config)
    raise TypeError(f"no model for config {type(config).__name__}")


def build_model(config, state_dict=None, seed: int = 0) -> nn.Module:
    """The model of ``config``; seeded, so an untrained one is reproducible; with
    ``state_dict`` every tensor must fit."""
    torch.manual_seed(seed)
    model = network_for(config)
    if state_dict is not None:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
        if missing or unexpected:
            raise LpmatteError(f"weights do not match model '{config.name}' "
                               f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)")
    return model
