#!/usr/bin/env bash
# Runs every CPU test (C++ binaries build/test_*, Python dev/test/test_*.py, shell dev/test/test_*.sh) from the
# repository root, prints each one's summary and ends with the total line "N passed, M failed".
# A test that crashes or prints no summary counts as one failure.
set -u
cd "$(dirname "$0")/../.."
PY=${PYTHON:-/usr/bin/python3}
total_pass=0
total_fail=0
run() {  # run NAME CMD...
    local name=$1; shift
    local t0=$SECONDS out rc
    out=$("$@" 2>&1); rc=$?
    local last
    last=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$last" ]; then
        printf '%s\n' "$out" | tail -n 20
        echo "[FAIL] $name: no summary line (exit $rc)"
        total_fail=$((total_fail + 1))
        return
    fi
    local p f
    p=$(echo "$last" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$last" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ "$f" -ne 0 ]; then printf '%s\n' "$out" | grep -E 'FAIL|error' | head -n 30; fi
    printf '[%s] %-28s %s (%ds)\n' "$([ "$f" -eq 0 ] && echo ok || echo FAIL)" "$name" "$last" $((SECONDS - t0))
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}
for t in build/test_*; do
    [ -f "$(basename "$t").cu" ] && continue  # a GPU test (test_gpt.cu): make gpucheck runs it
    [ -x "$t" ] && run "$(basename "$t")" "$t"
done
for t in dev/test/test_*.py; do
    [ -e "$t" ] && run "$(basename "$t")" "$PY" "$t"
done
for t in dev/test/test_*.sh; do
    [ -e "$t" ] && run "$(basename "$t")" bash "$t"
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
