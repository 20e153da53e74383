#!/usr/bin/env bash
# scripts/compare_eval.sh — two evaluators on one checkpoint (`make gpucheck`: build/eval_gpu against the CPU
# reference build/eval_cpu on the 50-step trainer checkpoints), then a smoke run of a generator; prints
# "N passed, M failed" and exits non-zero on any failure.
#   1. validation: the same sequences and MDM draws (same --eval-seed) through both; the AR NLL / MDM ELBO must agree
#      within max(0.02 nats, 0.3%).
#   2. tasks: every choice's score (--scores-out) on dev/data/tasks/*.jsonl within max(0.1 nats, 1%).
#   3. generation (--generate BIN): exit 0 twice, each sample's text starts with the prompt, --print-ids shows
#      exactly --length ids below 50257 per sample, and the second run with the same seed prints the same.
# Tolerances: the GPU computes with the fp32 masters rounded to bf16, bf16 activations and bf16 logits (relative
# rounding 2^-9 per value) with fp32 accumulation and softmax, the CPU reference in fp32 throughout. A mean over
# thousands of tokens averages those roundings out (0.3% = 0.02 nats at a loss of 7); a choice's score sums a
# few tokens' log-probabilities with no averaging, so it gets 1%. Wrong rows, masks or targets move a score by
# whole nats per token.
set -u
cd "$(dirname "$0")/.."
source dev/test/lib.sh  # ok / bad / finish: the "N passed, M failed" line
usage() { echo "usage: scripts/compare_eval.sh --load CKPT [options]
  --load CKPT          checkpoint to evaluate (required)
  --eval-a BIN         evaluator under test (default build/eval_gpu)
  --eval-b BIN         reference evaluator (default build/eval_cpu)
  --generate BIN       generator for the smoke run (default: none, no generation checks)
  --eval-samples N     validation sequences (default 8)
  --mc-samples K       MDM draws for validation and tasks (default 2)
  --threads N          OpenMP threads of the programs (default 0 = all cores)"; }
CKPT=""; A=build/eval_gpu; B=build/eval_cpu; GEN=""; N=8; K=2; THREADS=0
die() { echo "error: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --load|--eval-a|--eval-b|--generate|--eval-samples|--mc-samples|--threads)
            [ $# -ge 2 ] || die "$1 needs a value"
            case $1 in
                --load) CKPT=$2 ;; --eval-a) A=$2 ;; --eval-b) B=$2 ;; --generate) GEN=$2 ;;
                --eval-samples) N=$2 ;; --mc-samples) K=$2 ;; --threads) THREADS=$2 ;;
            esac
            shift 2 ;;
        --help|-h) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
[ -n "$CKPT" ] || die "--load CKPT is required"
[ -f "$CKPT" ] || die "checkpoint $CKPT not found"
for b in "$A" "$B" ${GEN:+"$GEN"}; do [ -x "$b" ] || die "$b is not built (run: make $b)"; done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
COMMON=(--load "$CKPT" --mc-samples "$K" --threads "$THREADS")

# within X REF ABS REL: |X - REF| <= max(ABS, REL * |REF|).
within() {
    awk -v x="$1" -v r="$2" -v abs="$3" -v rel="$4" \
        'BEGIN { d = x - r; if (d < 0) d = -d; m = r < 0 ? -r : r; t = rel * m; if (t < abs) t = abs; exit !(d <= t) }'
}
# run_eval SIDE BIN ARGS...: the evaluator's output in $tmp/SIDE.txt; a failed run is a failed check.
run_eval() {
    local side=$1 bin=$2; shift 2
    "$bin" "${COMMON[@]}" "$@" >"$tmp/$side.txt" 2>&1 && return 0
    bad "$bin ${COMMON[*]} $*: exit non-zero: $(tail -n 3 "$tmp/$side.txt")"
    return 1
}

