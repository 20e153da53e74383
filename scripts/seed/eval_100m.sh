#!/usr/bin/env bash
# scripts/seed/eval_100m.sh — evaluates the two best 100M models like the seed's stand-alone eval (seed_spec
# §4.1-4.3): the first 25,600 sequences of the shuffled C4 validation set (seed 1234); AR mean token NLL; MDM
# Monte-Carlo ELBO with K = 8 (quickstart eval_mdm.sh) and K = 32 (EVAL.md, the paper), independent t per draw
# (not stratified, as the seed). Then plots validation curves and results (scripts/seed/plot_100m.py).
# The evaluator is build/eval_gpu when it is built and a GPU is visible, else the CPU reference build/eval_cpu (same
# flags and output): at full size (140m/425m, 25,600 x 2048 tokens, K = 32) the CPU one takes days, so there use
# --eval-samples to evaluate a prefix of the set.
source "$(dirname "$0")/common.sh"
usage() { echo "usage: scripts/seed/eval_100m.sh [options]
Evaluates \$OUT_DIR/ar_140m_100m and \$OUT_DIR/mdm_425m_100m checkpoints; writes \$OUT_DIR/eval/ and the plot.
  --which best|final    best.ckpt (lowest periodic validation loss, default) or model.ckpt (last step)
  --ar-ckpt FILE        AR checkpoint (default \$OUT_DIR/ar_140m_100m/WHICH), e.g. one imported from the seed's
                        released models with scripts/import_seed_checkpoint.py
  --mdm-ckpt FILE       MDM checkpoint (default \$OUT_DIR/mdm_425m_100m/WHICH)
  --only ar|mdm         evaluate one of the two
  --eval-samples N      validation sequences (default 25600 = 100 global batches of 256)
  --mc LIST             MDM draws K, comma-separated (default 8,32)
  --val-data PREFIX     validation prefix (default \$DATA_DIR/$VAL_NAME)
  --no-plot             skip the plot
  --cpu                 evaluate with build/eval_cpu even where build/eval_gpu and a GPU are available
  -- FLAGS...           extra evaluator flags (e.g. --threads 16)
$COMMON_HELP"; }
WHICH=best; AR_CKPT=""; MDM_CKPT=""; ONLY=""; EVAL_SAMPLES=$((FINAL_EVAL_ITERS * GLOBAL_BATCH)); MC=8,32
PLOT=1; EXTRA=()
while [ $# -gt 0 ]; do
    case $1 in
        --which) need_value "$@"; check_choice --which "$2" best final; WHICH=$2; shift 2 ;;
        --ar-ckpt) need_value "$@"; AR_CKPT=$2; shift 2 ;;
        --mdm-ckpt) need_value "$@"; MDM_CKPT=$2; shift 2 ;;
        --only) need_value "$@"; check_choice --only "$2" ar mdm; ONLY=$2; shift 2 ;;
        --eval-samples) need_value "$@"; check_pos --eval-samples "$2"; EVAL_SAMPLES=$2; shift 2 ;;
        --mc) need_value "$@"; [[ "$2" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--mc must be a comma-separated list of positive integers, got '$2'"
              MC=$2; shift 2 ;;
        --val-data) need_value "$@"; VAL_DATA=$2; shift 2 ;;
        --no-plot) PLOT=0; shift ;;
        --cpu) USE_CPU=1; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        *) parse_common "$@"; shift "$SHIFT" ;;
    esac
done
file=$([ "$WHICH" = best ] && echo best.ckpt || echo model.ckpt)
AR_CKPT=${AR_CKPT:-$OUT_DIR/ar_140m_100m/$file}
MDM_CKPT=${MDM_CKPT:-$OUT_DIR/mdm_425m_100m/$file}
VAL=${VAL_DATA:-$DATA_DIR/$VAL_NAME}
if [ "$USE_CPU" = 0 ] && [ -x "$BUILD_DIR/eval_gpu" ] && nvidia-smi -L >/dev/null 2>&1; then
    EVAL=$BUILD_DIR/eval_gpu
else
    EVAL=$BUILD_DIR/eval_cpu
fi
todo=(ar mdm); [ -z "$ONLY" ] || todo=("$ONLY")
if [ "$DRY_RUN" = 0 ]; then
    [ -x "$EVAL" ] || die "evaluator $EVAL not built (run: make $EVAL)"
    [ -f "$VAL.bin" ] && [ -f "$VAL.idx" ] || die "dataset $VAL.bin/.idx not found (run scripts/seed/download.sh)"
    for o in "${todo[@]}"; do
        c=$([ "$o" = ar ] && echo "$AR_CKPT" || echo "$MDM_CKPT")
        [ -f "$c" ] || die "$o checkpoint $c not found (train it with scripts/seed/train_${o}_100m.sh)"
    done
fi
res=$OUT_DIR/eval
note "evaluating $EVAL_SAMPLES validation sequences of $VAL; MDM K in {$MC}"
run_cmd mkdir -p "$res"
for o in "${todo[@]}"; do
    if [ "$o" = ar ]; then
        run_to "$res/ar.txt" "$EVAL" --load "$AR_CKPT" --objective ar --val-data "$VAL" --eval-samples "$EVAL_SAMPLES" \
            --eval-seed "$SEED" "${EXTRA[@]}"
    else
        for k in ${MC//,/ }; do
            run_to "$res/mdm_k$k.txt" "$EVAL" --load "$MDM_CKPT" --objective mdm --val-data "$VAL" \
                --eval-samples "$EVAL_SAMPLES" --mc-samples "$k" --eval-seed "$SEED" "${EXTRA[@]}"
        done
    fi
done
if [ "$PLOT" = 1 ]; then
    run_cmd python3 scripts/seed/plot_100m.py --runs "$OUT_DIR/ar_140m_100m" "$OUT_DIR/mdm_425m_100m" --eval-dir "$res" \
        --out "$res/plot_100m"
fi
