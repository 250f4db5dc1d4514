"""``lpmatte train`` end to end on a 16-image synthetic folder, its errors, and --data specs."""

import argparse
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lpmatte.cli import main
from lpmatte.cli.train import build_config, register
from lpmatte.data.spec import (
    SampleDraws,
    choose_validation_ids,
    parse_data_spec,
    split_validation,
)
from lpmatte.errors import LpmatteError
from lpmatte.training.schedule import milestone_steps


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def portrait(i: int, height: int = 80, width: int = 64):
    """(uint8 image, uint8 alpha): a soft ellipse over a ramp."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    d = np.hypot((yy - 0.5 * height) / (0.3 * height), (xx - 0.5 * width) / (0.3 * width))
    alpha = np.clip((1.1 - d) * 5, 0, 1)
    fg = np.array([0.8, 0.55, 0.45]) + np.random.default_rng(i).normal(0, 0.05, (height, width, 3))
    bg = np.stack([xx / width, yy / height, 0.3 + 0 * xx], -1)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), (alpha * 255).astype(np.uint8)


def make_folder(root: Path, count: int, fg: bool = False) -> Path:
    for i in range(count):
        image, alpha = portrait(i)
        save(root / "images" / f"p{i:02d}.jpg", image)
        save(root / "alpha" / f"p{i:02d}.png", alpha)
        if fg:
            save(root / "fg" / f"p{i:02d}.png", image)
    return root


@pytest.fixture(scope="module")
def sixteen(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("cli") / "sixteen", 16)


def train(train_dir, data, *extra) -> int:
    return main(["train", "--model-version", "lpm-s", "--train-dir", str(train_dir),
                 "--data", str(data), "--crop", "64", "--batch-size", "2", "--workers", "0",
                 "--quiet", "--precision", "fp32", *extra])


def test_train_resume_then_matte_with_the_checkpoint(tmp_path, sixteen, capsys):
    run = tmp_path / "run"
    assert train(run, sixteen, "--steps", "3") == 0
    assert train(run, sixteen, "--steps", "5", "--resume") == 0
    assert "steps 3..5" in capsys.readouterr().err
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 5
    assert list((run / "logger").glob("events.out.tfevents.*"))
    photo = tmp_path / "photo.jpg"
    save(photo, portrait(99, 120, 90)[0])
    assert main(["matte", str(photo), "-o", str(tmp_path / "out"), "--model",
                 str(run / "last.pt"), "--backend", "eager-fp32", "--quiet"]) == 0
    assert Image.open(tmp_path / "out" / "photo.png").size == (90, 120)
    weights = tmp_path / "w.safetensors"
    assert main(["train", "--train-dir", str(run), "--export", str(weights)]) == 0
    assert weights.stat().st_size > 0


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path, sixteen, monkeypatch):
    from lpmatte.training.trainer import Trainer

    original = Trainer.train_step

    def interrupt_at_step_2(self, batch):
        if self.step == 2:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", interrupt_at_step_2)
    assert train(tmp_path / "run", sixteen, "--steps", "5") == 130
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] == 2


def test_sigterm_saves_a_checkpoint_exits_143_and_restores_handlers(tmp_path, sixteen,
                                                                   monkeypatch):
    from lpmatte.training.trainer import Trainer

    original, before = Trainer.train_step, signal.getsignal(signal.SIGTERM)

    def terminate_at_step_2(self, batch):
        if self.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", terminate_at_step_2)
    assert train(tmp_path / "run", sixteen, "--steps", "5") == 143
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] == 2
    assert signal.getsignal(signal.SIGTERM) is before


def error_of(capsys, *args) -> str:
    code = main(list(args))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("lpmatte: error: ") and err.count("\n") == 1, err
    return err


def test_clean_one_line_errors(tmp_path, sixteen, capsys):
    run = str(tmp_path / "run")
    base = ["train", "--train-dir", run, "--crop", "64", "--steps", "1", "--quiet"]
    assert "no such data folder" in error_of(capsys, *base, "--model-version", "lpm-s",
                                             "--data", str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "alpha").mkdir()
    assert "no images found" in error_of(capsys, *base, "--model-version", "lpm-s",
                                         "--data", str(empty))
    odd = make_folder(tmp_path / "odd", 2)
    (odd / "alpha" / "p01.png").rename(odd / "alpha" / "q01.png")
    assert "no file for 1: p01" in error_of(capsys, *base, "--model-version", "lpm-s",
                                            "--data", str(odd))
    assert "unknown model 'nope'" in error_of(capsys, *base, "--model-version", "nope",
                                              "--data", str(sixteen))
    assert "no checkpoint to resume" in error_of(capsys, *base, "--resume",
                                                 "--data", str(sixteen))
    assert "--model-version is required" in error_of(capsys, *base, "--data", str(sixteen))
    assert "multiple of 16" in error_of(capsys, "train", "--train-dir", run, "--model-version",
                                        "lpm-s", "--data", str(sixteen), "--crop", "70")
    assert "no checkpoint to export" in error_of(capsys, "train", "--train-dir", run,
                                                 "--export", str(tmp_path / "w.safetensors"))
    with pytest.raises(SystemExit) as usage:  # argparse: one usage line, exit 2
        main([*base, "--model-version", "lpm-s", "--data", str(sixteen),
              "--scale-range", "1.0,0.5"])
    assert usage.value.code == 2 and "LOW <= HIGH" in capsys.readouterr().err


# --- --data specs -----------------------------------------------------------------------------

def test_config_file_sources_weights_and_backgrounds(tmp_path):
    a = make_folder(tmp_path / "a", 3, fg=True)
    make_folder(tmp_path / "b", 2)
    save(tmp_path / "bg" / "deep" / "wall.png", np.full((50, 70, 3), 200, np.uint8))
    config = tmp_path / "data.toml"
    config.write_text('backgrounds = ["bg"]\nprocedural_backgrounds = 0.25\n'
                      '[[sources]]\npath = "a"\nweight = 3\n'
                      '[[sources]]\npath = "b"\nbackgrounds = []\n')
    spec = parse_data_spec(config)
    assert [s.name for s in spec.sources] == ["a", "b"] and len(spec) == 5
    assert spec.sources[0].weight == 3 and spec.sources[0].files[0].fg is not None
    assert spec.sources[0].backgrounds == (tmp_path / "bg",) and spec.sources[1].backgrounds == ()
    assert spec.procedural_backgrounds == 0.25
    as_json = tmp_path / "data.json"
    as_json.write_text(json.dumps({"sources": [{"path": str(a)}, {"path": "b", "weight": 1}]}))
    assert parse_data_spec(as_json).ids() == spec.ids()
    draws = SampleDraws(spec, 32, seed=1)
    counts = np.bincount([draws.probabilities.searchsorted(np.random.default_rng([1, n, 0])
                                                           .random(), side="right")
                          for n in range(200)], minlength=2)
    assert counts[0] > counts[1]  # weight 3 vs 1
    sample = draws[7]
    assert sample.image.shape == (3, 32, 32) and torch.equal(sample.image, draws[7].image)
    assert sample.image.dtype == torch.uint8  # the loader passes bytes; the trainer floats them


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    for text, message in (("sources = []", "non-empty list"),
                          ('[[sources]]\nweight = 1', "needs a 'path'"),
                          ('[[sources]]\npath = "x"\ncolour = 1', "unknown source key"),
                          ('[[sources]]\npath = "missing"', "expected images/"),
                          ('srcs = 1', "unknown key"),
                          ('sources = [', "cannot parse")):
        bad.write_text(text)
        (tmp_path / "missing").mkdir(exist_ok=True)
        with pytest.raises(LpmatteError, match=message):
            parse_data_spec(bad)
    make_folder(tmp_path / "a", 1)
    bad.write_text('[[sources]]\npath = "a"\nweight = -1')
    with pytest.raises(LpmatteError, match="positive"):
        parse_data_spec(bad)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(LpmatteError, match="must be a folder or"):
        parse_data_spec(tmp_path / "notes.txt")


def test_soft_alpha_folder_uses_converted_images_only(tmp_path):
    photos = tmp_path / "photos"
    for i in range(3):
        save(photos / f"p{i}.jpg", portrait(i)[0])
    soft = tmp_path / "soft"
    for i in range(2):  # the third is not converted yet
        image, alpha = portrait(i)
        save(soft / "alpha" / f"p{i}.png", alpha)
        save(soft / "fg" / f"p{i}.png", image)
    (soft / "source.json").write_text(json.dumps({"images": str(photos), "masks": "m"}))
    spec = parse_data_spec(soft)
    files = spec.sources[0].files
    assert [f.name for f in files] == ["p0", "p1"]
    assert files[0].image == photos / "p0.jpg" and files[0].fg == soft / "fg" / "p0.png"


def test_validation_split_is_fixed_and_disjoint(tmp_path):
    spec = parse_data_spec(make_folder(tmp_path / "d", 20))
    ids = choose_validation_ids(spec, 0.1, 50, seed=3)
    assert len(ids) == 2 and ids == choose_validation_ids(spec, 0.1, 50, seed=3)
    train_part, val_part = split_validation(spec, ids)
    assert val_part.ids() == ids and not set(ids) & set(train_part.ids())
    assert len(train_part) == 18
    assert choose_validation_ids(parse_data_spec(make_folder(tmp_path / "e", 5)), 0.1, 5) == []


def test_split_with_only_held_out_data_is_an_error_unless_training_is_not_needed(tmp_path):
    # the validation group set is built before the training ids are converted
    spec = parse_data_spec(make_folder(tmp_path / "d", 3))
    ids = spec.ids()
    with pytest.raises(LpmatteError, match="nothing left to train on"):
        split_validation(spec, ids)
    train_part, val_part = split_validation(spec, ids, need_training=False)
    assert not train_part.sources and val_part.ids() == ids


def test_yaml_config_parses_or_names_the_missing_package(tmp_path):
    make_folder(tmp_path / "a", 2)
    config = tmp_path / "data.yaml"
    config.write_text("sources:\n  - path: a\n    weight: 2\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        with pytest.raises(LpmatteError, match="pip install pyyaml"):
            parse_data_spec(config)
        return
    assert parse_data_spec(config).sources[0].weight == 2


def test_resume_keeps_the_runs_options_unless_given_again(tmp_path, sixteen):
    run = tmp_path / "run"
    assert train(run, sixteen, "--steps", "2", "--lr", "3e-4", "--optimizer", "adamw",
                 "--scale-range", "0.4,0.9") == 0
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    resumed = build_config(parser.parse_args(["train", "--train-dir", str(run), "--resume"]))
    assert (resumed.crop, resumed.batch_size, resumed.steps) == (64, 2, 2)
    assert (resumed.optimizer, resumed.lr, resumed.data) == ("adamw", 3e-4, str(sixteen))
    assert resumed.scale_range == (0.4, 0.9)
    longer = build_config(parser.parse_args(["train", "--train-dir", str(run), "--resume",
                                             "--steps", "9", "--crop", "32"]))
    assert (longer.steps, longer.crop, longer.batch_size) == (9, 32, 2)
    # fractional milestones are pinned to the first run's steps: a longer run keeps them
    assert milestone_steps(longer.lr_milestones, longer.steps) == milestone_steps((0.3, 0.6), 2)
    dropped = build_config(parser.parse_args(["train", "--train-dir", str(run), "--resume",
                                              "--lr-milestones", "0.5", "--steps", "8"]))
    assert milestone_steps(dropped.lr_milestones, dropped.steps) == (4,)


@pytest.mark.parametrize("name, extra", [
    ("mmnet-0.5", ()),
    ("pspm", ("--phase", "matting-decoder"))])
def test_whole_image_models_train_validate_and_matte(tmp_path, sixteen, name, extra):
    """MMNet and PSPM go through the same trainer (their own losses), validation and export."""
    run = tmp_path / "run"
    assert main(["train", "--model", name, "--train-dir", str(run), "--data", str(sixteen),
                 "--crop", "64", "--batch-size", "2", "--workers", "0", "--quiet",
                 "--precision", "fp32", "--steps", "2", "--val-every", "2",
                 "--val-max-count", "2", *extra]) == 0
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["step"] == 2 and state["config"]["name"] == name
    photo = tmp_path / "photo.jpg"
    save(photo, portrait(99, 120, 90)[0])
    assert main(["matte", str(photo), "-o", str(tmp_path / "out"), "--model",
                 str(run / "last.pt"), "--quiet"]) == 0
    assert Image.open(tmp_path / "out" / "photo.png").size == (90, 120)


def test_pspm_needs_a_phase_and_others_refuse_one(tmp_path, sixteen, capsys):
    assert train(tmp_path / "a", sixteen, "--steps", "1", "--phase", "end-to-end") == 2
    assert "--phase applies to PSPM only" in capsys.readouterr().err
    assert main(["train", "--model", "pspm", "--train-dir", str(tmp_path / "b"), "--data",
                 str(sixteen), "--steps", "1", "--quiet"]) == 2
    assert "give --phase" in capsys.readouterr().err


def test_the_runs_scale_range_sets_how_large_people_are_in_its_samples(tmp_path, sixteen):
    """Whole-image models train zoomed out (--scale-range): fails when the loader ignores it."""
    from lpmatte.training.config import TrainConfig
    from lpmatte.training.trainer import Trainer

    def person_area(scale_range) -> float:
        config = TrainConfig(train_dir=str(tmp_path / f"run{scale_range[0]}"), data=str(sixteen),
                             model_version="lpm-s", crop=64, batch_size=8, steps=1,
                             num_workers=0, val_every=0, precision="fp32", progress=False,
                             scale_range=scale_range)
        batch = next(iter(Trainer(config).loader(end_step=1)))
        return float(batch.alpha.float().mean())

    # photos kept with their own background still cover the crop (zoom >= 1): not all shrink
    assert person_area((0.3, 0.3)) < 0.75 * person_area((1.5, 1.5))


def test_whole_image_models_train_channels_last_to_the_same_gradients(tmp_path, sixteen):
    """``--memory-format auto`` lays MMNet out channels-last (its depthwise convolutions train
    ~1.9x faster so on CPU): the layout changes, the losses and gradients do not, and the run
    checkpoints and resumes."""
    from lpmatte.training.config import TrainConfig
    from lpmatte.training.trainer import Trainer

    def trainer(layout: str) -> Trainer:
        return Trainer(TrainConfig(train_dir=str(tmp_path / layout), data=str(sixteen),
                                   model_version="mmnet-0.5", crop=64, batch_size=2, steps=2,
                                   num_workers=0, val_every=0, precision="fp32",
                                   progress=False, memory_format=layout))

    laid_out, plain = trainer("auto"), trainer("contiguous")
    convs = [name for name, p in plain.model.named_parameters() if p.dim() == 4]
    laid_params, plain_params = dict(laid_out.model.named_parameters()), dict(
        plain.model.named_parameters())
    assert all(laid_params[n].is_contiguous(memory_format=torch.channels_last) for n in convs)
    assert all(plain_params[n].is_contiguous() for n in convs)
    batch = next(iter(plain.loader(end_step=1)))
    laid_terms, plain_terms = laid_out.train_step(batch)[0], plain.train_step(batch)[0]
    for term, value in plain_terms.items():
        assert laid_terms[term] == pytest.approx(value, rel=1e-5)
    # summed in another order (BN over two small crops amplifies it): compare as one vector
    laid_grad = torch.cat([laid_params[n].grad.flatten() for n in plain_params])
    plain_grad = torch.cat([p.grad.flatten() for p in plain_params.values()])
    assert torch.linalg.vector_norm(laid_grad - plain_grad) < 1e-2 * torch.linalg.vector_norm(
        plain_grad)
    laid_out.fit()
    assert main(["train", "--resume", "--train-dir", str(tmp_path / "auto"), "--steps", "3",
                 "--quiet"]) == 0
    assert torch.load(tmp_path / "auto" / "last.pt", weights_only=True)["step"] == 3


def test_two_stage_models_stay_contiguous(tmp_path, sixteen):
    from lpmatte.training.config import TrainConfig
    from lpmatte.training.trainer import Trainer

    config = TrainConfig(train_dir=str(tmp_path / "run"), data=str(sixteen), model_version="lpm-s",
                         crop=64, batch_size=2, steps=1, num_workers=0, val_every=0,
                         precision="fp32", progress=False)
    assert all(p.is_contiguous() for p in Trainer(config).model.parameters())
    with pytest.raises(LpmatteError, match="unknown memory format"):
        TrainConfig(train_dir=str(tmp_path / "b"), data=str(sixteen),
                    memory_format="nhwc").check()
