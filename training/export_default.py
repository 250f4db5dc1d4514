"""Write a training checkpoint as the shipped default weights (fp16 safetensors).

    python training/export_default.py /work/runs/default-lpm-s/last.pt \
        src/lpmatte/weights/default.safetensors [--warning "early training checkpoint ..."]

The model config, the training step and an optional warning (shown by the CLI on every
use) travel in the safetensors header; MODEL_CARD.md says where the checkpoint stands.
"""

from __future__ import annotations

import argparse

from lpmatte.api import _build
from lpmatte.checkpoint import load_checkpoint, save_safetensors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--warning", default=None)
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.checkpoint)
    model = _build(checkpoint.config, checkpoint.state_dict)
    metadata = {"untrained": "false", "step": checkpoint.metadata.get("step", "?")}
    if args.warning:
        metadata["warning"] = args.warning
    save_safetensors(args.out, model, checkpoint.config, half=True, **metadata)
    print(f"{args.out}: {checkpoint.config.name}, step {metadata['step']}")


if __name__ == "__main__":
    main()
