#!/usr/bin/env bash
# Prepare the data of the shipped default model and train it; run again to resume.
#
#   training/train_default.sh [lpmatte train options]   (RUN=/work/runs/default-lpm-s DATA=/work/data)
#   VARIANT=lpm-e0 RUN=/work/runs/default-lpm-e0 INIT=/work/runs/default-lpm-s/best.pt \
#       STEPS=30000 training/train_default.sh              (ImageNet-initialised low-res net)
#   VARIANT=lpm-e0 RUN=/work/runs/issue14-e0 INIT=src/lpmatte/weights/default.safetensors \
#       STEPS=10000 SKIP_SOFT_ALPHA=1 training/train_default.sh --lr 1e-4 --ema-decay 0.998 \
#       --max-train-regions 100                            (issue 14: fine-tune on composites)
#
# Options given replace the recipe, also on resume (e.g. --lr-milestones 11500,30000 to
# drop the lr of a plateaued run; the new schedule is stored and kept by later resumes).
#
# Steps: Debian wallpapers -> $DATA/bg; soft alpha from the binary masks of ../shared/data
# -> $DATA/soft/<set> (resumable, skips done files); then `lpmatte train` with the held-out
# ids of training/val_ids.txt. Progress goes to MODEL_CARD.md by hand (see its log table).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-/work/runs/default-lpm-s}
DATA=${DATA:-/work/data}
SHARED=${SHARED:-../shared/data}
STEPS=${STEPS:-100000}

[[ -d $DATA/bg ]] || scripts/fetch_backgrounds.sh "$DATA/bg"
for set in flickr-portraits ccp-people; do
    [[ ${SKIP_SOFT_ALPHA:-0} == 1 ]] && break
    lpmatte data soft-alpha --images "$SHARED/$set/images" --masks "$SHARED/$set/masks" \
        --out "$DATA/soft/$set" --max-side 480 --workers 2
done

mkdir -p "$RUN"
[[ -f $RUN/val_ids.txt ]] || cp training/val_ids.txt "$RUN/val_ids.txt"
# lpm-e0/e1/e2: ImageNet EfficientNet-Lite0/1/2, warm from $INIT where it fits (an lpm-e0
# file gives an lpm-e1 run its refiner and decoder; the backbone stays ImageNet's)
case ${VARIANT:-lpm-s} in
    lpm-s) variant=(--model-version lpm-s --lr 3e-4 --warmup-steps 500) ;;
    lpm-e0|lpm-e1|lpm-e2) variant=(--model-version "$VARIANT" --backbone-weights imagenet
                                   --lr 2e-4 --warmup-steps 300 ${INIT:+--init "$INIT"}) ;;
    *) echo "unknown VARIANT ${VARIANT} (lpm-s, lpm-e0, lpm-e1, lpm-e2)" >&2; exit 2 ;;
esac
recipe=("${variant[@]}" --crop 320 --batch-size 4 --optimizer adamw --weight-decay 0.05
        --lr-milestones 0.6,0.85 --grad-clip 1.0 --data "${DATA_SPEC:-training/default.toml}"
        --workers 1 --max-train-regions 400
        --val-every 1000 --val-max-count 80 --val-max-pixels 300000
        --checkpoint-every 250 --keep-last 3 --log-every 25 --image-every 500)
# a resumed run keeps the recipe stored in its checkpoint
[[ -f $RUN/last.pt ]] && recipe=(--resume)
exec lpmatte train "${recipe[@]}" --train-dir "$RUN" --steps "$STEPS" "$@"
