#!/usr/bin/env bash
# The real-content sets of docs/RESULTS.md ("How it was measured"): ssl-synth --content real into WORK_DIR/data.
#
#   bench/real_data.sh WORK_DIR     # needs the assets: make assets (or ssl-assets data/assets)
#
# Settings (environment): TRAIN (600 training clips), VAL (80), TEST (150 per test set), NEG (30 silent and 30
# off-screen negatives in val and test_heard, for the presence score), TWO (60 two-source scenes), MORE (0: with N > 0,
# N more heard training clips, seed 16, and train_all = train + them: the bundled model's last step), ASSETS
# (data/assets), WORKERS (nproc), PYTHON (.venv/bin/python). Sets that exist are kept: run it again to resume.
#
#   POOLS=1 bench/real_data.sh WORK_DIR   # the held-out benchmark (docs/RESULTS.md, "The held-out benchmark")
#
# draws every set from one pool of photos, recordings and backgrounds (ssl-synth --pool): train (TRAIN clips,
# heard classes) from the train pool; from the val pool val_heard (VAL_HEARD, 500), val_unheard (VAL_UNHEARD, 500),
# val_two (TWO, 100), and silence and off-screen negatives of every class (VAL_NEG, 100 each); val = val_heard and
# the negatives (localization, retrieval, presence calibration), val_presence = val + val_unheard (presence
# with unheard objects in view). The sealed test sets are not made here: python -m model.synth.sealed.
set -euo pipefail
WORK=${1:?usage: bench/real_data.sh WORK_DIR}
TRAIN=${TRAIN:-600} VAL=${VAL:-80} TEST=${TEST:-150} NEG=${NEG:-30} TWO=${TWO:-60}
ASSETS=${ASSETS:-data/assets} PY=${PYTHON:-.venv/bin/python}
DATA=$WORK/data
mkdir -p "$WORK/logs" "$DATA/parts"

synth() {  # folder, clips, seed, extra flags
  [ -f "$1/annotations.json" ] || $PY -m model.synth "$1" --clips "$2" --seed "$3" --content real \
    --assets "$ASSETS" --workers "${WORKERS:-$(nproc)}" "${@:4}" > "$WORK/logs/synth_$(basename "$1").txt"
}
merge() {  # target, parts...: one folder with every part's videos, masks and annotations
  [ -f "$1/annotations.json" ] && return
  $PY - "$@" <<'PY'
import json, shutil, sys
from pathlib import Path
target, parts = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
entries = []
for part in parts:
    for sub in ("videos", "masks"):
        if (part / sub).is_dir():
            shutil.copytree(part / sub, target / sub, dirs_exist_ok=True)
    entries += json.loads((part / "annotations.json").read_text())
(target / "annotations.json").write_text(json.dumps(entries, indent=1))
PY
}
if [ "${POOLS:-0}" = 1 ]; then
  [ "$TRAIN" -gt 0 ] && synth "$DATA/train" "$TRAIN" 111 --split heard --pool train
  synth "$DATA/parts/val_heard" "${VAL_HEARD:-500}" 112 --split heard --pool val
  synth "$DATA/parts/val_silence" "${VAL_NEG:-100}" 113 --split all --pool val --negatives silence
  synth "$DATA/parts/val_offscreen" "${VAL_NEG:-100}" 114 --split all --pool val --negatives offscreen
  synth "$DATA/val_unheard" "${VAL_UNHEARD:-500}" 115 --split unheard --pool val
  synth "$DATA/val_two" "$TWO" 116 --split heard --sources 2 --pool val
  merge "$DATA/val" "$DATA/parts/val_heard" "$DATA/parts/val_silence" "$DATA/parts/val_offscreen"
  merge "$DATA/val_presence" "$DATA/val" "$DATA/val_unheard"
  echo "held-out (pooled) sets ready in $DATA"
  exit 0
fi
if [ "$TRAIN" -gt 0 ]; then  # TRAIN=0: the test sets only
  synth "$DATA/train" "$TRAIN" 11 --split heard
  synth "$DATA/parts/val" "$VAL" 12 --split heard
  synth "$DATA/parts/val_silence" "$NEG" 13 --split heard --negatives silence
  synth "$DATA/parts/val_offscreen" "$NEG" 14 --split heard --negatives offscreen
  merge "$DATA/val" "$DATA/parts/val" "$DATA/parts/val_silence" "$DATA/parts/val_offscreen"
  if [ "${MORE:-0}" -gt 0 ]; then
    synth "$DATA/parts/train_more" "$MORE" 16 --split heard
    merge "$DATA/train_all" "$DATA/train" "$DATA/parts/train_more"
  fi
fi
synth "$DATA/parts/test_heard" "$TEST" 21 --split heard
synth "$DATA/parts/test_silence" "$NEG" 22 --split heard --negatives silence
synth "$DATA/parts/test_offscreen" "$NEG" 23 --split heard --negatives offscreen
merge "$DATA/test_heard" "$DATA/parts/test_heard" "$DATA/parts/test_silence" "$DATA/parts/test_offscreen"
synth "$DATA/test_unheard" "$TEST" 31 --split unheard
synth "$DATA/test_two" "$TWO" 41 --split heard --sources 2
echo "real-content sets ready in $DATA"
