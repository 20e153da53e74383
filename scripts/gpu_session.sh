#!/usr/bin/env bash
# scripts/gpu_session.sh — a time-limited GPU session in one command, for a lent GPU machine that gets the checkout
# plus binaries built elsewhere and returns only a few files: the GPU checks (gpucheck.sh, never-run checks first)
# within --check-seconds, then the crossover experiment (crossover.sh) with what is left of --seconds, so the whole
# command ends in time and its results come back even when runs are cut short.
#
# On the machine that builds (no GPU needed):   make gpu build/eval_cpu build/prepare
#                                               scripts/gpu_session.sh --carry    (the paths to carry, size-checked)
# On the GPU machine, as one command:           bash scripts/gpu_session.sh [--seconds N] ...
# If the machine is still held with time left, a second call completes the runs the first skipped (its last lines
# name them) into the same runs/crossover, which a warm machine keeps, and returns the whole report:
#                                               bash scripts/gpu_session.sh --check-seconds 0 --seconds N \
#                                                   -- --epochs-ar LIST --epochs-mdm LIST
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/gpu_session.sh [options] [-- crossover.sh options]
Runs GPUCHECK_NOBUILD=1 scripts/gpucheck.sh with a budget of --check-seconds, then scripts/crossover.sh with
--time-limit = what is left of --seconds minus $((MARGIN_S))s (report, a run stopped at the limit, copying), and copies
to \$OUT (or --out): summary.txt and gpucheck_logs.tgz (gpucheck), crossover.log, crossover.tgz (every run's log),
results.md, results.csv, crossover.png. Nothing is built: the binaries must come built (see --carry).

options:
  --seconds N        the whole command's time (default 570: a 600 s call with room to return)
  --check-seconds N  gpucheck's budget: no check starts after it, one running then may take up to its own limit
                     (the crossover gets what is left) (default 150; 0 skips the checks)
  --out DIR          where the results go (default \$OUT)
  --runs DIR         the crossover's run folders (default runs/crossover)
  --carry            print the build outputs to carry to the GPU machine, one per line, after checking they are
                     built and up to date and that they fit the 64 MiB a call may carry with the checkout; runs nothing
  --help             this text"; }

MARGIN_S=60                     # seconds after the crossover's limit: its overrun stop (20), report, tar, copies
CARRY=(build/cuda build/train_gpt build/train_mdm build/test_gpt build/eval_gpu build/generate_gpu build/eval_cpu
       build/prepare)           # not build/data: tokenising here takes 2 s and its 20 MB would not fit
CARRY_MAKE=(gpu build/eval_cpu build/prepare)  # the make targets that build them
CARRY_LIMIT_MB=64
TOTAL=570 CHECK=150 DEST=${OUT:-} RUNS=runs/crossover CROSSOVER_ARGS=()
die() { echo "error: $*" >&2; exit 1; }
posint() { [[ "$2" =~ ^[0-9]+$ ]] || die "$1 must be a whole number of seconds, got '$2'"; }

carry() {
    make -q "${CARRY_MAKE[@]}" 2>/dev/null ||
        die "build outputs missing or older than their sources: run make ${CARRY_MAKE[*]} first"
    local tracked carried
    # --files0-from: one total however many files (xargs may split a long list into several du runs)
    tracked=$(git ls-files -z | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f1)
    carried=$(du -cb "${CARRY[@]}" | tail -n 1 | cut -f1)
    local total_mb=$(( (tracked + carried) / 1048576 ))
    [ "$total_mb" -lt "$CARRY_LIMIT_MB" ] ||
        die "checkout $((tracked / 1048576)) MiB + carried $((carried / 1048576)) MiB exceed the ${CARRY_LIMIT_MB} MiB a call carries"
    echo "# carried $((carried / 1048576)) MiB + checkout $((tracked / 1048576)) MiB of ${CARRY_LIMIT_MB} MiB" >&2
    printf '%s\n' "${CARRY[@]}"
}

while [ $# -gt 0 ]; do
    case $1 in
        --seconds) [ $# -ge 2 ] || die "--seconds needs a value"; posint "$1" "$2"; TOTAL=$2; shift 2 ;;
        --check-seconds) [ $# -ge 2 ] || die "--check-seconds needs a value"; posint "$1" "$2"; CHECK=$2; shift 2 ;;
        --out) [ $# -ge 2 ] || die "--out needs a value"; DEST=$2; shift 2 ;;
        --runs) [ $# -ge 2 ] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
        --carry) carry; exit 0 ;;
        --help|-h) usage; exit 0 ;;
        --) shift; CROSSOVER_ARGS=("$@"); break ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[ -n "$DEST" ] || die "no output folder: set OUT or pass --out DIR"
[ "$CHECK" -eq 0 ] || [ $((TOTAL - CHECK - 60 - MARGIN_S)) -ge 60 ] ||
    die "--seconds $TOTAL leaves under 60 s for the crossover after --check-seconds $CHECK (+60 s for its last check and ${MARGIN_S} s margin)"
mkdir -p "$DEST"

if [ "$CHECK" -gt 0 ]; then
    # Its own FAILs are in its table; the session goes on to the experiment either way.
    OUT=$DEST GPUCHECK_NOBUILD=1 GPUCHECK_BUDGET=$CHECK bash scripts/gpucheck.sh || true
fi

source scripts/gpu_env.sh  # the same libraries and data as the checks
gpu_data || die "could not tokenise the crossover's data (make data)"
limit=$((TOTAL - SECONDS - MARGIN_S))
echo "== gpu_session: ${SECONDS}s spent, crossover time limit ${limit}s" | tee "$DEST/crossover.log"
rc=0
if [ "$limit" -ge 30 ]; then
    bash scripts/crossover.sh --time-limit "$limit" --out "$RUNS" "${CROSSOVER_ARGS[@]}" 2>&1 |
        tee -a "$DEST/crossover.log" || rc=$?
else
    echo "no time left for the crossover" | tee -a "$DEST/crossover.log"; rc=1
fi
if [ -d "$RUNS" ]; then
    tar czf "$DEST/crossover.tgz" -C "$(dirname "$RUNS")" "$(basename "$RUNS")"
    for f in results.md results.csv crossover.png; do
        if [ -f "$RUNS/$f" ]; then cp "$RUNS/$f" "$DEST/"; fi
    done
fi
echo "== gpu_session: done in ${SECONDS}s (crossover exit $rc); results in $DEST"
exit "$rc"
