"""Dataset loaders on tiny synthetic replicas of each published layout."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lpmatte.data.datasets import (
    BG20K,
    DATASET_KINDS,
    MattingSample,
    PhotoMatte85,
    build_dataset,
    generate_trimap,
)
from lpmatte.data.datasets.photomatte85 import composite_8bit, fit_background
from lpmatte.errors import LpmatteError

H, W = 24, 32


def write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def rgb(seed: int, shape=(H, W)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def matte(seed: int, shape=(H, W)) -> np.ndarray:
    """A soft-edged box: 0 outside, 255 inside, a ramp between."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    inset = 4 + seed % 3
    distance = np.minimum.reduce([rows - inset, cols - inset, shape[0] - 1 - inset - rows,
                                  shape[1] - 1 - inset - cols])
    return np.clip(128 + 64 * distance, 0, 255).astype(np.uint8)


def make_pairs(root: Path, image_dir: str, alpha_dir: str, stems, image_ext=".jpg",
               alpha_ext=".png", trimap_dir=None, extra_dirs=()):
    for i, stem in enumerate(stems):
        write(root / image_dir / f"{stem}{image_ext}", rgb(i))
        alpha = matte(i)
        write(root / alpha_dir / f"{stem}{alpha_ext}", alpha)
        if trimap_dir:
            write(root / trimap_dir / f"{stem}.png", generate_trimap(alpha, 5))
        for folder in extra_dirs:
            write(root / folder / f"{stem}.jpg", rgb(100 + i))


def check_sample(sample: MattingSample, with_trimap: bool):
    assert sample.image.shape == (H, W, 3) and sample.image.dtype == np.float32
    assert sample.alpha.shape == (H, W) and sample.alpha.dtype == np.float32
    assert 0 <= sample.image.min() and sample.image.max() <= 1
    assert 0 <= sample.alpha.min() and sample.alpha.max() <= 1
    if with_trimap:
        assert sample.trimap.dtype == np.uint8 and set(np.unique(sample.trimap)) <= {0, 128, 255}
    else:
        assert sample.trimap is None


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LPMATTE_CACHE", str(tmp_path / "cache"))


# --- trimap generation ----------------------------------------------------------------------

def test_generate_trimap_bands():
    alpha = np.zeros((100, 100), np.uint8)
    alpha[20:80, 20:80] = 255
    alpha[20:80, 20] = 100  # a soft left edge
    trimap = generate_trimap(alpha)
    assert set(np.unique(trimap)) == {0, 128, 255}
    assert trimap[50, 50] == 255  # deep inside
    assert trimap[50, 25] == 128 and trimap[50, 10] == 128  # within 15 px of the edge
    assert trimap[2, 2] == 0  # far outside
    assert trimap[50, 75] == 128  # erosion reaches 15 px in from the hard edge too
    assert generate_trimap(np.full((10, 10), 255, np.uint8)).min() == 255  # borders don't erode


def test_generate_trimap_accepts_float_alpha():
    alpha = matte(0).astype(np.float32) / 255
    np.testing.assert_array_equal(generate_trimap(alpha, 5), generate_trimap(matte(0), 5))


# --- folder ---------------------------------------------------------------------------------

def test_folder_dataset(tmp_path):
    make_pairs(tmp_path, "images", "alpha", ["b", "a"], trimap_dir="trimap")
    dataset = build_dataset("folder", tmp_path)
    assert len(dataset) == 2 and dataset.names == ["a", "b"]
    check_sample(dataset[0], with_trimap=True)
    np.testing.assert_allclose(dataset[1].alpha, matte(0) / 255, atol=1e-6)  # b was written first
    assert [s.name for s in dataset] == ["a", "b"]


def test_folder_dataset_split_and_optional_trimaps(tmp_path):
    make_pairs(tmp_path / "val", "images", "alpha", ["x"])
    dataset = build_dataset("folder", tmp_path, split="val")
    check_sample(dataset[0], with_trimap=False)
    generated = build_dataset("folder", tmp_path / "val", generate_trimaps=True)
    check_sample(generated[0], with_trimap=True)


