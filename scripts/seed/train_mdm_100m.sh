#!/usr/bin/env bash
# scripts/seed/train_mdm_100m.sh — the seed's best masked-diffusion model on 100M unique tokens (quickstart
# train_mdm.sh, seed_spec §1.1/§2): 425m preset, 500 epochs of U = 99,952,399 C4 tokens, global batch 256 x 2048,
# AdamW lr 2e-4 -> 2e-5 cosine, 1% warmup: 24,402,441 samples = 95,322 steps, warmup 244,024 samples.
# One GPU (build/train_mdm) by default; --gpus 8 runs it data-parallel on 8 (mpirun), --hostfile / --srun on
# several nodes. Split it with --stop-at / --resume.
source "$(dirname "$0")/common.sh"
usage() { echo "usage: scripts/seed/train_mdm_100m.sh [options] [-- trainer flags]
Trains the seed's MDM 425m model for 500 epochs on its 100M-token C4 subset (run dir \$OUT_DIR/mdm_425m_100m).
$TRAIN_HELP
$COMMON_HELP"; }
OBJECTIVE=mdm; MODEL=425m; EPOCHS=500; UNIQUE=$DATA_100M; RUN_NAME=mdm_425m_100m; TRAIN_DATA=""
train_parse "$@"
train_run
