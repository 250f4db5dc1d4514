"""Affinity-aware upsampling, A2U (thesis seed 002, ch. 4): x2 upsampling whose kernels come
from a low-rank bilinear form of the guiding (skip) feature map.

Sec. 4.4: for each channel k of a local window x_k (N = k_en^2 values) the kernel value is
the bilinear form ``x_k^T A_k x_k`` summed over channels (self-similarity, X = Y), with
``A_k = U_k V_k^T`` of rank <= d (Eq. 4.3); P maps the d low-rank responses to the s x s
kernel (Eq. 4.4). Implementation as the thesis' Eq. 4.4: two stride-2 group convolutions
(U, V; channel-wise "cw"), their product summed over channels, a 1x1 conv P to
4 s^2 values (one kernel per position of the 2x2 output block, then shuffled: the
"position-shared" setting). "static": P is a learned constant; "hybrid": P comes from the
guide's global average pool by a 1x1 conv (Sec. 4.4 "alternative implementations").

Kernels are normalised by sigmoid then softmax over the s^2 taps (Table 4.4's better
choice) and applied to the s x s window of the low-resolution map around each output
pixel's source ``(i // 2, j // 2)``. Defaults as the thesis' matting runs: d = 1,
k_en = 5, s = k_up = 3 (Table 4.3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SCALE = 2


class AffinityAwareUpsampling(nn.Module):
    """(low (B, C, h, w), guide (B, G, 2h, 2w)) -> (B, C, 2h, 2w)."""

    def __init__(self, guide_channels: int, rank: int = 1, kernel_size: int = 3,
                 encoder_kernel: int = 5, mode: str = "static"):
        super().__init__()
        if mode not in ("static", "hybrid"):
            raise ValueError(f"unknown A2U mode '{mode}'")
        self.rank, self.kernel_size, self.mode = rank, kernel_size, mode
        taps = SCALE * SCALE * kernel_size * kernel_size
        conv = dict(kernel_size=encoder_kernel, stride=SCALE, padding=encoder_kernel // 2,
                    groups=guide_channels, bias=False)
        self.u = nn.Conv2d(guide_channels, guide_channels * rank, **conv)
        self.v = nn.Conv2d(guide_channels, guide_channels * rank, **conv)
        if mode == "static":
            self.p = nn.Conv2d(rank, taps, 1, bias=False)
        else:
            self.p = nn.Conv2d(guide_channels, rank * taps, 1)

    def low_rank_responses(self, guide: torch.Tensor) -> torch.Tensor:
        """``sum_k (U_kr^T x_k) (V_kr^T x_k)`` for r = 1..d: (B, d, h, w)."""
        b, g = guide.shape[:2]
        product = self.u(guide) * self.v(guide)  # (B, G d, h, w), channel k's d responses
        return product.view(b, g, self.rank, *product.shape[-2:]).sum(1)

    def raw_kernels(self, guide: torch.Tensor) -> torch.Tensor:
        """Unnormalised kernels (B, s^2, 2h, 2w): P applied to the low-rank responses."""
        responses = self.low_rank_responses(guide)
        if self.mode == "static":
            kernels = self.p(responses)
        else:
            p = self.p(guide.mean((2, 3), keepdim=True)).view(guide.shape[0], -1, self.rank)
            kernels = torch.einsum("btr,brhw->bthw", p, responses)
        return F.pixel_shuffle(kernels, SCALE)

    def kernels(self, guide: torch.Tensor) -> torch.Tensor:
        """Normalised kernels (B, s^2, 2h, 2w): sigmoid, then softmax over the s^2 taps."""
        return self.raw_kernels(guide).sigmoid().softmax(1)

    def forward(self, low: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        b, c, h, w = low.shape
        s = self.kernel_size
        windows = F.unfold(low, s, padding=s // 2).view(b, c * s * s, h, w)
        windows = F.interpolate(windows, scale_factor=SCALE, mode="nearest")
        windows = windows.view(b, c, s * s, SCALE * h, SCALE * w)
        return (windows * self.kernels(guide).unsqueeze(1)).sum(2)

    def affinity_matrices(self) -> torch.Tensor:
        """Static mode: ``A_k`` of every kernel tap t, (4 s^2, G, N, N) with N = k_en^2, so
        that tap t's raw value is ``sum_k x_k^T A_k[t] x_k`` (rank <= d by construction)."""
        if self.mode != "static":
            raise ValueError("hybrid A2U has input-dependent P, hence no fixed A_k")
        g = self.u.in_channels
        u = self.u.weight.view(g, self.rank, -1)  # (G, d, N): U_k's columns u_kr
        v = self.v.weight.view(g, self.rank, -1)
        p = self.p.weight.view(-1, self.rank)  # (4 s^2, d)
        return torch.einsum("tr,grn,grm->tgnm", p, u, v)
