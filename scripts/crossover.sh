#!/usr/bin/env bash
# scripts/crossover.sh — the scaled-down data-constrained crossover (issue 7 part 2) as one command: AR and MDM
# trained on the same U unique tokens at several epoch counts, each run's best validation loss (AR NLL; MDM
# stratified Monte-Carlo ELBO, K >= 16, +- its standard error) tabulated and plotted against epochs and FLOPs, and
# whether / from which compute MDM's best loss drops below AR's.
#
# THE DEFAULT GPU PLAN HAS NOT BEEN RUN YET. It is sized from an ESTIMATE, not a measurement: `make bench` measured
# the 140m model (B=8, T=2048, one H200) at 272k tok/s AR and 202k tok/s MDM, i.e. 313 and 233 TFLOP/s at
# 1.15 GFLOP/token (6N + 12*L*T*n*d). The mini model (15.9M parameters, 12.9M of them the tied embedding) at S=512
# needs 6*15.9M + 12*4*512*256 = 102 MFLOP/token; at half the 140m's FLOP rate (its matrices are 3x narrower)
# that is ~1.5M tok/s AR and ~1.1M tok/s MDM. The default plan trains 63M AR tokens and 252M MDM tokens
# (U = 1M; AR 1..32 epochs, MDM 4..128 epochs; 12 runs, 32 x 512 tokens per step): ~4.5 minutes of training
# plus ~1 minute of validation and process start-up, so <= 10 minutes on one H100/H200 unless the mini model runs
# at under about half the estimated rate. The dry-run prints this estimate for the chosen settings.
#
# Scale, honestly: the bundled C4 sample holds 1.28M tokens, so U <= ~1.2M with the bundled data. A PyTorch probe of
# the same model family at U = 0.5M (30M parameters, no dropout) found no crossover (AR best NLL 6.95 at ~10 epochs,
# MDM best ELBO 7.07 at ~45 epochs), and losses near 7 nats mean little beyond unigram statistics; several million
# unique tokens are probably needed. That needs a larger tokenised corpus (--train-data / --val-data, made with
# build/prepare from JSONL), which the repository does not bundle. Dropout 0.1 is the seed's; mini is the smallest
# preset the GPU kernels take, already ~60x the single-epoch Chinchilla size for U = 1M in non-embedding parameters.
source "$(dirname "$0")/seed/common.sh"  # die / check_* / seed arithmetic / dry-run printing / train_run launcher

# Estimated one-GPU throughput of the mini model at S=512 (see above; NOT measured) and start-up + validation per run.
EST_TOKS_AR=1500000
EST_TOKS_MDM=1100000
EST_RUN_OVERHEAD_S=5

