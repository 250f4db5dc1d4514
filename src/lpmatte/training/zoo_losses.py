"""Losses of the zoo's whole-image models, and PSPM's training phases as data.

MMNet (seed 004, Eq. 10): ``b1 L_alpha + b2 L_c + b3 L_KL + b4 L_grad + b5 L_aux``, all
b = 1 (Sec. 2.2). PSPM (thesis seed 002, Sec. 6.5.3): ``l_aU`` in phase 1 and
``l_aU + 10 l_aI + 10 l_g + 10 l_A`` in phase 2, plus a segmentation cross-entropy (see
:data:`PSPM_PHASES`).

Both take a :class:`~lpmatte.model.whole_image.WholeImageOutput` and a target batch with
float ``image`` (B, 3, H, W), ``alpha`` (B, 1, H, W) in [0, 1] and ``trimap`` (B, H, W) of
classes 0 bg, 1 unknown, 2 fg (a uint8 :class:`~lpmatte.data.augment.TrainingSample` is
converted), and return :class:`ZooLossTerms`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from lpmatte.training.losses import downsample_alpha, masked_mean
from lpmatte.trimap import UNKNOWN

# Eq. 7's Sobel-like filter; the seed's print of its denominators is garbled ("1/inf"):
# read here as the Sobel kernel / 8, whose absolute weights sum to 1
SOBEL_X = ((-1 / 8, 0.0, 1 / 8), (-2 / 8, 0.0, 2 / 8), (-1 / 8, 0.0, 1 / 8))
DIM_EPS = 1e-6  # Deep Image Matting's alpha-prediction epsilon, which PSPM follows
AFFINITY_SIZE = 32  # side of the downsampled image the affinity loss compares (Eq. 6.9)


@dataclass
class ZooLossTerms:
    """Each weighted term (scalar tensors, by name) and their sum ``total``."""

    terms: dict[str, torch.Tensor]
    total: torch.Tensor

    def as_dict(self) -> dict[str, float]:
        """Plain floats for logging."""
        return {**{k: float(v.detach()) for k, v in self.terms.items()},
                "total": float(self.total.detach())}


def weighted_sum(weights, terms: dict[str, torch.Tensor]) -> ZooLossTerms:
    """Terms multiplied by the same-named fields of ``weights``; zero weights are skipped."""
    weighted = {k: getattr(weights, k) * v for k, v in terms.items() if getattr(weights, k)}
    return ZooLossTerms(weighted, sum(weighted.values(), torch.zeros(())))


def as_float(target):
    return target.as_float() if hasattr(target, "as_float") else target


# --- gradients -----------------------------------------------------------------------------

def sobel_gradients(alpha: torch.Tensor) -> torch.Tensor:
    """``G(A) = [S * A, S^T * A]``: (B, 1, H, W) -> (B, 2, H, W), replicated borders."""
    sx = torch.tensor(SOBEL_X, dtype=alpha.dtype, device=alpha.device)
    kernels = torch.stack([sx, sx.T])[:, None]  # (2, 1, 3, 3)
    return F.conv2d(F.pad(alpha, (1, 1, 1, 1), mode="replicate"), kernels)


def gradient_difference(alpha: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|G(alpha) - G(target)| per pixel and direction, (B, 2, H, W)."""
    return (sobel_gradients(alpha.float()) - sobel_gradients(target.float())).abs()


# --- MMNet ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class MMNetLossWeights:
    """The beta of Eq. 10 (all 1 in the paper)."""

    alpha: float = 1.0  # beta_1, Eq. 2
    composition: float = 1.0  # beta_2, Eq. 3
    kl: float = 1.0  # beta_3, Eq. 6
    gradient: float = 1.0  # beta_4, Eq. 8
    aux: float = 1.0  # beta_5, KL of encoder #10 against the downsampled ground truth


