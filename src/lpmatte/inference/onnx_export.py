"""ONNX export: the two networks of the model as one self-contained ``.onnx`` file.

The file holds two independent graphs side by side (weights inside, no external data):

- low-res network: ``image`` (B, 3, H, W) in [0, 1], H and W multiples of 16 (any size:
  the Swin padding masks are computed in the graph) -> ``alpha_logits`` (B, 1, H/8, W/8),
  ``trimap_logits`` (B, 3, H/8, W/8);
- refiner: ``crops`` (N, 4, 8, 8), ``regions`` (N, 3) int64, ``neighbours`` (N, k) int64,
  ``valid`` (N, k) bool -> ``patches`` (N, 1, 8, 8), for any N >= 1 (without CRA only
  ``crops``).

Region selection and the k-nearest-region search stay outside the graphs, in
:mod:`lpmatte.inference.pipeline`. The model config travels in the file's ``metadata_props``, so
``lpmatte.load("model.onnx")`` needs nothing else. onnxruntime splits the file back into
its two graphs at load time (:func:`split_graphs`).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import io
import json
import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lpmatte.errors import LpmatteError
from lpmatte.inference.options import InferenceOptions
from lpmatte.media.image_io import atomic_write
from lpmatte.model.config import ModelConfig
from lpmatte.model.weights import config_from_dict, config_to_dict
from lpmatte.paths import cache_dir

OPSET = 17
FORMAT_VERSION = "1"  # bump when the graphs' inputs or outputs change
LOWRES_INPUTS, LOWRES_OUTPUTS = ("image",), ("alpha_logits", "trimap_logits")
REFINER_INPUTS = ("crops", "regions", "neighbours", "valid")
REFINER_OUTPUTS = ("patches",)
PRECISIONS = ("fp32", "int8")
CACHE_ENTRIES = 6  # exports kept in the cache (each 10-130 MB)
def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise LpmatteError("ONNX export needs the 'onnx' package: "
                           "pip install 'lpmatte[export]'") from None
    return onnx


class LowResGraph(nn.Module):
    """The exported low-res network: only the main (1/8) outputs."""

    def __init__(self, lowres: nn.Module):
        super().__init__()
        self.lowres = lowres

    def forward(self, image: torch.Tensor):
        main = self.lowres(image)[-1]
        return main.alpha_logits, main.trimap_logits


class RefinerGraph(nn.Module):
    """The exported refiner (its region/neighbour inputs are unused without CRA)."""

    def __init__(self, refiner: nn.Module):
        super().__init__()
        self.refiner = refiner

    def forward(self, crops, regions=None, neighbours=None, valid=None):
        return self.refiner(crops, regions, neighbours, valid)


@dataclass
class OnnxGraphs:
    """The two graphs (onnx.ModelProto each), the model config and string metadata."""

    lowres: object
    refiner: object
    config: ModelConfig
    metadata: dict[str, str]


@torch.no_grad()
def _trace(module: nn.Module, args: tuple, inputs, outputs, dynamic: dict):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation/tracer notices
        torch.onnx.export(module.eval(), args, buffer, dynamo=False, opset_version=OPSET,
                          input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes=dynamic, do_constant_folding=True)
    return _require_onnx().load_from_string(buffer.getvalue())


def sample_regions(config: ModelConfig, count: int = 16):
    """A small cluster of regions with their neighbours, to trace the refiner."""
    from lpmatte.model.nearest_regions import find_neighbours

    cells = torch.arange(count)
    regions = torch.stack([torch.zeros_like(cells), cells // 4, cells % 4], 1)
    neighbours, valid = find_neighbours(config.refiner, regions, (-(-count // 4), 4))
    return torch.rand(count, 4, 8, 8), regions, neighbours, valid


def export_lowres(model, sample_size: tuple[int, int] = (256, 192)):
    """The low-res network of ``model`` as an onnx.ModelProto; ``sample_size`` (H, W) is
    only the tracing example: the graph accepts any size (multiple of 16)."""
    from lpmatte.model.two_stage import pad_to_multiple

    image = pad_to_multiple(torch.rand(1, 3, *sample_size))
    return _trace(LowResGraph(model.lowres), (image,), LOWRES_INPUTS, LOWRES_OUTPUTS,
                  {"image": {0: "batch", 2: "height", 3: "width"},
                   "alpha_logits": {0: "batch", 2: "rows", 3: "cols"},
                   "trimap_logits": {0: "batch", 2: "rows", 3: "cols"}})


def export_refiner(model):
    """The refiner of ``model`` as an onnx.ModelProto taking any number of regions."""
    sample = sample_regions(model.config)
    inputs = REFINER_INPUTS if model.config.refiner.use_cra else REFINER_INPUTS[:1]
    return _trace(RefinerGraph(model.refiner), sample[:len(inputs)], inputs, REFINER_OUTPUTS,
                  {k: {0: "regions"} for k in (*inputs, *REFINER_OUTPUTS)})


def export_graphs(model, sample_size: tuple[int, int] = (256, 192), name: str | None = None,
                  untrained: bool = False,
                  options: InferenceOptions = InferenceOptions()) -> OnnxGraphs:
    """Trace ``model`` (a :class:`LightweightPortraitMatting`) into its two fp32 graphs;
    the inference ``options`` travel in the metadata."""
    model = cpu_fp32_copy(model)
    metadata = {"lpmatte_config": json.dumps(config_to_dict(model.config)),
                "lpmatte_name": name or model.config.name,
                "lpmatte_untrained": "true" if untrained else "false",
                "lpmatte_precision": "fp32", "lpmatte_format": FORMAT_VERSION,
                "lpmatte_sample_size": f"{sample_size[1]}x{sample_size[0]}",
                **options.to_metadata()}
    return OnnxGraphs(export_lowres(model, sample_size), export_refiner(model), model.config,
                      metadata)


def cpu_fp32_copy(model):
    """``model`` in eval mode on the CPU in fp32, copied if it lives elsewhere (the caller's
    model stays where it is)."""
    parameter = next(model.parameters())
    if parameter.device.type != "cpu" or parameter.dtype != torch.float32:
        model = copy.deepcopy(model).float().cpu()
    return model.eval()


def quantize_int8(graphs: OnnxGraphs) -> OnnxGraphs:
    """Dynamic int8 quantization (weights int8, activations quantized per call) of the low-res
    network's matrix products (70% of its FLOPs): about 1.3-1.7x faster low-res network on an
    AVX2 CPU. Convolutions (ConvInteger was slower) and the refiner (10% gain, 1e-3 error)
    stay fp32, which keeps alpha within the tolerances of tests/test_backends.py."""
    if graphs.metadata.get("lpmatte_precision") == "int8":
        return graphs
    onnx = _require_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _temporary_dir() as folder:
        target = Path(folder) / "int8.onnx"
        with warnings.catch_warnings(), _quiet_logging():
            warnings.simplefilter("ignore")
            quantize_dynamic(graphs.lowres, target, op_types_to_quantize=["MatMul"],
                             weight_type=QuantType.QInt8)
        lowres = onnx.load(str(target))
    return OnnxGraphs(lowres, graphs.refiner, graphs.config,
                      {**graphs.metadata, "lpmatte_precision": "int8"})


@contextmanager
def _quiet_logging():
    """onnxruntime's quantizer logs advice on the root logger: keep the CLI output clean."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _temporary_dir():
    import tempfile

    return tempfile.TemporaryDirectory(prefix="lpmatte-onnx-")


