#!/usr/bin/env bash
# Reproduce the three adapters shipped in specialists/adapters/ (completion, doc, refactor).
#
# CPU only, one thread each, one after another, at low priority: on a shared 2-core machine
# they took about 15–35 minutes each (see each adapter's README.md for the exact figures).
# Data: the installed CPython standard library (train split of covey_eval.splits); no usage
# log. Every setting that matters is on the command line below; the seed fixes the data
# sample, the batch order and the LoRA initialisation.
#
#   scripts/train-default-adapters.sh            # all three
#   scripts/train-default-adapters.sh doc        # one
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-.covey-home/default-adapters}
TASKS=("${@:-completion doc refactor}")
read -r -a TASKS <<< "${TASKS[*]}"

declare -A STEPS=([completion]=80 [doc]=60 [refactor]=60)
declare -A GATE=([completion]=40 [doc]=24 [refactor]=16)

covey models prepare
for task in "${TASKS[@]}"; do
  nice -n 10 covey train "$task" \
    --steps "${STEPS[$task]}" --rank 8 --lr 1e-3 --batch-tokens 1024 --seed 0 --threads 1 \
    --device cpu --no-usage --no-register --gate-examples "${GATE[$task]}" \
    --out "$WORK/$task"
  dest=specialists/adapters/$task
  mkdir -p "$dest"
  for f in adapter_model.safetensors adapter_config.json README.md gate.json dataset.json train.json; do
    cp "$WORK/$task/$f" "$dest/$f"
  done
done