def mmnet_terms(output, target) -> dict[str, torch.Tensor]:
    """The five unweighted terms of Eq. 10.

    - alpha: mean |alpha - gt| (Eq. 2);
    - composition: mean over pixels and channels of |alpha I - gt I| (Eq. 3);
    - kl: Eq. 6 negated (a loss to minimise) and averaged: BCE of the alpha logits;
    - gradient: mean of |G(alpha) - G(gt)| over both directions (Eq. 9);
    - aux: BCE of encoder #10's logits against the area-downsampled gt.
    """
    target = as_float(target)
    alpha, gt, image = output.alpha.float(), target.alpha.float(), target.image.float()
    aux_logits = output.aux["encoder10_logits"]
    return {
        "alpha": (alpha - gt).abs().mean(),
        "composition": ((alpha - gt) * image).abs().mean(),
        "kl": F.binary_cross_entropy_with_logits(output.aux["alpha_logits"].float(), gt),
        "gradient": gradient_difference(alpha, gt).mean(),
        "aux": F.binary_cross_entropy_with_logits(
            aux_logits.float(), downsample_alpha(gt, tuple(aux_logits.shape[-2:]))),
    }


class MMNetLoss(nn.Module):
    """Eq. 10 for an MMNet :class:`~lpmatte.model.whole_image.WholeImageOutput`."""

    def __init__(self, weights: MMNetLossWeights | None = None):
        super().__init__()
        self.weights = weights or MMNetLossWeights()

    def forward(self, output, target) -> ZooLossTerms:
        return weighted_sum(self.weights, mmnet_terms(output, target))


# --- PSPM ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PSPMLossWeights:
    """Weights of PSPM's terms; the defaults are phase 2's (lambda_1..3 = 10, Sec. 6.5.3)."""

    alpha_unknown: float = 1.0  # l_aU
    alpha_image: float = 10.0  # lambda_1 l_aI
    gradient: float = 10.0  # lambda_2 l_g
    affinity: float = 10.0  # lambda_3 l_A
    segmentation: float = 0.1  # Eq. 6.3's lambda; not in the thesis' phase-2 sum, see below
    other_region_gradient: float = 0.5  # g_a = g_u + 0.5 g_o (Sec. 6.4.2)


def predicted_unknown(trimap_logits: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) logits -> (B, 1, H, W) bool where the argmax is "unknown"."""
    return (trimap_logits.argmax(1) == UNKNOWN)[:, None]


def affinity_matrix(x: torch.Tensor) -> torch.Tensor:
    """Eq. 6.4 on (B, C, h, w): ``A_ij = exp(-||x_i - x_j||^2 / sigma^2)``, (B, hw, hw),
    with sigma^2 the range (max - min) of each sample's squared distances."""
    points = x.flatten(2).transpose(1, 2)  # (B, hw, C)
    distances = torch.cdist(points, points).pow(2)
    spread = (distances.amax((1, 2), keepdim=True) - distances.amin((1, 2), keepdim=True))
    return torch.exp(-distances / spread.clamp(min=1e-6))


def affinity_loss(alpha: torch.Tensor, image: torch.Tensor,
                  size: int = AFFINITY_SIZE) -> torch.Tensor:
    """Eq. 6.9: ``||A_alpha - A_I||_2`` on the image and alpha area-resized to size x size,
    as a root-mean-square over the matrix entries (so the value does not grow with size)."""
    small = (size, size)
    a_alpha = affinity_matrix(F.adaptive_avg_pool2d(alpha.float(), small))
    a_image = affinity_matrix(F.adaptive_avg_pool2d(image.float(), small))
    return (a_alpha - a_image).pow(2).mean((1, 2)).sqrt().mean()


