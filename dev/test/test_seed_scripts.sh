#!/usr/bin/env bash
# scripts/seed/*.sh: dry-runs print the seed's numbers and flags (seed_spec §2: steps, warmup, lr, batch, preset,
# epochs, U), bad arguments give one "error:" line, and one tiny real AR and MDM run through the same launcher on the
# bundled data (CPU trainer) executes, its trainer plan matching the script's bash arithmetic, then eval + plot.
set -u
cd "$(dirname "$0")/../.."
source dev/test/lib.sh
S=scripts/seed
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

out=$(bash $S/train_ar_100m.sh --dry-run 2>&1)
for w in "steps=9532" "warmup=24402" "samples=2440244" "--model 140m" "--epochs 50" "--unique-tokens 99952399" "--steps 0" \
         "--warmup-samples 24402" "--lr 2e-4" "--min-lr 2e-5" "--batch 256" "--micro-batch 8" "--seq-len 2048" "--seed 1234" \
         "--beta2 0.95" "--weight-decay 0.1" "--clip 1.0" "--dropout 0.1" "--eval-every 1000" "--eval-samples 2560" "--save-every 1000" \
         "build/train_gpt"; do has "$out" "$w"; done
out=$(bash $S/train_mdm_100m.sh --dry-run --micro-batch 4 2>&1)
for w in "steps=95322" "warmup=244024" "samples=24402441" "--model 425m" "--epochs 500" "--warmup-samples 244024" "--micro-batch 4" \
         "build/train_mdm"; do has "$out" "$w"; done
out=$(bash $S/subsets.sh --size 50m --objective ar --model 117m --epochs 4 --dry-run 2>&1); has "$out" "--unique-tokens 49874872"
out=$(bash $S/subsets.sh --size 100m --objective mdm --dry-run 2>&1); has "$out" "steps=95322"
out=$(bash $S/subsets.sh --list 2>&1); has "$out" "24743247"
out=$(bash $S/grid.sh --kind data-value --objective ar --compute 1e19 --repeat 10 --dry-run 2>&1)
has "$out" "D=7662725892"; has "$out" "--model 217m"; has "$out" "--warmup-samples 37416"; has "$out" "--steps 14615"
out=$(bash $S/eval_100m.sh --dry-run 2>&1); has "$out" "--eval-samples 25600"; has "$out" "--mc-samples 8"; has "$out" "--mc-samples 32"
out=$(bash $S/eval_100m.sh --dry-run --cpu 2>&1); has "$out" "build/eval_cpu --load"
out=$(bash $S/download.sh --dry-run 2>&1); has "$out" "datasets/ZahlenReal/diffusion_data_constraint_quickstart/resolve/main/gpt2tok_c4_val_text_document.idx"
for f in download common train_ar_100m train_mdm_100m eval_100m subsets grid; do [ -f $S/$f.sh ] || bad "$f.sh missing"; done
for f in download train_ar_100m train_mdm_100m eval_100m subsets grid; do bash $S/$f.sh --help | grep -q '^usage:' && ok || bad "$f --help"; done

expect_error "--epochs" bash $S/train_ar_100m.sh --epochs 2.5 --dry-run
expect_error "micro-batch" bash $S/train_ar_100m.sh --micro-batch 7 --dry-run
expect_error "unknown option" bash $S/train_mdm_100m.sh --bogus
expect_error "unknown preset" bash $S/train_ar_100m.sh --model 99m --dry-run
expect_error "needs a value" bash $S/eval_100m.sh --mc
expect_error "--model is required" bash $S/subsets.sh --size 25m --objective ar --epochs 3 --dry-run
expect_error "--compute" bash $S/grid.sh --kind chinchilla --objective ar --compute 5e19
expect_error "not found" bash $S/train_ar_100m.sh --data-dir "$tmp/none"
expect_error "not built" bash $S/train_ar_100m.sh --data-dir dev/data --build-dir "$tmp/none" \
    --train-data dev/data/c4_train --val-data dev/data/c4_val

