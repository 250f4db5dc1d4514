"""Rewrite weights trained with the former transposed refiner decoder for the resize
decoder (issue 14's texture fix), as the ``--init`` of a fine-tune that retrains it:

    python training/convert_decoder.py src/lpmatte/weights/lpm-e0-groups.safetensors \
        /work/runs/lpm-e0-groups-resize.safetensors

The converted file runs (its mattes lose the transposed kernels' within-tile detail until
retrained); ``lpmatte.model.refiner.resize_state_from_transposed`` says how.
"""

from __future__ import annotations

import argparse
import dataclasses

from lpmatte.errors import LpmatteError
from lpmatte.model.factory import build_model
from lpmatte.model.refiner import resize_state_from_transposed
from lpmatte.model.weights import load_checkpoint, save_safetensors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights")
    parser.add_argument("out")
    args = parser.parse_args()
    source = load_checkpoint(args.weights)
    refiner = source.config.refiner
    if refiner.decoder != "transposed":
        raise LpmatteError(f"{args.weights}: already has the resize decoder")
    config = dataclasses.replace(source.config,
                                 refiner=dataclasses.replace(refiner, decoder="resize"))
    state = resize_state_from_transposed(source.state_dict, refiner.encoder_channels[-1])
    model = build_model(config)
    model.load_state_dict(state)
    save_safetensors(args.out, model, config, **source.metadata)
    print(f"{args.out}: {config.name}, resize decoder")


if __name__ == "__main__":
    main()
