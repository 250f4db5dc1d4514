"""Write a training checkpoint as the shipped default weights (fp16 safetensors).

    python training/export_default.py /work/runs/default-lpm-s/last.pt \
        src/lpmatte/weights/default.safetensors [--lowres-side 400] [--flip-tta] [--warning "..."]

The model config, the training step, the two-pass threshold (``lowres_side``: long side of
the first pass for larger images, see lpmatte.Matter), whether the low-res network also
sees the mirrored image (``flip_tta``) and an optional warning (shown by the CLI on every
use) travel in the safetensors header; MODEL_CARD.md says where the checkpoint stands.
"""

from __future__ import annotations

import argparse

from lpmatte.model.weights import load_checkpoint
from lpmatte.training.checkpoints import export_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--warning", default=None)
    parser.add_argument("--lowres-side", type=int, default=None)
    parser.add_argument("--flip-tta", action="store_true")
    args = parser.parse_args()
    extra = {"warning": args.warning, "lowres_side": args.lowres_side,
             "flip_tta": "true" if args.flip_tta else None}
    export_weights(args.checkpoint, args.out,
                   **{key: str(value) for key, value in extra.items() if value})
    exported = load_checkpoint(args.out)
    print(f"{args.out}: {exported.config.name}, step {exported.metadata.get('step', '?')}")


if __name__ == "__main__":
    main()
