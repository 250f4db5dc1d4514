"""The Ray Data path writes the same files and manifest as the local path."""

import pytest
from PIL import Image

import lpmatte
from lpmatte.apps.images import matte_files
from lpmatte.apps.manifest import parse_rows

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'lpmatte[distributed]')")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'ray[data]')")

from lpmatte.apps.distributed import ModelSpec, RayOptions, matte_files_ray  # noqa: E402
from lpmatte.inference.options import InferenceOptions  # noqa: E402
from lpmatte.model.factory import build_model  # noqa: E402
from lpmatte.model.registry import create_config  # noqa: E402
from lpmatte.model.weights import save_safetensors  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"LPMATTE_BACKEND": "eager-fp32"}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture
def images(tmp_path, portrait):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "sub").mkdir()
    for index in range(24):
        where = folder / "sub" if index % 3 == 0 else folder
        Image.fromarray(portrait(40 + index % 5 * 8, 48, seed=index)).save(
            where / f"img{index:02d}.png")
    (folder / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return folder


def test_ray_outputs_are_byte_identical_to_local(cluster, images, tmp_path):
    # mirror averaging and a region cap change an untrained model's mattes: identical files
    # show that the actors ran with the options given to the driver
    matter = lpmatte.load("lpm-s", device="cpu", backend="eager-fp32", flip_tta=True,
                          max_regions=3)
    local = matte_files(matter, [str(images)], tmp_path / "local", progress=False,
                        manifest=tmp_path / "local.csv")
    options = RayOptions(address=None, actors=2, batch_size=4, device="cpu")
    remote = matte_files_ray([str(images)], tmp_path / "ray", cluster=options, model="lpm-s",
                             backend="eager-fp32", manifest=tmp_path / "ray.csv",
                             flip_tta=True, max_regions=3)
    assert len(remote.written) == len(local.written) == 24
    assert [f[0] for f in remote.failures] == [str(images / "bad.jpg")]
    for path in local.written:
        twin = tmp_path / "ray" / path.relative_to(tmp_path / "local")
        assert twin.read_bytes() == path.read_bytes(), twin
    rows = {row.input: row.status for row in parse_rows(tmp_path / "ray.csv")}
    assert rows == {row.input: row.status for row in parse_rows(tmp_path / "local.csv")}
    again = matte_files_ray([str(images)], tmp_path / "ray", cluster=options, model="lpm-s",
                            backend="eager-fp32", manifest=tmp_path / "ray.csv")
    assert len(again.skipped) == 24 and not again.written


def test_model_spec_resolves_auto_against_the_weights_as_load_does(tmp_path):
    model = build_model(create_config("lpm-s"))
    weights = tmp_path / "stored.safetensors"
    save_safetensors(weights, model, model.config, untrained="false",
                     **InferenceOptions(lowres_side=512, flip_tta=True).to_metadata())
    spec = ModelSpec.resolve(str(weights), "eager-fp32", lowres_side="auto", flip_tta=False,
                             max_regions=7)
    local = lpmatte.load(weights, device="cpu", backend="eager-fp32", flip_tta=False,
                         max_regions=7)
    assert spec.options == local.options == InferenceOptions(512, False, 7)
    assert ModelSpec.resolve("lpm-s").options == InferenceOptions()


def test_bare_ray_flag_leaves_addresses_and_inputs_apart():
    from argparse import Namespace

    from lpmatte.cli.matte import ray_address

    cases = [("in/", "auto", ["in/", "b"]), ("10.0.0.1:6379", "10.0.0.1:6379", ["b"]),
             ("ray://head:10001", "ray://head:10001", ["b"]), (None, None, ["b"])]
    for given, address, inputs in cases:
        args = Namespace(ray=given, inputs=["b"])
        assert ray_address(args) == address and args.inputs == inputs


def test_cli_ray_flag_uses_the_running_cluster(cluster, images, tmp_path, capsys):
    from lpmatte.cli import main

    code = main(["matte", "--ray", str(images), "-o", str(tmp_path / "out"), "--model", "lpm-s",
                 "--backend", "eager-fp32", "--device", "cpu", "--ray-actors", "1",
                 "--manifest", str(tmp_path / "m.jsonl")])
    err = capsys.readouterr().err
    assert code == 1  # bad.jpg
    assert "24 written, 0 already done (skipped), 1 failed" in err
    assert len(parse_rows(tmp_path / "m.jsonl")) == 25
