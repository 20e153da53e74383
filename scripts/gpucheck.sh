#!/usr/bin/env bash
# scripts/gpucheck.sh — every GPU check in one run (`make gpucheck` on a machine with a GPU): builds the CUDA
# programs for sm_90 (GPUCHECK_NOBUILD=1 uses binaries built elsewhere), runs the trainer tests against the CPU
# reference, every dev/cuda kernel test (correctness only: timing is `make bench`), compute-sanitizer memcheck
# on small cases, ~50 training steps of each objective, exact resume, the data-parallel (NCCL) path, a smoke run of
# the crossover experiment, a short benchmark of the seed's 140M AR config (B=8, T=2048), and prints one PASS/FAIL table last. One log per check in build/gpucheck; when $OUT is set, the
# summary and a tarball of the logs are copied there. GPUCHECK_BUDGET (seconds, default 450) skips the checks that
# would start after it, so a time-limited machine still returns a table.
set -u
cd "$(dirname "$0")/.."
LOGS=build/gpucheck
rm -rf "$LOGS"; mkdir -p "$LOGS"
BUDGET=${GPUCHECK_BUDGET:-450}
SUMMARY=()
fails=0
skipped=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$LOGS/device.txt"
T0=$SECONDS

# check NAME TIMEOUT CMD... : runs CMD, logs it, records PASS/FAIL with its last summary line and seconds.
check() {
    local name=$1 limit=$2; shift 2
    if [ $((SECONDS - T0)) -ge "$BUDGET" ]; then
        SUMMARY+=("$(printf '%-4s  %-24s %4ss  %s' SKIP "$name" 0 "time budget of ${BUDGET}s spent")")
        skipped=$((skipped + 1))
        return
    fi
    local left=$((BUDGET + 60 - (SECONDS - T0)))
    [ "$limit" -gt "$left" ] && limit=$left
    local t0=$SECONDS rc
    timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1; rc=$?
    local last
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed|^done |^RESULT|^crossover: ' "$LOGS/$name.log" | tail -n 1 | cut -c1-90)
    [ -z "$last" ] && last=$(tail -n 1 "$LOGS/$name.log" | cut -c1-90)
    local verdict=PASS
    [ "$rc" -ne 0 ] && verdict=FAIL && fails=$((fails + 1))
    [ "$rc" -eq 124 ] && last="timed out after ${limit}s"
    SUMMARY+=("$(printf '%-4s  %-24s %4ss  %s' "$verdict" "$name" $((SECONDS - t0)) "$last")")
    echo "== $verdict $name ($((SECONDS - t0))s, total $((SECONDS - T0))s): $last"
    if [ "$verdict" = FAIL ]; then tail -n 25 "$LOGS/$name.log"; fi
}

if [ "${GPUCHECK_NOBUILD:-0}" != 1 ]; then
    make -j"$(nproc)" gpu build/eval_cpu >"$LOGS/build.log" 2>&1 || { echo "BUILD FAILED"; tail -n 40 "$LOGS/build.log"; exit 1; }
fi

# 1. The trainers against the CPU reference, then the pieces that never ran before, first.
[ -x build/test_gpt ] && check test_gpt 150 build/test_gpt
for k in mdm_corrupt mdm_loss; do
    [ -x "build/cuda/$k" ] && check "$k" 60 "build/cuda/$k" --no-bench
done
# 2. Short training runs on the bundled data (defaults: the one-GPU quickstart configs).
[ -x build/train_gpt ] && check train_gpt_50steps 90 build/train_gpt --steps 50 --eval-every 25 --log "$LOGS/train_gpt.jsonl" \
    --ckpt-dir "$LOGS/ckpt_train_gpt"
[ -x build/train_mdm ] && check train_mdm_50steps 90 build/train_mdm --steps 50 --eval-every 25 --log "$LOGS/train_mdm.jsonl" \
    --ckpt-dir "$LOGS/ckpt_train_mdm"
# 2b. Exact resume on the GPU: 6 steps straight == 3 steps, --stop-at, --resume to 6 (checkpoints compared bytewise).
for t in train_gpt train_mdm; do
    [ -x "build/$t" ] && check "resume_$t" 90 bash scripts/resume_check.sh "$LOGS/resume_$t" "build/$t" --eval-samples 8
