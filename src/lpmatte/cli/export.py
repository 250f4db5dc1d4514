"""``lpmatte export onnx``: the model as one ONNX file for onnxruntime (``--backend onnx``)."""

from __future__ import annotations

import sys

from lpmatte.cli.common import add_command

EXAMPLES = """\
examples:
  lpmatte export onnx --model weights.safetensors -o lpm.onnx
  lpmatte export onnx --model lpm --size 1152x1792 --int8 -o lpm-int8.onnx
  lpmatte export onnx --model mmnet -o mmnet.onnx
  lpmatte matte photo.jpg -o out/ --model lpm.onnx --backend onnx
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "export", "export the model to ONNX", examples=EXAMPLES,
        description="Write the low-res network and the refiner as two graphs in one .onnx file "
                    "(weights and model config inside), or a whole-image model (mmnet, pspm) "
                    "as its one graph. Region selection, the neighbour search and resizing "
                    "run outside the graphs. The graphs accept any image size; --size is the "
                    "size they are traced and checked at.")
    parser.add_argument("format", choices=("onnx",), help="export format")
    parser.add_argument("--model", default="default", metavar="NAME|PATH",
                        help="registered model name or weights file")
    parser.add_argument("--size", default="256x256", metavar="hd|4k|WxH",
                        help="tracing and check size (default 256x256)")
    parser.add_argument("--int8", action="store_true",
                        help="int8 dynamic quantization of the low-res matrix products (CPU)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the .onnx file")
    parser.set_defaults(func=run)


def run(args) -> int:
    from lpmatte.api import load
    from lpmatte.errors import LpmatteError
    from lpmatte.evaluation.profiler import parse_size
    from lpmatte.inference.backends import check_export
    from lpmatte.inference.onnx.export import export_onnx

    if not args.output.endswith(".onnx"):
        raise LpmatteError(f"{args.output}: the output file must end in .onnx")
    matter = load(args.model, device="cpu", backend="eager-fp32")
    size = parse_size(args.size)
    graphs = export_onnx(matter.model, args.output, size, args.int8, matter.name,
                         matter.untrained, matter.options)
    error = check_export(matter.model, graphs, size)
    print(f"wrote {args.output} ({graphs.metadata['lpmatte_precision']}); outputs differ from "
          f"PyTorch by at most {error:.2g} at {args.size}", file=sys.stderr)
    return 0
