"""Write a training checkpoint as the shipped default weights (fp16 safetensors).

    python training/export_default.py /work/runs/default-lpm-s/last.pt \
        src/lpmatte/weights/default.safetensors [--warning "early training checkpoint ..."]

The model config, the training step and an optional warning (shown by the CLI on every
use) travel in the safetensors header; MODEL_CARD.md says where the checkpoint stands.
"""

from __future__ import annotations

import argparse

from lpmatte.checkpoint import load_checkpoint
from lpmatte.train_checkpoint import export_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--warning", default=None)
    args = parser.parse_args()
    export_weights(args.checkpoint, args.out, **({"warning": args.warning} if args.warning else {}))
    exported = load_checkpoint(args.out)
    print(f"{args.out}: {exported.config.name}, step {exported.metadata.get('step', '?')}")


if __name__ == "__main__":
    main()
