#!/usr/bin/env bash
# scripts/corruption_check.sh — train_mdm's two ways of drawing the masks train the same model (run by
# `make gpucheck`): --corruption gpu (llmc/mdm.cuh kernel, masked rows listed on the device, padded to 64) and
# --corruption host (llmc/objective.h, rows listed on the host, padded to 128) give the same masks bit for bit, so
# the runs differ only through the LM head's padded row count (other cuBLASLt shapes, other rounding): losses,
# norms and parameters must agree within bf16 tolerances after 8 steps with gradient accumulation 2.
#   usage: scripts/corruption_check.sh [OUT_DIR]
set -u
cd "$(dirname "$0")/.."
dir=${1:-build/corruption_check}
rm -rf "$dir"; mkdir -p "$dir"
COMMON=(--steps 8 --batch 16 --micro-batch 8 --eval-every 4 --eval-samples 16 --quiet --dropout 0.1 --attn-dropout 0.1)
for how in gpu host; do
    build/train_mdm "${COMMON[@]}" --corruption $how --ckpt-dir "$dir/$how" --log "$dir/$how.jsonl" >"$dir/$how.txt" 2>&1 ||
        { echo "FAIL: --corruption $how run: $(tail -n 2 "$dir/$how.txt")"; echo "0 passed, 1 failed"; exit 1; }
done
if out=$(${PYTHON:-python3} dev/test/compare_runs.py "$dir/gpu/model.ckpt" "$dir/host/model.ckpt" "$dir/gpu.jsonl" \
         "$dir/host.jsonl" --bf16 2>&1); then
    echo "PASS gpu vs host corruption: $out"; echo "1 passed, 0 failed"
else
    echo "FAIL gpu vs host corruption: $out"; echo "0 passed, 1 failed"; exit 1
fi