# 1. Validation.
if run_eval val_a "$A" --eval-samples "$N" && run_eval val_b "$B" --eval-samples "$N"; then
    grep -h '^val ' "$tmp/val_a.txt" "$tmp/val_b.txt"
    loss() { sed -nE 's/^val .*\| (NLL|ELBO) (-?[0-9.]+) .*/\2/p' "$1"; }
    la=$(loss "$tmp/val_a.txt"); lb=$(loss "$tmp/val_b.txt")
    if [ -n "$la" ] && [ -n "$lb" ] && within "$la" "$lb" 0.02 0.003; then
        ok; echo "ok    validation: $A $la vs $B $lb (tolerance max(0.02, 0.3%))"
    else
        bad "validation: $A '$la' vs $B '$lb' (tolerance max(0.02, 0.3%))"
    fi
fi
OBJ=$(sed -nE 's/^checkpoint .*: (ar|mdm) model, .*/\1/p' "$tmp/val_b.txt" | head -n 1)

# 2. Task scores, choice by choice.
tasks=()
for f in dev/data/tasks/*.jsonl; do tasks+=(--task "$f"); done
if run_eval tasks_a "$A" "${tasks[@]}" --scores-out "$tmp/scores_a.tsv" &&
   run_eval tasks_b "$B" "${tasks[@]}" --scores-out "$tmp/scores_b.tsv"; then
    grep -h '^task ' "$tmp/tasks_a.txt" "$tmp/tasks_b.txt"
    # n lines, keys that differ (task, example, choice), scores outside the tolerance, the largest difference.
    read -r n keys off worst < <(paste "$tmp/scores_a.tsv" "$tmp/scores_b.tsv" | awk -F'\t' '
        # a score that is not a finite decimal number (nan, inf) is off: awk comparisons with NaN are unreliable
        function finite(x) { return x ~ /^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }
        { n++; if ($1 != $5 || $2 != $6 || $3 != $7 || NF != 8) { keys++; next }
          if (!finite($4) || !finite($8)) { off++; next }
          d = $4 - $8; if (d < 0) d = -d; m = $8 < 0 ? -$8 : $8; t = 0.01 * m; if (t < 0.1) t = 0.1
          if (d > t) off++; if (d > worst) worst = d }
        END { printf "%d %d %d %.4g\n", n, keys, off, worst }')
    if [ "$n" -gt 0 ] && [ "$keys" -eq 0 ] && [ "$off" -eq 0 ]; then
        ok; echo "ok    task scores: $n choices agree, largest difference $worst nats (tolerance max(0.1, 1%))"
    else
        bad "task scores: $n choices, $keys mismatched lines, $off outside max(0.1, 1%) or not finite, largest difference $worst"
    fi
fi

# 3. Generation smoke run.
if [ -n "$GEN" ]; then
    L=12
    gen=(--load "$CKPT" --prompt "The" --length $L --samples 2 --seed 7 --temperature 1 --print-ids --threads "$THREADS")
    [ "$OBJ" = mdm ] && gen+=(--steps 6 --block 6)
    "$GEN" "${gen[@]}" >"$tmp/gen1.txt" 2>&1; rc1=$?
    "$GEN" "${gen[@]}" >"$tmp/gen2.txt" 2>&1; rc2=$?
    cat "$tmp/gen1.txt"
    [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && ok || bad "$GEN ${gen[*]}: exit $rc1 / $rc2: $(tail -n 3 "$tmp/gen1.txt")"
    [ "$(grep -A1 -E '^--- sample [0-9]+$' "$tmp/gen1.txt" | grep -c '^The')" -eq 2 ] && ok \
        || bad "generation: 2 samples starting with the prompt 'The' expected"
    awk -v L=$L '/^--- ids [0-9]+:/ { n++; if (NF - 3 != L) off++; for (i = 4; i <= NF; i++) if ($i < 0 || $i >= 50257) off++ }
                 END { exit !(n == 2 && off == 0) }' "$tmp/gen1.txt" && ok \
        || bad "generation: 2 samples of exactly $L ids in [0, 50257) expected"
    cmp -s "$tmp/gen1.txt" "$tmp/gen2.txt" && ok || bad "generation: two runs with seed 7 differ"
fi
finish
