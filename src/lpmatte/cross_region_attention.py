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

from lpmatte.swin_transformer import MASKED


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
    keys = torch.cat([torch.arange(len(regions), device=regions.device)[:, None], neighbours], 1)
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

    def forward(self, tokens: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """tokens (N, k+1, C), bias (N, heads, k+1) -> (N, k+1, C), or (N, 1, C) if centre_only."""
        n, length, c = tokens.shape
        x = self.norm1(tokens)
        queries = x[:, :1] if self.centre_only else x
        heads = self.num_heads
        q = self.q(queries).view(n, -1, heads, c // heads).transpose(1, 2)  # [N, h, q, d]
        k, v = self.kv(x).view(n, length, 2, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
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
        tokens = torch.cat([features[:, None], features[neighbours]], 1)  # [N, k+1, C]
        index = relative_bias_index(regions, neighbours, self.search_range)
        bias = self.bias_table[index].permute(0, 2, 1)  # [N, heads, k+1]
        keep = torch.cat([valid.new_ones(len(valid), 1), valid], 1)
        bias = bias.masked_fill(~keep[:, None, :], MASKED)
        for block in self.blocks:
            tokens = block(tokens, bias)
        return tokens[:, 0]
