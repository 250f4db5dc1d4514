"""Temporal stabiliser (coarse_filter for video) and the dtSSD flicker metric."""

import cv2
import numpy as np
import pytest
import torch

from lpmatte.inference.temporal import (
    AlphaHold,
    TemporalStabilizer,
    cell_motion,
    dtssd,
    hysteresis,
    stillness,
)

H, W = 12, 16  # a 96x128 frame on the 1/8 grid


def coarse_frame(seed: int, image=None, alpha_noise=0.05, prob_noise=0.15):
    """One frame's (image_lowres, coarse_alpha, trimap_probs), noisy around a fixed scene."""
    generator = torch.Generator().manual_seed(seed)
    if image is None:
        image = torch.linspace(0.2, 0.8, W).expand(1, 3, H, W).clone()
    image = image + torch.randn(image.shape, generator=generator) * 0.5 / 255  # sensor noise
    alpha = torch.zeros(1, 1, H, W)
    alpha[..., W // 2:] = 1.0
    alpha[..., W // 2 - 1: W // 2 + 1] = 0.5
    alpha = (alpha + torch.randn(alpha.shape, generator=generator) * alpha_noise).clamp(0, 1)
    logits = torch.stack([1 - alpha[:, 0], torch.zeros_like(alpha[:, 0]), alpha[:, 0]], 1) * 2
    logits = logits + torch.randn(logits.shape, generator=generator) * prob_noise * 4
    return image.clamp(0, 1), alpha, logits.softmax(1)


def test_static_noisy_clip_is_steadied():
    stabilizer = TemporalStabilizer()
    raw, steady = [], []
    for t in range(20):
        image, alpha, probs = coarse_frame(t)
        out_alpha, out_probs = stabilizer(image, alpha, probs)
        raw.append((alpha, probs.argmax(1)))
        steady.append((out_alpha, out_probs.argmax(1)))
    raw_jitter = torch.stack([a for a, _ in raw[5:]]).std(0).mean()
    steady_jitter = torch.stack([a for a, _ in steady[5:]]).std(0).mean()
    assert steady_jitter < 0.5 * raw_jitter
    raw_flips = sum((raw[t][1] != raw[t - 1][1]).sum() for t in range(5, 20))
    steady_flips = sum((steady[t][1] != steady[t - 1][1]).sum() for t in range(5, 20))
    assert raw_flips > 10
    assert steady_flips <= raw_flips // 5


def test_moving_cells_take_the_new_prediction_without_lag():
    stabilizer = TemporalStabilizer()
    image, alpha, probs = coarse_frame(0)
    stabilizer(image, alpha, probs)
    moved = image.clone()
    moved[..., :, 2:5] = 1.0 - moved[..., :, 2:5]  # an object enters columns 2..4
    new_alpha = torch.rand(1, 1, H, W)
    new_probs = torch.rand(1, 3, H, W).softmax(1)
    out_alpha, out_probs = stabilizer(moved, new_alpha, new_probs)
    torch.testing.assert_close(out_alpha[..., 2:5], new_alpha[..., 2:5])
    torch.testing.assert_close(out_probs[..., 2:5], new_probs[..., 2:5])
    # far from the motion, the past still counts
    assert not torch.allclose(out_alpha[..., 10:], new_alpha[..., 10:])


def test_scene_cut_and_size_change_reset_the_state():
    stabilizer = TemporalStabilizer()
    stabilizer(*coarse_frame(0))
    cut = torch.rand(1, 3, H, W)
    _, alpha, probs = coarse_frame(1)
    out_alpha, out_probs = stabilizer(cut, alpha, probs)
    assert torch.equal(out_alpha, alpha) and torch.equal(out_probs, probs)
    bigger = (torch.rand(1, 3, H + 1, W), torch.rand(1, 1, H + 1, W), torch.rand(1, 3, H + 1, W))
    out_alpha, _ = stabilizer(*bigger)
    assert torch.equal(out_alpha, bigger[1])


def test_outputs_keep_shapes_and_stay_probabilities():
    stabilizer = TemporalStabilizer()
    for t in range(3):
        image, alpha, probs = coarse_frame(t)
        out_alpha, out_probs = stabilizer(image, alpha, probs)
        assert out_alpha.shape == alpha.shape and out_probs.shape == probs.shape
        assert out_alpha.min() >= 0 and out_alpha.max() <= 1
        torch.testing.assert_close(out_probs.sum(1), torch.ones(1, H, W))


def test_hysteresis_keeps_previous_class_within_margin():
    probs = torch.tensor([0.30, 0.25, 0.45]).view(1, 3, 1, 1).repeat(1, 1, 1, 2)
    previous = torch.tensor([1, 1]).view(1, 1, 1, 2)
    bonus = torch.tensor([0.25, 0.15]).view(1, 1, 1, 2)
    classes = hysteresis(probs, previous, bonus).argmax(1).flatten().tolist()
    assert classes == [1, 2]  # 0.45 - 0.25 = 0.20 beats a 0.15 margin, not a 0.25 one


def test_stillness_ramp_and_motion_spreads_to_neighbours():
    motion = torch.tensor([0.0, 2.0, 4.0, 6.0, 9.0]) / 255
    assert stillness(motion, 2 / 255, 6 / 255).tolist() == pytest.approx([1, 1, 0.5, 0, 0])
    previous = torch.zeros(1, 3, 5, 5)
    image = previous.clone()
    image[..., 2, 2] = 0.3
    spread = cell_motion(image, previous)[0, 0]
    assert (spread[1:4, 1:4] > 0.29).all() and spread[0].max() == 0


def test_stabilizer_with_real_model_passes_the_first_frame_through(portrait):
    import lpmatte

    matter = lpmatte.load("lpm-s", device="cpu", backend="eager-fp32")
    image = portrait(48, 64)
    plain = matter.predict(image)
    filtered = matter.run(image, coarse_filter=TemporalStabilizer()).alpha_array()
    np.testing.assert_allclose(filtered, plain, atol=1e-5)


def dtssd_reference(pred, true):
    """RVM's MetricDTSSD, applied frame by frame and averaged over t >= 1."""
    scores = []
    for t in range(1, len(pred)):
        error = ((pred[t] - pred[t - 1]) - (true[t] - true[t - 1])) ** 2
        scores.append(np.sqrt(error.sum() / true[t].size) * 1e2)
    return float(np.mean(scores))


def test_dtssd_matches_reference_and_ignores_constant_error():
    rng = np.random.default_rng(0)
    true = rng.random((5, 6, 7))
    pred = np.clip(true + rng.normal(0, 0.1, true.shape), 0, 1)
    assert dtssd(pred, true) == pytest.approx(dtssd_reference(pred, true), rel=1e-12)
    assert dtssd(np.clip(true * 0.5 + 0.2, 0, 1), true * 0.5 + 0.2) == 0.0
    assert dtssd(true + 0.3, true) == pytest.approx(0.0, abs=1e-12)  # steady bias is not flicker
    with pytest.raises(ValueError):
        dtssd(pred[:1], true[:1])


def textured(height: int, width: int, seed: int) -> np.ndarray:
    """A busy float (H, W, 3) pattern spanning [0, 1]."""
    rng = np.random.default_rng(seed)
    pattern = cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), 1.5)
    return (pattern - pattern.min()) / (pattern.max() - pattern.min())


