"""Refiner distillation (lpmatte.training.distill): recording, batching, training, resume."""

import json

import pytest
import torch

import lpmatte
from lpmatte.errors import LpmatteError
from lpmatte.model.config import RefinerConfig
from lpmatte.model.refiner import Refiner
from lpmatte.model.registry import create_config
from lpmatte.training.distill import (
    DistillConfig,
    RecordingRefiner,
    RefinerCalls,
    distill,
    held_out_error,
    join_calls,
    read_student_state,
    record_calls,
    scaled,
)
from lpmatte.training.refiner_pruning import pruned_refiner_state


def blob_portrait(height: int, width: int, seed: int) -> torch.Tensor:
    """(3, H, W) in [0, 1]: a noisy skin-coloured head and shoulders on a gradient."""
    generator = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width),
                            indexing="ij")
    person = (((yy - 0.45) / 0.3) ** 2 + ((xx - 0.5) / 0.2) ** 2 < 1) | (
        (yy > 0.65) & ((xx - 0.5).abs() < 0.35))
    background = torch.stack([xx, yy, 0.5 + 0 * xx]) * 0.6 + 0.2
    skin = torch.tensor([0.8, 0.6, 0.5])[:, None, None] + 0.05 * torch.randn(
        3, height, width, generator=generator)
    return torch.where(person, skin, background).clamp(0, 1)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Calls of the trained default on two synthetic portraits, one pass and two passes."""
    # without the zoom for people, whose extra first pass would add calls of its own
    matter = lpmatte.load("default", device="cpu", backend="eager-fp32", person_height=0)
    images = [blob_portrait(200, 150, seed) for seed in (1, 2)]
    calls = record_calls(matter, images, (160, 640), log=None)
    path = tmp_path_factory.mktemp("calls") / "calls.pt"
    calls.save(path)
    return matter, images, RefinerCalls.load(path)


def test_recorded_patches_are_the_teachers(recorded):
    matter, images, calls = recorded
    # 2 images x 2 views x (one pass at 160 + two passes at 640) = 12 calls
    assert len(calls) == 12
    assert calls.num_regions == int(calls.offsets[-1]) > 0
    crops, regions, neighbours, valid, patches = calls.batch([3])
    with torch.inference_mode():
        again = matter.backend.refine(crops, regions, neighbours, valid)
    # crops and patches are stored in fp16: the teacher's output to that precision
    assert (again - patches).abs().mean() < 5e-4 and (again - patches).abs().max() < 1e-2
    assert not isinstance(matter.backend, RecordingRefiner)  # taken off again


def test_batched_calls_refine_as_each_call_alone(recorded):
    _, _, calls = recorded
    refiner = Refiner(create_config("lpm-e0-lite").refiner).eval()
    with torch.no_grad():
        alone = [refiner(*calls.batch([i])[:4]) for i in (0, 5, 7)]
        together = refiner(*calls.batch([0, 5, 7])[:4])
    assert torch.allclose(torch.cat(alone), together, atol=1e-5)


def test_distill_lowers_the_error_and_resumes(recorded, tmp_path):
    _, _, calls = recorded
    torch.manual_seed(0)
    student = Refiner(create_config("lpm-e0-lite").refiner)
    held = torch.arange(len(calls))
    before = held_out_error(student, calls, held)
    config = DistillConfig(steps=30, lr=3e-3, regions_per_step=512, val_every=10,
                           checkpoint_every=10)
    distill(student, calls, tmp_path, config, log=None)
    assert held_out_error(student, calls, held) < 0.7 * before
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [10, 20, 30]

    resumed = Refiner(create_config("lpm-e0-lite").refiner)
    messages = []
    distill(resumed, calls, tmp_path, DistillConfig(steps=40, lr=3e-3, regions_per_step=512,
                                                    val_every=10, checkpoint_every=10),
            log=messages.append)
    assert messages[0] == "resumed at step 30"
    assert json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])["step"] == 40


def test_joined_recordings_keep_every_call(recorded):
    _, _, calls = recorded
    joined = join_calls([calls, calls])
    assert len(joined) == 2 * len(calls) and joined.num_regions == 2 * calls.num_regions
    for a, b in zip(joined.call(len(calls) + 4), calls.call(4)):
        assert torch.equal(a, b)


def test_scaled_sets_the_long_side():
    image = torch.rand(1, 3, 60, 40)
    assert scaled(image, 30).shape[-2:] == (30, 20)
    assert scaled(image, 120).shape[-2:] == (120, 80)
    assert float(scaled(image, 120).max()) <= 1


def test_bad_calls_file_is_one_line_error(tmp_path):
    bad = tmp_path / "calls.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(LpmatteError, match="not a file of recorded refiner calls"):
        RefinerCalls.load(bad)
    with pytest.raises(LpmatteError, match="no refiner call"):
        RefinerCalls.concatenate([])
    with pytest.raises(LpmatteError, match="not a readable distillation checkpoint"):
        read_student_state(bad)
    torch.save({"model": {}}, bad)
    with pytest.raises(LpmatteError, match="not a distillation checkpoint"):
        read_student_state(bad)
    with pytest.raises(LpmatteError, match="not a file of recorded refiner calls"):
        RefinerCalls.load(bad)


def trained_teacher(matter) -> Refiner:
    return matter.backend.model.refiner


def test_pruned_to_the_teachers_widths_is_the_teacher(recorded):
    matter, _, calls = recorded
    teacher = trained_teacher(matter)
    copy = Refiner(teacher.config)
    copy.load_state_dict(pruned_refiner_state(teacher, teacher.config))
    copy.eval()
    inputs = calls.batch([0, 3])[:4]
    with torch.no_grad():
        assert torch.equal(copy(*inputs), teacher(*inputs))


def test_pruned_student_keeps_the_teachers_weights_and_starts_closer(recorded):
    matter, _, calls = recorded
    teacher = trained_teacher(matter)
    config = create_config("lpm-e0-lite").refiner
    state = pruned_refiner_state(teacher, config)
    pruned = Refiner(config)
    pruned.load_state_dict(state)  # strict: every tensor present, every shape right
    # the first layer keeps the 16 of 32 channels with the largest BatchNorm scale, as they were
    scale = teacher.encoder.layers[0][1].weight.detach().abs()
    kept = scale.topk(16).indices.sort().values
    first = teacher.encoder.layers[0][0].weight
    assert torch.equal(state["encoder.layers.0.0.weight"], first[kept])
    torch.manual_seed(0)
    random = Refiner(config)
    held = torch.arange(len(calls))
    assert held_out_error(pruned, calls, held) < 0.7 * held_out_error(random, calls, held)


def test_a_wider_or_other_student_cannot_be_pruned(recorded):
    teacher = trained_teacher(recorded[0])
    for config in (RefinerConfig(mlp_dim=256), RefinerConfig(attention_dim=64, num_heads=8),
                   RefinerConfig(use_cra=False)):
        with pytest.raises(LpmatteError, match="to be pruned"):
            pruned_refiner_state(teacher, config)
