"""One constructor for every model of the zoo, chosen by the config's type."""

from __future__ import annotations

from torch import nn

from lpmatte.model.config import MMNetConfig, ModelConfig, PSPMConfig


def build_model(config: ModelConfig | MMNetConfig | PSPMConfig) -> nn.Module:
    """The (untrained) network a config describes.

    >>> from lpmatte.model.registry import create_config
    >>> type(build_model(create_config("mmnet"))).__name__
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
