"""Interpolate two weights files of one architecture (WiSE-FT, Wortsman et al., CVPR 2022).

    python training/blend_weights.py BASE FINETUNED OUT.safetensors --t 0.5 [--warning "..."]

OUT = (1 - t) * BASE + t * FINETUNED, tensor by tensor (BatchNorm statistics too; integer
counters are taken from FINETUNED). A fine-tune from BASE stays in BASE's basin, so the
line between the two trades what the fine-tune gained (here: groups, small people) against
what it forgot (single full-body photos). Nothing made with it ships yet; the issue-14 note
has the measured trade-off for t = 0.3 ... 0.7.
"""

from __future__ import annotations

import argparse

import torch

from lpmatte.errors import LpmatteError
from lpmatte.model.factory import build_model
from lpmatte.model.weights import load_checkpoint, save_safetensors


def blend_state(base: dict, tuned: dict, t: float) -> dict:
    """Tensor-wise (1 - t) * base + t * tuned; non-float tensors come from ``tuned``."""
    if base.keys() != tuned.keys():
        raise LpmatteError("the two weights files have different tensors")
    out = {}
    for name, tuned_tensor in tuned.items():
        base_tensor = base[name]
        if base_tensor.shape != tuned_tensor.shape:
            raise LpmatteError(f"{name}: shapes differ ({tuple(base_tensor.shape)} vs "
                               f"{tuple(tuned_tensor.shape)})")
        if tuned_tensor.is_floating_point():
            out[name] = torch.lerp(base_tensor.float(), tuned_tensor.float(), t)
        else:
            out[name] = tuned_tensor.clone()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("finetuned")
    parser.add_argument("out")
    parser.add_argument("--t", type=float, required=True,
                        help="0: BASE, 1: FINETUNED")
    parser.add_argument("--warning", default=None)
    args = parser.parse_args()
    base, tuned = load_checkpoint(args.base), load_checkpoint(args.finetuned)
    if base.config != tuned.config:
        raise SystemExit("lpmatte: the two weights files are different architectures")
    try:
        state = blend_state(base.state_dict, tuned.state_dict, args.t)
    except LpmatteError as error:  # a user mistake: one line, no traceback
        raise SystemExit(f"lpmatte: {error}") from None
    model = build_model(tuned.config, state)
    header = {k: v for k, v in tuned.metadata.items() if k not in ("config", "warning")}
    header.update(untrained="false", blend=f"{1 - args.t:g} * {args.base} + {args.t:g} * "
                  f"{args.finetuned}")
    if args.warning:
        header["warning"] = args.warning
    save_safetensors(args.out, model, tuned.config, half=True, **header)
    print(f"{args.out}: {tuned.config.name}, t = {args.t:g}")


if __name__ == "__main__":
    main()
