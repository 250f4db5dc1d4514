"""Inference backends: what runs the two networks of :mod:`lpmatte.inference.pipeline`.

Every backend has ``.name``, ``.device``, ``.config`` (the :class:`ModelConfig`) and

- ``lowres(padded)``: (B, 3, H, W) in [0, 1], H, W multiples of 16 -> the main outputs
  (alpha_logits (B, 1, H/8, W/8), trimap_logits (B, 3, H/8, W/8)), float32;
- ``refine(crops, regions, neighbours, valid)``: (N, 4, 8, 8) RGB + coarse alpha -> refined
  alpha patches (N, 1, 8, 8), float32.

Names (``--backend``): ``eager-fp32`` (the reference), ``channels-last``, ``bf16``
(the low-res network under autocast, the refiner in bf16 weights and activations; fast
only on CPUs with AVX512-BF16/AMX), ``fp16`` (CUDA: half weights + channels_last),
``compile`` (torch.compile of the low-res network, fp32 on CPU, fp16 + channels_last +
CUDA graphs on CUDA; minutes of warm-up per input size), ``onnx`` (onnxruntime, fp32),
``onnx-int8`` (onnxruntime, int8 dynamically quantized matrix products of the low-res
network) and ``onnx-int8-bf16`` (the low-res network as ``onnx-int8``, the refiner as
``bf16``: each network where it runs fastest on a CPU with native bf16). ``auto`` picks
``fp16`` on CUDA; on a CPU, with onnxruntime installed, ``onnx-int8-bf16`` where the CPU
has native bf16 and ``onnx-int8`` elsewhere; without it, ``bf16`` on CPUs with native
bf16, else ``eager-fp32``; the environment variable ``LPMATTE_BACKEND`` overrides that
choice. All agree with ``eager-fp32`` (see tests/test_backends.py). Whole-image models
(MMNet, PSPM) have one network, ``whole_image(padded)``, and run on the PyTorch backends
and ``onnx``.

Every backend but ``eager-fp32`` runs the refiner in its inference form
(:func:`lpmatte.model.fused_refiner.fuse_refiner`: BatchNorm folded, transposed
convolutions and attention as matrix products), the ONNX ones through its export;
``eager-fp32`` keeps the trained module itself, the reference they are checked against.
"""

from __future__ import annotations

import copy
import os
from contextlib import nullcontext
from dataclasses import replace

import torch

from lpmatte.devices import cpu_has_native_bf16
from lpmatte.errors import LpmatteError
from lpmatte.model.config import WHOLE_IMAGE
from lpmatte.model.fused_refiner import fuse_refiner

TORCH_BACKENDS = ("eager-fp32", "channels-last", "bf16", "fp16", "compile")
ONNX_BACKENDS = ("onnx", "onnx-int8")
MIXED_BACKEND = "onnx-int8-bf16"  # onnxruntime's int8 low-res network, PyTorch's bf16 refiner
BACKENDS = ("auto", *TORCH_BACKENDS, *ONNX_BACKENDS, MIXED_BACKEND)


def has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(name: str, device: torch.device, kind: str = "two-stage") -> str:
    """``auto`` -> the fastest backend known to agree with eager fp32 on ``device`` for a
    model of ``kind`` (whole-image models, MMNet and PSPM, have no int8 export)."""
    if name not in BACKENDS:
        raise LpmatteError(f"unknown backend '{name}' (choose from {', '.join(BACKENDS)})")
    if name == "fp16" and device.type != "cuda":
        raise LpmatteError("--backend fp16 needs a CUDA device (on CPU use bf16 or onnx-int8)")
    whole_image = kind == WHOLE_IMAGE
    if whole_image and name in ("onnx-int8", MIXED_BACKEND):
        raise LpmatteError(f"--backend {name}: whole-image models (mmnet, pspm) export in "
                           "fp32 only and have no refiner (use auto, onnx, eager-fp32 or bf16)")
    if name == MIXED_BACKEND and device.type != "cpu":
        raise LpmatteError(f"--backend {name} is for CPUs (on CUDA use fp16 or auto)")
    if name != "auto":
        return name
    if os.environ.get("LPMATTE_BACKEND", "auto") != "auto":
        return resolve_backend(os.environ["LPMATTE_BACKEND"], device, kind)
    if device.type == "cuda":
        return "fp16"
    if has_onnxruntime():
        if whole_image:
            return "onnx"
        return MIXED_BACKEND if cpu_has_native_bf16() else "onnx-int8"
    return "bf16" if cpu_has_native_bf16() else "eager-fp32"