def test_folder_dataset_errors_name_the_files(tmp_path):
    make_pairs(tmp_path, "images", "alpha", ["a", "b", "c"])
    (tmp_path / "alpha" / "b.png").unlink()
    with pytest.raises(LpmatteError, match=r"no file for 1: b"):
        build_dataset("folder", tmp_path)
    write(tmp_path / "alpha" / "b.png", matte(0, (10, 10)))
    with pytest.raises(LpmatteError, match=r"b\.png: size 10x10 differs"):
        build_dataset("folder", tmp_path)[1]
    write(tmp_path / "images" / "a.png", rgb(0))
    with pytest.raises(LpmatteError, match="two files named 'a'"):
        build_dataset("folder", tmp_path)
    with pytest.raises(LpmatteError, match="no such dataset folder"):
        build_dataset("folder", tmp_path / "nowhere")


def test_mask_sets_read_images_and_masks(tmp_path):
    make_pairs(tmp_path, "images", "masks", ["00001", "00003"])
    for kind in ("flickr-portraits", "ccp-people", "flickr"):
        dataset = build_dataset(kind, tmp_path)
        assert dataset.names == ["00001", "00003"]
        check_sample(dataset[1], with_trimap=False)


# --- P3M-10K --------------------------------------------------------------------------------

def make_p3m(root: Path):
    make_pairs(root / "train", "blurred_image", "mask", ["p_1", "p_2", "p_3"],
               extra_dirs=("fg", "bg"))
    make_pairs(root / "validation" / "P3M-500-P", "blurred_image", "mask", ["p_a", "p_b"],
               trimap_dir="trimap")
    make_pairs(root / "validation" / "P3M-500-NP", "original_image", "mask", ["np_a"],
               trimap_dir="trimap")


def test_p3m_splits(tmp_path):
    make_p3m(tmp_path / "P3M-10k")
    train = build_dataset("p3m", tmp_path / "P3M-10k", split="train")
    assert len(train) == 3
    sample = train[0]
    check_sample(sample, with_trimap=False)
    assert sample.fg.shape == sample.bg.shape == (H, W, 3)
    default = build_dataset("p3m", tmp_path)  # the P3M-10k sub-folder is found
    assert default.split == "P3M-500-P" and default.names == ["p_a", "p_b"]
    check_sample(default[1], with_trimap=True)
    assert build_dataset("P3M-10K", tmp_path / "P3M-10k", split="p3m-500-np").names == ["np_a"]
    with pytest.raises(LpmatteError, match="unknown P3M-10K split"):
        build_dataset("p3m", tmp_path, split="test")
    with pytest.raises(LpmatteError, match="not a P3M-10K folder"):
        build_dataset("p3m", tmp_path / "P3M-10k" / "train")


# --- PPM-100 --------------------------------------------------------------------------------

def test_ppm100_generates_and_caches_trimaps_outside_the_root(tmp_path):
    root = tmp_path / "PPM-100"
    make_pairs(root, "image", "matte", ["0001", "0002"])
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    dataset = build_dataset("ppm100", root)
    sample = dataset[0]
    check_sample(sample, with_trimap=True)
    np.testing.assert_array_equal(sample.trimap, generate_trimap(matte(0)))
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # root untouched
    cached = list((tmp_path / "cache" / "trimaps").glob("ppm100-*-k30/0001.png"))
    assert len(cached) == 1
    marker = np.zeros((H, W), np.uint8)
    write(cached[0], marker)  # newer than the matte: read back from the cache
    np.testing.assert_array_equal(dataset[0].trimap, marker)
    os.utime(root / "matte" / "0001.png")  # matte changed later: regenerated
    stamp = cached[0].stat().st_mtime
    os.utime(root / "matte" / "0001.png", (stamp + 10, stamp + 10))
    np.testing.assert_array_equal(dataset[0].trimap, generate_trimap(matte(0)))


def test_ppm100_explicit_cache_folder_and_existing_trimaps(tmp_path):
    root = tmp_path / "PPM-100"
    make_pairs(root, "image", "matte", ["0001"], alpha_ext=".jpg")
    build_dataset("ppm100", root, trimap_cache=tmp_path / "mine")[0]
    assert (tmp_path / "mine" / "0001.png").is_file()
    write(root / "trimap" / "0001.png", np.full((H, W), 128, np.uint8))
    assert (build_dataset("PPM-100", root)[0].trimap == 128).all()
    with pytest.raises(LpmatteError, match="has no splits"):
        build_dataset("ppm100", root, split="train")


# --- PhotoMatte85 ---------------------------------------------------------------------------

