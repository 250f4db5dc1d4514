"""Saving and loading model weights without executing code.

Two formats, both self-describing (the model config travels with the weights):

- ``.safetensors``: the shipped format; config and flags in the header metadata.
- ``.pt``/``.pth``: the trainer's checkpoints, a dict with ``"model"`` (state dict),
  ``"config"`` (plain dict) and optional training state, read with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from lpmatte.errors import LpmatteError
from lpmatte.files import atomic_write
from lpmatte.model.config import (
    WHOLE_IMAGE,
    AnyConfig,
    EfficientNetLiteConfig,
    LowResConfig,
    MMNetConfig,
    ModelConfig,
    PSPMConfig,
    RefinerConfig,
    SwinConfig,
)

WHOLE_IMAGE_CONFIGS = {"mmnet": MMNetConfig, "pspm": PSPMConfig}  # by ``architecture``


def config_to_dict(config: AnyConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def build(cls, values: dict[str, Any]):
    """``cls`` from a plain dict: unknown keys and non-init fields dropped, lists -> tuples."""
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
    return cls(**clean)


def config_from_dict(data: dict[str, Any]) -> AnyConfig:
    """Inverse of :func:`config_to_dict` (lists become tuples again). Files without a
    ``kind`` key predate the zoo and are the two-stage model."""
    if data.get("kind") == WHOLE_IMAGE:
        architecture = data.get("architecture")
        if architecture not in WHOLE_IMAGE_CONFIGS:
            raise LpmatteError(f"unknown whole-image architecture '{architecture}'")
        return build(WHOLE_IMAGE_CONFIGS[architecture], data)
    lowres = data.get("lowres", {})
    backbone = lowres.get("backbone", {})
    swin = backbone.get("family", "swin") == "swin"  # files older than the field are Swin
    backbone_cls = SwinConfig if swin else EfficientNetLiteConfig
    return ModelConfig(
        name=data.get("name", "lpm"),
        lowres=LowResConfig(backbone=build(backbone_cls, backbone),
                            **{k: tuple(v) for k, v in lowres.items() if k != "backbone"}),
        refiner=build(RefinerConfig, data.get("refiner", {})),
    )


@dataclasses.dataclass
class Checkpoint:
    config: AnyConfig
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str]


def save_safetensors(path: str | Path, model: torch.nn.Module, config: AnyConfig,
                     half: bool = False, **metadata: str) -> None:
    """Write ``model``'s weights (fp16 if ``half``) with the config in the header, atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    header = {"config": json.dumps(config_to_dict(config)), **metadata}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=header))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a ``.safetensors`` or trainer ``.pt`` file; never unpickles arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise LpmatteError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            return _load_safetensors(path)
        return _load_torch(path)
    except LpmatteError:
        raise
    except Exception as error:  # corrupt or foreign files raise many different types
        raise LpmatteError(f"{path}: not a valid lpmatte checkpoint ({error})") from None


def _load_safetensors(path: Path) -> Checkpoint:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
        state = {key: handle.get_tensor(key) for key in handle.keys()}
    if "config" not in metadata:
        raise LpmatteError(f"{path}: no model config in the safetensors header")
    config = with_stored_decoder(config_from_dict(json.loads(metadata.pop("config"))), state)
    return Checkpoint(config, {k: v.float() for k, v in state.items()}, metadata)


def _load_torch(path: Path) -> Checkpoint:
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or "model" not in data or "config" not in data:
        raise LpmatteError(f"{path}: expected a checkpoint with 'model' and 'config' entries")
    metadata = {k: str(v) for k, v in data.get("metadata", {}).items()}
    config = with_stored_decoder(config_from_dict(data["config"]), data["model"])
    return Checkpoint(config, data["model"], metadata)


def with_stored_decoder(config: ModelConfig, state_dict: dict) -> ModelConfig:
    """The config with the refiner decoder its tensors were trained with (files from before
    the ``decoder`` field hold the transposed-convolution one)."""
    from lpmatte.model.refiner import decoder_of_state

    kind = decoder_of_state(state_dict)
    if kind is None or kind == config.refiner.decoder:
        return config
    return dataclasses.replace(config, refiner=dataclasses.replace(config.refiner, decoder=kind))