def combine_graphs(graphs: OnnxGraphs):
    """One ModelProto holding both graphs side by side, node names prefixed by stage."""
    onnx = _require_onnx()
    from onnx import compose, helper

    parts = [compose.add_prefix(g, f"{stage}/", rename_inputs=False, rename_outputs=False)
             for stage, g in (("lowres", graphs.lowres), ("refiner", graphs.refiner))]
    graph = helper.make_graph(
        [n for p in parts for n in p.graph.node], "lpmatte",
        [i for p in parts for i in p.graph.input], [o for p in parts for o in p.graph.output],
        [t for p in parts for t in p.graph.initializer])
    opsets = {o.domain: o.version for p in parts for o in p.opset_import}
    model = helper.make_model(graph, producer_name="lpmatte",
                              opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    model.ir_version = max(p.ir_version for p in parts)
    for key, value in graphs.metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model


def split_graphs(model) -> tuple[object, object]:
    """Inverse of :func:`combine_graphs`: (low-res ModelProto, refiner ModelProto)."""
    return (_subgraph(model, LOWRES_OUTPUTS), _subgraph(model, REFINER_OUTPUTS))


def _subgraph(model, outputs: tuple[str, ...]):
    """The nodes, inputs and initializers that ``outputs`` depend on, as a model."""
    from onnx import helper

    producer = {out: i for i, node in enumerate(model.graph.node) for out in node.output}
    needed, stack, kept = set(), list(outputs), set()
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        index = producer.get(name)
        if index is not None and index not in kept:
            kept.add(index)
            node = model.graph.node[index]
            stack.extend([*node.input, *_subgraph_inputs(node)])
    nodes = [model.graph.node[i] for i in sorted(kept)]  # the file's topological order
    graph = helper.make_graph(
        nodes, "lpmatte", [i for i in model.graph.input if i.name in needed],
        [o for o in model.graph.output if o.name in outputs],
        [t for t in model.graph.initializer if t.name in needed])
    sub = helper.make_model(graph, opset_imports=model.opset_import)
    sub.ir_version = model.ir_version
    return sub


def _subgraph_inputs(node) -> list[str]:
    """Names read inside control-flow bodies (If/Loop) of ``node`` from the outer scope."""
    return [i for attribute in node.attribute for n in attribute.g.node for i in n.input]


def save_onnx(graphs: OnnxGraphs, path: str | Path) -> None:
    """Write the combined model to ``path`` atomically."""
    onnx = _require_onnx()
    model = combine_graphs(graphs)
    atomic_write(path, lambda tmp: onnx.save(model, tmp))


def read_onnx(path: str | Path) -> OnnxGraphs:
    """Load a file written by :func:`save_onnx`."""
    onnx = _require_onnx()
    path = Path(path)
    if not path.is_file():
        raise LpmatteError(f"{path}: ONNX file not found")
    try:
        model = onnx.load(str(path))
    except Exception as error:  # protobuf raises several types for corrupt files
        raise LpmatteError(f"{path}: not a readable ONNX file ({error})") from None
    metadata = {p.key: p.value for p in model.metadata_props}
    if "lpmatte_config" not in metadata:
        raise LpmatteError(f"{path}: not an lpmatte export (no lpmatte_config metadata); "
                           "export with 'lpmatte export onnx'")
    config = config_from_dict(json.loads(metadata["lpmatte_config"]))
    lowres, refiner = split_graphs(model)
    return OnnxGraphs(lowres, refiner, config, metadata)


def export_onnx(model, path: str | Path, sample_size=(256, 192), int8: bool = False,
                name: str | None = None, untrained: bool = False,
                options: InferenceOptions = InferenceOptions()) -> OnnxGraphs:
    """Export ``model`` to ``path`` (fp32, or with int8 low-res matrix products)."""
    graphs = export_graphs(model, sample_size, name, untrained, options)
    if int8:
        graphs = quantize_int8(graphs)
    save_onnx(graphs, path)
    return graphs


# -- on-the-fly export for ``lpmatte.load(name, backend="onnx")`` -----------------------------


def traced_sources(model) -> list[Path]:
    """The source files of every module class in ``model`` and of this exporter, sorted:
    derived from the model itself, so a new backbone is covered without a list to keep."""
    files = {Path(inspect.getfile(type(module))) for module in model.modules()}
    files.add(Path(__file__))
    return sorted(path.resolve() for path in files)


def _fingerprint(model, precision: str) -> str:
    import onnxruntime

    digest = hashlib.sha256()
    for source in traced_sources(model):  # an edit of the traced code invalidates old exports
        digest.update(source.read_bytes())
    text = json.dumps(config_to_dict(model.config), sort_keys=True)
    digest.update(f"{text}|{precision}|{FORMAT_VERSION}|{torch.__version__}|"
                  f"{onnxruntime.__version__}".encode())
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def cached_graphs(model, precision: str = "fp32", name: str | None = None) -> OnnxGraphs:
    """The graphs of ``model``, exported once and kept in :func:`cache_dir` by a hash of the
    weights, config, model code and library versions (an export takes ~10-40 s for ``lpm``).
    Only the :data:`CACHE_ENTRIES` most recently used exports are kept."""
    folder = cache_dir() / "onnx"
    path = folder / f"{model.config.name}-{_fingerprint(model, precision)}.onnx"
    if path.is_file():
        try:
            graphs = read_onnx(path)
            path.touch()  # recently used: pruned last
            return graphs
        except LpmatteError:
            path.unlink(missing_ok=True)  # a damaged cache entry: export again
    if precision == "int8":  # quantize the cached fp32 export rather than trace again
        graphs = quantize_int8(cached_graphs(model, "fp32", name))
    else:
        graphs = export_graphs(model, name=name)
    save_onnx(graphs, path)
    _prune(folder, keep=CACHE_ENTRIES)
    return graphs


def _prune(folder: Path, keep: int) -> None:
    entries = sorted(folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        stale.unlink(missing_ok=True)
