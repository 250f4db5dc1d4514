"""The refiner rewritten for inference: the same function as :class:`Refiner` in eval mode,
with less work and fewer layout changes per region.

A refiner call runs thousands of 8x8 crops through tiny layers, where per-call setup,
copies and transposes cost more than the arithmetic. Here:

- every BatchNorm is folded into the convolution before it, and a valid convolution no
  longer copies its input through an empty replicate pad;
- the encoder runs channels-last (oneDNN's fast layout for these convolutions);
- a 2x2 stride-2 transposed convolution is one matrix product per pixel (a (C, 4O) matrix:
  each pixel writes its own 2x2 tile); the two of the transposed decoder are chained on the
  tile layout and rearranged into the 8x8 map once;
- bilinear x2 upsampling followed by a 1x1 convolution and BatchNorm is the two followed by
  the upsampling (all affine per pixel, bilinear weights sum to 1), so the resize decoder's
  second convolution runs at 4x4 instead of 8x8;
- Cross Region Attention splits heads per region before gathering the sequences, and its
  centre-only block scores its one query with products and sums rather than a batch of
  1 x (k + 1) matrix products (:class:`FusedCrossRegionAttention`).

:func:`fuse_refiner` builds one from a trained :class:`Refiner`, sharing its attention and
token parameters; its output matches the module's to float rounding
(tests/test_refiner_fused.py). The ONNX export traces this form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.model.backbones.swin_transformer import MASKED
from lpmatte.model.cross_region_attention import (
    CrossRegionAttention,
    RegionAttention,
    relative_bias_index,
    sequence_keys,
)
from lpmatte.model.refiner import Refiner, RegionDecoder, upsample2

SLOPE = 0.1  # the LeakyReLU of every conv_bn_lrelu block


def batchnorm_affine(norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) per channel of an eval-mode BatchNorm: y = scale * x + shift."""
    scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)
    return scale, norm.bias.detach() - norm.running_mean * scale


def folded_conv(conv: nn.Module, norm: nn.BatchNorm2d | None = None):
    """(weight, bias) of ``conv`` with the eval-mode ``norm`` after it folded in: the
    weight scaled per output channel, the bias scaled and shifted."""
    weight = conv.weight.detach()
    bias = conv.bias.detach() if conv.bias is not None else weight.new_zeros(conv.out_channels)
    if norm is None:
        return weight, bias
    scale, shift = batchnorm_affine(norm)
    if isinstance(conv, nn.ConvTranspose2d):  # weight [in, out, kh, kw]
        return weight * scale[None, :, None, None], bias * scale + shift
    return weight * scale[:, None, None, None], bias * scale + shift


def tile_matrix(weight: torch.Tensor) -> torch.Tensor:
    """A [C, O, 2, 2] stride-2 transposed kernel -> the (C, 2 * 2 * O) matrix giving each
    input pixel's 2x2 output tile, laid out (row, col, channel)."""
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1).contiguous()


def leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, SLOPE, inplace=True)


class FoldedConv(nn.Module):
    """A convolution with the BatchNorm after it folded in, and its padding explicit
    (a replicate border is a separate pad; none at all for a valid convolution, where
    ``padding_mode="replicate"`` still made PyTorch copy the input through an empty pad)."""

    def __init__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d | None = None,
                 replicate: bool = False):
        super().__init__()
        weight, bias = folded_conv(conv, norm)
        self.register_buffer("weight", weight.contiguous())
        self.register_buffer("bias", bias)
        self.padding, self.replicate = conv.padding[0], replicate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding and self.replicate:
            x = F.pad(x, (self.padding,) * 4, mode="replicate")
            return F.conv2d(x, self.weight, self.bias)
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


