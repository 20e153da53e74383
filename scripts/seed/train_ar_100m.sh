#!/usr/bin/env bash
# scripts/seed/train_ar_100m.sh — the seed's best autoregressive model on 100M unique tokens (quickstart
# train_ar.sh, seed_spec §1.1/§2): 140m preset, 50 epochs of U = 99,952,399 C4 tokens, global batch 256 x 2048,
# AdamW lr 2e-4 -> 2e-5 cosine, 1% warmup in samples: 2,440,244 samples = 9,532 steps, warmup 24,402 samples.
# One GPU (build/train_gpt) by default; --gpus 8 runs it data-parallel on 8 (mpirun), --hostfile / --srun on several nodes.
source "$(dirname "$0")/common.sh"
usage() { echo "usage: scripts/seed/train_ar_100m.sh [options] [-- trainer flags]
Trains the seed's AR 140m model for 50 epochs on its 100M-token C4 subset (run dir \$OUT_DIR/ar_140m_100m).
$TRAIN_HELP
$COMMON_HELP"; }
OBJECTIVE=ar; MODEL=140m; EPOCHS=50; UNIQUE=$DATA_100M; RUN_NAME=ar_140m_100m; TRAIN_DATA=""
train_parse "$@"
train_run
