"""Swin Transformer backbone (Liu et al., ICCV 2021) for inputs of any size.

Read top-down: window partition -> window attention -> block -> stage -> network.
As in Sec. 3.4 of the paper, every feature map is zero-padded to a multiple of the
window and the padded tokens are masked out of attention, so odd sizes, sizes not
divisible by 32 and images smaller than 224 px all work. The patch embedding uses
16x16 patches: the paper's x16 pixel-unshuffle followed by a linear projection.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.model.config import SwinConfig

MASKED = -1e4  # additive attention mask; finite so fully padded windows stay NaN-free in fp16


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of ``window`` -> (B * nW, window * window, C)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, window * window, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def relative_position_index(window: int) -> torch.Tensor:
    """(N, N) index into a ((2 * window - 1) ** 2)-entry bias table, N = window ** 2."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    coords = coords.flatten(1)  # [2, N]
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return relative[..., 0] * (2 * window - 1) + relative[..., 1]


@lru_cache(maxsize=64)
def attention_mask(h: int, w: int, pad_h: int, pad_w: int, window: int, shift: int) -> torch.Tensor:
    """Additive mask (nW, N, N) for an (h, w) map padded by (pad_h, pad_w) and rolled by
    ``-shift``: a key is masked when it is a padded token or, for shifted windows, when it
    comes from a different image region than the query (the cyclic-shift trick). Region
    labels live in the rolled frame; the padding mask is rolled into it."""
    hp, wp = h + pad_h, w + pad_w
    valid = torch.zeros(hp, wp)
    valid[:h, :w] = 1
    region = torch.zeros(hp, wp)
    if shift:
        bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
        label = 0
        for rows in bounds:
            for cols in bounds:
                region[rows, cols] = label
                label += 1
        valid = torch.roll(valid, (-shift, -shift), (0, 1))
    valid = window_partition(valid[None, :, :, None], window)[..., 0]  # [nW, N]
    region = window_partition(region[None, :, :, None], window)[..., 0]
    same_region = region[:, :, None] == region[:, None, :]
    allowed = same_region & (valid[:, None, :] > 0)
    return torch.where(allowed, 0.0, MASKED)


@dataclass
class WindowLayout:
    """How a (h, w) token map is cut into windows (after zero padding to whole windows and,
    for shifted windows, a cyclic shift by ``-shift``), as gather indices:

    index: (nW * N,) long, the token (row-major in the h x w map) in each window slot, in
        :func:`window_partition` order; ``h * w`` marks a padded slot (a zero token).
    inverse: (h * w,) long, the window slot of each token.
    mask: (nW, N, N) additive attention mask (see :func:`attention_mask`).
    padded: whether any slot is padding.

    Gathering replaces pad + roll + partition (and their inverses): a third of the copies.
    """

    index: torch.Tensor
    inverse: torch.Tensor
    mask: torch.Tensor
    padded: bool


@torch.compiler.disable  # computed eagerly and cached: torch.compile sees constant indices
def window_layout(h: int, w: int, window: int, shift: int, device) -> WindowLayout:
    """The :class:`WindowLayout` of an (h, w) map; cached, except while tracing for ONNX
    export, where h and w are symbolic and the indices must stay graph computations."""
    if torch.jit.is_tracing():
        return _window_layout(h, w, window, shift, device)
    return _cached_window_layout(h, w, window, shift, str(device))


@lru_cache(maxsize=64)
def _cached_window_layout(h: int, w: int, window: int, shift: int, device: str):
    with torch.inference_mode(False):  # normal tensors: training may reuse them for backward
        return _window_layout(h, w, window, shift, torch.device(device))


