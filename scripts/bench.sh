#!/usr/bin/env bash
# scripts/bench.sh — throughput of the seed's configurations (B=8 sequences of T=2048 tokens per step) for both
# trainers, side by side with the PyTorch peer on the same GPU in the same run (`make bench`).
#   RUNS   which configs, "model:objective" (default: 140m:ar 140m:mdm 425m:mdm)
#   STEPS  timed steps per config (default 20; the median of steps 4.. is reported)
#   PEER   path of the PyTorch peer (default: .gpu/torch_peer.py, a copy of ../shared/bench/torch_peer.py); set
#          PEER= to skip it
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-build/bench}
mkdir -p "$OUT"
RUNS=${RUNS:-"140m:ar 140m:mdm 425m:mdm"}
STEPS=${STEPS:-20}
PEER=${PEER-.gpu/torch_peer.py}
[ -n "$PEER" ] && [ ! -f "$PEER" ] && [ -f ../shared/bench/torch_peer.py ] && PEER=../shared/bench/torch_peer.py
[ "${BENCH_NOBUILD:-0}" = 1 ] || make -j"$(nproc)" build/train_gpt build/train_mdm >"$OUT/build.log" 2>&1 || {
    echo "build failed"; tail -n 30 "$OUT/build.log"; exit 1; }
device=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)

# median tok/s and MFU of steps 4.. of a JSONL log
median() {
    python3 - "$1" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if '"kind": "train"' in l][3:]
if not rows:
    print("n/a n/a"); sys.exit()
tps = statistics.median(r["tok_per_s"] for r in rows)
mfu = statistics.median(r.get("mfu", float("nan")) for r in rows)
print(f"{tps:.0f} {100 * mfu:.1f}")
PY
}

lines=()
for run in $RUNS; do
    model=${run%%:*}; obj=${run##*:}
    bin=build/train_gpt; [ "$obj" = mdm ] && bin=build/train_mdm
    log="$OUT/${model}_${obj}.jsonl"
    rm -f "$log"
    "$bin" --model "$model" --seq-len 2048 --batch 8 --micro-batch 8 --steps "$STEPS" --eval-every 0 --eval-samples 8 \
        --mc-samples 1 --log "$log" >"$OUT/${model}_${obj}.txt" 2>&1 || { tail -n 5 "$OUT/${model}_${obj}.txt"; }
    read -r ours ours_mfu < <(median "$log")
    peer=n/a; peer_mfu=n/a
    if [ -n "$PEER" ] && [ -f "$PEER" ]; then
        pj=$(python3 "$PEER" --runs "$model:$obj:8" --T 2048 --steps "$STEPS" 2>"$OUT/peer_${model}_${obj}.err" | grep '"peer"' | tail -n 1)
        peer=$(echo "$pj" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read() or "{}"); print(d.get("tok_s","n/a"))' 2>/dev/null || echo n/a)
        peer_mfu=$(echo "$pj" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read() or "{}"); print(round(100*d["mfu"],1) if "mfu" in d else "n/a")' 2>/dev/null || echo n/a)
    fi
    ratio=$(python3 -c "print(f'{$ours/$peer:.2f}')" 2>/dev/null || echo n/a)
    lines+=("$(printf '%-6s %-4s %10s tok/s %6s%% MFU | peer %10s tok/s %6s%% MFU | ratio %s' "$model" "$obj" "$ours" "$ours_mfu" "$peer" "$peer_mfu" "$ratio")")
    echo "${lines[-1]}"
done
echo
echo "==== bench: $device, B=8 T=2048, median of steps 4..$STEPS ===="
printf '%s\n' "${lines[@]}" | tee "$OUT/bench.txt"