# Launchers (scripts/seed/common.sh): one node, multi-node with a hostfile, srun; bad combinations refused.
out=$(bash $S/train_mdm_100m.sh --dry-run --gpus 8 2>&1)
has "$out" "mpirun -np 8 build/train_mdm --model 425m"; has "$out" "grad-accum=4 x 8 rank(s)"
printf '# nodes\nnodeA slots=8\nnodeB slots=8\n' >"$tmp/hosts"
out=$(bash $S/train_ar_100m.sh --dry-run --gpus 16 --hostfile "$tmp/hosts" 2>&1)
has "$out" "mpirun -np 16 --hostfile $tmp/hosts -x MASTER_ADDR=nodeA -x MASTER_PORT=29500 -x PATH -x LD_LIBRARY_PATH build/train_gpt"
out=$(bash $S/train_ar_100m.sh --dry-run --srun 2>&1); has "$out" "srun build/train_gpt --model 140m"
expect_error "--micro-batch 8 x --gpus 3" bash $S/train_ar_100m.sh --dry-run --gpus 3
expect_error "drop --gpus" bash $S/train_ar_100m.sh --dry-run --srun --gpus 2
expect_error "--hostfile needs --gpus" bash $S/train_ar_100m.sh --dry-run --hostfile "$tmp/hosts"
expect_error "not found" bash $S/train_ar_100m.sh --gpus 2 --hostfile "$tmp/nohosts" --data-dir dev/data \
    --train-data dev/data/c4_train --val-data dev/data/c4_val --cpu
out=$(bash scripts/launch/slurm_100m.sbatch 2>&1) && bad "sbatch script without objective should fail" || has "$out" "usage:"
out=$(env -u SLURM_JOB_NODELIST bash scripts/launch/slurm_100m.sbatch mdm 2>&1) && bad "sbatch outside Slurm should fail" ||
    has "$out" "not inside a Slurm allocation"

# Tiny real runs through the same launcher: U=512 tokens x 2 epochs / S=32 = 32 samples = 4 steps of 8.
TINY=(--cpu --model tiny --seq-len 32 --batch 8 --micro-batch 4 --unique-tokens 512 --epochs 2 --train-data dev/data/c4_train
      --val-data dev/data/c4_val --eval-every 2 --eval-batches 1 --save-every 2 --out-dir "$tmp")
if [ -x build/train_cpu ] && [ -x build/eval_cpu ]; then
    out=$(bash $S/train_ar_100m.sh "${TINY[@]}" --stop-at 2 -- --threads 2 --quiet 2>&1) && ok || bad "tiny AR run: $out"
    out=$(bash $S/train_ar_100m.sh "${TINY[@]}" --resume -- --threads 2 --quiet 2>&1) && ok || bad "tiny AR resume: $out"
    echo "$out" | grep -q "steps=4 " && echo "$out" | grep -Eq "^batch .*; 4 steps" && ok || bad "plan mismatch: $out"
    out=$(bash $S/train_mdm_100m.sh "${TINY[@]}" --epochs 1 -- --threads 2 --quiet 2>&1) && ok || bad "tiny MDM run: $out"
    # --gpus 2 with --cpu: two MPI ranks of train_cpu_mpi through the same launcher line.
    if [ -x build/train_cpu_mpi ]; then
        out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
              OMPI_MCA_btl_vader_single_copy_mechanism=none \
              bash $S/train_mdm_100m.sh "${TINY[@]}" --epochs 1 --gpus 2 --out-dir "$tmp/two" -- --threads 1 --quiet 2>&1) \
            && has "$out" "ranks      2 data-parallel ranks" || bad "tiny MDM run on 2 ranks: $out"
    fi
    out=$(bash $S/eval_100m.sh --cpu --out-dir "$tmp" --which final --val-data dev/data/c4_val --eval-samples 4 --mc 2,3 -- --threads 2 2>&1) \
        && ok || bad "eval: $out"
    has "$out" "(K=3)"; has "$out" "NLL"
    [ -s "$tmp/eval/plot_100m.csv" ] && [ "$(grep -c '^ar_140m_100m,ar,' "$tmp/eval/plot_100m.csv")" -eq 2 ] && ok || bad "plot csv"
else
    bad "build/train_cpu or build/eval_cpu not built (run make)"
fi
finish
