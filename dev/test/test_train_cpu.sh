#!/usr/bin/env bash
# The CPU trainer end to end on the bundled data: loss falls for both objectives, a run stopped and resumed is
# bit-identical to an uninterrupted one, and bad input is one clear error line with a non-zero exit.
set -u
cd "$(dirname "$0")/../.."
T=build/train_cpu
source dev/test/lib.sh
[ -x "$T" ] || { echo "FAIL: $T not built (run make)"; echo "0 passed, 1 failed"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
SMALL=(--seq-len 32 --batch 8 --micro-batch 4 --eval-samples 8 --mc-samples 2 --threads 2)

# 1. Loss falls (first vs last step) and validation improves, for both objectives.
for obj in ar mdm; do
    out=$($T --objective $obj "${SMALL[@]}" --steps 40 --eval-every 40 --lr 3e-3 2>&1)
    first=$(echo "$out" | grep '^step ' | head -n 1 | sed -E 's/.*loss ([0-9.]+).*/\1/')
    last=$(echo "$out" | grep '^step ' | tail -n 1 | sed -E 's/.*loss ([0-9.]+).*/\1/')
    if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 1.0) }'; then ok; else bad "$obj loss did not fall by 1 nat: $first -> $last"; fi
    echo "$out" | grep -q '^eval ' && ok || bad "$obj: no eval line"
done

# 2. Exact resume (scripts/resume_check.sh): 6 steps straight == 3 steps, stop, resume to 6.
for obj in ar mdm; do
    out=$(bash scripts/resume_check.sh "$tmp/resume_$obj" $T --objective $obj "${SMALL[@]}" 2>&1)
    p=$(echo "$out" | tail -n 1 | sed -E 's/^([0-9]+) passed.*/\1/'); f=$(echo "$out" | tail -n 1 | sed -E 's/.* ([0-9]+) failed.*/\1/')
    pass=$((pass + p)); fail=$((fail + f))
    [ "$f" -eq 0 ] || echo "$out"
done
cp "$tmp/resume_ar/full/model.ckpt" "$tmp/ar.ckpt"

# 3. Bad input: exactly one "error:" line on stderr and a non-zero exit.
expect_error "cannot open" $T --train-data "$tmp/nope"
expect_error "flag --lr: expected a number" $T --lr fast
expect_error "unknown flag --epoch" $T --epoch 3
expect_error "'gan' is not one of ar|mdm" $T --objective gan
expect_error "not a multiple of --micro-batch" $T --batch 10 --micro-batch 4
expect_error "flag --mdm-eps: 0 is outside [1e-06, 1]" $T --objective mdm --mdm-eps 0
expect_error "unknown model preset" $T --model 7b
expect_error "cannot open checkpoint" $T --resume "$tmp/missing.ckpt"
expect_error "is an ar model" $T --objective mdm "${SMALL[@]}" --steps 6 --resume "$tmp/ar.ckpt"
expect_error "another data order" $T --objective ar "${SMALL[@]}" --steps 7 --resume "$tmp/ar.ckpt"
expect_error "d_model 64, the requested model has 32" $T --objective ar "${SMALL[@]}" --steps 6 --d-model 32 --resume "$tmp/ar.ckpt"
head -c 1000 "$tmp/ar.ckpt" > "$tmp/trunc.ckpt"
expect_error "truncated" $T --resume "$tmp/trunc.ckpt"
expect_error "(--unique-tokens 1000, --epochs 0.0001" $T --steps 0 --epochs 0.0001 --unique-tokens 1000
expect_error "less than one batch" $T --steps 0 --epochs 0.1 --unique-tokens 1000 --seq-len 32 --batch 8
finish
