"""The refiner rewritten for inference: the same function as :class:`Refiner` in eval mode,
with less work and fewer layout changes per region.

A refiner call runs thousands of 8x8 crops through tiny layers, where per-call setup,
copies and transposes cost more than the arithmetic. Here:

- every BatchNorm is folded into the convolution before it, and a valid convolution no
  longer copies its input through an empty replicate pad;
- the encoder runs channels-last (oneDNN's fast layout for these convolutions);
- a 2x2 stride-2 transposed convolution is a 1x1 convolution to four times the channels
  (each pixel writes its own 2x2 tile) and a pixel shuffle; the transposed decoder's 8x8
  map is never formed: its last two convolutions run on the 4x4 pixel-unshuffled form with
  rewritten kernels, and only the one-channel output is shuffled back (8x8 transposes of
  32 channels were the refiner graph's most expensive node in onnxruntime);
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


def leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, SLOPE, inplace=True)


def replicate_pad(x: torch.Tensor, width: int) -> torch.Tensor:
    """``x`` with its border repeated ``width`` times on every side. Traced for ONNX as
    slices and concatenations: onnxruntime's edge-mode Pad took about twice as long on
    thousands of small maps, while in eager mode PyTorch's own pad is the faster."""
    if not torch.onnx.is_in_onnx_export():
        return F.pad(x, (width,) * 4, mode="replicate")
    x = torch.cat([x[:, :, :1]] * width + [x] + [x[:, :, -1:]] * width, 2)
    return torch.cat([x[:, :, :, :1]] * width + [x] + [x[:, :, :, -1:]] * width, 3)


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
            return F.conv2d(replicate_pad(x, self.padding), self.weight, self.bias)
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

    A 2x2 stride-2 transposed convolution writes a 2x2 tile per input pixel: a 1x1
    convolution to 4x the channels, then a pixel shuffle (depth to space). The token's part
    of up1's kernel is one such tile per region, added to every pixel before the shuffle.
    up2's output stays unshuffled (the 8x8 map as 4x4 x 4 block positions): the fuse
    convolution runs on that form (:func:`block_kernels`) with the crops unshuffled alike.
    """

    def __init__(self, decoder: nn.Module, feature_channels: int):
        super().__init__()
        weight, bias = folded_conv(decoder.up1[0], decoder.up1[1])
        self.register_buffer("weight1", shuffle_kernel(weight[:feature_channels]))
        self.register_buffer("token_matrix", weight[feature_channels:].flatten(1).contiguous())
        self.register_buffer("bias1", bias.repeat_interleave(4))
        weight, bias = folded_conv(decoder.up2[0], decoder.up2[1])
        self.register_buffer("weight2", shuffle_kernel(weight))
        self.register_buffer("bias2", bias.repeat_interleave(4))
        weight, bias = folded_conv(decoder.fuse[0], decoder.fuse[1])
        self.register_buffer("weight3", block_kernels(weight))
        self.register_buffer("bias3", bias.repeat(4))
        weight, bias = folded_conv(decoder.out)
        self.register_buffer("weight4", block_pointwise(weight))
        self.register_buffer("bias4", bias.repeat(4))

    def forward(self, features: torch.Tensor, token: torch.Tensor,
                crops: torch.Tensor) -> torch.Tensor:
        tile = torch.addmm(self.bias1, token, self.token_matrix)[:, :, None, None]
        x = leaky(F.conv2d(features, self.weight1) + tile)
        x = leaky(F.conv2d(F.pixel_shuffle(x, 2), self.weight2, self.bias2))  # 8x8 as depth
        x = torch.cat([x, F.pixel_unshuffle(crops, 2)], 1)
        x = leaky(F.conv2d(x, self.weight3, self.bias3, padding=1))  # [N, 4 * O, h+1, w+1]
        x = F.conv2d(x, self.weight4, self.bias4)  # [N, 4, h + 1, w + 1]: block (p, q) at
        size = x.shape[-1] - 1  # offset (p, q) in its own channel
        x = torch.cat([x[:, s:s + 1, s // 2:s // 2 + size, s % 2:s % 2 + size]
                       for s in range(4)], 1)
        return F.pixel_shuffle(x, 2)


def shuffle_kernel(weight: torch.Tensor) -> torch.Tensor:
    """A [C, O, 2, 2] stride-2 transposed kernel -> the [4O, C, 1, 1] kernel whose output,
    pixel-shuffled by 2, is the transposed convolution's (channel o * 4 + row * 2 + col)."""
    return weight.permute(1, 2, 3, 0).reshape(-1, weight.shape[0], 1, 1).contiguous()


