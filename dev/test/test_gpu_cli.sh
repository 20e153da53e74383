#!/usr/bin/env bash
# dev/test/test_gpu_cli.sh — every GPU trainer command the scripts print is accepted by the real trainers, checked
# on a machine without a GPU: build/cucheck/train_gpt and train_mdm (`make test` links them from the compile check)
# parse and validate all flags (and resolve a multi-GPU launch) before they select a device, so a command whose
# flags are right ends in exactly "error: no CUDA device found ..." and one with a misspelt or out-of-range flag
# ends in the parser's error. This
# catches a script's flag mistake before it costs GPU time. Skipped (counted as passing nothing) where a GPU is
# visible: there the commands would start training.
set -u
cd "$(dirname "$0")/../.."
source dev/test/lib.sh
B=build/cucheck
for t in train_gpt train_mdm; do
    [ -x "$B/$t" ] || { bad "$B/$t not built (make $B/$t)"; finish; }
done
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    echo "note: a GPU is visible; these checks run only where none is (make gpucheck covers a GPU machine)"
    finish
fi
NO_DEVICE="error: no CUDA device found"

# reaches_device NAME CMD...: the trainer accepted every flag (its one error line is the missing device).
reaches_device() {
    local name=$1 err
    shift
    err=$(timeout 30 "$@" 2>&1 >/dev/null)
    if [ "$(wc -l <<<"$err")" -eq 1 ] && [[ "$err" == "$NO_DEVICE"* ]]; then ok; else bad "$name: ${err:0:300}"; fi
}
# trainer_lines: the trainer commands of a dry-run's output, any launcher prefix (mpirun ..., srun ...) removed and
# build/ pointed at the linked binaries.
trainer_lines() { sed -nE "s#^.*\bbuild/(train_gpt|train_mdm) #$B/\1 #p"; }
# check_script NAME EXPECTED_COUNT SCRIPT ARGS...: every trainer command of `SCRIPT ARGS --dry-run` reaches the device.
check_script() {
    local name=$1 want=$2 n=0 line
    shift 2
    local out
    out=$(bash "$@" --dry-run 2>&1) || { bad "$name: dry-run failed: ${out:0:300}"; return; }
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        n=$((n + 1))
        eval "reaches_device \"$name #$n\" $line"  # the dry-run quotes its arguments for the shell
    done < <(trainer_lines <<<"$out")
    [ "$n" -eq "$want" ] && ok || bad "$name: $n trainer commands, expected $want"
}

# 1. The binaries themselves: --help, and a bad flag is the parser's error, not the device's.
for t in train_gpt train_mdm; do
    "$B/$t" --help | grep -q "^usage: $t" && ok || bad "$t --help"
    err=$("$B/$t" --micro-batchs 4 2>&1 >/dev/null)
    [[ "$err" == "error: unknown flag --micro-batchs"* ]] && ok || bad "$t bad flag: $err"
    err=$("$B/$t" --lr -1 2>&1 >/dev/null)
    [[ "$err" == "error: flag --lr:"* ]] && ok || bad "$t out-of-range value: $err"
done
reaches_device "train_gpt defaults" "$B/train_gpt"
reaches_device "train_mdm defaults" "$B/train_mdm"

# 2. What the scripts run on a GPU machine.
check_script "crossover default plan" 10 scripts/crossover.sh
check_script "crossover smoke (gpucheck)" 2 scripts/crossover.sh --unique-tokens 500000 --epochs-ar 2 --epochs-mdm 2 \
    --evals 2 --time-limit 0 --out /tmp/unused
check_script "seed AR 100M" 1 scripts/seed/train_ar_100m.sh
check_script "seed MDM 100M on 8 GPUs" 1 scripts/seed/train_mdm_100m.sh --gpus 8
check_script "seed MDM 100M, two nodes" 1 scripts/seed/train_mdm_100m.sh --gpus 16 --hostfile /dev/null
check_script "25M subset, MDM" 1 scripts/seed/subsets.sh --size 25m --objective mdm --model 425m --epochs 100
check_script "Chinchilla grid point" 1 scripts/seed/grid.sh --kind chinchilla --objective ar --compute 6e18 --model 117m
check_script "data-value grid point" 1 scripts/seed/grid.sh --kind data-value --objective mdm --compute 1e19 --repeat 4
# gpucheck's own runs (scripts/gpucheck.sh, dp_check.sh, corruption_check.sh) and the GPU-only flags.
reaches_device "gpucheck 50 steps" "$B/train_mdm" --steps 50 --eval-every 25 --log /tmp/unused.jsonl --ckpt-dir /tmp/unused
reaches_device "bench 140m" "$B/train_gpt" --model 140m --seq-len 2048 --batch 8 --micro-batch 8 --steps 12 --eval-every 0 \
    --eval-samples 8
reaches_device "dp_check --nccl" "$B/train_gpt" --steps 6 --batch 8 --eval-every 3 --eval-samples 16 --quiet --dropout 0.1 \
    --attn-dropout 0.1 --micro-batch 4 --nccl
reaches_device "dp_check tcp" "$B/train_mdm" --micro-batch 2 --dist-init tcp:127.0.0.1:29555
reaches_device "corruption_check" "$B/train_mdm" --steps 8 --batch 16 --micro-batch 8 --corruption host
reaches_device "resume_check" "$B/train_gpt" --steps 6 --eval-every 3 --quiet --eval-samples 8 --stop-at 3
# The multi-GPU launch is resolved before the device, so its mistakes show here too.
reaches_device "2 ranks by env, job id given" env LLMC_RANK=1 LLMC_WORLD_SIZE=2 LLMC_LOCAL_WORLD_SIZE=2 \
    LLMC_JOB_ID=j7 "$B/train_gpt"
err=$(env LLMC_RANK=1 LLMC_WORLD_SIZE=2 LLMC_LOCAL_WORLD_SIZE=2 "$B/train_gpt" 2>&1 >/dev/null)
[[ "$err" == "error: no job id in the llmc environment"* ]] && ok || bad "2 ranks without a job id: $err"
err=$(env LLMC_RANK=1 LLMC_WORLD_SIZE=2 "$B/train_mdm" 2>&1 >/dev/null)
[[ "$err" == "error: cannot tell how to reach rank 0"* ]] && ok || bad "2 ranks, nodes unknown: $err"
err=$("$B/train_mdm" --corruption cpu 2>&1 >/dev/null)
[[ "$err" == "error: flag --corruption:"* ]] && ok || bad "--corruption cpu: $err"
err=$("$B/train_gpt" --corruption gpu 2>&1 >/dev/null)
[[ "$err" == "error: unknown flag --corruption"* ]] && ok || bad "train_gpt must not take --corruption: $err"
finish
