#!/usr/bin/env bash
# scripts/resume_check.sh — exact resume: a run of 6 steps straight must equal 3 steps, --stop-at, then --resume to
# 6, bit for bit (the final checkpoint: parameters, AdamW moments, data cursor, best loss) and in every logged
# training loss. Works for every trainer (train_cpu, train_gpt, train_mdm).
#   usage: scripts/resume_check.sh DIR TRAINER [TRAINER FLAGS...]
set -u
dir=$1; shift
common=(--steps 6 --eval-every 3 --quiet)
pass=0; fail=0
mkdir -p "$dir"
"$@" "${common[@]}" --ckpt-dir "$dir/full" --log "$dir/full.jsonl" >"$dir/full.txt" 2>&1 &&
"$@" "${common[@]}" --ckpt-dir "$dir/half" --log "$dir/half.jsonl" --stop-at 3 >"$dir/half.txt" 2>&1 &&
"$@" "${common[@]}" --ckpt-dir "$dir/half" --log "$dir/half.jsonl" --resume "$dir/half/model.ckpt" >>"$dir/half.txt" 2>&1 ||
    { echo "FAIL: a run failed: $(tail -n 1 "$dir/full.txt") $(tail -n 1 "$dir/half.txt")"; echo "0 passed, 1 failed"; exit 1; }
if cmp -s "$dir/full/model.ckpt" "$dir/half/model.ckpt"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: resumed checkpoint differs from the uninterrupted run"; fi
losses() { grep '"kind": "train"' "$1" | sed -E 's/.*"loss": ([^,]+),.*/\1/' | tr '\n' ' '; }
a=$(losses "$dir/full.jsonl"); b=$(losses "$dir/half.jsonl")
if [ -n "$a" ] && [ "$a" = "$b" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: losses differ after resume: [$a] vs [$b]"; fi
if [ -f "$dir/full/best.ckpt" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: no best.ckpt"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
