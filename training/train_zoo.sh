#!/usr/bin/env bash
# Train a zoo model (MMNet, PSPM) on the data of the shipped default; run again to resume.
#
#   MODEL=mmnet STEPS=20000 training/train_zoo.sh [lpmatte train options]
#   MODEL=pspm STEPS=3000,3000,6000 training/train_zoo.sh   (steps of the three PSPM phases)
#
# Same data spec (training/default.toml: wallpapers, procedural backgrounds, group and
# small-person composites) and the same held-out ids (training/val_ids.txt) as the default
# model, so training/validation numbers compare. Prepare the data first as
# training/train_default.sh does (wallpapers in $DATA/bg, soft alpha in $DATA/soft/<set>).
#
# mmnet: from scratch (the paper trains from scratch too), Adam, crops of 256 (the paper's
# input size), batch 8, zoomed out (--scale-range 0.3,1.0): MMNet sees the whole image
# resized to 256, so people must be as small in training as there (the 0.5-1.5 of the
# two-stage models made them ~1.5x larger); fp32, which trains it faster than bf16 on CPU
# (channels-last, the trainer's layout for whole-image models: 0.89 vs 0.97 s a step of 8
# at 256 on 2 AMD EPYC cores with AVX512-BF16, benchmarks/bench_train.py).
# pspm: the thesis' phases in order, each starting from the one before (--init), the
# shared encoder from the ImageNet EfficientNet-Lite0 wheel; crops of 320, batch 4. Each run
# goes to $RUN/<phase>; a run stopped with SIGTERM or Ctrl-C keeps its last.pt and resumes
# from it.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-mmnet}
RUN=${RUN:-/work/runs/zoo-$MODEL}
common=(--data "${DATA_SPEC:-training/default.toml}" --workers 1 --optimizer adam
        --lr-milestones 0.6,0.85 --grad-clip 1.0 --val-every 250 --val-max-count 60
        --val-max-pixels 300000 --checkpoint-every 100 --keep-last 2 --log-every 25
        --image-every 500)

train() {  # train DIR STEPS OPTIONS...: a new run, or the resumed one
    local dir=$1 steps=$2
    shift 2
    mkdir -p "$dir"
    [[ -f $dir/val_ids.txt ]] || cp training/val_ids.txt "$dir/val_ids.txt"
    if [[ -f $dir/last.pt ]]; then
        lpmatte train --resume --train-dir "$dir" --steps "$steps"
    else
        lpmatte train "${common[@]}" "$@" --train-dir "$dir" --steps "$steps"
    fi
}

case $MODEL in
    mmnet*)
        train "$RUN" "${STEPS:-20000}" --model "$MODEL" --crop 256 --batch-size 8 --lr 1e-3 \
            --precision fp32 --warmup-steps 100 --scale-range 0.3,1.0 "$@" ;;
    pspm*)
        IFS=, read -r seg mat e2e <<< "${STEPS:-3000,3000,6000}"
        train "$RUN/segmentation" "$seg" --model "$MODEL" --backbone-weights imagenet \
            --phase segmentation --crop 320 --batch-size 4 --lr 1e-3 --warmup-steps 50 "$@"
        train "$RUN/matting-decoder" "$mat" --model "$MODEL" --phase matting-decoder \
            --init "$RUN/segmentation/last.pt" --crop 320 --batch-size 4 --lr 1e-3 \
            --warmup-steps 50 "$@"
        train "$RUN/end-to-end" "$e2e" --model "$MODEL" --phase end-to-end \
            --init "$RUN/matting-decoder/last.pt" --crop 320 --batch-size 4 --lr 1e-4 \
            --warmup-steps 50 "$@" ;;
    *) echo "unknown MODEL $MODEL (mmnet..., pspm...)" >&2; exit 2 ;;
esac