def _window_layout(h, w, window: int, shift: int, device) -> WindowLayout:
    pad_h, pad_w = -h % window, -w % window
    hp, wp = h + pad_h, w + pad_w
    rows = (torch.arange(hp, device=device) + shift) % hp  # padded row shown at each row
    cols = (torch.arange(wp, device=device) + shift) % wp
    valid = (rows[:, None] < h) & (cols[None, :] < w)
    source = torch.where(valid, rows[:, None] * w + cols[None, :], h * w)
    index = window_partition(source[None, :, :, None], window).reshape(-1)
    r = (torch.arange(h, device=device) - shift) % hp  # where each row went
    c = (torch.arange(w, device=device) - shift) % wp
    slot_r = (r // window) * (wp // window) * window * window + (r % window) * window
    slot_c = (c // window) * window * window + c % window
    inverse = (slot_r[:, None] + slot_c[None, :]).reshape(-1)
    tracing = torch.jit.is_tracing()  # symbolic sizes: no caching, and keep the zero token
    make_mask = attention_mask.__wrapped__ if tracing else attention_mask
    mask = make_mask(h, w, pad_h, pad_w, window, shift).to(device)
    return WindowLayout(index, inverse, mask, tracing or bool(pad_h or pad_w))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a relative position bias table."""

    def __init__(self, dim: int, num_heads: int, window: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window),
                             persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B * nW, N, C); mask: (nW, N, N) additive."""
        bw, n, c = x.shape
        qkv = self.qkv(x).view(bw, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B*nW, heads, N, d]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1)  # [heads, N, N]
        windows = mask.shape[0]
        attn_bias = (bias[None] + mask[:, None]).to(q.dtype)  # [nW, heads, N, N]
        # the same bias for every image; 4-D inputs keep SDPA on its fused kernels (5-D ones
        # fall back to a ~3x slower path); a view, not a copy, for one image
        attn_bias = attn_bias.expand(bw // windows, -1, -1, -1, -1).reshape(bw, -1, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample while training."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = torch.rand(x.shape[0], *([1] * (x.ndim - 1)), device=x.device) >= self.rate
        return x * keep.to(x.dtype) / (1.0 - self.rate)


class SwinBlock(nn.Module):
    """(Shifted) window attention + MLP, each pre-normed with a residual."""

    def __init__(self, dim: int, num_heads: int, window: int, shift: int, mlp_ratio: float,
                 drop_path: float):
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, layout: WindowLayout | None = None) -> torch.Tensor:
        """x: (B, H, W, C) -> same shape; ``layout`` from :func:`window_layout` (its stage
        shares one per shift), else computed here."""
        if layout is None:
            layout = window_layout(x.shape[1], x.shape[2], self.window, self.shift, x.device)
        x = x + self.drop_path(self._attend(self.norm1(x), layout))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def _attend(self, x: torch.Tensor, layout: WindowLayout) -> torch.Tensor:
        b, h, w, c = x.shape
        tokens = x.reshape(b, h * w, c)
        if layout.padded:  # the zero token that padded slots gather
            tokens = torch.cat([tokens, tokens.new_zeros(b, 1, c)], 1)
        windows = tokens[:, layout.index].view(-1, self.window * self.window, c)
        out = self.attn(windows, layout.mask).view(b, -1, c)  # [B, nW * N, C]
        return out[:, layout.inverse].view(b, h, w, c)


class PatchMerging(nn.Module):
    """2x2 neighbourhood concat + linear: halves the resolution, doubles the channels."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C)."""
        x = F.pad(x, (0, 0, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class SwinStage(nn.Module):
    """Optional patch merging followed by ``depth`` blocks alternating plain/shifted windows."""

    def __init__(self, in_dim: int, dim: int, depth: int, num_heads: int, window: int,
                 mlp_ratio: float, drop_paths: list[float], downsample: bool):
        super().__init__()
        self.downsample = PatchMerging(in_dim) if downsample else nn.Identity()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio,
                      drop_paths[i])
            for i in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        layouts = {}  # one per shift, shared by the stage's blocks
        for block in self.blocks:
            if block.shift not in layouts:
                layouts[block.shift] = window_layout(x.shape[1], x.shape[2], block.window,
                                                     block.shift, x.device)
            x = block(x, layouts[block.shift])
        return x


class PatchEmbedding(nn.Module):
    """Pixel-unshuffle by ``patch`` and project: a strided convolution does both at once."""

    def __init__(self, in_channels: int, dim: int, patch: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, normalization=None) -> torch.Tensor:
        """(B, C, H, W), H and W multiples of ``patch`` -> (B, H/patch, W/patch, dim).

        ``normalization`` (mean, std), each (1, C, 1, 1), embeds (x - mean) / std without
        computing it at full resolution: the projection is linear, so
        W * ((x - m) / s) + b = (W / s) * x + (b - sum(W * m / s)).
        """
        if normalization is None:
            return self.norm(self.proj(x).permute(0, 2, 3, 1))
        mean, std = normalization
        weight = self.proj.weight / std
        bias = self.proj.bias - (weight * mean).sum((1, 2, 3))
        x = F.conv2d(x, weight, bias, stride=self.patch)
        return self.norm(x.permute(0, 2, 3, 1))


class SwinTransformer(nn.Module):
    """Swin backbone returning the four stage outputs at strides p, 2p, 4p, 8p (p = patch)."""

    def __init__(self, config: SwinConfig = SwinConfig()):
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbedding(config.in_channels, config.embed_dim, config.patch_size)
        rates = torch.linspace(0, config.drop_path_rate, sum(config.depths)).tolist()
        self.stages = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(config.depths, config.num_heads)):
            dim = config.embed_dim * 2**i
            start = sum(config.depths[:i])
            self.stages.append(SwinStage(dim // 2 if i else dim, dim, depth, heads,
                                         config.window_size, config.mlp_ratio,
                                         rates[start:start + depth], downsample=i > 0))
            self.norms.append(nn.LayerNorm(dim))
        self.apply(_init_weights)

    @property
    def channels(self) -> list[int]:
        return [self.config.embed_dim * 2**i for i in range(len(self.config.depths))]

    def forward(self, x: torch.Tensor, normalization=None) -> list[torch.Tensor]:
        """(B, 3, H, W) image -> [(B, C_i, H / (p * 2**i), W / (p * 2**i))]; the image is
        normalised already, or by ``normalization`` (mean, std) (see PatchEmbedding)."""
        x = self.patch_embed(x, normalization)
        features = []
        for stage, norm in zip(self.stages, self.norms):
            x = stage(x)
            features.append(norm(x).permute(0, 3, 1, 2).contiguous())
        return features


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