def backend_reason(name: str, device: torch.device, kind: str = "two-stage") -> str:
    """Why ``auto`` resolves to ``name`` here, in words (``lpmatte profile`` prints it)."""
    if os.environ.get("LPMATTE_BACKEND", "auto") != "auto":
        return "LPMATTE_BACKEND asks for it"
    if device.type == "cuda":
        return "CUDA device: half weights, channels_last"
    native = cpu_has_native_bf16()
    isa = "AVX512-BF16/AMX" if native else "no native bf16 (AVX2-class)"
    if kind == WHOLE_IMAGE and name == "onnx":
        # README "Variants and cost": at HD on an AVX512-BF16 AMD EPYC, MMNet onnx 21.5 /
        # bf16 30.6 / eager 30.8 ms, PSPM 144 / 162 / 265 ms (lpmatte profile)
        return (f"whole-image model, onnxruntime installed: fp32 graph, fastest measured "
                f"(no int8 export); {isa}")
    if name == MIXED_BACKEND:
        # README "Speed", session 25 (AMD EPYC, AVX512-BF16): 1.14x end to end at HD and
        # 1.11x at 4K over onnx-int8 (bench_latency.py --ab); onnxruntime's int8 low-res
        # network stays faster than PyTorch's
        return (f"onnxruntime installed and native bf16: int8 low-res network in "
                f"onnxruntime, bf16 refiner in PyTorch, fastest measured on CPUs like this; "
                f"{isa}")
    if name == "onnx-int8":  # auto picks it only without native bf16
        # measured with benchmarks/bench_latency.py (README, Speed): on AVX2 bf16 is
        # several times slower than fp32, and int8 products speed up the low-res networks
        return (f"onnxruntime installed: fastest measured on CPUs like this (bf16 several "
                f"times slower here); {isa}")
    return f"onnxruntime not installed; CPU with {isa}"


