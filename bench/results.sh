#!/usr/bin/env bash
# The docs/RESULTS.md pipeline in one command: generate the benchmark, train the four rows (SSL-Align,
# EZ-VSL, no neighbours, no augmented views) with the same budget, evaluate each on the held-out sets.
#
#   bench/results.sh WORK_DIR            # full size on a GPU (defaults below)
#   DEVICE=cpu CLIPS=1200 VAL=100 TEST=200 EPOCHS=7 BS=16 IMAGE_SIZE=96 AUDIO_SECONDS=1.0 WORKERS=0 \
#       PARALLEL=2 bench/results.sh runs/cpu      # the CPU table of docs/RESULTS.md
#
# Settings (environment): DEVICE (auto), CLIPS (20000 training clips), VAL (500 validation clips),
# TEST (2000 per test set; half that for two-source scenes), EPOCHS (20), BS (128 anchor clips per
# step), LR (3e-4), IMAGE_SIZE (224), AUDIO_SECONDS (3.0), WORKERS (DataLoader processes per run, 4),
# PARALLEL (runs at once, 1; each gets OMP_NUM_THREADS=1 when > 1), TRAIN_S (a time cap per run:
# SIGTERM, which saves, then it is evaluated), PYTHON (the project's .venv/bin/python). Every row is
# evaluated with its last checkpoint.
# Existing data and finished runs are kept: run it again to resume.
set -euo pipefail
WORK=${1:?usage: bench/results.sh WORK_DIR}
DEVICE=${DEVICE:-auto} CLIPS=${CLIPS:-20000} TEST=${TEST:-2000} VAL=${VAL:-500} EPOCHS=${EPOCHS:-20} BS=${BS:-128}
LR=${LR:-3e-4} IMAGE_SIZE=${IMAGE_SIZE:-224} AUDIO_SECONDS=${AUDIO_SECONDS:-3.0} WORKERS=${WORKERS:-4}
PARALLEL=${PARALLEL:-1} TRAIN_S=${TRAIN_S:-0}
PY=${PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
[ -x "$PY" ] || { echo "bench/results.sh: no $PY (run make first, or set PYTHON)" >&2; exit 2; }
DATA=$WORK/data
mkdir -p "$WORK/logs"

synth() {  # folder, clips, seed, extra flags
  [ -f "$DATA/$1/annotations.json" ] || \
    $PY -m model.synth "$DATA/$1" --clips "$2" --seed "$3" --workers "$(nproc)" "${@:4}" > "$WORK/logs/synth_$1.txt"
}
synth train "$CLIPS" 1 --split heard
synth val "$VAL" 2 --split heard
synth test_heard "$TEST" 1001 --split heard
synth test_unheard "$TEST" 1002 --split unheard
synth test_two $((TEST / 2)) 1003 --split heard --sources 2

declare -A FLAGS=([align]="" [ezvsl]="--loss ezvsl" [no_nn]="--no-neighbours" [no_aug]="--no-augment")
train() {  # row name
  local run=$WORK/runs/$1 resume=()
  [ -f "$run/last.state.safetensors" ] && resume=(--resume)
  [ "$PARALLEL" -gt 1 ] && export OMP_NUM_THREADS=1
  local cap=() && [ "$TRAIN_S" -gt 0 ] && cap=(timeout -s TERM -k 120 "$TRAIN_S")
  "${cap[@]}" $PY -m model.train --data "$DATA/train" --val "$DATA/val" --out "$run" --epochs "$EPOCHS" \
    --batch-size "$BS" --lr "$LR" --image-size "$IMAGE_SIZE" --audio-seconds "$AUDIO_SECONDS" \
    --device "$DEVICE" --workers "$WORKERS" --cache "$DATA/cache" ${FLAGS[$1]} "${resume[@]}" \
    > "$WORK/logs/train_$1.txt" 2>&1 || echo "train $1: exit $? (see $WORK/logs/train_$1.txt)"
  for t in test_heard test_unheard test_two; do
    $PY -m model.evaluation.evaluate --data "$DATA/$t" --checkpoint "$run/last.safetensors" --out "$WORK/reports/$1_$t" \
      --device "$DEVICE" --workers "$WORKERS" --cache "$DATA/cache" > "$WORK/logs/eval_$1_$t.txt" 2>&1 \
      || echo "eval $1 $t failed (see $WORK/logs/eval_$1_$t.txt)"
  done
}
rows=(align ezvsl no_nn no_aug)
for ((i = 0; i < ${#rows[@]}; i += PARALLEL)); do
  for row in "${rows[@]:i:PARALLEL}"; do train "$row" & done
  wait
done
$PY -m model.evaluation.results_table "$WORK/reports"
