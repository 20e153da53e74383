#!/usr/bin/env bash
# Data parallel + ZeRO-1 on the CPU reference (build/train_cpu_mpi = train_cpu.cpp over OpenMPI): 2 ranks x
# micro-batch 2 train the same model as 1 rank x micro-batch 4 (same samples, masks, dropout, loss curve); a run
# saved on 2 ranks resumes on 1 (and one saved on 1 resumes on 2); two 2-rank runs are bit-identical; one MPI rank
# is bit-identical to train_cpu. Runs in CI: a missing mpirun or train_cpu_mpi is a failure, not a skip.
#
# Tolerances (fp32 reduction order): the ranks' gradients are summed in another order than one rank's
# accumulation, so results agree to rounding, amplified by AdamW where a gradient is ~0 (the update is
# ~lr * sign). After 4 steps at lr 3e-3 we require parameters within 1e-4 absolute (max) and 1e-5 relative
# (L2 over the model), moments within 1e-4 relative L2, losses within 1e-5 and grad norms within 1e-5 relative.
# Measured: params max |diff| 3.5e-5 (AR) / 3.6e-6 (MDM), rel-L2 9e-7 / 1.2e-7; losses equal to 9 digits.
set -u
cd "$(dirname "$0")/../.."
source dev/test/lib.sh
T1=build/train_cpu
TM=build/train_cpu_mpi
PY=${PYTHON:-/usr/bin/python3}
command -v mpirun >/dev/null || { echo "FAIL: mpirun not found (apt install openmpi-bin libopenmpi-dev)"; echo "0 passed, 1 failed"; exit 1; }
for t in $T1 $TM; do
    [ -x "$t" ] || { echo "FAIL: $t not built (make; needs mpicxx for $TM)"; echo "0 passed, 1 failed"; exit 1; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
MPI=(mpirun -np 2 --oversubscribe --allow-run-as-root)
# Containers often forbid the cross-process memory copy OpenMPI's shared-memory transport tries first.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
COMMON=(--seq-len 32 --batch 8 --steps 4 --eval-every 4 --eval-samples 8 --mc-samples 2 --lr 3e-3
        --dropout 0.1 --attn-dropout 0.1 --quiet)

# compare A.ckpt B.ckpt A.jsonl B.jsonl [exact]: parameters, moments and the logged train curve within the
# tolerances above (dev/test/compare_runs.py defaults), or bit-identical checkpoints and losses with "exact".
compare() { "$PY" dev/test/compare_runs.py "$1" "$2" "$3" "$4" ${5:+--exact}; }
check() {  # check NAME compare-args...: one pass or fail
    local name=$1; shift
    local out
    if out=$(compare "$@" 2>&1); then ok; echo "$name: ${out:-bit-identical}"; else bad "$name: $out"; fi
}
run1() { local d=$1; shift; $T1 "${COMMON[@]}" --threads 2 --ckpt-dir "$tmp/$d" --log "$tmp/$d.jsonl" "$@" >"$tmp/$d.txt" 2>&1 || bad "1-rank run $d failed: $(tail -n 3 "$tmp/$d.txt")"; }
run2() { local d=$1; shift; "${MPI[@]}" $TM "${COMMON[@]}" --threads 1 --ckpt-dir "$tmp/$d" --log "$tmp/$d.jsonl" "$@" >"$tmp/$d.txt" 2>&1 || bad "2-rank run $d failed: $(tail -n 3 "$tmp/$d.txt")"; }

for obj in ar mdm; do
    O=(--objective $obj)
    run1 one_$obj "${O[@]}" --micro-batch 4
    run2 two_$obj "${O[@]}" --micro-batch 2
    grep -q "^ranks      2 data-parallel ranks" "$tmp/two_$obj.txt" && ok || bad "$obj: 2-rank run did not report 2 ranks"
    # (a) 2 ranks x micro-batch 2 == 1 rank x micro-batch 4.
    check "$obj 2x2 vs 1x4" "$tmp/one_$obj/model.ckpt" "$tmp/two_$obj/model.ckpt" "$tmp/one_$obj.jsonl" "$tmp/two_$obj.jsonl"
    # (b) save on 2 ranks at step 2, resume on 1 rank to step 4 == the uninterrupted 1-rank run.
    run2 half_$obj "${O[@]}" --micro-batch 2 --stop-at 2
    run1 half_$obj "${O[@]}" --micro-batch 4 --resume "$tmp/half_$obj/model.ckpt"
    check "$obj save on 2, resume on 1" "$tmp/one_$obj/model.ckpt" "$tmp/half_$obj/model.ckpt" "$tmp/one_$obj.jsonl" "$tmp/half_$obj.jsonl"
    # (c) determinism: a second 2-rank run is bit-identical (ordered reductions, no MPI_SUM).
    run2 again_$obj "${O[@]}" --micro-batch 2
    check "$obj 2-rank determinism" "$tmp/two_$obj/model.ckpt" "$tmp/again_$obj/model.ckpt" "$tmp/two_$obj.jsonl" "$tmp/again_$obj.jsonl" exact
done

# The comparison covers validation too: the 2-rank log with its validation loss moved by 1e-3 must fail it.
"$PY" -c "
import json, sys
out = open('$tmp/tampered.jsonl', 'w')
for l in open('$tmp/two_ar.jsonl'):
    r = json.loads(l)
    if r['kind'] == 'eval': r['val_loss'] += 1e-3
    out.write(json.dumps(r) + '\n')"
out=$(compare "$tmp/one_ar/model.ckpt" "$tmp/two_ar/model.ckpt" "$tmp/one_ar.jsonl" "$tmp/tampered.jsonl" 2>&1) &&
    bad "a moved validation loss passed compare_runs" || { [[ "$out" == *"FAIL: step 4 validation"* ]] && ok || bad "$out"; }
sed 's/"val_loss": [0-9.e+-]*/"val_loss": null/' "$tmp/two_ar.jsonl" >"$tmp/nan.jsonl"  # the logger's NaN
out=$(compare "$tmp/one_ar/model.ckpt" "$tmp/two_ar/model.ckpt" "$tmp/one_ar.jsonl" "$tmp/nan.jsonl" 2>&1) &&
    bad "a NaN validation loss passed compare_runs" || { [[ "$out" == *"FAIL: step 4 validation "*" vs nan"* ]] && ok || bad "$out"; }

# Save on 1 rank, resume on 2 (the other direction of N -> M).
run1 back_ar --objective ar --micro-batch 4 --stop-at 2
run2 back_ar --objective ar --micro-batch 2 --resume "$tmp/back_ar/model.ckpt"
check "ar save on 1, resume on 2" "$tmp/one_ar/model.ckpt" "$tmp/back_ar/model.ckpt" "$tmp/one_ar.jsonl" "$tmp/back_ar.jsonl"

# One MPI rank is the plain trainer, bit for bit (the ZeRO-1 step on one shard is the seed's optimizer step).
mpirun -np 1 --oversubscribe --allow-run-as-root $TM "${COMMON[@]}" --objective mdm --micro-batch 4 --threads 2 \
    --ckpt-dir "$tmp/np1" --log "$tmp/np1.jsonl" >"$tmp/np1.txt" 2>&1 || bad "1-rank MPI run failed: $(tail -n 3 "$tmp/np1.txt")"
check "mdm mpirun -np 1 vs train_cpu" "$tmp/one_mdm/model.ckpt" "$tmp/np1/model.ckpt" "$tmp/one_mdm.jsonl" "$tmp/np1.jsonl" exact

# The GPU trainers' NCCL-id exchange over MPI (llmc/bootstrap.h, builds with USE_MPI=1), between two real ranks.
if [ -x build/test_bootstrap_mpi ]; then
    out=$("${MPI[@]}" build/test_bootstrap_mpi 2>&1)
    [ "$(grep -c '^4 passed, 0 failed' <<<"$out")" = 2 ] && ok || bad "MPI id exchange on 2 ranks: $out"
else
    bad "build/test_bootstrap_mpi not built"
fi

# The same exchange as a GPU trainer built without MPI does it under mpirun: a per-job file named from mpirun's env.
out=$("${MPI[@]}" build/test_bootstrap 2>&1)
[ "$(grep -c '^4 passed, 0 failed' <<<"$out")" = 2 ] && ok || bad "file id exchange on 2 mpirun ranks: $out"

# A global batch the ranks cannot split evenly is refused.
out=$("${MPI[@]}" $TM "${COMMON[@]}" --micro-batch 8 2>&1) && bad "--batch 8 --micro-batch 8 on 2 ranks should fail" ||
    { [[ "$out" == *"error: --batch 8 is not a multiple of --micro-batch 8 x 2 ranks"* ]] && ok || bad "unexpected error: $out"; }
finish