class TorchBackend:
    """The PyTorch modules in eager mode, optionally in reduced precision, channels_last
    memory layout or compiled. Outputs are always float32."""

    def __init__(self, model, device: torch.device, name: str = "eager-fp32"):
        self.name, self.device, self.config = name, device, model.config
        cuda = device.type == "cuda"
        half = name == "fp16" or (name == "compile" and cuda)
        self.dtype = torch.float16 if half else torch.float32
        # bf16: the refiner's weights and activations are bf16 (no autocast): faster than
        # autocast, whose casts around every small operation on 8x8 crops cost much of
        # what they save (README "Speed", session 25)
        self.refiner_dtype = torch.bfloat16 if name == "bf16" else self.dtype
        self.channels_last = name == "channels-last" or half
        self.model = self._prepare(model)
        self._refiner = self._prepare_refiner(model)
        # a whole-image model (MMNet, PSPM) is its own "low-res network"
        self.input_multiple = getattr(model, "input_multiple", None)
        self._lowres = getattr(self.model, "lowres", self.model)
        if name == "compile":  # CUDA graphs on the GPU: the low-res network is launch-bound
            mode = "reduce-overhead" if cuda else None
            self._lowres = torch.compile(self._lowres, dynamic=False, mode=mode)

    def _prepare(self, model):
        if self.dtype == torch.float32 and not self.channels_last:
            return model.to(self.device).eval()
        model = copy.deepcopy(model).to(self.device, self.dtype).eval()
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def _prepare_refiner(self, model):
        """The model's own refiner for the reference, else its inference form, folded in
        fp32 before any conversion to half precision."""
        refiner = getattr(model, "refiner", None)
        if refiner is None or self.name == "eager-fp32":
            return getattr(self.model, "refiner", None)
        fused = fuse_refiner(copy.deepcopy(refiner).float().cpu().eval())
        fused = fused.to(self.device, self.refiner_dtype)
        return fused.to(memory_format=torch.channels_last) if self.channels_last else fused

    def _autocast(self):
        if self.name != "bf16":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, self.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def lowres(self, padded: torch.Tensor):
        with self._autocast():
            main = self._lowres(self._input(padded))[-1]
        # clone: a compiled graph may reuse its output buffers on the next call
        return main.alpha_logits.float().clone(), main.trimap_logits.float().clone()

    def whole_image(self, padded: torch.Tensor):
        """A whole-image model's (alpha, trimap logits or None), float32."""
        with self._autocast():
            output = self._lowres(self._input(padded))
        trimap = output.trimap_logits
        return output.alpha.float().clone(), None if trimap is None else trimap.float().clone()

    def refine(self, crops, regions, neighbours, valid) -> torch.Tensor:
        crops = crops.to(self.device, self.refiner_dtype)
        if self.channels_last:
            crops = crops.contiguous(memory_format=torch.channels_last)
        return self._refiner(crops, regions, neighbours, valid).float()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class OnnxBackend:
    """onnxruntime sessions over the graphs of :mod:`lpmatte.inference.onnx`: the low-res
    network and the refiner, or a whole-image model's one network."""

    def __init__(self, graphs, device: torch.device, config=None):
        self.config, self.device = config or graphs.config, device
        self.metadata = graphs.metadata
        precision = graphs.metadata.get("lpmatte_precision", "fp32")
        self.name = "onnx-int8" if precision == "int8" else "onnx"
        self.host_threads = 1 if device.type == "cpu" else None  # see inference.host_threads
        self.input_multiple = int(graphs.metadata.get("lpmatte_input_multiple", 16))
        self._lowres = _session(graphs.lowres, device)
        self._refiner = None if graphs.refiner is None else _session(graphs.refiner, device)
        self._refiner_inputs = ([] if self._refiner is None
                                else [i.name for i in self._refiner.get_inputs()])

    def lowres(self, padded: torch.Tensor):
        alpha_logits, trimap_logits = self._lowres.run(None, {"image": _numpy(padded)})
        return self._tensor(alpha_logits), self._tensor(trimap_logits)

    def whole_image(self, padded: torch.Tensor):
        """A whole-image graph's (alpha, trimap logits or None), as TorchBackend's."""
        alpha, *trimap = self._lowres.run(None, {"image": _numpy(padded)})
        return self._tensor(alpha), self._tensor(trimap[0]) if trimap else None

    def refine(self, crops, regions, neighbours, valid) -> torch.Tensor:
        given = {"crops": crops, "regions": regions, "neighbours": neighbours, "valid": valid}
        feeds = {name: _numpy(given[name]) for name in self._refiner_inputs}
        return self._tensor(self._refiner.run(None, feeds)[0])

    def _tensor(self, array) -> torch.Tensor:
        return torch.from_numpy(array).to(self.device)

    def synchronize(self) -> None:
        pass  # onnxruntime returns only when its outputs are ready


class MixedBackend:
    """``onnx-int8``'s low-res network and ``bf16``'s refiner: on a CPU with native bf16
    each network runs where it is fastest (onnxruntime's int8 matrix products for the
    low-res network, PyTorch's bf16 for the refiner's thousands of small crops)."""

    name = MIXED_BACKEND

    def __init__(self, lowres: OnnxBackend, refiner: TorchBackend):
        self.config, self.device = refiner.config, refiner.device
        self._onnx, self._torch = lowres, refiner
        self.input_multiple = lowres.input_multiple
        # PyTorch keeps all its threads (no pipeline.host_threads): the refiner needs them,
        # and onnxruntime's sessions here sleep when idle. Dropping to one thread between
        # the networks, as onnxruntime alone does, was slower end to end at HD (session 25)
        self.host_threads = None

    def lowres(self, padded: torch.Tensor):
        return self._onnx.lowres(padded)

    def refine(self, crops, regions, neighbours, valid) -> torch.Tensor:
        return self._torch.refine(crops, regions, neighbours, valid)

    def synchronize(self) -> None:
        pass


