"""Cross Region Attention (Sec. 3.3): context for each region from its k nearest regions.

Each region attends over [itself, its k neighbours]. Every key carries a learnable bias
looked up by its offset from the centre region: offsets with both components in
[-s+1, s-1] have their own entry of a ((2s-1)^2 + 1)-entry table per head, and every
out-of-range offset shares the last entry (Fig. 2). Two attention blocks; the second
computes only the centre's query (Q_0 K^T), since only the centre feature is decoded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.model.backbones.swin_transformer import MASKED


def sequence_keys(neighbours: torch.Tensor) -> torch.Tensor:
    """(N, k) neighbour indices -> (N, k + 1) region indices of each attention sequence,
    the centre first."""
    # shape[0], not len(): stays symbolic when traced, so exported graphs take any N
    centre = torch.arange(neighbours.shape[0], device=neighbours.device)[:, None]
    return torch.cat([centre, neighbours], 1)


def relative_bias_index(regions: torch.Tensor, neighbours: torch.Tensor,
                        search_range: int) -> torch.Tensor:
    """Lookup-table index of each key's offset from its centre region.

    Args:
        regions: (N, 3) long (batch, row, col).
        neighbours: (N, k) indices into ``regions``.
        search_range: s; the table has (2s-1)^2 + 1 entries.
    Returns:
        (N, k + 1) long; column 0 is the centre itself (offset 0).

    >>> regions = torch.tensor([[0, 5, 5], [0, 5, 6], [0, 9, 5]])
    >>> relative_bias_index(regions, torch.tensor([[1, 2], [0, 2], [0, 1]]), 4).tolist()
    [[24, 25, 49], [24, 23, 49], [24, 49, 49]]
    """
    keys = sequence_keys(neighbours)
    offset = regions[keys, 1:] - regions[:, None, 1:]  # [N, k+1, 2]
    side = 2 * search_range - 1
    in_range = (offset.abs() <= search_range - 1).all(-1)
    index = (offset[..., 0] + search_range - 1) * side + (offset[..., 1] + search_range - 1)
    return torch.where(in_range, index, side * side)


class RegionAttention(nn.Module):
    """Multi-head attention of (queries of) k + 1 tokens with a per-key positional bias."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, centre_only: bool):
        super().__init__()
        self.num_heads, self.centre_only = num_heads, centre_only
        self.norm1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, tokens: torch.Tensor, bias: torch.Tensor,
                keys: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (N, k+1, C), bias (N, heads, k+1) -> (N, k+1, C), or (N, 1, C) if centre_only.

        With ``keys`` (N, k+1) from :func:`sequence_keys`, ``tokens`` are the (N, C) region
        features and sequence i is tokens[keys[i]]: the per-token norm and projections then
        run once per region and are gathered (same values, 1/(k+1) of the work).
        """
        x = self.norm1(tokens)
        if keys is None:
            q = self.q(x[:, :1] if self.centre_only else x)
            kv = self.kv(x)
        else:
            q = self.q(x)[keys[:, :1] if self.centre_only else keys]
            kv = self.kv(x)[keys]
            tokens = tokens[keys]
        n, length, c = tokens.shape
        heads = self.num_heads
        q = q.view(n, -1, heads, c // heads).transpose(1, 2)  # [N, h, q, d]
        k, v = kv.view(n, length, 2, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
        mask = bias[:, :, None, :].to(q.dtype)  # same bias for every query: [N, h, 1, k+1]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = self.proj(out.transpose(1, 2).reshape(n, -1, c))
        out = (tokens[:, :1] if self.centre_only else tokens) + out
        return out + self.mlp(self.norm2(out))


class CrossRegionAttention(nn.Module):
    """Region features (N, C) + neighbours -> context-aware centre features (N, C)."""

    def __init__(self, dim: int = 128, num_heads: int = 8, mlp_dim: int = 128,
                 search_range: int = 4):
        super().__init__()
        self.num_heads, self.search_range = num_heads, search_range
        self.bias_table = nn.Parameter(torch.zeros((2 * search_range - 1) ** 2 + 1, num_heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.blocks = nn.ModuleList([RegionAttention(dim, num_heads, mlp_dim, centre_only=False),
                                     RegionAttention(dim, num_heads, mlp_dim, centre_only=True)])

    def forward(self, features: torch.Tensor, regions: torch.Tensor, neighbours: torch.Tensor,
                valid: torch.Tensor) -> torch.Tensor:
        """features (N, C); regions (N, 3); neighbours, valid (N, k) from nearest_regions."""
        index = relative_bias_index(regions, neighbours, self.search_range)
        bias = self.bias_table[index].permute(0, 2, 1)  # [N, heads, k+1]
        keep = torch.cat([torch.ones_like(valid[:, :1]), valid], 1)
        bias = bias.masked_fill(~keep[:, None, :], MASKED)
        tokens = self.blocks[0](features, bias, sequence_keys(neighbours))  # [N, k+1, C]
        return self.blocks[1](tokens, bias)[:, 0]
