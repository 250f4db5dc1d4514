"""The ``.onnx`` file of a model: two graphs side by side in one ModelProto, split again
on load (or the one graph of a whole-image model), with the model config and inference
options in its metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lpmatte.errors import LpmatteError
from lpmatte.files import atomic_write
from lpmatte.model.config import WHOLE_IMAGE, ModelConfig
from lpmatte.model.weights import config_from_dict

LOWRES_INPUTS, LOWRES_OUTPUTS = ("image",), ("alpha_logits", "trimap_logits")
REFINER_INPUTS = ("crops", "regions", "neighbours", "valid")
REFINER_OUTPUTS = ("patches",)
WHOLE_IMAGE_OUTPUTS = ("alpha", "trimap_logits")  # MMNet has no trimap output


def require_onnx():
    try:
        import onnx
    except ImportError:
        raise LpmatteError("ONNX export needs the 'onnx' package: "
                           "pip install 'lpmatte[export]'") from None
    return onnx


@dataclass
class OnnxGraphs:
    """The two graphs (onnx.ModelProto each), the model config and string metadata. A
    whole-image model's one network is ``lowres``; its ``refiner`` is None."""

    lowres: object
    refiner: object | None
    config: ModelConfig
    metadata: dict[str, str]


def combine_graphs(graphs: OnnxGraphs):
    """One ModelProto holding both graphs side by side, node names prefixed by stage."""
    onnx = require_onnx()
    from onnx import compose, helper

    stages = (("lowres", graphs.lowres), ("refiner", graphs.refiner))
    parts = [compose.add_prefix(g, f"{stage}/", rename_inputs=False, rename_outputs=False)
             for stage, g in stages if g is not None]
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
    onnx = require_onnx()
    model = combine_graphs(graphs)
    atomic_write(path, lambda tmp: onnx.save(model, tmp))


def read_onnx(path: str | Path) -> OnnxGraphs:
    """Load a file written by :func:`save_onnx`."""
    onnx = require_onnx()
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
    if config.kind == WHOLE_IMAGE:
        return OnnxGraphs(model, None, config, metadata)
    lowres, refiner = split_graphs(model)
    return OnnxGraphs(lowres, refiner, config, metadata)
