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
# tolerances above (or bit-identical checkpoints with "exact").
compare() {
    "$PY" - "$@" <<'EOF'
import json, sys
import numpy as np
ca, cb, la, lb = sys.argv[1:5]
exact = len(sys.argv) > 5
def ckpt(f):
    raw = open(f, "rb").read()
    a = np.frombuffer(raw[192:], dtype=np.float32).astype(np.float64)  # after the 192-byte header: p, m, v
    n = a.size // 3
    return raw, a[:n], a[n:2 * n], a[2 * n:]
def curve(f):
    recs = [json.loads(l) for l in open(f) if l.strip()]
    return {r["step"]: (r["loss"], r["grad_norm"]) for r in recs if r["kind"] == "train"}
A, B = ckpt(ca), ckpt(cb)
errs = []
if exact:
    if A[0] != B[0]: errs.append("checkpoints differ (expected bit-identical)")
else:
    # Header: shape, seed, step, data cursor, fingerprint, size and best step equal (best loss and checksum may not).
    if A[0][:104] != B[0][:104] or A[0][112:120] != B[0][112:120]: errs.append("headers differ")
    dp = np.abs(A[1] - B[1])
    rel = lambda x, y: np.linalg.norm(x - y) / max(np.linalg.norm(x), 1e-30)
    print(f"params max|diff| {dp.max():.3g} rel-L2 {rel(A[1], B[1]):.3g}; m rel-L2 {rel(A[2], B[2]):.3g}; "
          f"v rel-L2 {rel(A[3], B[3]):.3g}")
    if not dp.max() <= 1e-4: errs.append(f"params max |diff| {dp.max():.3g} > 1e-4")
    if not rel(A[1], B[1]) <= 1e-5: errs.append(f"params rel-L2 {rel(A[1], B[1]):.3g} > 1e-5")
    for name, x, y in (("m", A[2], B[2]), ("v", A[3], B[3])):
        if not rel(x, y) <= 1e-4: errs.append(f"{name} rel-L2 {rel(x, y):.3g} > 1e-4")
ka, kb = curve(la), curve(lb)
if sorted(ka) != sorted(kb) or not ka: errs.append(f"logged steps differ: {sorted(ka)} vs {sorted(kb)}")
for s in sorted(set(ka) & set(kb)):
    (l1, g1), (l2, g2) = ka[s], kb[s]
    if abs(l1 - l2) > 1e-5: errs.append(f"step {s} loss {l1} vs {l2}")
    if abs(g1 - g2) > 1e-5 * abs(g1): errs.append(f"step {s} grad norm {g1} vs {g2}")
for e in errs: print("FAIL:", e)
sys.exit(1 if errs else 0)
EOF
}
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

# Save on 1 rank, resume on 2 (the other direction of N -> M).
run1 back_ar --objective ar --micro-batch 4 --stop-at 2
run2 back_ar --objective ar --micro-batch 2 --resume "$tmp/back_ar/model.ckpt"
check "ar save on 1, resume on 2" "$tmp/one_ar/model.ckpt" "$tmp/back_ar/model.ckpt" "$tmp/one_ar.jsonl" "$tmp/back_ar.jsonl"

# One MPI rank is the plain trainer, bit for bit (the ZeRO-1 step on one shard is the seed's optimizer step).
mpirun -np 1 --oversubscribe --allow-run-as-root $TM "${COMMON[@]}" --objective mdm --micro-batch 4 --threads 2 \
    --ckpt-dir "$tmp/np1" --log "$tmp/np1.jsonl" >"$tmp/np1.txt" 2>&1 || bad "1-rank MPI run failed: $(tail -n 3 "$tmp/np1.txt")"
check "mdm mpirun -np 1 vs train_cpu" "$tmp/one_mdm/model.ckpt" "$tmp/np1/model.ckpt" "$tmp/one_mdm.jsonl" "$tmp/np1.jsonl" exact

# A global batch the ranks cannot split evenly is refused.
out=$("${MPI[@]}" $TM "${COMMON[@]}" --micro-batch 8 2>&1) && bad "--batch 8 --micro-batch 8 on 2 ranks should fail" ||
    { [[ "$out" == *"error: --batch 8 is not a multiple of --micro-batch 8 x 2 ranks"* ]] && ok || bad "unexpected error: $out"; }
finish