def _numpy(x: torch.Tensor):
    return x.detach().cpu().contiguous().numpy()


def _session(graph, device: torch.device):
    """An onnxruntime session with one intra-op thread per PyTorch thread, whose threads
    sleep rather than spin when idle: each session has its own pool, so a spinning pool of
    the low-res graph competed with the refiner's on the same cores (and with PyTorch's
    steps between them, and the decode/encode threads of a folder run). Measured on the
    shipped default at HD, 2 threads: about 40% less CPU time per image."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")  # untested: no GPU in development
    return ort.InferenceSession(graph.SerializeToString(), options, providers=providers)


def _onnx_backend(name: str, device: torch.device, model, path,
                  refiner: bool = True) -> OnnxBackend:
    """``refiner`` False: no session for the refiner's graph (another backend runs it)."""
    if not has_onnxruntime():
        raise LpmatteError(f"--backend {name} needs onnxruntime: pip install 'lpmatte[export]'")
    from lpmatte.inference.onnx.cache import cached_graphs
    from lpmatte.inference.onnx.graphs import read_onnx
    from lpmatte.inference.onnx.quantize import quantize_int8

    if path is None:
        precision = "int8" if name == "onnx-int8" else "fp32"
        graphs = cached_graphs(model, precision)
        return OnnxBackend(graphs if refiner else replace(graphs, refiner=None), device,
                           model.config)
    graphs = read_onnx(path)
    return OnnxBackend(quantize_int8(graphs) if name == "onnx-int8" else graphs, device)


def create_backend(name: str, device: torch.device, model=None, onnx_path=None):
    """A backend by resolved name (:func:`resolve_backend`) for a torch ``model`` or an
    exported ``onnx_path`` (which runs as exported with ``onnx``, or quantized with
    ``onnx-int8``)."""
    if name in ONNX_BACKENDS:
        return _onnx_backend(name, device, model, onnx_path)
    if model is None:
        raise LpmatteError(f"{onnx_path}: an ONNX file runs only with --backend onnx, "
                           f"onnx-int8 or auto (not {name})")
    if name == MIXED_BACKEND:
        return MixedBackend(_onnx_backend("onnx-int8", device, model, None, refiner=False),
                            TorchBackend(model, device, "bf16"))
    return TorchBackend(model, device, name)


@torch.inference_mode()
def check_export(model, graphs, size: tuple[int, int] = (256, 192)) -> float:
    """Largest |difference| between onnxruntime and PyTorch outputs (low-res logits on a
    seeded random image of ``size`` (H, W), and refined patches of sample regions; a
    whole-image model's alpha and trimap logits)."""
    from lpmatte.inference.onnx.export import cpu_fp32_copy, sample_regions
    from lpmatte.model.two_stage import pad_to_multiple

    cpu = torch.device("cpu")
    exported, reference = OnnxBackend(graphs, cpu), TorchBackend(cpu_fp32_copy(model), cpu)
    generator = torch.Generator().manual_seed(0)
    image = pad_to_multiple(torch.rand(1, 3, *size, generator=generator),
                            exported.input_multiple)
    if model.config.kind == WHOLE_IMAGE:
        pairs = zip(exported.whole_image(image), reference.whole_image(image))
        return max(float((a - b).abs().max()) for a, b in pairs if a is not None)
    pairs = list(zip(exported.lowres(image), reference.lowres(image)))
    sample = sample_regions(model.config)
    pairs.append((exported.refine(*sample), reference.refine(*sample)))
    return max(float((a - b).abs().max()) for a, b in pairs)
