"""Training logs: TensorBoard scalars and image strips, and the progress bar."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from lpmatte.errors import LpmatteError
from lpmatte.model.two_stage import TwoStageOutput


def summary_strip(batch, output: TwoStageOutput, size: int = 256) -> torch.Tensor:
    """(3, size, 5 * size) in [0, 1] for the first sample: input | coarse trimap (black
    background, grey unknown, white foreground) | coarse alpha | refined alpha | ground truth."""
    def panel(x: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
        x = x[:1].detach().float().cpu()
        x = F.interpolate(x, size=(size, size), mode=mode)
        return x.expand(1, 3, size, size)[0].clamp(0, 1)

    batch = batch.as_float()  # loader batches hold uint8
    if isinstance(output, TwoStageOutput):
        trimap, coarse = output.trimap_probs[:1].argmax(1, keepdim=True).float() / 2, \
            output.coarse_alpha
    else:  # a whole-image model: its segmentation head (if any) and its one alpha
        scores = output.trimap_logits
        trimap = (output.alpha[:1] * 2).round() / 2 if scores is None else \
            scores[:1].argmax(1, keepdim=True).float() / 2
        coarse = output.alpha
    panels = [panel(batch.image), panel(trimap, "nearest"), panel(coarse, "nearest"),
              panel(output.alpha), panel(batch.alpha)]
    return torch.cat(panels, dim=2)


class TrainLogger:
    """TensorBoard scalars/images and a tqdm progress bar; inert off the main process."""

    def __init__(self, folder: Path, total: int, initial: int, enabled: bool, progress: bool):
        self.writer = open_summary_writer(folder) if enabled else None
        self.bar = None
        if enabled and progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)

    def scalars(self, step: int, values: dict[str, float], prefix: str = "") -> None:
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"{prefix}{name}", value, step)

    def image(self, step: int, tag: str, image: torch.Tensor) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, image, step)

    def advance(self, loss: float, lr: float, images_per_second: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}",
                                 img_s=f"{images_per_second:.2f}", refresh=False)

    def write(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message)
        elif self.writer is not None:
            print(message, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


def open_summary_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise LpmatteError("TensorBoard logging needs the tensorboard package "
                           "(pip install 'lpmatte[train]' or pip install tensorboard)") from None
    return SummaryWriter(log_dir=str(folder))
