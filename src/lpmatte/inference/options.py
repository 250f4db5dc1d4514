"""How a model is run, as one value: :class:`InferenceOptions`.

A weights file or an ONNX export stores the options its model was validated with under one
metadata key, ``lpmatte_inference`` (JSON), the same in both formats. Files written before
that key read their older keys (``lowres_side`` / ``flip_tta`` in safetensors,
``lpmatte_lowres_side`` / ``lpmatte_flip_tta`` in ONNX).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace

from lpmatte.errors import LpmatteError

METADATA_KEY = "lpmatte_inference"
MIN_LOWRES_SIDE = 16
MAX_FIRST_PASS_SCALE = 4.0
# The second pass refines the cells holding a pixel in (margin, 1 - margin), and settling
# snaps the unrefined ones within this much of 0 or 1. 0.1 rather than 0.02 keeps the
# refiner off near-opaque interiors (a face at 0.93), where it only adds 8x8 texture;
# chosen on training photos with benchmarks/sweep_lowres_side.py --margins.
TRANSITION_MARGIN = 0.1


@dataclass(frozen=True)
class InferenceOptions:
    """lowres_side: images with a longer side run in two passes, the first at this long
        side (:func:`lpmatte.inference.pipeline.run_two_passes`); None: one pass at full
        resolution, as the paper.
    flip_tta: the low-res network also sees the mirrored image and the two coarse
        predictions are averaged (:class:`lpmatte.inference.pipeline.MirrorAveraged`).
    max_regions: refine at most this many regions per image, the most uncertain first
        (a latency bound); None: all.
    settle: the cells the refiner left alone keep the upsampled coarse alpha only where it
        is in transition; within the transition margin of 0 or 1 it becomes exactly 0 or 1
        (:func:`lpmatte.inference.pipeline.settle_`). On unless a file says off.
    deblock: the excess steps at the refined cells' borders are smoothed out, where the image
        has no edge there (:func:`lpmatte.inference.pipeline.deblock`). On unless a file
        says off.
    person_height: when the tallest person found is shorter than this many pixels in the
        first pass, the image is matted again with the first pass enlarged so that this
        person is that tall, and that matte is kept near the people found
        (:mod:`lpmatte.inference.person_scale`); None: never.
    first_pass_scale: the first pass at this scale of the image instead of by
        ``lowres_side`` (above 1: the image enlarged, the matte area-averaged back); a video
        fixes it once for all its frames. None: by ``lowres_side``.
    transition_margin: the two-pass mode's second pass refines the 8x8 cells holding a
        pixel of the upsampled first-pass matte in (margin, 1 - margin); a larger margin
        refines fewer cells (faster at HD and 4K), the rest keep the upsampled matte.
        Settling keeps :data:`TRANSITION_MARGIN` whatever this is.
    """

    lowres_side: int | None = None
    flip_tta: bool = False
    max_regions: int | None = None
    settle: bool = True
    deblock: bool = True
    person_height: int | None = None
    first_pass_scale: float | None = None
    transition_margin: float = TRANSITION_MARGIN

    def __post_init__(self):
        side, cap = self.lowres_side, self.max_regions
        height, scale = self.person_height, self.first_pass_scale
        if height is not None and (not _is_int(height) or height < MIN_LOWRES_SIDE):
            raise LpmatteError(f"person_height must be a whole number of pixels >= "
                               f"{MIN_LOWRES_SIDE}, or 0 for off (got {height!r})")
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                                  or not 0.05 <= scale <= MAX_FIRST_PASS_SCALE):
            raise LpmatteError(f"first_pass_scale must be a number in 0.05..."
                               f"{MAX_FIRST_PASS_SCALE} (got {scale!r})")
        if side is not None and (not _is_int(side) or side < MIN_LOWRES_SIDE):
            raise LpmatteError(f"lowres_side must be a whole number of pixels >= "
                               f"{MIN_LOWRES_SIDE}, or 0 for full resolution (got {side!r})")
        margin = self.transition_margin
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) \
                or not 0 < margin < 0.5:
            raise LpmatteError(f"transition_margin must be a number in (0, 0.5) "
                               f"(got {margin!r})")
        for name in ("flip_tta", "settle", "deblock"):
            if not isinstance(getattr(self, name), bool):
                raise LpmatteError(f"{name} must be True, False or 'auto' "
                                   f"(got {getattr(self, name)!r})")
        if cap is not None and (not _is_int(cap) or cap < 1):
            raise LpmatteError(f"max_regions must be a whole number >= 1 (got {cap!r})")

    def updated(self, **changes) -> InferenceOptions:
        """A copy with the fields in ``changes`` replaced; ``"auto"`` keeps a field as it is,
        a ``lowres_side`` of 0 means one full-resolution pass and a ``person_height`` of 0
        no zoom (None)."""
        given = {k: v for k, v in changes.items() if not (isinstance(v, str) and v == "auto")}
        unknown = set(given) - {f.name for f in fields(self)}
        if unknown:
            raise LpmatteError(f"unknown inference option(s): {', '.join(sorted(unknown))}")
        for name in ("lowres_side", "person_height"):
            if given.get(name) == 0:
                given[name] = None
        return replace(self, **given)

    def to_metadata(self) -> dict[str, str]:
        return {METADATA_KEY: json.dumps(asdict(self), sort_keys=True)}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], origin: str = "") -> InferenceOptions:
        """The options stored in a weights file's or an ONNX export's metadata."""
        try:
            if METADATA_KEY in metadata:
                stored = json.loads(metadata[METADATA_KEY])
                return cls(**{f.name: stored[f.name] for f in fields(cls) if f.name in stored})
            return cls(**_legacy_values(metadata))
        except (ValueError, TypeError, LpmatteError) as error:
            raise LpmatteError(f"{origin}: bad inference options in its metadata "
                               f"({error})") from None


def _legacy_values(metadata: dict[str, str]) -> dict:
    values = {}
    for prefix in ("", "lpmatte_"):
        side = metadata.get(f"{prefix}lowres_side")
        if side:
            values["lowres_side"] = int(side)
        if metadata.get(f"{prefix}flip_tta") == "true":
            values["flip_tta"] = True
    return values


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