done
# eval_gpu against eval_cpu on the 50-step checkpoints (validation loss, every task choice's score, within bf16
# tolerances) and a generate_gpu smoke run (prompt, length, same seed = same text): scripts/compare_eval.sh.
for t in train_gpt train_mdm; do
    [ -f "$LOGS/ckpt_$t/model.ckpt" ] && check "eval_gpu_$t" 180 bash scripts/compare_eval.sh \
        --load "$LOGS/ckpt_$t/model.ckpt" --eval-a build/eval_gpu --eval-b build/eval_cpu --generate build/generate_gpu
done
# 2b'. train_mdm's GPU corruption kernel vs the host mask builder: the same training within bf16 tolerance.
[ -x build/train_mdm ] && check corruption_check 120 bash scripts/corruption_check.sh "$LOGS/corruption"
# 2b''. The crossover experiment's own path (scripts/crossover.sh, mini at S=512 on the Wikipedia sample), one short
# run per objective, so `make crossover` is known to work before it spends ~10 minutes; prints mini's measured tok/s.
# The tokenised data may come carried (build/data) from a machine that ran `make data`; else it is made here.
[ -x build/train_mdm ] && check crossover_smoke 120 bash -c '{ [ -f build/data/wiki_train.bin ] && [ -f build/data/wiki_val.bin ]; } ||
    make -s data >/dev/null && bash scripts/crossover.sh --unique-tokens 500000 --epochs-ar 2 --epochs-mdm 2 --evals 2 \
    --time-limit 0 --out "$0"' "$LOGS/crossover_smoke"
# 2c. Data parallel: the NCCL path with one rank == the plain run (bits); two ranks sharing the GPU if NCCL allows.
[ -x build/train_gpt ] && check dp_check 240 bash scripts/dp_check.sh "$LOGS/dp"
# 3. The seed's 140M AR config, B=8 x T=2048, a few steps: tok/s and MFU (full comparison: make bench).
[ -x build/train_gpt ] && check bench_140m_ar 90 build/train_gpt --model 140m --seq-len 2048 --batch 8 --micro-batch 8 \
    --steps 12 --eval-every 0 --eval-samples 8 --log "$LOGS/bench_140m_ar.jsonl"
# 4. Every other kernel test, correctness only.
for bin in build/cuda/*; do
    name=$(basename "$bin")
    case "$name" in mdm_corrupt|mdm_loss) continue ;; esac
    [ -x "$bin" ] && check "$name" 60 "$bin" --no-bench
done
# 5. compute-sanitizer memcheck on small cases (the sanitizer slows kernels ~100x).
if command -v compute-sanitizer >/dev/null; then
    [ -x build/test_gpt ] && check memcheck_test_gpt 150 compute-sanitizer --tool memcheck --error-exitcode 1 build/test_gpt --quick
    for k in mdm_corrupt attention; do
        [ -x "build/cuda/$k" ] && check "memcheck_$k" 90 compute-sanitizer --tool memcheck --error-exitcode 1 "build/cuda/$k" --quick
    done
fi

if [ -f "$LOGS/bench_140m_ar.jsonl" ]; then
    python3 - "$LOGS/bench_140m_ar.jsonl" <<'PY' | tee "$LOGS/bench.txt"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"kind": "train"' in l][3:]
if rows:
    t = statistics.median(r["tok_per_s"] for r in rows); m = statistics.median(r.get("mfu", float("nan")) for r in rows)
    print(f"140m AR B=8 T=2048: {t:,.0f} tok/s, MFU {100*m:.1f}% (median of {len(rows)} steps)")
PY
fi
if [ -n "${OUT:-}" ]; then tar czf "$OUT/gpucheck_logs.tgz" -C "$LOGS" . ; fi
echo
echo "==================== gpucheck summary ($(head -n 1 "$LOGS/device.txt"), $((SECONDS - T0))s) ===================="
printf '%s\n' "${SUMMARY[@]}" | tee "$LOGS/summary.txt"
[ -n "${OUT:-}" ] && cp "$LOGS/summary.txt" "$OUT/"
echo "$((${#SUMMARY[@]} - fails - skipped)) passed, $fails failed, $skipped skipped"
[ "$fails" -eq 0 ] && [ "$skipped" -eq 0 ]
