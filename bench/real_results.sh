#!/usr/bin/env bash
# The real-content tables of docs/RESULTS.md ("The bundled model"): each checkpoint on the real-content test sets of
# bench/real_data.sh, beside the reference rows (centre prior, box oracle, vision only).
#
#   bench/real_results.sh DATA_DIR REPORTS_DIR NAME=CHECKPOINT [NAME=CHECKPOINT ...]
#
# DATA_DIR holds test_heard (with silent and off-screen negatives), test_unheard and test_two. Reports that
# exist are kept. PYTHON (.venv/bin/python), DEVICE (cpu), SETS (the three set names: the held-out validation sets
# of POOLS=1 bench/real_data.sh are SETS="val val_unheard val_two"), PRESENCE (a set whose negatives the presence
# reference rows score, e.g. val_presence; none by default).
set -euo pipefail
DATA=${1:?usage: bench/real_results.sh DATA_DIR REPORTS_DIR NAME=CHECKPOINT ...}
REPORTS=${2:?usage: bench/real_results.sh DATA_DIR REPORTS_DIR NAME=CHECKPOINT ...}
shift 2
PY=${PYTHON:-.venv/bin/python} DEVICE=${DEVICE:-cpu}
read -r HEARD UNHEARD TWO_SET <<< "${SETS:-test_heard test_unheard test_two}"
mkdir -p "$REPORTS"
for run in "$@"; do
  name=${run%%=*} checkpoint=${run#*=}
  for t in $HEARD $UNHEARD $TWO_SET; do
    [ -f "$REPORTS/${name}_$t/metrics.json" ] || $PY -m model.evaluation.evaluate --data "$DATA/$t" \
      --checkpoint "$checkpoint" --out "$REPORTS/${name}_$t" --device "$DEVICE" > "$REPORTS/${name}_$t.log" 2>&1 \
      || echo "eval $name $t failed (see $REPORTS/${name}_$t.log)"
  done
done
for t in $HEARD $UNHEARD $TWO_SET; do
  [ -f "$REPORTS/references_$t.json" ] || $PY -m model.evaluation.reference_maps "$DATA/$t" > "$REPORTS/references_$t.json"
  [ "$t" = "$TWO_SET" ] || [ -f "$REPORTS/vision_only_$t.json" ] || \
    $PY -m model.evaluation.vision_only "$DATA/$t" > "$REPORTS/vision_only_$t.json"
done
if [ -n "${PRESENCE:-}" ] && [ ! -f "$REPORTS/presence_references_$PRESENCE.json" ]; then
  $PY -m model.evaluation.presence_references "$DATA/$PRESENCE" > "$REPORTS/presence_references_$PRESENCE.json"
fi
$PY -m model.evaluation.results_table "$REPORTS"
for t in $HEARD $UNHEARD $TWO_SET; do
  echo "$t references: $(tr -d '\n ' < "$REPORTS/references_$t.json")"
  [ -f "$REPORTS/vision_only_$t.json" ] && echo "$t vision only: $(tr -d '\n ' < "$REPORTS/vision_only_$t.json")"
done