class FusedEncoder(nn.Module):
    """(N, 4, 8, 8) crops -> (N, C, 2, 2) features: three valid 3x3 convolutions."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.convs = nn.ModuleList(FoldedConv(block[0], block[1]) for block in encoder.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)  # 1.4x faster convolutions
        for conv in self.convs:
            x = leaky(conv(x))
        return x


class FusedTransposedDecoder(nn.Module):
    """:class:`TransposedRegionDecoder`: features (N, C, 2, 2) + token (N, D) -> residual.

    up1 writes a 2x2 tile per feature pixel ((C, 4O) matrix; the token's part of its kernel
    is one (D, 4O) tile per region), up2 a 2x2 tile per pixel of those tiles; the nested
    tiles are rearranged into the 8x8 map once, for the fuse convolution.
    """

    def __init__(self, decoder: nn.Module, feature_channels: int):
        super().__init__()
        weight, bias = folded_conv(decoder.up1[0], decoder.up1[1])
        self.register_buffer("feature_matrix", tile_matrix(weight[:feature_channels]))
        self.register_buffer("token_matrix", tile_matrix(weight[feature_channels:]))
        self.register_buffer("bias1", bias.repeat(4))
        weight, bias = folded_conv(decoder.up2[0], decoder.up2[1])
        self.register_buffer("matrix2", tile_matrix(weight))
        self.register_buffer("bias2", bias.repeat(4))
        self.fuse = FoldedConv(decoder.fuse[0], decoder.fuse[1])
        self.out = FoldedConv(decoder.out)

    def forward(self, features: torch.Tensor, token: torch.Tensor,
                crops: torch.Tensor) -> torch.Tensor:
        n, _, h, w = features.shape
        tile = torch.addmm(self.bias1, token, self.token_matrix)  # [N, 4 * O]
        pixels = features.flatten(2).transpose(1, 2)  # [N, h * w, C]
        x = leaky((pixels @ self.feature_matrix).add_(tile[:, None]))
        x = x.view(n, h * w * 4, -1)  # pixels (y, x, a, b)
        x = leaky(torch.addmm(self.bias2, x.flatten(0, 1), self.matrix2))
        channels = x.shape[-1] // 4  # pixels (y, x, a, b) x tiles (a2, b2, channel)
        x = x.view(n, h, w, 2, 2, 2, 2, channels).permute(0, 7, 1, 3, 5, 2, 4, 6)
        x = x.reshape(n, channels, 4 * h, 4 * w)
        return self.out(leaky(self.fuse(torch.cat([x, crops], 1))))


class FusedResizeDecoder(nn.Module):
    """:class:`RegionDecoder`: bilinear x2 + 3x3 replicate-padded convolution (+ the
    token's linear map), bilinear x2 + 1x1 convolution, fuse. The 1x1 convolution runs
    before its upsampling (they commute), at 4x4."""

    def __init__(self, decoder: RegionDecoder):
        super().__init__()
        self.up1 = FoldedConv(decoder.up1[0], decoder.up1[1], replicate=True)
        # the token's map is added before up1's BatchNorm, so it is scaled by it too
        scale = batchnorm_affine(decoder.up1[1])[0]
        token_matrix = decoder.token_in.weight.detach().t() * scale
        self.register_buffer("token_matrix", token_matrix.contiguous())
        # convolution and BatchNorm are affine per pixel and bilinear weights sum to 1, so
        # both move before the upsampling; the LeakyReLU stays after it
        self.up2 = FoldedConv(decoder.up2[0], decoder.up2[1])
        self.fuse = FoldedConv(decoder.fuse[0], decoder.fuse[1], replicate=True)
        self.out = FoldedConv(decoder.out)

    def forward(self, features: torch.Tensor, token: torch.Tensor,
                crops: torch.Tensor) -> torch.Tensor:
        x = self.up1(upsample2(features)) + (token @ self.token_matrix)[:, :, None, None]
        x = leaky(upsample2(self.up2(leaky(x))))
        return self.out(leaky(self.fuse(torch.cat([x, crops], 1))))


class FusedCrossRegionAttention(nn.Module):
    """:class:`CrossRegionAttention` (its own parameters) with its tensors laid out so that
    no per-sequence tensor is transposed: heads are split off per region, before the
    gather into sequences, and the centre-only block scores its one query by products
    and sums over the (N, k + 1, C) keys instead of a batch of 1 x (k + 1) matrix
    products. Multi-head attention's arithmetic is unchanged."""

    def __init__(self, attention: CrossRegionAttention):
        super().__init__()
        self.attention = attention
        self.num_heads, self.search_range = attention.num_heads, attention.search_range

    def forward(self, features: torch.Tensor, regions: torch.Tensor, neighbours: torch.Tensor,
                valid: torch.Tensor) -> torch.Tensor:
        index = relative_bias_index(regions, neighbours, self.search_range)
        keep = torch.cat([torch.ones_like(valid[:, :1]), valid], 1)
        bias = self.attention.bias_table[index].masked_fill(~keep[:, :, None], MASKED)
        keys = sequence_keys(neighbours)  # [N, k+1]
        first, second = self.attention.blocks
        tokens = self._all_queries(first, features, bias, keys)  # [N, k+1, C]
        return self._centre_query(second, tokens, bias)

    def _all_queries(self, block: RegionAttention, features, bias, keys) -> torch.Tensor:
        """Block 1: every token of every sequence attends; projections run per region."""
        n, c = features.shape
        heads = self.num_heads
        x = block.norm1(features)
        q = (block.q(x) * (c // heads) ** -0.5).view(n, heads, -1).transpose(0, 1)
        kv = block.kv(x).view(n, 2, heads, -1).permute(1, 2, 0, 3)  # [2, h, N, d]
        q, k, v = q[:, keys], kv[0][:, keys], kv[1][:, keys]  # [h, N, k+1, d]
        scores = q @ k.transpose(-1, -2) + bias.permute(2, 0, 1)[:, :, None]
        out = (scores.softmax(-1) @ v).permute(1, 2, 0, 3).flatten(2)  # [N, k+1, C]
        out = features[keys] + block.proj(out)
        return out + block.mlp(block.norm2(out))

    def _centre_query(self, block: RegionAttention, tokens, bias) -> torch.Tensor:
        """Block 2: only each sequence's centre token attends."""
        n, length, c = tokens.shape
        heads = self.num_heads
        x = block.norm1(tokens)
        q = block.q(x[:, 0]) * (c // heads) ** -0.5  # [N, C]
        k, v = block.kv(x).view(n, length, 2, heads, -1).unbind(2)  # [N, k+1, h, d]
        scores = (q.view(n, 1, heads, -1) * k).sum(-1) + bias  # [N, k+1, h]
        weights = scores.softmax(1)[..., None]
        out = tokens[:, 0] + block.proj((weights * v).sum(1).flatten(1))
        return out + block.mlp(block.norm2(out))


class FusedRefiner(nn.Module):
    """:class:`Refiner` (eval mode) as matrix products; same inputs and outputs."""

    def __init__(self, refiner: Refiner):
        super().__init__()
        self.config = refiner.config
        self.encoder = FusedEncoder(refiner.encoder)
        self.token = refiner.token
        self.attention = (FusedCrossRegionAttention(refiner.attention)
                          if refiner.attention is not None else None)
        channels = refiner.config.encoder_channels[-1]
        self.decoder = (FusedResizeDecoder(refiner.decoder)
                        if isinstance(refiner.decoder, RegionDecoder)
                        else FusedTransposedDecoder(refiner.decoder, channels))

    def forward(self, crops: torch.Tensor, regions: torch.Tensor,
                neighbours: torch.Tensor | None, valid: torch.Tensor | None) -> torch.Tensor:
        """crops (N, 4, 8, 8): RGB in [0, 1] + coarse alpha -> refined alpha (N, 1, 8, 8)."""
        features = self.encoder(crops)  # [N, C, 2, 2]
        token = self.token(features.mean((2, 3)))
        if self.attention is not None:
            token = self.attention(token, regions, neighbours, valid)
        residual = self.decoder(features, token, crops)
        return (crops[:, 3:] + residual).clamp(0, 1)


@torch.no_grad()
def fuse_refiner(refiner: Refiner) -> FusedRefiner:
    """The inference form of a trained ``refiner`` (its BatchNorm statistics folded in);
    ``refiner`` itself is left as it is."""
    return FusedRefiner(refiner).eval()
