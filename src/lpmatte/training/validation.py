"""Validation during training: the held-out images matted by the inference pipeline users
run (:func:`lpmatte.inference.pipeline.run_inference` over an eager backend of the model),
scored with the P3M protocol, so ``best.pt`` is chosen on what is served."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from lpmatte.inference.backends import TorchBackend
from lpmatte.inference.options import InferenceOptions
from lpmatte.inference.pipeline import run_inference
from lpmatte.media.resize import fit_area


def backend_name(dtype: torch.dtype | None) -> str:
    """The inference backend that runs at the run's training precision."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "eager-fp32")


def fit_sample(sample, max_pixels: int):
    """(image, alpha, trimap) of a MattingSample, area-downscaled to at most ``max_pixels``
    (the trimap by nearest neighbour, so its classes stay classes)."""
    image = fit_area(sample.image, max_pixels)
    if image is sample.image:
        return sample.image, sample.alpha, sample.trimap
    size = (image.shape[1], image.shape[0])
    trimap = sample.trimap
    if trimap is not None:
        trimap = cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)
    return image, cv2.resize(sample.alpha, size, interpolation=cv2.INTER_AREA), trimap


@torch.inference_mode()
def predict_alpha(backend, image: np.ndarray, options: InferenceOptions) -> np.ndarray:
    """HxW float32 alpha of an HxWx3 float image in [0, 1] through the inference pipeline."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    return run_inference(backend, x.to(backend.device), options).alpha_array().clip(0, 1)


def validate(model: nn.Module, files, device: torch.device, dtype: torch.dtype | None,
             max_pixels: int, options: InferenceOptions = InferenceOptions()) -> dict[str, float]:
    """Mean P3M-protocol metrics (SAD, MSE, MAD, Grad, Conn; -T ones with trimaps) over
    ``files`` (SampleFiles), each image downscaled to ``max_pixels`` at most."""
    from lpmatte.data.datasets.base import MattingDataset
    from lpmatte.metrics import compute_metrics

    totals: dict[str, list[float]] = {}
    was_training = model.training
    backend = TorchBackend(model.eval(), device, backend_name(dtype))
    try:
        for sample in MattingDataset(list(files), description="validation"):
            image, alpha, trimap = fit_sample(sample, max_pixels)
            pred = predict_alpha(backend, image, options)
            for name, value in compute_metrics(pred, alpha, trimap, "p3m").items():
                totals.setdefault(name, []).append(value)
    finally:
        model.train(was_training)
    return {name: float(np.nanmean(values)) for name, values in totals.items()}
