"""Training losses: minimal at a perfect prediction, positive otherwise, differentiable."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from lpmatte.data.augment import TrainingSample
from lpmatte.training.losses import (
    CHARBONNIER_EPS,
    LossWeights,
    MattingLoss,
    alpha_charbonnier,
    binomial_blur,
    class_weights,
    composition_loss,
    downsample_alpha,
    downsample_trimap,
    focal_loss,
    laplacian_loss,
    laplacian_pyramid,
    lowres_bce,
    trimap_focal,
)


def soft_target(batch=2, size=64):
    """Alpha: a soft-edged square; trimap from it; colours random; image their composite."""
    torch.manual_seed(0)
    alpha = torch.zeros(batch, 1, size, size)
    alpha[:, :, 16:48, 16:48] = 1.0
    alpha[:, :, 16:48, 14:16] = 0.5
    trimap = torch.where(alpha[:, 0] >= 1, 2, torch.where(alpha[:, 0] > 0, 1, 0))
    trimap[:, 14:50, 12:20] = 1
    fg, bg = torch.rand(batch, 3, size, size), torch.rand(batch, 3, size, size)
    image = alpha * fg + (1 - alpha) * bg
    return TrainingSample(image, alpha, trimap, fg, bg)


def logit(p):
    p = p.clamp(1e-6, 1 - 1e-6)
    return torch.log(p / (1 - p))


def perfect_output(target, size=64):
    """Side outputs whose sigmoid/argmax match the downsampled targets exactly."""
    sides = []
    for stride in (32, 16, 8):
        grid = (size // stride, size // stride)
        alpha = downsample_alpha(target.alpha, grid)
        cells = downsample_trimap(target.trimap, grid)
        trimap_logits = F.one_hot(cells, 3).permute(0, 3, 1, 2).float() * 60.0
        sides.append(SimpleNamespace(alpha_logits=logit(alpha), trimap_logits=trimap_logits))
    return SimpleNamespace(alpha=target.alpha.clone(), side_outputs=sides)


def test_downsampled_trimap_marks_mixed_cells_unknown():
    trimap = torch.zeros(1, 16, 16, dtype=torch.long)
    trimap[:, :, 8:] = 2
    trimap[:, 0, 7] = 1
    cells = downsample_trimap(trimap, (2, 2))
    assert cells.tolist() == [[[1, 2], [0, 2]]]


def test_lowres_bce_is_lowest_at_the_target():
    target = soft_target()
    area = downsample_alpha(target.alpha, (8, 8))
    best = lowres_bce(logit(area), target.alpha)
    worse = lowres_bce(logit(area) + 1.0, target.alpha)
    assert worse > best
    entropy = F.binary_cross_entropy(area.clamp(1e-6, 1 - 1e-6), area)  # the minimum
    assert best == pytest.approx(float(entropy), abs=1e-4)


def test_class_weights_follow_inverse_square_root_counts():
    target = torch.tensor([0] * 100 + [1] * 25 + [2] * 4)
    weights = class_weights(target)
    expected = torch.tensor([100, 25, 4.0]).rsqrt()
    torch.testing.assert_close(weights, expected / expected.sum())
    assert class_weights(torch.zeros(5, dtype=torch.long))[1:].tolist() == [0.0, 0.0]


def test_focal_with_gamma_zero_is_weighted_cross_entropy():
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 5, 6)
    target = torch.randint(0, 3, (2, 5, 6))
    weights = class_weights(target)
    expected = F.cross_entropy(logits, target, weight=weights)
    torch.testing.assert_close(focal_loss(logits, target, weights, gamma=0.0), expected)
    assert focal_loss(logits, target, weights, gamma=2.0) < expected  # easy pixels damped


def test_trimap_focal_vanishes_for_confident_correct_logits():
    target = soft_target()
    cells = downsample_trimap(target.trimap, (8, 8))
    good = F.one_hot(cells, 3).permute(0, 3, 1, 2).float() * 20
    assert trimap_focal(good, target.trimap) < 1e-6
    assert trimap_focal(-good, target.trimap) > 1.0


def test_charbonnier_weights_unknown_and_known_regions_separately():
    target = soft_target()
    assert alpha_charbonnier(target.alpha, target.alpha, target.trimap) == pytest.approx(
        2 * CHARBONNIER_EPS, rel=1e-4)
    wrong = target.alpha.clone()
    wrong[target.trimap[:, None] == 1] = 1 - wrong[target.trimap[:, None] == 1]
    only_unknown = alpha_charbonnier(wrong, target.alpha, target.trimap, 1.0, 0.0)
    only_known = alpha_charbonnier(wrong, target.alpha, target.trimap, 0.0, 1.0)
    assert only_unknown > 0.3 and only_known == pytest.approx(CHARBONNIER_EPS, rel=1e-3)


def test_laplacian_pyramid_reconstructs_and_loss_sees_edges():
    x = torch.rand(1, 1, 64, 64)
    bands = laplacian_pyramid(x, 5)
    assert len(bands) == 5 and bands[-1].shape[-1] == 4
    target = soft_target()
    assert laplacian_loss(target.alpha, target.alpha) == 0
    blurred = F.avg_pool2d(target.alpha, 5, 1, 2)
    assert laplacian_loss(blurred, target.alpha) > 0.01


def test_binomial_blur_is_the_5x5_binomial_convolution():
    x = torch.rand(2, 3, 17, 30)
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    kernel = (taps[:, None] * taps[None, :]).expand(3, 1, 5, 5)
    expected = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=3)
    torch.testing.assert_close(binomial_blur(x), expected, atol=1e-6, rtol=0)


def test_composition_loss_is_minimal_for_the_true_alpha():
    target = soft_target()
    best = composition_loss(target.alpha, target.fg, target.bg, target.image)
    assert best == pytest.approx(CHARBONNIER_EPS, rel=1e-3)
    assert composition_loss(1 - target.alpha, target.fg, target.bg, target.image) > 0.1


def test_matting_loss_terms_weights_and_gradients():
    target = soft_target()
    loss = MattingLoss()
    perfect = loss(perfect_output(target), target)
    assert perfect.lowres_bce == pytest.approx(sum(
        float(F.binary_cross_entropy(a.clamp(1e-6, 1 - 1e-6), a)) for a in
        (downsample_alpha(target.alpha, (g, g)) for g in (2, 4, 8))), abs=1e-4)  # entropies
    assert perfect.total - perfect.lowres_bce < 0.01
    output = perfect_output(target)
    output.alpha = torch.full_like(target.alpha, 0.5, requires_grad=True)
    for side in output.side_outputs:
        side.alpha_logits = torch.zeros_like(side.alpha_logits, requires_grad=True)
        side.trimap_logits = torch.zeros_like(side.trimap_logits, requires_grad=True)
    terms = loss(output, target)
    logged = terms.as_dict()
    assert set(logged) == {"lowres_bce", "trimap_focal", "charbonnier", "laplacian",
                           "composition", "total"}
    for name, value in logged.items():
        assert value > getattr(perfect, name).item(), name
    terms.total.backward()
    assert output.alpha.grad.abs().sum() > 0
    assert all(s.alpha_logits.grad.abs().sum() > 0 for s in output.side_outputs)
    assert all(s.trimap_logits.grad.abs().sum() > 0 for s in output.side_outputs)
    halved = MattingLoss(LossWeights(composition=0.5))(output, target)
    assert halved.composition.item() == pytest.approx(terms.composition.item() / 2)


def test_uint8_batches_are_converted():
    target = soft_target()
    as_bytes = TrainingSample(*((t * 255).round().to(torch.uint8) for t in
                                (target.image, target.alpha)), target.trimap.to(torch.uint8),
                              *((t * 255).round().to(torch.uint8) for t in (target.fg, target.bg)))
    terms = MattingLoss()(perfect_output(target), as_bytes)
    reference = MattingLoss()(perfect_output(target), target)
    assert terms.total.item() == pytest.approx(reference.total.item(), abs=0.01)
