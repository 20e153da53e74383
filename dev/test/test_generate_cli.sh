#!/usr/bin/env bash
# generate_cpu end to end: train tiny AR and MDM checkpoints with train_cpu, generate from both (text printed,
# exit 0, same seed = same text), and bad input is one "error:" line with a non-zero exit.
set -u
cd "$(dirname "$0")/../.."
G=build/generate_cpu T=build/train_cpu
source dev/test/lib.sh
for b in $G $T; do [ -x "$b" ] || { echo "FAIL: $b not built (run make)"; echo "0 passed, 1 failed"; exit 1; }; done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
TINY=(--seq-len 32 --batch 2 --micro-batch 2 --steps 2 --eval-samples 2 --mc-samples 1 --threads 2 --quiet)
$T --objective ar "${TINY[@]}" --ckpt-dir "$tmp/ar" >/dev/null 2>&1 || bad "train_cpu ar failed"
$T --objective mdm "${TINY[@]}" --ckpt-dir "$tmp/mdm" >/dev/null 2>&1 || bad "train_cpu mdm failed"
AR=$tmp/ar/model.ckpt MDM=$tmp/mdm/model.ckpt

# 1. Generation prints one block of text per sample, starting with the prompt; deterministic per seed.
expect_text() {  # expect_text NAME ARGS...
    local name=$1; shift
    local out rc
    out=$($G --threads 2 "$@" 2>&1); rc=$?
    if [ $rc -eq 0 ] && echo "$out" | grep -q '^--- sample 0' && echo "$out" | grep -A1 '^--- sample 0' | tail -n 1 | grep -q '^Once upon'; then
        ok
    else
        bad "$name: rc $rc, output: $out"
    fi
    printf '%s\n' "$out" > "$tmp/$name.txt"
}
expect_text ar_greedy --load "$AR" --prompt "Once upon a time" --length 4 --temperature 0
expect_text ar_topk --load "$AR" --prompt "Once upon a time" --length 4 --top-k 5 --samples 3 --seed 4
expect_text ar_topk2 --load "$AR" --prompt "Once upon a time" --length 4 --top-k 5 --samples 3 --seed 4
expect_text mdm_seed --load "$MDM" --prompt "Once upon a time" --length 4 --temperature 0
expect_text mdm_blocks --load "$MDM" --prompt "Once upon a time" --length 8 --steps 4 --block 4 --remasking random --samples 2
[ "$(grep -c '^--- sample' "$tmp/ar_topk.txt")" -eq 3 ] && ok || bad "--samples 3 did not print 3 samples"
cmp -s "$tmp/ar_topk.txt" "$tmp/ar_topk2.txt" && ok || bad "same seed gave different text"
out=$($G --threads 2 --load "$AR" --prompt "Once upon a time" --length 4 --top-k 5 --samples 3 --seed 5 2>&1)
[ "$out" != "$(cat "$tmp/ar_topk.txt")" ] && ok || bad "seeds 4 and 5 gave the same text"
out=$($G --threads 2 --load "$MDM" --length 2 2>&1) && ok || bad "MDM without a prompt failed: $out"
out=$($G --threads 2 --load "$AR" --length 2 2>&1) && ok || bad "AR without a prompt failed: $out"

# 2. Bad input: exactly one "error:" line on stderr and a non-zero exit.
head -c 1000 "$AR" > "$tmp/trunc.ckpt"
long=$(printf 'word %.0s' $(seq 1 40))
expect_error "--load CKPT is required" $G
expect_error "cannot open checkpoint" $G --load "$tmp/missing.ckpt"
expect_error "truncated" $G --load "$tmp/trunc.ckpt"
expect_error "bad magic" $G --load dev/data/gpt2-merges.txt
expect_error "exceeds the model's context of 32" $G --load "$AR" --prompt "$long" --length 4
expect_error "exceeds the model's context of 32" $G --load "$MDM" --length 33
expect_error "flag --samples: 0 is outside" $G --load "$AR" --samples 0
expect_error "flag --top-k: -1 is outside" $G --load "$AR" --top-k -1
expect_error "flag --length: 0 is outside" $G --load "$AR" --length 0
expect_error "'greedy' is not one of" $G --load "$MDM" --remasking greedy
expect_error "unknown flag --temp" $G --load "$AR" --temp 1
expect_error "is an ar model, --objective asks for mdm" $G --load "$AR" --objective mdm
expect_error "apply to MDM checkpoints" $G --load "$AR" --steps 4
expect_error "not a multiple of --block 3" $G --load "$MDM" --length 8 --block 3
expect_error "number of blocks (2)" $G --load "$MDM" --length 8 --block 4 --steps 3
finish
