"""The zoo's losses: MMNet's Eq. 10 terms and PSPM's terms and training phases."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from lpmatte.model.config import MMNetConfig, PSPMConfig
from lpmatte.model.mmnet import MMNet
from lpmatte.model.pspm import PSPM
from lpmatte.model.whole_image import WholeImageOutput
from lpmatte.training.zoo_losses import (
    PSPM_PHASES,
    MMNetLoss,
    MMNetLossWeights,
    PSPMLoss,
    PSPMLossWeights,
    affinity_loss,
    apply_phase,
    mmnet_terms,
    sobel_gradients,
)


def batch(size=(32, 32)):
    torch.manual_seed(0)
    alpha = torch.zeros(2, 1, *size)
    alpha[..., 8:24, 8:24] = 1.0
    trimap = torch.where(alpha[:, 0] > 0, 2, 0)
    trimap[:, 6:26, 6:26] = torch.where(alpha[:, 0, 6:26, 6:26] > 0, 2, 1)
    trimap[:, 10:22, 10:22] = 2
    return SimpleNamespace(image=torch.rand(2, 3, *size), alpha=alpha, trimap=trimap)


def output_from_logits(logits: torch.Tensor, aux_size=(2, 2)) -> WholeImageOutput:
    return WholeImageOutput(logits.sigmoid(), None, {
        "alpha_logits": logits, "encoder10_logits": torch.zeros(logits.shape[0], 1, *aux_size)})


def test_mmnet_terms_vanish_on_a_perfect_prediction_except_the_likelihoods():
    target = batch()
    perfect = output_from_logits((target.alpha * 2 - 1) * 30)
    terms = mmnet_terms(perfect, target)
    for name in ("alpha", "composition", "gradient"):
        assert terms[name] < 1e-6, name
    assert terms["kl"] < 1e-6  # saturated logits: -log p ~ 0
    assert terms["aux"] == pytest.approx(F.binary_cross_entropy(
        torch.full((2, 1, 2, 2), 0.5), F.adaptive_avg_pool2d(target.alpha, 2)).item())


def test_mmnet_alpha_and_composition_are_eq_2_and_3():
    target = batch()
    half = output_from_logits(torch.zeros(2, 1, 32, 32))  # alpha 0.5 everywhere
    terms = mmnet_terms(half, target)
    assert terms["alpha"] == pytest.approx(0.5)
    assert terms["composition"] == pytest.approx((0.5 * target.image).mean().item())


def test_sobel_gradient_of_a_unit_step_is_one():
    step = torch.zeros(1, 1, 5, 6)
    step[..., 3:] = 1.0
    g = sobel_gradients(step)
    assert torch.allclose(g[0, 0, :, 2:4], torch.full((5, 2), 0.5))  # (1 + 2 + 1) / 8 per side
    assert torch.all(g[0, 1] == 0) and torch.all(g[0, 0, :, :2] == 0)


def test_mmnet_loss_weights_are_the_betas():
    target = batch()
    model = MMNet(MMNetConfig(width=0.25))
    output = model(target.image)
    everything = MMNetLoss()(output, target)
    only_alpha = MMNetLoss(MMNetLossWeights(composition=0, kl=0, gradient=0, aux=0))(output,
                                                                                     target)
    assert set(everything.terms) == {"alpha", "composition", "kl", "gradient", "aux"}
    assert set(only_alpha.terms) == {"alpha"}
    assert torch.isclose(everything.total, sum(everything.terms.values()))
    everything.total.backward()
    assert model.aux_head.weight.grad is not None  # L_aux reaches encoder #10's head


def test_affinity_loss_is_zero_for_matching_structure_and_grows_otherwise():
    image = torch.zeros(1, 1, 16, 16)
    image[..., :8] = 1.0
    assert affinity_loss(image, image.expand(1, 3, 16, 16), size=8) < 1e-6
    assert affinity_loss(image.transpose(2, 3), image.expand(1, 3, 16, 16), size=8) > 0.1


def test_pspm_loss_terms_and_lambda_10():
    target = batch()
    model = PSPM(PSPMConfig(width=0.25))
    output = model(target.image)
    terms = PSPMLoss()(output, target, unknown=target.trimap[:, None] == 1)
    assert set(terms.terms) == {"alpha_unknown", "alpha_image", "gradient", "affinity",
                                "segmentation"}
    unweighted = PSPMLoss(PSPMLossWeights(1, 1, 1, 1, 1))(output, target,
                                                         unknown=target.trimap[:, None] == 1)
    for name in ("alpha_image", "gradient", "affinity"):
        assert torch.isclose(terms.terms[name], 10 * unweighted.terms[name])
    terms.total.backward()


def test_phases_freeze_what_the_thesis_freezes():
    model = PSPM(PSPMConfig(width=0.25)).train()
    names = [phase.name for phase in PSPM_PHASES]
    assert names == ["segmentation", "matting-decoder", "end-to-end"]
    matting = apply_phase(model, PSPM_PHASES[1])
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert not any(p.requires_grad for p in model.seg_decoder.parameters())
    assert not model.encoder.training and model.mat_decoder.training
    assert {id(p) for p in matting} == {id(p) for n, p in model.named_parameters()
                                        if not n.startswith(("encoder.", "seg_decoder."))}
    assert PSPM_PHASES[1].weights.alpha_image == 0 and PSPM_PHASES[1].weights.alpha_unknown == 1
    everything = apply_phase(model, PSPM_PHASES[2])
    assert len(everything) == len(list(model.parameters()))
    assert PSPM_PHASES[2].learning_rate == 1e-4 and PSPM_PHASES[2].weights.affinity == 10