def square_person(height: int, width: int, left: int, size: int = 32) -> np.ndarray:
    alpha = np.zeros((height, width), np.float32)
    alpha[16:16 + size, left:left + size] = 1.0
    return alpha


def test_flow_hold_carries_a_moving_person_and_takes_new_content_where_uncovered():
    """A textured person moves 4 px right over a textured wall: inside, the previous matte is
    carried along the flow (not replaced by the noisy new prediction); on the strip the
    person uncovered, and the one it now covers, the matte is this frame's, not a lagged one."""
    height, width, step = 64, 96, 4
    wall = 0.4 + 0.6 * textured(height, width, 0)
    clothes = 0.35 * textured(height, width, 1)  # dark, patterned
    rng = np.random.default_rng(2)
    truths, frames = [], []
    for left in (30, 30 + step):
        alpha = square_person(height, width, left)
        person = np.roll(clothes, left, axis=1)  # the clothes' pattern moves with the person
        image = alpha[..., None] * person + (1 - alpha[..., None]) * wall
        frames.append(np.clip(image * 255 + rng.normal(0, 1.0, image.shape) + 0.5, 0, 255)
                      .astype(np.uint8))
        truths.append(alpha)
    # the first frame's matte is exact, the second frame's prediction is noisy
    noisy = np.clip(truths[1] + rng.normal(0, 0.05, truths[1].shape), 0, 1).astype(np.float32)
    hold = AlphaHold()
    hold(frames[0], truths[0])
    second = hold(frames[1], noisy)
    interior = np.zeros((height, width), bool)
    interior[20:44, 30 + step + 4:30 + step + 28] = True
    assert np.abs(second - truths[1])[interior].mean() < \
        0.25 * np.abs(noisy - truths[1])[interior].mean()
    uncovered = np.zeros_like(interior)
    uncovered[20:44, 30:30 + step] = True
    covered = np.zeros_like(interior)
    covered[20:44, 62:62 + step] = True
    for strip in (uncovered, covered):  # the previous matte there is wrong by 1
        error = np.abs(second - truths[1])[strip]
        assert error.max() < 0.25 and error.mean() <= np.abs(noisy - truths[1])[strip].mean()