def block_kernels(weight: torch.Tensor) -> torch.Tensor:
    """A [O, C, 3, 3] kernel over a 2H x 2W map -> a [4O, 4C, 2, 2] kernel over its
    pixel-unshuffled H x W form (channel c * 4 + row * 2 + col) whose output channels
    (p * 2 + q) * O + o hold output o at position (p, q) of each 2x2 block, shifted by (p, q).

    A fine offset p + d (d in -1..1) lies in coarse row floor((p + d) / 2), which is p - 1
    or p, at block row (p + d) mod 2: two coarse rows, so a 2x2 kernel; applied with a zero
    pad of one cell (a zero pad of the fine map too), block (p, q)'s value for coarse pixel
    (y, x) appears at (y + p, x + q).
    """
    out_channels, channels = weight.shape[:2]
    blocks = weight.new_zeros(4, out_channels, channels, 4, 2, 2)
    for p in range(2):
        for q in range(2):
            for dy in range(-1, 2):
                for dx in range(-1, 2):
                    row, i = divmod(p + dy, 2)
                    col, j = divmod(q + dx, 2)
                    blocks[p * 2 + q, :, :, i * 2 + j, row - p + 1, col - q + 1] = (
                        weight[:, :, dy + 1, dx + 1])
    return blocks.reshape(4 * out_channels, channels * 4, 2, 2).contiguous()


def block_pointwise(weight: torch.Tensor) -> torch.Tensor:
    """A [1, C, 1, 1] kernel -> the [4, 4C, 1, 1] one giving each block position's output
    from that position's C channels."""
    channels = weight.shape[1]
    eye = torch.eye(4, dtype=weight.dtype, device=weight.device)
    depth = eye[:, :, None] * weight[0, :, 0, 0][None, None, :]  # [4, 4, C]
    return depth.reshape(4, 4 * channels, 1, 1).contiguous()


class FusedResizeDecoder(nn.Module):
    """:class:`RegionDecoder`: bilinear x2 + 3x3 replicate-padded convolution (+ the
    token's linear map), bilinear x2 + 1x1 convolution, fuse. The 1x1 convolution runs
    before its upsampling (they commute), at 4x4; the 8x8 maps are channels-last.

    up1 is affine in the (C, 2, 2) features and the token, so it is also one matrix product
    per region (its matrix: the layer applied to the unit basis). The ONNX export traces
    that form (onnxruntime: 1.2x faster refiner graph, no pad and no resize before it);
    PyTorch runs the convolution, which was the faster there.
    """

    def __init__(self, decoder: RegionDecoder, feature_channels: int):
        super().__init__()
        self.up1 = FoldedConv(decoder.up1[0], decoder.up1[1], replicate=True)
        # the token's map is added before up1's BatchNorm, so it is scaled by it too
        scale = batchnorm_affine(decoder.up1[1])[0]
        token_matrix = decoder.token_in.weight.detach().t() * scale
        self.register_buffer("token_matrix", token_matrix.contiguous())
        basis = torch.eye(feature_channels * 4).view(-1, feature_channels, 2, 2)
        bias = self.up1(upsample2(torch.zeros_like(basis[:1]))).flatten(1)  # [1, c0 * 16]
        weight = self.up1(upsample2(basis)).flatten(1) - bias  # [C * 4, c0 * 16]
        pixels = token_matrix.repeat_interleave(16, 1)  # the token's map at all 4x4 pixels
        self.register_buffer("matrix1", torch.cat([weight, pixels]).contiguous())
        self.register_buffer("bias1", bias[0].contiguous())
        # convolution and BatchNorm are affine per pixel and bilinear weights sum to 1, so
        # both move before the upsampling; the LeakyReLU stays after it
        self.up2 = FoldedConv(decoder.up2[0], decoder.up2[1])
        self.fuse = FoldedConv(decoder.fuse[0], decoder.fuse[1], replicate=True)
        self.out = FoldedConv(decoder.out)

    def forward(self, features: torch.Tensor, token: torch.Tensor,
                crops: torch.Tensor) -> torch.Tensor:
        x = leaky(self.upsample_features(features, token))
        x = leaky(upsample2(self.up2(x)))
        # channels-last: PyTorch ran the 8x8 fuse convolution 1.8x faster so
        x = torch.cat([x, crops], 1).contiguous(memory_format=torch.channels_last)
        return self.out(leaky(self.fuse(x)))

    def upsample_features(self, features: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        """up1 before its LeakyReLU: (N, C, 2, 2) + (N, D) -> (N, c0, 4, 4)."""
        if torch.onnx.is_in_onnx_export():
            x = torch.addmm(self.bias1, torch.cat([features.flatten(1), token], 1),
                            self.matrix1)
            return x.view(features.shape[0], -1, 4, 4)
        return self.up1(upsample2(features)) + (token @ self.token_matrix)[:, :, None, None]


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
        out = (scores.softmax(-1) @ v).permute(1, 2, 0, 3).reshape(-1, c)  # [N * (k+1), C]
        out = features[keys].flatten(0, 1) + block.proj(out)  # 2-D: one Gemm with its bias
        return (out + block.mlp(block.norm2(out))).view(n, -1, c)

    def _centre_query(self, block: RegionAttention, tokens, bias) -> torch.Tensor:
        """Block 2: only each sequence's centre token attends."""
        n, length, c = tokens.shape
        heads = self.num_heads
        x = block.norm1(tokens)
        q = block.q(x[:, 0]) * (c // heads) ** -0.5  # [N, C]
        rows = x.flatten(0, 1)
        # keys and values by two products, not one split afterwards
        weight, kv_bias = block.kv.weight, block.kv.bias
        k = F.linear(rows, weight[:c], kv_bias[:c]).view(n, length, heads, -1)
        v = F.linear(rows, weight[c:], kv_bias[c:]).view(n, length, heads, -1)
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
        self.decoder = (FusedResizeDecoder(refiner.decoder, channels)
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
