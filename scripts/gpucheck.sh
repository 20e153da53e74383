#!/usr/bin/env bash
# scripts/gpucheck.sh — every GPU check in one run (`make gpucheck` on a machine with a GPU): builds the CUDA
# programs for sm_90 (GPUCHECK_NOBUILD=1 uses binaries built elsewhere), runs the trainer tests against the CPU
# reference, every dev/cuda kernel test (correctness only: timing is `make bench`), compute-sanitizer memcheck
# on small cases, ~50 training steps of each objective, exact resume, the data-parallel (NCCL) path, a smoke run of
# the crossover experiment, a short benchmark of the seed's 140M AR config (B=8, T=2048), and prints one PASS/FAIL table last. One log per check in build/gpucheck; when $OUT is set, the
# summary (row by row, so a call cut short still returns what finished) and a tarball of the logs (checkpoints left
# out) are copied there. GPUCHECK_BUDGET (seconds, default 450) skips the checks that would start after it, so a
# time-limited machine still returns a table. A program the checks need that is missing is a FAIL, not a silence.
set -u
cd "$(dirname "$0")/.."
source scripts/gpu_env.sh  # NCCL / cuBLASLt on the loader path; gpu_data (the crossover's tokenised Wikipedia sample)
LOGS=build/gpucheck
rm -rf "$LOGS"; mkdir -p "$LOGS"
BUDGET=${GPUCHECK_BUDGET:-450}
SUMMARY=()
fails=0
skipped=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$LOGS/device.txt"
echo "libraries: $GPU_ENV_NOTE" | tee -a "$LOGS/device.txt"
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && : >"$OUT/summary.txt"; fi
T0=$SECONDS

# row VERDICT NAME SECONDS TEXT: one line of the summary table (also appended to $OUT/summary.txt at once).
row() {
    local line
    line=$(printf '%-4s  %-24s %4ss  %s' "$@")
    SUMMARY+=("$line")
    if [ -n "${OUT:-}" ]; then echo "$line" >>"$OUT/summary.txt"; fi
}

# check NAME TIMEOUT CMD... : runs CMD, logs it, records PASS/FAIL with its last summary line and seconds.
check() {
    local name=$1 limit=$2; shift 2
    if [ $((SECONDS - T0)) -ge "$BUDGET" ]; then
        row SKIP "$name" 0 "time budget of ${BUDGET}s spent"
        skipped=$((skipped + 1))
        return
    fi
    local left=$((BUDGET + 60 - (SECONDS - T0)))
    [ "$limit" -gt "$left" ] && limit=$left
    local t0=$SECONDS rc
    timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1; rc=$?
    local last
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed|^done |^RESULT|^crossover: |^error: ' "$LOGS/$name.log" | tail -n 1 | cut -c1-90)
    [ -z "$last" ] && last=$(tail -n 1 "$LOGS/$name.log" | cut -c1-90)
    local verdict=PASS
    if [ "$rc" -ne 0 ] && [[ "$name" == memcheck_* ]] && grep -q "Device not supported" "$LOGS/$name.log"; then
        # compute-sanitizer refuses the GPU on some sandboxed machines (gVisor): no memcheck there, not a bug.
        row SKIP "$name" $((SECONDS - t0)) "compute-sanitizer: Device not supported on this machine"
        skipped=$((skipped + 1))
        return
    fi
    [ "$rc" -ne 0 ] && verdict=FAIL && fails=$((fails + 1))
    [ "$rc" -eq 124 ] && last="timed out after ${limit}s"
    row "$verdict" "$name" $((SECONDS - t0)) "$last"
    echo "== $verdict $name ($((SECONDS - t0))s, total $((SECONDS - T0))s): $last"
    if [ "$verdict" = FAIL ]; then tail -n 25 "$LOGS/$name.log"; fi
}

if [ "${GPUCHECK_NOBUILD:-0}" != 1 ]; then  # else the binaries come built (carried) from another machine
    make -j"$(nproc)" gpu build/eval_cpu >"$LOGS/build.log" 2>&1 || { echo "BUILD FAILED"; tail -n 40 "$LOGS/build.log"; exit 1; }
fi

# learned LOG: the last validation of a short run must be well below the untrained loss (ln 50304 = 10.83; the
# 50-step runs reach ~7.4 AR / ~7.6 MDM): a run that exits cleanly without learning is a FAIL too.
learned() {
    awk '/"kind": "eval"/ { n++; v = "null"  # the logger writes a NaN as null
                            if (match($0, /"val_loss": [0-9.eE+-]+/)) v = substr($0, RSTART + 12, RLENGTH - 12) }
         END { printf "last validation loss %s (must be < 9.5)\n", n ? v : "none"; exit !(n && v ~ /^[0-9]/ && v + 0 < 9.5) }' "$1"
}
export -f learned

