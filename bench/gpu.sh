#!/usr/bin/env bash
# The GPU targets in one prepared run, for a machine with a CUDA GPU (a few minutes):
# batch-1 latency of each encoder on CUDA (eager fp32 against the app's path; target: the app's model at
# >= 300 heatmaps/s) and training / evaluation throughput from the decoded cache at 224 px (target: >= 2,000
# clips/s), written with the GPU's name beside them.
#
#   bench/gpu.sh [OUT_DIR (runs/results/gpu)]
#
# PYTHON (.venv/bin/python), CLIPS (512), BATCH (256), WORKERS (8), EPOCHS (2).
set -euo pipefail
OUT=${1:-runs/results/gpu}
PY=${PYTHON:-.venv/bin/python}
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else
          'bench/gpu.sh: no CUDA device here (torch ' + torch.__version__ + '): run it on a machine with a GPU')"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" || true
"$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" | tee "$OUT/torch.txt"
"$PY" bench/model.py --device cuda --json "$OUT/model.json"
"$PY" bench/train.py --device cuda --image-size 224 --clips "${CLIPS:-512}" --epochs "${EPOCHS:-2}" \
    --batch-size "${BATCH:-256}" --workers "${WORKERS:-8}" --json "$OUT/train.json"
