"""Building a model from its config, with or without weights: the one constructor that
loading, exporting and training share."""

from __future__ import annotations

import torch

from lpmatte.errors import LpmatteError
from lpmatte.model.config import ModelConfig
from lpmatte.model.model import LightweightPortraitMatting


def build_model(config: ModelConfig, state_dict=None, seed: int = 0) -> torch.nn.Module:
    """The model of ``config``; seeded, so an untrained one is reproducible; with
    ``state_dict`` every tensor must fit."""
    torch.manual_seed(seed)
    model = LightweightPortraitMatting(config)
    if state_dict is not None:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
        if missing or unexpected:
            raise LpmatteError(f"weights do not match model '{config.name}' "
                               f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)")
    return model
