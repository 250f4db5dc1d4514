"""Named model variants: small factories over :class:`~lpmatte.model.config.ModelConfig`.

``create_config("lpm", num_neighbors=16)`` overrides refiner fields by keyword, so the
ablations of the paper's Table 5 (search range s, neighbours k) need no new names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace

from lpmatte.errors import LpmatteError
from lpmatte.model.config import (
    EfficientNetLiteConfig,
    LowResConfig,
    ModelConfig,
    RefinerConfig,
    SwinConfig,
)

_REGISTRY: dict[str, Callable[[], ModelConfig]] = {}


def register(name: str):
    def wrap(factory: Callable[[], ModelConfig]):
        _REGISTRY[name] = factory
        return factory

    return wrap


def list_models() -> list[str]:
    """Registered variant names, sorted."""
    return sorted(_REGISTRY)


def create_config(name: str, **refiner_overrides) -> ModelConfig:
    """The config of variant ``name`` with refiner fields replaced by ``refiner_overrides``."""
    if name not in _REGISTRY:
        raise LpmatteError(f"unknown model '{name}' (known: {', '.join(list_models())})")
    config = _REGISTRY[name]()
    if refiner_overrides:
        known = {f.name for f in fields(RefinerConfig)}
        unknown = set(refiner_overrides) - known
        if unknown:
            raise LpmatteError(f"unknown refiner option(s): {', '.join(sorted(unknown))}")
        config = replace(config, refiner=replace(config.refiner, **refiner_overrides))
    return config


@register("lpm")
def lpm() -> ModelConfig:
    """The paper's default (Table 5, model G): Swin-T, k = 8, s = 4."""
    return ModelConfig(name="lpm")


@register("lpm-nocra")
def lpm_nocra() -> ModelConfig:
    """Table 5, model F: the refiner without Cross Region Attention."""
    return ModelConfig(name="lpm-nocra", refiner=RefinerConfig(use_cra=False))


def _small_lowres() -> LowResConfig:
    backbone = SwinConfig(embed_dim=48, depths=(2, 2, 2, 2), num_heads=(2, 3, 6, 12),
                          drop_path_rate=0.1)
    return LowResConfig(backbone=backbone, decoder_channels=(128, 64, 32))


@register("lpm-s")
def lpm_s() -> ModelConfig:
    """Half-width Swin (48-96-192-384, depths 2-2-2-2) that trains on a laptop CPU."""
    return ModelConfig(name="lpm-s", lowres=_small_lowres())


@register("lpm-s-nocra")
def lpm_s_nocra() -> ModelConfig:
    """``lpm-s`` without Cross Region Attention."""
    return ModelConfig(name="lpm-s-nocra", lowres=_small_lowres(),
                       refiner=RefinerConfig(use_cra=False))


@register("lpm-e0")
def lpm_e0() -> ModelConfig:
    """Off-paper CPU variant: the low-res backbone is EfficientNet-Lite0, which starts from
    ImageNet weights (``lpmatte train --backbone-weights imagenet``); refiner as ``lpm``."""
    lowres = LowResConfig(backbone=EfficientNetLiteConfig(), decoder_channels=(128, 64, 32))
    return ModelConfig(name="lpm-e0", lowres=lowres)


def _ablation(name: str, search_range: int, num_neighbors: int) -> None:
    def factory() -> ModelConfig:
        refiner = RefinerConfig(search_range=search_range, num_neighbors=num_neighbors)
        return ModelConfig(name=name, refiner=refiner)

    factory.__doc__ = f"Table 5 ablation: s = {search_range}, k = {num_neighbors}."
    register(name)(factory)


for _name, _s, _k in (("lpm-s2k8", 2, 8), ("lpm-s3k8", 3, 8), ("lpm-s8k8", 8, 8),
                      ("lpm-s4k4", 4, 4), ("lpm-s4k16", 4, 16)):
    _ablation(_name, _s, _k)