def pspm_terms(output, target, weights: PSPMLossWeights | None = None,
               unknown: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """PSPM's unweighted terms.

    unknown: (B, 1, H, W) bool region U of l_aU and g_u; by default where the model's own
        segmentation says "unknown" (the posterior of Sec. 6.4: no trimap is given).
    """
    weights = weights or PSPMLossWeights()
    target = as_float(target)
    alpha, gt = output.alpha.float(), target.alpha.float()
    if unknown is None:
        unknown = predicted_unknown(output.trimap_logits.detach())
    error = torch.sqrt((alpha - gt) ** 2 + DIM_EPS ** 2)  # Eq. 6.5 per pixel
    gradient = gradient_difference(alpha, gt)
    return {
        "alpha_unknown": masked_mean(error, unknown),
        "alpha_image": error.mean(),
        # Eq. 6.8 in each region (x and y terms summed), g_u + 0.5 g_o
        "gradient": 2 * (masked_mean(gradient, unknown)
                         + weights.other_region_gradient * masked_mean(gradient, ~unknown)),
        "affinity": affinity_loss(alpha, target.image),
        "segmentation": F.cross_entropy(output.trimap_logits.float(), target.trimap.long()),
    }


class PSPMLoss(nn.Module):
    """PSPM's loss for one training phase's weights."""

    def __init__(self, weights: PSPMLossWeights | None = None):
        super().__init__()
        self.weights = weights or PSPMLossWeights()

    def forward(self, output, target, unknown: torch.Tensor | None = None) -> ZooLossTerms:
        return weighted_sum(self.weights, pspm_terms(output, target, self.weights, unknown))


# --- PSPM's training phases ----------------------------------------------------------------

ENCODER, SEGMENTATION, MATTING = "encoder", "segmentation", "matting"


def module_group(child_name: str) -> str:
    """Which part of PSPM a top-level child module belongs to."""
    return {"encoder": ENCODER, "seg_decoder": SEGMENTATION}.get(child_name, MATTING)


@dataclass(frozen=True)
class TrainingPhase:
    """One phase of Sec. 6.5.2: which parts train, with which loss and schedule (SGD,
    momentum 0.9, lr x (1 - iter / max_iter)^0.9, batch 16 in the thesis)."""

    name: str
    trains: tuple[str, ...]
    weights: PSPMLossWeights = field(default_factory=PSPMLossWeights)
    learning_rate: float = 0.01
    iterations: int = 40_000
    crop: int = 320


ONLY_ALPHA_UNKNOWN = PSPMLossWeights(alpha_image=0.0, gradient=0.0, affinity=0.0,
                                     segmentation=0.0)
ONLY_SEGMENTATION = PSPMLossWeights(alpha_unknown=0.0, alpha_image=0.0, gradient=0.0,
                                    affinity=0.0, segmentation=1.0)

# The thesis starts phase 1 from a DeepLabV3+ trained on its portraits (Sec. 6.5.2); no
# such model exists here, so phase 0 trains the shared encoder and SegDecoder with the
# segmentation cross-entropy first (its 512 crops, 40k iterations, lr 0.01). Phase 2 keeps
# a 0.1 x cross-entropy (Eq. 6.3's lambda) so the trimap stays a trimap while the encoder
# moves; the thesis' phase-2 sum has no such term (set segmentation=0 for it).
PSPM_PHASES = (
    TrainingPhase("segmentation", (ENCODER, SEGMENTATION), ONLY_SEGMENTATION, crop=512),
    TrainingPhase("matting-decoder", (MATTING,), ONLY_ALPHA_UNKNOWN),
    TrainingPhase("end-to-end", (ENCODER, SEGMENTATION, MATTING), PSPMLossWeights(),
                  learning_rate=1e-4, iterations=100_000),
)


def apply_phase(model: nn.Module, phase: TrainingPhase) -> list[nn.Parameter]:
    """Freeze the parts of ``model`` that ``phase`` does not train (requires_grad off, and
    their BatchNorm statistics fixed by eval mode); returns the parameters to optimise.
    Call it after ``model.train()``, which would unfreeze the statistics again."""
    trainable = []
    for name, child in model.named_children():
        trains = module_group(name) in phase.trains
        child.train(trains and model.training)
        for parameter in child.parameters():
            parameter.requires_grad_(trains)
            if trains:
                trainable.append(parameter)
    return trainable
