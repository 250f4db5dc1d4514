"""int8 quantization of an export's low-res graph with onnxruntime's quantizer."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path

from lpmatte.errors import LpmatteError
from lpmatte.inference.onnx.graphs import OnnxGraphs, require_onnx


def quantize_int8(graphs: OnnxGraphs) -> OnnxGraphs:
    """Dynamic int8 quantization (weights int8, activations quantized per call) of the low-res
    network's matrix products (70% of its FLOPs): about 1.3-1.7x faster low-res network on an
    AVX2 CPU. Convolutions (ConvInteger was slower) and the refiner (10% gain, 1e-3 error)
    stay fp32, which keeps alpha within the tolerances of tests/test_backends.py."""
    if graphs.metadata.get("lpmatte_precision") == "int8":
        return graphs
    if graphs.refiner is None:  # MMNet has no matrix product to quantize; PSPM's are few
        raise LpmatteError(f"{graphs.config.name}: whole-image models export in fp32 only "
                           "(use --backend onnx, not onnx-int8, and no --int8)")
    onnx = require_onnx()
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
