"""Training losses (reference code; all weights 1 by default), each logged on its own.

- ``lowres_bce``: BCE-with-logits of the low-res alpha at 1/32, 1/16, 1/8 against the
  area-downsampled ground truth, summed over the scales.
- ``trimap_focal``: softmax focal loss (gamma 2) of the trimap logits at the same scales,
  class weights count^-0.5 from the batch's targets, summed over the scales.
- ``charbonnier``: sqrt((alpha - gt)^2 + eps^2) on the full-resolution alpha, averaged over
  the unknown pixels and over the known pixels separately, then weighted.
- ``laplacian``: L1 between 5-level Laplacian pyramids (Gaussian 5x5) of alpha and gt.
- ``composition``: Charbonnier between alpha * F + (1 - alpha) * B and the image.

Targets are a :class:`lpmatte.data.augment.TrainingSample` batch (uint8 or float; or
anything with float ``image``, ``alpha``, ``fg``, ``bg`` and a ``trimap`` of classes
0 bg, 1 unknown, 2 fg).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.trimap import UNKNOWN

CHARBONNIER_EPS = 1e-3


@dataclass(frozen=True)
class LossWeights:
    """Weight of each term in the total; ``unknown`` / ``known`` weight the two halves
    of the Charbonnier alpha loss (each a mean over its own pixels)."""

    lowres_bce: float = 1.0
    trimap_focal: float = 1.0
    charbonnier: float = 1.0
    laplacian: float = 1.0
    composition: float = 1.0
    unknown: float = 1.0
    known: float = 1.0
    focal_gamma: float = 2.0


@dataclass
class LossTerms:
    """Each weighted term (scalar tensors) and their sum ``total``."""

    lowres_bce: torch.Tensor
    trimap_focal: torch.Tensor
    charbonnier: torch.Tensor
    laplacian: torch.Tensor
    composition: torch.Tensor
    total: torch.Tensor

    def as_dict(self) -> dict[str, float]:
        """Plain floats for logging."""
        return {f.name: float(getattr(self, f.name).detach()) for f in fields(self)}


# --- targets at low resolution --------------------------------------------------------------

def pad_to_grid(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Replicate-pad (B, C, H, W) right and bottom to a whole number of cells of the
    (h, w) grid, as the model pads its input to a multiple of its patch size."""
    height, width = x.shape[-2:]
    cell_h, cell_w = -(-height // size[0]), -(-width // size[1])
    pad_h, pad_w = size[0] * cell_h - height, size[1] * cell_w - width
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x


def downsample_alpha(alpha: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W) -> (B, 1, h, w) by area averaging (padded like the model's input)."""
    return F.adaptive_avg_pool2d(pad_to_grid(alpha.float(), size), size)


def downsample_trimap(trimap: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H, W) classes -> (B, h, w): a cell is foreground or background only when all its
    pixels are, else unknown (so every cell holding an edge is refined)."""
    one_hot = F.one_hot(trimap.long(), 3).permute(0, 3, 1, 2).float()
    fraction = F.adaptive_avg_pool2d(pad_to_grid(one_hot, size), size)  # [B, 3, h, w]
    cells = torch.full(fraction.shape[:1] + fraction.shape[2:], UNKNOWN,
                       dtype=torch.long, device=trimap.device)
    cells[fraction[:, 0] > 0.999] = 0
    cells[fraction[:, 2] > 0.999] = 2
    return cells


# --- the terms ----------------------------------------------------------------------------

def lowres_bce(logits: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Mean BCE-with-logits of (B, 1, h, w) logits against area-downsampled (B, 1, H, W) alpha."""
    target = downsample_alpha(alpha, tuple(logits.shape[-2:]))
    return F.binary_cross_entropy_with_logits(logits.float(), target)


def class_weights(target: torch.Tensor, classes: int = 3) -> torch.Tensor:
    """count^-0.5 per class in ``target``, normalised to sum to 1; absent classes get 0."""
    counts = torch.bincount(target.flatten(), minlength=classes).float()
    weights = torch.where(counts > 0, counts.clamp(min=1).rsqrt(), torch.zeros_like(counts))
    return weights / weights.sum()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
               gamma: float = 2.0) -> torch.Tensor:
    """Softmax focal loss sum_i w_yi (1 - p_i)^gamma (-log p_i) / sum_i w_yi.

    logits (B, C, h, w), target (B, h, w) long; with gamma = 0 it equals
    ``F.cross_entropy(logits, target, weight=weights)``.
    """
    log_p = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
    focal = (1 - log_p.exp()).pow(gamma) * -log_p
    w = weights[target] if weights is not None else torch.ones_like(focal)
    return (w * focal).sum() / w.sum().clamp(min=1e-12)


def trimap_focal(logits: torch.Tensor, trimap: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss of (B, 3, h, w) logits against the full-res (B, H, W) trimap, downsampled."""
    target = downsample_trimap(trimap, tuple(logits.shape[-2:]))
    return focal_loss(logits, target, class_weights(target), gamma)


def charbonnier(prediction: torch.Tensor, target: torch.Tensor,
                eps: float = CHARBONNIER_EPS) -> torch.Tensor:
    """Elementwise sqrt((prediction - target)^2 + eps^2): L1 that is smooth at 0."""
    return torch.sqrt((prediction.float() - target.float()) ** 2 + eps * eps)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` (broadcast over channels), 0 if the mask is empty."""
    mask = mask.expand_as(values).float()
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def alpha_charbonnier(alpha: torch.Tensor, target: torch.Tensor, trimap: torch.Tensor,
                      unknown_weight: float = 1.0, known_weight: float = 1.0) -> torch.Tensor:
    """Charbonnier of (B, 1, H, W) alpha, mean over unknown pixels x ``unknown_weight`` +
    mean over known pixels x ``known_weight``: a thin edge band weighs as much as the rest."""
    error = charbonnier(alpha, target)
    unknown = (trimap == UNKNOWN)[:, None]
    return (unknown_weight * masked_mean(error, unknown)
            + known_weight * masked_mean(error, ~unknown))


BINOMIAL_TAPS = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def binomial_blur(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) blurred by the 5x5 binomial kernel [1, 4, 6, 4, 1] / 16 (outer product),
    reflect padding. Written as shifted sums, one direction at a time: on CPU the backward of
    the equivalent one-channel 5x5 convolution is several times slower."""
    height, width = x.shape[-2:]
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    rows = sum(tap * padded[..., i:i + height, :] for i, tap in enumerate(BINOMIAL_TAPS))
    return sum(tap * rows[..., j:j + width] for j, tap in enumerate(BINOMIAL_TAPS))


def laplacian_pyramid(x: torch.Tensor, levels: int = 5) -> list[torch.Tensor]:
    """(B, C, H, W) -> ``levels`` band-pass images (finest first), the last one the residual
    low-pass. Blur with the binomial 5x5 kernel (reflect padding), decimate by 2, and take
    the difference with the blurred image at each level."""
    bands, current = [], x
    for _ in range(levels - 1):
        if min(current.shape[-2:]) < 3:
            break
        low = binomial_blur(current)
        bands.append(current - low)
        current = low[..., ::2, ::2]
    bands.append(current)
    return bands


def laplacian_loss(alpha: torch.Tensor, target: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """Sum over pyramid levels of the mean |L_k(alpha) - L_k(target)|."""
    pairs = zip(laplacian_pyramid(alpha.float(), levels), laplacian_pyramid(target.float(), levels),
                strict=True)
    return sum(F.l1_loss(a, b) for a, b in pairs)


def composition_loss(alpha: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor,
                     image: torch.Tensor) -> torch.Tensor:
    """Mean Charbonnier between alpha * F + (1 - alpha) * B and the image, (B, 3, H, W)."""
    alpha = alpha.float()
    return charbonnier(alpha * fg + (1 - alpha) * bg, image).mean()


class MattingLoss(nn.Module):
    """All terms for a :class:`~lpmatte.model.two_stage.TwoStageOutput` against a target batch."""

    def __init__(self, weights: LossWeights = LossWeights()):
        super().__init__()
        self.weights = weights

    def forward(self, output, target) -> LossTerms:
        w = self.weights
        if hasattr(target, "as_float"):
            target = target.as_float()  # uint8 batches straight from the DataLoader
        side = output.side_outputs
        bce = sum(lowres_bce(s.alpha_logits, target.alpha) for s in side)
        focal = sum(trimap_focal(s.trimap_logits, target.trimap, w.focal_gamma) for s in side)
        terms = {
            "lowres_bce": w.lowres_bce * bce,
            "trimap_focal": w.trimap_focal * focal,
            "charbonnier": w.charbonnier * alpha_charbonnier(
                output.alpha, target.alpha, target.trimap, w.unknown, w.known),
            "laplacian": w.laplacian * laplacian_loss(output.alpha, target.alpha),
            "composition": w.composition * composition_loss(
                output.alpha, target.fg, target.bg, target.image),
        }
        return LossTerms(**terms, total=sum(terms.values()))