# 1. The trainers against the CPU reference, then the pieces that never ran before, first.
check test_gpt 150 build/test_gpt
for k in mdm_corrupt mdm_loss; do check "$k" 60 "build/cuda/$k" --no-bench; done
# 2. Short training runs on the bundled data (defaults: the one-GPU quickstart configs).
for t in train_gpt train_mdm; do
    check "${t}_50steps" 90 bash -c "build/$t --steps 50 --eval-every 25 --log $LOGS/$t.jsonl --ckpt-dir $LOGS/ckpt_$t &&
        learned $LOGS/$t.jsonl"
done
# 2b. Exact resume on the GPU: 6 steps straight == 3 steps, --stop-at, --resume to 6 (checkpoints compared bytewise).
for t in train_gpt train_mdm; do
    check "resume_$t" 90 bash scripts/resume_check.sh "$LOGS/resume_$t" "build/$t" --eval-samples 8
done
# eval_gpu against eval_cpu on the 50-step checkpoints (validation loss, every task choice's score, within bf16
# tolerances) and a generate_gpu smoke run (prompt, length, same seed = same text): scripts/compare_eval.sh.
for t in train_gpt train_mdm; do
    check "eval_gpu_$t" 180 bash scripts/compare_eval.sh \
        --load "$LOGS/ckpt_$t/model.ckpt" --eval-a build/eval_gpu --eval-b build/eval_cpu --generate build/generate_gpu
done
# 2b'. train_mdm's GPU corruption kernel vs the host mask builder: the same training within bf16 tolerance.
check corruption_check 120 bash scripts/corruption_check.sh "$LOGS/corruption"
# 2b''. The crossover experiment's own path (scripts/crossover.sh, mini at S=512 on the Wikipedia sample), one short
# run per objective, so `make crossover` is known to work before it spends ~10 minutes; prints mini's measured tok/s.
check crossover_smoke 120 bash -c 'gpu_data && bash scripts/crossover.sh --unique-tokens 500000 --epochs-ar 2 \
    --epochs-mdm 2 --evals 2 --time-limit 0 --out "$0"' "$LOGS/crossover_smoke"
# 2c. Data parallel: the NCCL path with one rank == the plain run (bits); two ranks sharing one GPU are SKIPs (NCCL
# refuses them; test_gpt checks the ZeRO-1 shards with ranks emulated in one process).
check dp_check 240 bash scripts/dp_check.sh "$LOGS/dp"
# 3. The seed's 140M AR config, B=8 x T=2048, a few steps: tok/s and MFU (full comparison: make bench).
check bench_140m_ar 90 build/train_gpt --model 140m --seq-len 2048 --batch 8 --micro-batch 8 \
    --steps 12 --eval-every 0 --eval-samples 8 --log "$LOGS/bench_140m_ar.jsonl"
# 4. Every other kernel test (one per dev/cuda/*.cu), correctness only.
for src in dev/cuda/*.cu; do
    name=$(basename "$src" .cu)
    case "$name" in mdm_corrupt|mdm_loss) continue ;; esac
    check "$name" 60 "build/cuda/$name" --no-bench
done
# 5. compute-sanitizer memcheck on small cases (the sanitizer slows kernels ~100x).
if command -v compute-sanitizer >/dev/null; then
    check memcheck_test_gpt 150 compute-sanitizer --tool memcheck --error-exitcode 1 build/test_gpt --quick
    for k in mdm_corrupt attention; do
        check "memcheck_$k" 90 compute-sanitizer --tool memcheck --error-exitcode 1 "build/cuda/$k" --quick
    done
else
    row SKIP memcheck 0 "compute-sanitizer not found"
    skipped=$((skipped + 1))
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
echo
header="==================== gpucheck summary ($(head -n 1 "$LOGS/device.txt"), $((SECONDS - T0))s) ===================="
counts="$((${#SUMMARY[@]} - fails - skipped)) passed, $fails failed, $skipped skipped"
echo "$header"
{ printf '%s\n' "${SUMMARY[@]}"; echo "$counts"; } | tee "$LOGS/summary.txt"
if [ -n "${OUT:-}" ]; then
    { echo "$header"; cat "$LOGS/summary.txt"; cat "$LOGS/bench.txt" 2>/dev/null; } >"$OUT/summary.txt"
    # Checkpoints (~190 MB each, ~30 of them) neither compress nor fit what comes back; the logs say what they held.
    tar czf "$OUT/gpucheck_logs.tgz" --exclude='*.ckpt' -C "$LOGS" .
fi
[ "$fails" -eq 0 ] && [ "$skipped" -eq 0 ]
