#!/usr/bin/env bash
# scripts/gpu_session.sh (a whole GPU session in one command) and scripts/gpucheck.sh's table, on a machine without a
# GPU: bad options give one error line; the session with the CPU trainer behind fake GPU trainer names runs the
# crossover with the time left and copies its results to OUT; gpucheck's table in OUT names missing programs as FAIL
# rows and its time budget as SKIP rows.
set -u
cd "$(dirname "$0")/../.."
source dev/test/lib.sh
PY=${PYTHON:-/usr/bin/python3}
X=scripts/gpu_session.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

bash $X --help | grep -q '^usage:' && ok || bad "--help"
expect_error "unknown option --bogus" bash $X --bogus
expect_error "no output folder" env OUT= bash $X
expect_error "--seconds must be a whole number" bash $X --seconds 5m --out "$tmp/o"
expect_error "leaves under 60 s for the crossover" bash $X --seconds 300 --check-seconds 200 --out "$tmp/o"
expect_error "--check-seconds needs a value" bash $X --check-seconds

# The session: no checks, the crossover of 1 AR + 1 MDM run (train_cpu behind the names train_gpt / train_mdm).
if [ -x build/train_cpu ]; then
    F=$tmp/fake && mkdir -p $F
    cpu_trainer_as $F train_gpt ar
    cpu_trainer_as $F train_mdm mdm
    out=$(PYTHON="$PY" bash $X --seconds 200 --check-seconds 0 --out $tmp/out --runs $tmp/runs -- --build-dir $F \
          --model tiny --seq-len 32 --batch 4 --micro-batch 4 --unique-tokens 512 --epochs-ar 1 --epochs-mdm 1 --evals 1 \
          --eval-batches 1 -- --threads 2 2>&1) && ok || bad "session: $out"
    # 200 s - the few spent before it - 60 s margin
    [[ "$out" =~ crossover\ time\ limit\ 1[34][0-9]s ]] && ok || bad "time limit: $(grep 'time limit' <<<"$out")"
    has "$out" "crossover: 2 runs in"
    for f in crossover.log crossover.tgz results.md results.csv; do [ -s $tmp/out/$f ] && ok || bad "$f not in OUT"; done
    [ "$(tar tzf $tmp/out/crossover.tgz | grep -c 'train.jsonl$')" -eq 2 ] && ok || bad "crossover.tgz: $(tar tzf $tmp/out/crossover.tgz)"
    grep -q "^crossover: 2 runs in" $tmp/out/crossover.log && ok || bad "crossover.log"
else
    bad "build/train_cpu not built (run make)"
fi

# gpucheck in a bare copy of the repository (its scripts, the kernel lab sources, no binaries), without a GPU:
# every program it needs is missing, and each is a FAIL row naming it (not a silently dropped check); OUT gets the
# table and the logs. With a budget of 0 s every check is a SKIP row instead.
G=$tmp/gc && mkdir -p $G/scripts $G/dev/cuda
cp scripts/gpucheck.sh scripts/gpu_env.sh $G/scripts/ && cp dev/cuda/*.cu $G/dev/cuda/
# A compute-sanitizer that refuses the device, as on sandboxed (gVisor) machines: memcheck rows are SKIPs there.
mkdir -p $tmp/bin && fake_program $tmp/bin/compute-sanitizer 'echo "========= Error: Device not supported"' 'exit 1'
gpucheck() { (cd $G && env PATH="$tmp/bin:$PATH" OUT="$1" GPUCHECK_NOBUILD=1 GPUCHECK_BUDGET="$2" bash scripts/gpucheck.sh >/dev/null 2>&1); }
gpucheck $tmp/gcout 1000 && bad "gpucheck without a GPU must fail" || ok
S=$tmp/gcout/summary.txt
grep -q '^FAIL  test_gpt .*build/test_gpt.*No such file' $S && ok || bad "test_gpt row: $(cat $S)"
grep -q '^FAIL  train_mdm_50steps .*build/train_mdm.*No such file' $S && ok || bad "train_mdm row: $(cat $S)"
grep -q '^FAIL  swiglu .*build/cuda/swiglu' $S && ok || bad "kernel lab rows come from dev/cuda/*.cu: $(cat $S)"
# every lab, the trainers' checks, the data-parallel and bench checks (22 with the 11 labs)
[ "$(grep -c '^FAIL  ' $S)" -eq $(( $(ls dev/cuda/*.cu | wc -l) + 11 )) ] && ok || bad "FAIL rows: $(grep -c '^FAIL  ' $S)"
grep -Eq '^0 passed, [1-9][0-9]* failed, 3 skipped$' $S && ok || bad "counts: $(tail -n 1 $S)"
[ "$(grep -c '^SKIP  memcheck_.*Device not supported' $S)" -eq 3 ] && ok || bad "memcheck on a refusing sanitizer: $(grep memcheck $S)"
tar tzf $tmp/gcout/gpucheck_logs.tgz | grep -q 'test_gpt.log$' && ok || bad "log tarball"
gpucheck $tmp/gcout0 0 && bad "a skipped check is not a pass" || ok
[ "$(grep -c '^SKIP  .*time budget of 0s spent' $tmp/gcout0/summary.txt)" -eq $(( $(ls dev/cuda/*.cu | wc -l) + 14 )) ] && ok ||
    bad "budget 0: $(cat $tmp/gcout0/summary.txt)"
finish
