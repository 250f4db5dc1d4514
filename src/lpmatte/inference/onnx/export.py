"""Tracing a model into ONNX graphs (``lpmatte export onnx``): the two networks of a
two-stage model, or the one network of a whole-image model (MMNet, PSPM)."""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from lpmatte.inference.onnx.graphs import (
    LOWRES_INPUTS,
    LOWRES_OUTPUTS,
    REFINER_INPUTS,
    REFINER_OUTPUTS,
    WHOLE_IMAGE_OUTPUTS,
    OnnxGraphs,
    require_onnx,
    save_onnx,
)
from lpmatte.inference.onnx.quantize import quantize_int8
from lpmatte.inference.options import InferenceOptions
from lpmatte.model.config import WHOLE_IMAGE, ModelConfig
from lpmatte.model.fused_refiner import fuse_refiner
from lpmatte.model.weights import config_to_dict

OPSET = 17
FORMAT_VERSION = "1"  # bump when the graphs' inputs or outputs change


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


class WholeImageGraph(nn.Module):
    """The exported whole-image network: its alpha, and its trimap logits when it has a
    segmentation decoder (PSPM); MMNet's graph has the alpha only."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, image: torch.Tensor):
        output = self.network(image)
        if output.trimap_logits is None:
            return (output.alpha,)
        return output.alpha, output.trimap_logits


@torch.no_grad()
def _trace(module: nn.Module, args: tuple, inputs, outputs, dynamic: dict):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation/tracer notices
        torch.onnx.export(module.eval(), args, buffer, dynamo=False, opset_version=OPSET,
                          input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes=dynamic, do_constant_folding=True)
    return require_onnx().load_from_string(buffer.getvalue())


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


def export_whole_image(model, sample_size: tuple[int, int] = (256, 192)):
    """A whole-image model as an onnx.ModelProto accepting any size (multiple of the
    model's ``input_multiple``); the pipeline resizes to ``input_size`` around it."""
    from lpmatte.model.two_stage import pad_to_multiple

    image = pad_to_multiple(torch.rand(1, 3, *sample_size), model.input_multiple)
    graph = WholeImageGraph(model)
    outputs = WHOLE_IMAGE_OUTPUTS[:len(graph(image))]
    return _trace(graph, (image,), LOWRES_INPUTS, outputs,
                  {name: {0: "batch", 2: "height", 3: "width"}
                   for name in (*LOWRES_INPUTS, *outputs)})


def export_refiner(model):
    """The refiner of ``model`` (in its inference form, :func:`fuse_refiner`) as an
    onnx.ModelProto taking any number of regions."""
    sample = sample_regions(model.config)
    inputs = REFINER_INPUTS if model.config.refiner.use_cra else REFINER_INPUTS[:1]
    refiner = fuse_refiner(model.refiner)
    return _trace(RefinerGraph(refiner), sample[:len(inputs)], inputs, REFINER_OUTPUTS,
                  {k: {0: "regions"} for k in (*inputs, *REFINER_OUTPUTS)})


def export_graphs(model, sample_size: tuple[int, int] = (256, 192), name: str | None = None,
                  untrained: bool = False,
                  options: InferenceOptions = InferenceOptions()) -> OnnxGraphs:
    """Trace ``model`` into its fp32 graphs: the low-res network and the refiner of a
    :class:`LightweightPortraitMatting`, or the one network of a whole-image model (with no
    refiner graph); the inference ``options`` travel in the metadata."""
    model = cpu_fp32_copy(model)
    metadata = {"lpmatte_config": json.dumps(config_to_dict(model.config)),
                "lpmatte_name": name or model.config.name,
                "lpmatte_untrained": "true" if untrained else "false",
                "lpmatte_precision": "fp32", "lpmatte_format": FORMAT_VERSION,
                "lpmatte_sample_size": f"{sample_size[1]}x{sample_size[0]}",
                **options.to_metadata()}
    if model.config.kind == WHOLE_IMAGE:
        metadata["lpmatte_input_multiple"] = str(model.input_multiple)
        return OnnxGraphs(export_whole_image(model, sample_size), None, model.config, metadata)
    return OnnxGraphs(export_lowres(model, sample_size), export_refiner(model), model.config,
                      metadata)


def cpu_fp32_copy(model):
    """``model`` in eval mode on the CPU in fp32, copied if it lives elsewhere (the caller's
    model stays where it is)."""
    parameter = next(model.parameters())
    if parameter.device.type != "cpu" or parameter.dtype != torch.float32:
        model = copy.deepcopy(model).float().cpu()
    return model.eval()


def export_onnx(model, path: str | Path, sample_size=(256, 192), int8: bool = False,
                name: str | None = None, untrained: bool = False,
                options: InferenceOptions = InferenceOptions()) -> OnnxGraphs:
    """Export ``model`` to ``path`` (fp32, or with int8 low-res matrix products; whole-image
    models export in fp32 only)."""
    graphs = export_graphs(model, sample_size, name, untrained, options)
    if int8:
        graphs = quantize_int8(graphs)
    save_onnx(graphs, path)
    return graphs
