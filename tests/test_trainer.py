"""The trainer on tiny synthetic folders: learning, exact resume, checkpoint files."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lpmatte
from lpmatte.data.spec import draw_indices
from lpmatte.errors import LpmatteError
from lpmatte.training.checkpoints import export_weights, restore_rng_state, rng_state
from lpmatte.training.config import TrainConfig
from lpmatte.training.forward import unknown_cells
from lpmatte.training.processes import resolve_precision
from lpmatte.training.run_log import summary_strip
from lpmatte.training.schedule import StepSchedule, milestone_steps, step_seed
from lpmatte.training.trainer import Trainer


def make_folder(root: Path, count: int, height: int = 96, width: int = 72) -> Path:
    """``root/images`` + ``root/alpha``: a soft ellipse 'person' over a colour ramp."""
    (root / "images").mkdir(parents=True)
    (root / "alpha").mkdir()
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(count):
        rng = np.random.default_rng(i)
        d = np.hypot((yy - 0.5 * height) / (0.32 * height), (xx - 0.5 * width) / (0.3 * width))
        alpha = np.clip((1.1 - d) * 6, 0, 1)
        fg = np.array([0.85, 0.6, 0.45]) + rng.normal(0, 0.04, (height, width, 3))
        bg = np.stack([xx / width, yy / height, 0.3 + 0 * xx], -1)
        image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(
            root / "images" / f"p{i:02d}.png")
        Image.fromarray((alpha * 255).astype(np.uint8)).save(root / "alpha" / f"p{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("data") / "portraits", 4)


def tiny_config(train_dir, data, **overrides) -> TrainConfig:
    options = dict(model_version="lpm-s", steps=6, crop=64, batch_size=2, num_workers=0,
                   progress=False, val_every=0, checkpoint_every=1000, precision="fp32")
    options.update(overrides)
    return TrainConfig(str(train_dir), str(data), **options)


def fixed_batch_loss(trainer: Trainer, batch) -> float:
    """The loss of one batch with the drop-path draw fixed, without a gradient step."""
    torch.manual_seed(0)
    from lpmatte.training.forward import as_float32

    batch = trainer.prepare(batch)
    with torch.no_grad():
        output = as_float32(trainer.forward(batch.image, unknown_cells(batch.trimap)))
        return float(trainer.loss_fn(output, batch).total)


def test_tiny_run_lowers_the_loss(tmp_path):
    data = make_folder(tmp_path / "two", 2)
    config = tiny_config(tmp_path / "run", data, steps=12, lr=2e-3, lr_milestones=(1.0,))
    trainer = Trainer(config)
    batches = [batch for batch in trainer.loader(3)]
    before = np.mean([fixed_batch_loss(trainer, b) for b in batches])
    trainer.fit()
    after = np.mean([fixed_batch_loss(trainer, b) for b in batches])
    assert after < 0.85 * before, (before, after)  # measured: about 0.7


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(tmp_path, folder):
    straight = Trainer(tiny_config(tmp_path / "a", folder))
    straight.fit()
    first = Trainer(tiny_config(tmp_path / "b", folder))
    first.fit(stop_after=3)
    assert first.step == 3 and (tmp_path / "b" / "last.pt").is_file()
    resumed = Trainer(tiny_config(tmp_path / "b", folder, resume=True))
    assert resumed.step == 3
    resumed.fit()
    assert resumed.step == 6
    assert_same_weights(resumed.model, straight.model)


def assert_same_weights(model, reference):
    for name, value in reference.state_dict().items():
        other = model.state_dict()[name]
        if value.is_floating_point():
            torch.testing.assert_close(other, value, atol=1e-6, rtol=0, msg=name)
        else:
            assert torch.equal(other, value), name


def test_weight_average_resumes_exactly_and_is_what_checkpoints_serve(tmp_path, folder):
    straight = Trainer(tiny_config(tmp_path / "a", folder, ema_decay=0.5))
    straight.fit()
    Trainer(tiny_config(tmp_path / "b", folder, ema_decay=0.5)).fit(stop_after=3)
    resumed = Trainer(tiny_config(tmp_path / "b", folder, ema_decay=0.5, resume=True))
    resumed.fit()
    assert_same_weights(resumed.model, straight.model)
    assert_same_weights(resumed.ema.module, straight.ema.module)
    state = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    name = "lowres.backbone.patch_embed.proj.weight"
    torch.testing.assert_close(state["model"][name], resumed.ema.module.state_dict()[name])
    torch.testing.assert_close(state["train_model"][name], resumed.model.state_dict()[name])
    assert not torch.equal(state["model"][name], state["train_model"][name])


def test_resume_takes_a_new_schedule(tmp_path, folder):
    first = Trainer(tiny_config(tmp_path / "run", folder, lr=1e-3, lr_milestones=(100,)))
    first.fit(stop_after=3)
    same = Trainer(tiny_config(tmp_path / "run", folder, lr=1e-3, lr_milestones=(100,),
                               resume=True))
    assert same.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    dropped = Trainer(tiny_config(tmp_path / "run", folder, lr=1e-3, lr_milestones=(2,),
                                  weight_decay=0.05, resume=True))
    group = dropped.optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (pytest.approx(1e-4), 0.05)
    dropped.fit(stop_after=4)
    assert dropped.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def load_eager(path):
    """The weights as a Matter on plain PyTorch (no ONNX export at load: faster tests)."""
    return lpmatte.load(str(path), device="cpu", backend="eager-fp32")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, folder) -> Path:
    """A 4-step run checkpointing every step and keeping the last 2."""
    train_dir = tmp_path_factory.mktemp("finished") / "run"
    Trainer(tiny_config(train_dir, folder, steps=4, checkpoint_every=1, keep_last=2)).fit()
    return train_dir


def test_checkpoints_load_with_weights_only_and_as_a_model(finished_run):
    names = sorted(p.name for p in finished_run.glob("*.pt"))
    assert names == ["ckpt_step_0000003.pt", "ckpt_step_0000004.pt", "last.pt"]
    state = torch.load(finished_run / "last.pt", weights_only=True)
    assert state["step"] == 4 and state["metadata"]["untrained"] == "false"
    assert {"model", "config", "optimizer", "scheduler", "rng", "best_metric"} <= set(state)
    matter = load_eager(finished_run / "last.pt")
    assert not matter.untrained and matter.config.name == "lpm-s"
    alpha = matter.predict(np.full((40, 56, 3), 128, np.uint8))
    assert alpha.shape == (40, 56) and np.isfinite(alpha).all()
    assert list((finished_run / "logger").glob("events.out.tfevents.*"))


def test_export_writes_fp16_safetensors_that_predict_alike(finished_run, tmp_path):
    out = export_weights(finished_run / "last.pt", tmp_path / "w.safetensors")
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    a = load_eager(finished_run / "last.pt").predict(image)
    b = load_eager(out).predict(image)
    assert np.abs(a - b).max() < 0.05
    with pytest.raises(LpmatteError, match="safetensors"):
        export_weights(finished_run / "last.pt", tmp_path / "w.bin")


def test_validation_holds_out_ids_and_keeps_the_best(tmp_path):
    data = make_folder(tmp_path / "twelve", 12)
    trainer = Trainer(tiny_config(tmp_path / "run", data, steps=2, val_every=2))
    assert len(trainer.val_spec) == 1 and len(trainer.train_spec) == 11
    trainer.fit()
    held = (tmp_path / "run" / "val_ids.txt").read_text().split()
    assert held == trainer.val_spec.ids()
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["best_metric"] == trainer.best_metric < 1


def test_resume_and_fresh_run_guards(tmp_path, folder, finished_run):
    with pytest.raises(LpmatteError, match="no checkpoint to resume"):
        Trainer(tiny_config(tmp_path / "run", folder, resume=True))
    with pytest.raises(LpmatteError, match="already holds a run"):
        Trainer(tiny_config(finished_run, folder, steps=1))
    with pytest.raises(LpmatteError, match="not --model-version 'lpm'"):
        Trainer(tiny_config(finished_run, folder, model_version="lpm", resume=True))
    (tmp_path / "file").write_text("")
    with pytest.raises(LpmatteError, match="cannot create this folder"):
        Trainer(tiny_config(tmp_path / "file" / "run", folder))


def test_schedule_and_milestones():
    assert milestone_steps((0.3, 0.6), 400_000) == (120_000, 240_000)
    assert milestone_steps((120_000, 240_000), 10) == (120_000, 240_000)
    schedule = StepSchedule((4, 8), gamma=0.1, warmup=2)
    factors = [schedule(s) for s in range(10)]
    assert factors[:2] == [0.5, 1.0]
    np.testing.assert_allclose(factors[2:], [1, 1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01])


def test_unknown_cells_are_a_max_pool_over_8x8():
    trimap = torch.zeros(1, 20, 17, dtype=torch.long)
    trimap[0, 9, 16] = 1  # cell (1, 2), the partial last column
    trimap[0, 0:8, 0:8] = 2
    cells = unknown_cells(trimap)
    assert cells.shape == (1, 1, 3, 3) and cells.dtype == torch.bool
    assert cells.nonzero().tolist() == [[0, 0, 1, 2]]


def test_draw_shards_are_disjoint_and_cover_the_steps():
    shards = [list(draw_indices(2, 5, 3, rank, 2)) for rank in range(2)]
    assert sorted(shards[0] + shards[1]) == list(range(2 * 6, 5 * 6))
    assert list(draw_indices(2, 5, 3)) == list(range(6, 15))


def test_rng_state_round_trip_and_step_seeds():
    state = rng_state()
    draws = (torch.rand(3), np.random.rand(3), __import__("random").random())
    restore_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), __import__("random").random())
    assert torch.equal(draws[0], again[0]) and np.array_equal(draws[1], again[1])
    assert draws[2] == again[2]
    assert step_seed(0, 5) == step_seed(0, 5) != step_seed(0, 6) != step_seed(1, 5)
    assert 0 <= step_seed(3, 7, 1) < 2**63


def test_precision_choice(monkeypatch):
    import lpmatte.training.processes as processes

    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) == torch.bfloat16
    monkeypatch.setattr(processes, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == torch.bfloat16
    monkeypatch.setattr(processes, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", cpu) is None
    with pytest.raises(LpmatteError, match="fp16 training needs a CUDA GPU"):
        resolve_precision("fp16", cpu)


def test_summary_strip_panels():
    from lpmatte.data.augment import TrainingSample
    from lpmatte.model.two_stage import TwoStageOutput

    image = torch.full((2, 3, 32, 32), 255, dtype=torch.uint8)
    alpha = torch.zeros(2, 1, 32, 32, dtype=torch.uint8)
    batch = TrainingSample(image, alpha, torch.zeros(2, 32, 32, dtype=torch.uint8), image, image)
    logits = torch.zeros(2, 3, 4, 4)
    logits[:, 2] = 1  # foreground everywhere
    output = TwoStageOutput(torch.full((2, 1, 32, 32), 0.5), torch.zeros(2, 1, 4, 4), logits,
                           [], torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, 1, 8, 8))
    strip = summary_strip(batch, output, size=16)
    assert strip.shape == (3, 16, 80)
    means = [float(strip[:, :, i * 16:(i + 1) * 16].mean()) for i in range(5)]
    np.testing.assert_allclose(means, [1, 1, 0, 0.5, 0], atol=1e-6)


def test_cap_regions_keeps_a_random_subset_per_image():
    from lpmatte.training.forward import cap_regions

    mask = torch.zeros(2, 1, 6, 6, dtype=torch.bool)
    mask[0, 0, :4] = True  # 24 cells
    mask[1, 0, 0, :3] = True  # 3 cells
    capped = cap_regions(mask, 5)
    assert capped.flatten(1).sum(1).tolist() == [5, 3]
    assert not (capped & ~mask).any()
    assert cap_regions(mask, 30) is mask


def test_init_from_another_variant_takes_the_tensors_that_fit(tmp_path, folder, finished_run):
    """An lpm-e0 run warm-started from lpm-s weights: the refiner comes over whole, the
    backbone (another architecture) stays as built, and the log says what was taken."""
    source = load_eager(finished_run / "last.pt").model.state_dict()
    trainer = Trainer(tiny_config(tmp_path / "run", folder, model_version="lpm-e0",
                                  init_weights=str(finished_run / "last.pt")))
    own = trainer.model.state_dict()
    refiner = [k for k in own if k.startswith("refiner.")]
    assert refiner and all(torch.equal(own[k], source[k]) for k in refiner)
    assert not any(k in source for k in own if k.startswith("lowres.backbone."))
    assert trainer.init_notes and trainer.init_notes[0].startswith("warm start: ")
    assert "from lpm-s" in trainer.init_notes[0]


def test_init_from_lite0_weights_never_places_them_in_a_lite1_backbone(tmp_path, folder):
    """lpm-e0 -> lpm-e1: many block tensors agree in name and shape but not in meaning
    (Lite1's stages are deeper), so the backbone keeps its own weights; the refiner is
    taken."""
    import lpmatte.model.factory as factory
    from lpmatte.model.registry import create_config
    from lpmatte.model.weights import save_safetensors

    e0 = factory.build_model(create_config("lpm-e0"), seed=5)  # not the run's seed
    save_safetensors(tmp_path / "e0.safetensors", e0, e0.config)
    trainer = Trainer(tiny_config(tmp_path / "run", folder, model_version="lpm-e1",
                                  init_weights=str(tmp_path / "e0.safetensors")))
    own, source = trainer.model.state_dict(), e0.state_dict()
    same_shape = [k for k in own if k.startswith("lowres.backbone.blocks.") and k in source
                  and own[k].shape == source[k].shape and own[k].dim() == 4]  # conv kernels
    assert same_shape  # the trap exists: these would have been taken by name and shape
    assert not any(torch.equal(own[k], source[k]) for k in same_shape)
    assert all(torch.equal(own[k], source[k]) for k in own if k.startswith("refiner."))


def test_backbone_weights_need_the_efficientnet_variant(tmp_path, folder):
    with pytest.raises(LpmatteError, match="needs an EfficientNet-Lite model"):
        Trainer(tiny_config(tmp_path / "run", folder, backbone_weights="imagenet"))


def test_training_forward_refines_the_ground_truths_unknown_cells_too():
    """The paper's rule: the refiner trains on predicted OR true unknown cells, so it sees
    boundary regions even while the low-res network predicts none."""
    from lpmatte.model.lowres_network import LowResOutput
    from lpmatte.model.model import LightweightPortraitMatting
    from lpmatte.model.registry import create_config
    from lpmatte.training.forward import TrainingForward

    torch.manual_seed(0)
    model = LightweightPortraitMatting(create_config("lpm-s")).train()

    def all_background(padded):  # a low-res network that predicts no unknown cell at all
        h, w = padded.shape[-2] // 8, padded.shape[-1] // 8
        trimap = torch.zeros(padded.shape[0], 3, h, w)
        trimap[:, 0] = 10.0
        return [LowResOutput(torch.zeros(padded.shape[0], 1, h, w), trimap)]

    model.lowres_heads = all_background
    gt_unknown = torch.zeros(2, 1, 6, 8, dtype=torch.bool)
    gt_unknown[0, 0, 1, 2] = gt_unknown[1, 0, 4, 5] = gt_unknown[1, 0, 0, 7] = True
    output = TrainingForward(model)(torch.rand(2, 3, 48, 64), gt_unknown)
    assert sorted(map(tuple, output.regions.tolist())) == [(0, 1, 2), (1, 0, 7), (1, 4, 5)]
