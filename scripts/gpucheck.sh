#!/usr/bin/env bash
# scripts/gpucheck.sh — every GPU check in one run (what `make gpucheck` calls on a machine with a GPU):
# builds the CUDA programs for sm_90 (unless already built), runs every dev/cuda kernel test and the trainer
# tests, runs compute-sanitizer memcheck on a small test, trains each objective briefly, and prints one
# PASS/FAIL table last. Logs go to $OUT (or build/gpucheck) — one file per check.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-build/gpucheck}
mkdir -p "$OUT"
SUMMARY=()
fails=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$OUT/device.txt"

# check NAME TIMEOUT CMD... : runs CMD, logs it, records PASS/FAIL with the last summary line and seconds.
check() {
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS rc
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1; rc=$?
    local last
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed|^RESULT' "$OUT/$name.log" | tail -n 1)
    [ -z "$last" ] && last=$(tail -n 1 "$OUT/$name.log" | cut -c1-70)
    local verdict=PASS
    [ "$rc" -ne 0 ] && verdict=FAIL && fails=$((fails + 1))
    [ "$rc" -eq 124 ] && last="timed out after ${limit}s"
    SUMMARY+=("$(printf '%-4s  %-26s %5ss  %s' "$verdict" "$name" $((SECONDS - t0)) "$last")")
    echo "== $verdict $name ($((SECONDS - t0))s): $last"
    [ "$verdict" = FAIL ] && tail -n 15 "$OUT/$name.log"
}

make -j"$(nproc)" gpu >"$OUT/build.log" 2>&1 || { echo "BUILD FAILED"; tail -n 40 "$OUT/build.log"; exit 1; }

for bin in build/cuda/*; do
    [ -x "$bin" ] && check "$(basename "$bin")" 120 "$bin"
done
for t in test_gpt test_mdm; do
    [ -x "build/$t" ] && check "$t" 180 "build/$t"
done
# memcheck on the smallest shapes only: the sanitizer slows kernels ~100x.
for bin in build/cuda/swiglu build/cuda/rmsnorm; do
    [ -x "$bin" ] && check "memcheck_$(basename "$bin")" 180 compute-sanitizer --tool memcheck --error-exitcode 1 "$bin" --quick
done
[ -x build/train_gpt ] && check train_gpt_50steps 240 build/train_gpt --steps 50 --log "$OUT/train_gpt.jsonl"
[ -x build/train_mdm ] && check train_mdm_50steps 240 build/train_mdm --steps 50 --log "$OUT/train_mdm.jsonl"

echo
echo "==================== gpucheck summary ($(head -n 1 "$OUT/device.txt")) ===================="
printf '%s\n' "${SUMMARY[@]}" | tee "$OUT/summary.txt"
echo "$((${#SUMMARY[@]} - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