def test_flow_hold_keeps_a_still_noisy_shot_steady():
    wall = 0.2 + 0.6 * textured(64, 96, 3)
    alpha = square_person(64, 96, 30)
    rng = np.random.default_rng(4)
    hold, raw, held = AlphaHold(), [], []
    for _ in range(6):
        frame = np.clip(wall * 255 + rng.normal(0, 2.0, wall.shape) + 0.5, 0, 255)
        prediction = np.clip(alpha + rng.normal(0, 0.05, alpha.shape), 0, 1).astype(np.float32)
        raw.append(prediction)
        held.append(hold(frame.astype(np.uint8), prediction))
    assert np.abs(np.diff(held, axis=0)).mean() < np.abs(np.diff(raw, axis=0)).mean() / 10


def test_flow_hold_says_where_it_kept_the_carried_matte():
    wall = 0.2 + 0.6 * textured(64, 96, 3)
    alpha = square_person(64, 96, 30)
    hold = AlphaHold()
    frame = (wall * 255 + 0.5).astype(np.uint8)
    hold(frame, alpha)
    assert hold.explained.shape == alpha.shape and not hold.explained.any()  # nothing carried
    hold(frame, alpha)
    assert (hold.explained == 1).all()  # the same frame: the previous matte, bit for bit
    changed = frame.copy()
    changed[20:40, 30:60] = 255 - changed[20:40, 30:60]  # new content the flow cannot explain
    hold(changed, alpha)
    assert hold.explained[25:35, 40:50].max() < 0.5 and hold.explained[:, :10].min() > 0.5


def test_flow_hold_lets_a_lasting_correction_through_gradually():
    """On a still shot the model changes its mind for good (a hole in the matte closes): the
    held matte does not jump with one frame, but arrives at the new answer."""
    wall = 0.2 + 0.6 * textured(64, 96, 5)
    rng = np.random.default_rng(6)
    before, after = np.zeros((64, 96), np.float32), np.ones((64, 96), np.float32)
    hold = AlphaHold()
    outputs = []
    for index in range(200):
        frame = np.clip(wall * 255 + rng.normal(0, 2.0, wall.shape) + 0.5, 0, 255)
        outputs.append(hold(frame.astype(np.uint8), before if index == 0 else after))
    assert outputs[2].mean() < 0.1
    assert outputs[-1].mean() > 0.9