usage() { echo "usage: scripts/crossover.sh [options] [-- trainer flags]
Trains AR and MDM on U unique tokens at each epoch count, then writes OUT/results.md, OUT/results.csv and
OUT/crossover.png (scripts/plot_crossover.py) and prints the table and whether/where MDM overtakes AR.
One run per objective and epoch count in OUT/<objective>_e<epochs>/ (train.jsonl, train.txt, wall_seconds; no
checkpoints). The report covers every OUT/*/train.jsonl, so a cut-off experiment is completed by rerunning only
the missing epoch counts into the same OUT.

The default GPU plan (mini, U=1M, AR 1..32 and MDM 4..128 epochs) is ESTIMATED at ~5.5 minutes on one H100/H200
(~1.5M AR / ~1.1M MDM tok/s, scaled by FLOPs from the measured 140m throughput); it has not been run yet.

options:
  --trainer gpu|cpu     gpu: build/train_gpt + build/train_mdm; cpu: build/train_cpu --objective ar|mdm (default gpu)
  --unique-tokens U     unique training tokens, the first U of --train-data (default 1000000; bundled C4: 1,278,120)
  --epochs-ar LIST      AR epoch counts, comma-separated positive integers, or none (default 1,2,4,8,16,32)
  --epochs-mdm LIST     MDM epoch counts, or none (default 4,8,16,32,64,128)
  --model PRESET        model preset of llmc/config.h (default mini; shape overrides go after --)
  --seq-len S           sequence length (default 512)
  --batch N             sequences per optimizer step (default 32)
  --micro-batch N       sequences per forward/backward (default 32; memory only)
  --lr X, --min-lr X    cosine learning rate from X down to --min-lr (default 1e-3 -> 1e-4; warmup 1 % of samples)
  --dropout X           hidden and attention dropout (default 0.1, the seed's)
  --evals N             validations per run, evenly spaced, the last at the end (default 8)
  --eval-batches N      validation sequences = N x --batch (default 4: 128 x 512 tokens of c4_val's 73,941)
  --mc-samples K        MDM ELBO draws per validation sequence, stratified, K >= 16 (default 16)
  --seed N              seed of init, data order, dropout and masks (default 1234)
  --train-data PREFIX   training .bin/.idx (default dev/data/c4_train)
  --val-data PREFIX     validation .bin/.idx (default dev/data/c4_val)
  --build-dir DIR       where the trainers are (default build)
  --out DIR             results folder (default runs/crossover)
  --report-only         train nothing: tabulate and plot the runs already in --out
  --dry-run             print the plan and the exact commands, run nothing
  --help                this text
  -- FLAGS...           extra trainer flags for every run, appended last (e.g. -- --threads 2 for --trainer cpu)
environment: PYTHON (default python3) runs scripts/plot_crossover.py; matplotlib is needed only for the PNG."; }

TRAINER_KIND=gpu
UNIQUE=1000000
EPOCHS_AR=1,2,4,8,16,32
EPOCHS_MDM=4,8,16,32,64,128
MODEL=mini
SEQ_LEN=512
GLOBAL_BATCH=32
MICRO_BATCH=32
LR=1e-3
MIN_LR=1e-4
EVALS=8
EVAL_ITERS=4
TRAIN_MC_SAMPLES=16
TRAIN_DATA=dev/data/c4_train
VAL_DATA=dev/data/c4_val
OUT_DIR=runs/crossover
PYTHON=${PYTHON:-python3}
REPORT_ONLY=0
USER_EXTRA=()
CHECKPOINTS=0  # dozens of 190 MB checkpoint writes would cost more time than some runs; the logs hold the results
DATA_HINT="bundled data: dev/data; other text: build/prepare"

check_num() { [[ "$2" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]] || die "$1 must be a non-negative number, got '$2'"; }
# check_epochs FLAG LIST: comma-separated distinct positive integers, or none.
check_epochs() {
    [ "$2" = none ] && return 0
    [[ "$2" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "$1 must be comma-separated positive integers or none, got '$2'"
    local e seen=","
    for e in ${2//,/ }; do
        check_pos "$1" "$e"
        [[ "$seen" != *",$e,"* ]] || die "$1 lists $e twice"
        seen+="$e,"
    done
}

while [ $# -gt 0 ]; do
    case $1 in
        --trainer) need_value "$@"; check_choice --trainer "$2" gpu cpu; TRAINER_KIND=$2; shift 2 ;;
        --unique-tokens) need_value "$@"; check_pos --unique-tokens "$2"; UNIQUE=$2; shift 2 ;;
        --epochs-ar) need_value "$@"; check_epochs --epochs-ar "$2"; EPOCHS_AR=$2; shift 2 ;;
        --epochs-mdm) need_value "$@"; check_epochs --epochs-mdm "$2"; EPOCHS_MDM=$2; shift 2 ;;
        --model) need_value "$@"; MODEL=$2; shift 2 ;;
        --seq-len) need_value "$@"; check_pos --seq-len "$2"; SEQ_LEN=$2; shift 2 ;;
        --batch) need_value "$@"; check_pos --batch "$2"; GLOBAL_BATCH=$2; shift 2 ;;
        --micro-batch) need_value "$@"; check_pos --micro-batch "$2"; MICRO_BATCH=$2; shift 2 ;;
        --lr) need_value "$@"; check_num --lr "$2"; LR=$2; shift 2 ;;
        --min-lr) need_value "$@"; check_num --min-lr "$2"; MIN_LR=$2; shift 2 ;;
        --dropout) need_value "$@"; check_num --dropout "$2"
            awk -v x="$2" 'BEGIN { exit !(x < 1) }' || die "--dropout must be below 1, got '$2'"
            DROPOUT=$2; ATTN_DROPOUT=$2; shift 2 ;;
        --evals) need_value "$@"; check_pos --evals "$2"; EVALS=$2; shift 2 ;;
        --eval-batches) need_value "$@"; check_pos --eval-batches "$2"; EVAL_ITERS=$2; shift 2 ;;
        --mc-samples) need_value "$@"; check_pos --mc-samples "$2"
            [ "$2" -ge 16 ] || die "--mc-samples must be >= 16 (the ELBO precision this comparison needs), got $2"
            TRAIN_MC_SAMPLES=$2; shift 2 ;;
        --seed) need_value "$@"; check_uint --seed "$2"; SEED=$2; shift 2 ;;
        --train-data) need_value "$@"; TRAIN_DATA=$2; shift 2 ;;
        --val-data) need_value "$@"; VAL_DATA=$2; shift 2 ;;
        --build-dir) need_value "$@"; BUILD_DIR=$2; shift 2 ;;
        --out) need_value "$@"; OUT_DIR=$2; shift 2 ;;
        --report-only) REPORT_ONLY=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        --help|-h) usage; exit 0 ;;
        --) shift; USER_EXTRA=("$@"); break ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
check_model "$MODEL"
[ "$MICRO_BATCH" -le "$GLOBAL_BATCH" ] && [ $((GLOBAL_BATCH % MICRO_BATCH)) -eq 0 ] ||
    die "--batch $GLOBAL_BATCH is not a multiple of --micro-batch $MICRO_BATCH"
if [ "$TRAINER_KIND" = cpu ]; then USE_CPU=1; fi

REPORT=(scripts/plot_crossover.py --runs "$OUT_DIR" --out "$OUT_DIR")
report() {
    if [ "$DRY_RUN" = 1 ]; then quote_cmd "$PYTHON" "${REPORT[@]}"; return 0; fi
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON to a Python 3 interpreter)"
    "$PYTHON" "${REPORT[@]}"
}
if [ "$REPORT_ONLY" = 1 ]; then report; exit; fi

RUNS=()
[ "$EPOCHS_AR" = none ] || for e in ${EPOCHS_AR//,/ }; do RUNS+=("ar:$e"); done
[ "$EPOCHS_MDM" = none ] || for e in ${EPOCHS_MDM//,/ }; do RUNS+=("mdm:$e"); done
[ ${#RUNS[@]} -gt 0 ] || die "--epochs-ar and --epochs-mdm are both none: nothing to train"

# Every input of every run exists before the first one starts (a missing train_mdm found after the AR runs would
# waste their device time).
for obj in ar mdm; do
    [[ " ${RUNS[*]} " == *" $obj:"* ]] || continue
    OBJECTIVE=$obj; train_inputs "$TRAIN_DATA" "$VAL_DATA"
done

# The plan: steps by the seed's arithmetic (as train_run derives them), tokens, and the time estimate.
declare -A STEPS_OF
tok_ar=0; tok_mdm=0
note "plan: $TRAINER_KIND trainer, $MODEL, U=$UNIQUE, S=$SEQ_LEN, batch $GLOBAL_BATCH, lr $LR -> $MIN_LR, dropout $DROPOUT," \
     "$EVALS validations per run on $((EVAL_ITERS * GLOBAL_BATCH)) sequences (MDM: K=$TRAIN_MC_SAMPLES stratified)"
for r in "${RUNS[@]}"; do
    obj=${r%%:*} e=${r#*:}
    steps=$(seed_iters "$(seed_train_samples "$UNIQUE" "$e")")
    [ "$steps" -ge 1 ] || die "$obj at $e epochs: U=$UNIQUE x $e / S=$SEQ_LEN is less than one batch of $GLOBAL_BATCH sequences"
    STEPS_OF[$r]=$steps
    t=$((steps * GLOBAL_BATCH * SEQ_LEN))
    if [ "$obj" = ar ]; then tok_ar=$((tok_ar + t)); else tok_mdm=$((tok_mdm + t)); fi
    note "  ${obj}_e$e: $e epochs, $steps steps, $t tokens, validation every $(( steps / EVALS > 0 ? steps / EVALS : 1 )) steps"
done
if [ "$TRAINER_KIND" = gpu ]; then
    note "$(awk -v a="$tok_ar" -v m="$tok_mdm" -v ra=$EST_TOKS_AR -v rm=$EST_TOKS_MDM -v n=${#RUNS[@]} -v o=$EST_RUN_OVERHEAD_S \
        -v mini="$([ "$MODEL" = mini ] && [ "$SEQ_LEN" = 512 ] && echo 1 || echo 0)" 'BEGIN {
        printf "training tokens: AR %.1fM, MDM %.1fM; ", a / 1e6, m / 1e6
        if (mini) printf "ESTIMATED time (mini at ~%.1fM / %.1fM tok/s, not measured): %.1f minutes", ra / 1e6, rm / 1e6, (a / ra + m / rm + n * o) / 60
        else printf "no time estimate for this model / sequence length (the estimate is for mini at S=512)" }')"
fi

i=0
for r in "${RUNS[@]}"; do
    i=$((i + 1))
    OBJECTIVE=${r%%:*} EPOCHS=${r#*:}
    RUN_NAME=${OBJECTIVE}_e$EPOCHS
    steps=${STEPS_OF[$r]}
    EVAL_EVERY=$(( steps / EVALS > 0 ? steps / EVALS : 1 ))
    EXTRA=()
    if [ "$OBJECTIVE" = mdm ]; then EXTRA+=(--stratified); fi
    EXTRA+=("${USER_EXTRA[@]}")
    if [ "$DRY_RUN" = 1 ]; then train_run; continue; fi
    run_dir=$OUT_DIR/$RUN_NAME
    mkdir -p "$run_dir"
    rm -f "$run_dir/wall_seconds"
    t0=$EPOCHREALTIME
    # A subshell, so that a die inside the launcher ends only it; the trainer's own error line is then reported.
    if ! (train_run) >"$run_dir/train.txt" 2>&1; then
        why=$(grep -m1 '^error' "$run_dir/train.txt" || tail -n 1 "$run_dir/train.txt")
        why=${why#error: }
        die "run $RUN_NAME failed: $why (output: $run_dir/train.txt)"
    fi
    wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
    echo "$wall" >"$run_dir/wall_seconds"
    best=$(grep '"kind": "eval"' "$run_dir/train.jsonl" | tail -n 1 | grep -o '"best_val_loss": [^,}]*' | cut -d' ' -f2 || true)
    echo "[$i/${#RUNS[@]}] $OBJECTIVE $EPOCHS epochs: $steps steps in ${wall}s, best validation loss $best" >&2
done
report
