#!/usr/bin/env bash
# scripts/compare_eval.sh (gpucheck's eval_gpu vs eval_cpu comparison) run on the CPU: eval_cpu against itself and
# a generate_cpu smoke run pass every check, an evaluator whose losses and scores are 5% off fails both
# comparisons, and one whose scores are NaN fails the scores.
set -u
cd "$(dirname "$0")/../.."
T=build/train_cpu E=build/eval_cpu G=build/generate_cpu C=scripts/compare_eval.sh
source dev/test/lib.sh
for b in $T $E $G; do [ -x "$b" ] || { echo "FAIL: $b not built (run make)"; echo "0 passed, 1 failed"; exit 1; }; done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for obj in ar mdm; do
    $T --objective $obj --steps 2 --seq-len 32 --batch 2 --eval-samples 2 --threads 2 --quiet --ckpt-dir "$tmp/$obj" >/dev/null 2>&1 \
        || bad "$obj: training the tiny checkpoint failed"
done

# 1. The same evaluator twice: validation, task scores and the 4 generation checks pass.
for obj in ar mdm; do
    out=$(bash $C --load "$tmp/$obj/model.ckpt" --eval-a $E --eval-b $E --generate $G --threads 2 2>&1); rc=$?
    [ $rc -eq 0 ] && [ "$(echo "$out" | tail -n 1)" = "6 passed, 0 failed" ] && ok || bad "$obj self-comparison (rc $rc): $out"
done

# 2. An evaluator 5% off (eval_cpu with its loss line and every score scaled by 1.05) fails validation and scores.
cat > "$tmp/off.sh" <<'SH'
#!/usr/bin/env bash
scores=""; prev=""
for a in "$@"; do [ "$prev" = --scores-out ] && scores=$a; prev=$a; done
build/eval_cpu "$@" | awk '{ if (match($0, /(NLL|ELBO) [0-9.]+/)) { split(substr($0, RSTART, RLENGTH), p, " ");
    $0 = substr($0, 1, RSTART - 1) p[1] " " sprintf("%.4f", p[2] * 1.05) substr($0, RSTART + RLENGTH) } print }'
[ -z "$scores" ] || { awk -F'\t' -v OFS='\t' '{ $4 = $4 * 1.05; print }' "$scores" > "$scores.off" && mv "$scores.off" "$scores"; }
SH
chmod +x "$tmp/off.sh"
out=$(bash $C --load "$tmp/mdm/model.ckpt" --eval-a "$tmp/off.sh" --eval-b $E --threads 2 2>&1); rc=$?
[ $rc -ne 0 ] && [ "$(echo "$out" | tail -n 1)" = "0 passed, 2 failed" ] && echo "$out" | grep -q '^FAIL: validation' \
    && echo "$out" | grep -q '^FAIL: task scores' && ok || bad "5%-off evaluator not caught (rc $rc): $out"

# 3. An evaluator whose task scores are NaN (what a broken GPU head would print, as "-nan") fails the scores.
cat > "$tmp/nan.sh" <<'SH'
#!/usr/bin/env bash
scores=""; prev=""
for a in "$@"; do [ "$prev" = --scores-out ] && scores=$a; prev=$a; done
build/eval_cpu "$@"
[ -z "$scores" ] || { awk -F'\t' -v OFS='\t' '{ $4 = "-nan"; print }' "$scores" > "$scores.nan" && mv "$scores.nan" "$scores"; }
SH
chmod +x "$tmp/nan.sh"
out=$(bash $C --load "$tmp/ar/model.ckpt" --eval-a "$tmp/nan.sh" --eval-b $E --threads 2 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q '^FAIL: task scores' && ok || bad "NaN scores not caught (rc $rc): $out"

# 4. Its own bad input.
expect_error "--load CKPT is required" bash $C
expect_error "is not built" bash $C --load "$tmp/ar/model.ckpt" --eval-a "$tmp/none"
finish