def make_photomatte(root: Path, count=3, backgrounds=2):
    for i in range(count):
        rgba = np.dstack([rgb(i), matte(i)])
        write(root / "rgba_image" / f"portrait_{i}.png", rgba)
    for j in range(backgrounds):
        write(root / "background" / f"bg_{j}.jpg", rgb(50 + j, (40, 90)))


def test_photomatte85_composites_with_deterministic_pairing(tmp_path):
    make_photomatte(tmp_path)
    dataset = build_dataset("photomatte85", tmp_path)
    assert dataset.names == ["portrait_0", "portrait_1", "portrait_2"]
    assert [f.bg.name for f in dataset.files] == ["bg_0.jpg", "bg_1.jpg", "bg_0.jpg"]
    sample = dataset[1]
    check_sample(sample, with_trimap=True)
    alpha8 = matte(1)
    np.testing.assert_array_equal(sample.trimap, generate_trimap(alpha8))
    opaque, clear = alpha8 == 255, alpha8 == 0
    np.testing.assert_allclose(sample.image[opaque], sample.fg[opaque], atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(sample.image[clear], sample.bg[clear], atol=1 / 255 + 1e-6)
    again = PhotoMatte85(tmp_path)[1]
    np.testing.assert_array_equal(again.image, sample.image)


def test_photomatte85_helpers():
    background = np.arange(40 * 90 * 3, dtype=np.uint32).reshape(40, 90, 3).astype(np.uint8)
    fitted = fit_background(background, 20, 10)  # portrait 10 wide x 20 high: crop 20 wide
    assert fitted.shape == (20, 10, 3)
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, :, :3], rgba[0, :, 3] = 200, [255, 128]
    out = composite_8bit(rgba, np.full((1, 2, 3), 100, np.uint8))
    assert out[0, 0, 0] == 200 and out[0, 1, 0] == int(255 * (200 / 255 * 128 / 255
                                                                  + 100 / 255 * 127 / 255))


def test_photomatte85_errors(tmp_path):
    make_photomatte(tmp_path, count=1, backgrounds=0)
    with pytest.raises(LpmatteError, match="background"):
        build_dataset("photomatte85", tmp_path)
    write(tmp_path / "bgs" / "b.jpg", rgb(0))
    write(tmp_path / "rgba_image" / "plain.png", rgb(1))
    dataset = build_dataset("photomatte85", tmp_path, background_dir=tmp_path / "bgs")
    with pytest.raises(LpmatteError, match=r"plain\.png: not an RGBA portrait"):
        dataset[dataset.names.index("plain")]


# --- BG-20K and the registry ----------------------------------------------------------------

def test_bg20k(tmp_path):
    for split, count in (("train", 3), ("testval", 1)):
        for i in range(count):
            write(tmp_path / split / f"h_{i}.jpg", rgb(i))
    train = build_dataset("bg20k", tmp_path)
    assert len(train) == 3 and train[2].shape == (H, W, 3) and train[2].dtype == np.float32
    assert len(BG20K(tmp_path, "testval")) == 1
    with pytest.raises(LpmatteError, match="unknown BG-20K split"):
        BG20K(tmp_path, "val")


def test_bg20k_source_in_a_data_spec_adds_backgrounds(tmp_path):
    from lpmatte.data.spec import SampleDraws, spec_from_config

    for i in range(2):
        write(tmp_path / "bg20k" / "train" / f"h_{i}.jpg", rgb(i))
        write(tmp_path / "people" / "images" / f"p{i}.jpg", rgb(i))
        write(tmp_path / "people" / "alpha" / f"p{i}.png", matte(i))
    config = {"sources": [{"path": "people"}, {"path": "bg20k", "kind": "BG-20K"}]}
    spec = spec_from_config(config, tmp_path, "spec.toml")
    assert [source.name for source in spec.sources] == ["people"]
    assert spec.sources[0].backgrounds == (tmp_path / "bg20k" / "train",)
    assert SampleDraws(spec, 32)[0].image.shape == (3, 32, 32)
    with pytest.raises(LpmatteError, match="every source is a background set"):
        spec_from_config({"sources": [config["sources"][1]]}, tmp_path, "spec.toml")


def test_unknown_kind():
    with pytest.raises(LpmatteError, match="unknown dataset kind"):
        build_dataset("coco", ".")
    assert "ppm100" in DATASET_KINDS
