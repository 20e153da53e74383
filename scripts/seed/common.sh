# scripts/seed/common.sh — sourced by every scripts/seed/*.sh: the seed's settings (seed_spec §2), its integer
# arithmetic for samples / steps / warmup, argument checking with one "error:" line, dry-run printing, and the
# training launcher that train_ar_100m.sh, train_mdm_100m.sh, subsets.sh, grid.sh and scripts/crossover.sh share.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"

# Directories: environment variables or --data-dir / --build-dir / --out-dir.
DATA_DIR=${DATA_DIR:-data/seed}
BUILD_DIR=${BUILD_DIR:-build}
OUT_DIR=${OUT_DIR:-runs/seed}

# Released data and models (seed_spec §5.1).
HF_DATA_REPO=ZahlenReal/diffusion_data_constraint_quickstart
HF_MODEL_REPO=ZahlenReal/diffusion_data_constraint_models
HF_MODEL_FOLDER=100m_new
TRAIN_100M_NAME=gpt2tok_c4_100_text_document
VAL_NAME=gpt2tok_c4_val_text_document

# Unique-token counts of the seed's subsets (utils/epoch_tokens.sh, seed_spec §2.6) and the mean GPT-2 tokens per
# C4 document that the seed uses to pick how many JSONL lines make a subset (seed_spec §5.1).
DATA_25M=24743247
DATA_50M=49874872
DATA_100M=99952399
TOKENS_PER_DOC=478.625835

# Optimisation and run settings of every seed experiment (seed_spec §2.1-2.5).
SEQ_LEN=2048
GLOBAL_BATCH=256
MICRO_BATCH=${MICRO_BATCH:-8}  # B=8 fits one H100 for 140m and 425m at S=2048; it changes memory, not the math
LR=2e-4
MIN_LR=2e-5
BETA1=0.9
BETA2=0.95
ADAM_EPS=1e-8
WEIGHT_DECAY=0.1
CLIP=1.0
DROPOUT=0.1
ATTN_DROPOUT=0.1
SEED=1234
EVAL_EVERY=1000
EVAL_ITERS=10          # global batches per periodic validation (the quickstart scripts; TRAIN.md says 100)
SAVE_EVERY=1000
TRAIN_MC_SAMPLES=1     # MDM draws per sequence during training-time validation: the seed's --num-mc default (UNCONFIRMED)
FINAL_EVAL_ITERS=100   # stand-alone evaluation: 100 global batches = 25,600 sequences (seed_spec §4.1)

die() { echo "error: $*" >&2; exit 1; }

# need_value FLAG "$@": a flag that takes a value must have one.
need_value() { [ $# -ge 2 ] && [[ "$2" != --* ]] || die "$1 needs a value"; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
check_uint() { is_uint "$2" || die "$1 must be a non-negative integer, got '$2'"; }
check_pos() { is_uint "$2" && [ "$2" -gt 0 ] || die "$1 must be a positive integer, got '$2'"; }
check_choice() {  # check_choice FLAG VALUE CHOICE...
    local flag=$1 v=$2; shift 2
    local c; for c in "$@"; do [ "$v" = "$c" ] && return 0; done
    die "$flag must be one of: $*; got '$v'"
}
# A model preset must be one of llmc/config.h's table (the single source of the shapes).
check_model() {
    [ -n "$1" ] || die "--model is required"
    [ "$1" = tiny ] || [ "$1" = mini ] || grep -qE "^ *\{\"$1\", " llmc/config.h || die "--model: unknown preset '$1' (see llmc/config.h)"
}

# The seed's bash arithmetic (seed_spec §2.2-2.3): TRAIN_SAMPLES = (U*EPOCHS)//S, warmup = TRAIN_SAMPLES//100,
# train_iters = TRAIN_SAMPLES//global batch (a partial last batch is dropped).
seed_train_samples() { echo $(( $1 * $2 / SEQ_LEN )); }
seed_warmup() { echo $(( $1 / 100 )); }
seed_iters() { echo $(( $1 / GLOBAL_BATCH )); }

# run_cmd CMD...: prints the command (shell-quoted, one line) under --dry-run, otherwise echoes it to stderr and runs it.
DRY_RUN=0
quote_cmd() { local s; s=$(printf '%q ' "$@"); echo "${s% }"; }
run_cmd() {
    if [ "$DRY_RUN" = 1 ]; then quote_cmd "$@"; else echo "+ $(quote_cmd "$@")" >&2; "$@"; fi
}
# run_to FILE CMD...: as run_cmd, with the command's stdout also saved to FILE.
run_to() {
    local f=$1; shift
    if [ "$DRY_RUN" = 1 ]; then echo "$(quote_cmd "$@") | tee $(printf '%q' "$f")"
    else echo "+ $(quote_cmd "$@") | tee $f" >&2; "$@" | tee "$f"; fi
}
# note TEXT: a "# ..." line in the dry-run listing (plans, derived numbers), on stderr otherwise.
note() { if [ "$DRY_RUN" = 1 ]; then echo "# $*"; else echo "# $*" >&2; fi; }

# parse_common "$@": the options every script takes; sets SHIFT to the number of words used.
COMMON_HELP="common options:
  --data-dir DIR     downloaded seed data (default \$DATA_DIR or data/seed)
  --build-dir DIR    built trainers / evaluators (default \$BUILD_DIR or build)
  --out-dir DIR      runs, checkpoints, logs, results (default \$OUT_DIR or runs/seed)
  --dry-run          print the exact commands, one per line ('#' lines are derived numbers), run nothing
  --help             this text"
parse_common() {
    case $1 in
        --data-dir) need_value "$@"; DATA_DIR=$2; SHIFT=2 ;;
        --build-dir) need_value "$@"; BUILD_DIR=$2; SHIFT=2 ;;
        --out-dir) need_value "$@"; OUT_DIR=$2; SHIFT=2 ;;
        --dry-run) DRY_RUN=1; SHIFT=1 ;;
        --help|-h) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
}

# ---- training launcher ---------------------------------------------------------------------------------------
# The caller sets OBJECTIVE, MODEL, EPOCHS, UNIQUE, RUN_NAME and TRAIN_DATA (a prefix; '' = the 100M file) as
# defaults, then calls train_parse "$@" and train_run. Grid runs set STEPS and WARMUP instead of EPOCHS.
TRAIN_HELP="training options (defaults are the seed's):
  --model PRESET        model preset of llmc/config.h
  --epochs E            passes over the unique tokens (integer, as the seed's bash arithmetic)
  --unique-tokens U     unique training tokens U (0 = the whole training file)
  --seq-len S           sequence length (2048)
  --batch N             global batch in sequences (256)
  --micro-batch N       sequences per forward/backward (\$MICRO_BATCH or 8; memory only, same result)
  --train-data PREFIX   training .bin/.idx prefix (default: under --data-dir)
  --val-data PREFIX     validation prefix (default \$DATA_DIR/$VAL_NAME)
  --eval-every N        validate every N steps (1000)
  --eval-batches N      global batches per validation (10, i.e. 2560 sequences)
  --save-every N        checkpoint every N steps (1000)
  --stop-at N           stop with a checkpoint after step N (split a long run; continue with --resume)
  --resume              continue from RUN_DIR/model.ckpt
  --cpu                 use the CPU reference build/train_cpu (tests, tiny settings) instead of the GPU trainer
  --gpus N              data-parallel ranks, one per GPU, started by mpirun -np N (default 1: no launcher; with
                        --cpu, N ranks of build/train_cpu_mpi); the global batch and the result stay the same
  --hostfile FILE       multi-node: mpirun's hostfile (--gpus = ranks in total); rank 0's host, the file's first
                        line, becomes MASTER_ADDR so the ranks exchange the NCCL id over TCP (port \$MASTER_PORT or 29500)
  --srun                launch with srun inside a Slurm allocation instead (ranks = the allocation's tasks; see
                        scripts/launch/slurm_100m.sbatch)
  -- FLAGS...           extra trainer flags, appended last (they override the ones above)"
STEPS=""; WARMUP=""; STOP_AT=0; RESUME=0; USE_CPU=0; EXTRA=(); GPUS=1; HOSTFILE=""; USE_SRUN=0; LAUNCH_TIMEOUT=""
VAL_DATA=""
CHECKPOINTS=1                              # 0: no --ckpt-dir (scripts/crossover.sh: many short runs, only logs kept)
DATA_HINT="run scripts/seed/download.sh"   # how to get a missing dataset
train_parse() {
    while [ $# -gt 0 ]; do
        case $1 in
            --model) need_value "$@"; MODEL=$2; shift 2 ;;
            --epochs) need_value "$@"; check_pos --epochs "$2"; EPOCHS=$2; shift 2 ;;
            --unique-tokens) need_value "$@"; check_uint --unique-tokens "$2"; UNIQUE=$2; shift 2 ;;
            --seq-len) need_value "$@"; check_pos --seq-len "$2"; SEQ_LEN=$2; shift 2 ;;
            --batch) need_value "$@"; check_pos --batch "$2"; GLOBAL_BATCH=$2; shift 2 ;;
            --micro-batch) need_value "$@"; check_pos --micro-batch "$2"; MICRO_BATCH=$2; shift 2 ;;
            --train-data) need_value "$@"; TRAIN_DATA=$2; shift 2 ;;
            --val-data) need_value "$@"; VAL_DATA=$2; shift 2 ;;
            --eval-every) need_value "$@"; check_uint --eval-every "$2"; EVAL_EVERY=$2; shift 2 ;;
            --eval-batches) need_value "$@"; check_pos --eval-batches "$2"; EVAL_ITERS=$2; shift 2 ;;
            --save-every) need_value "$@"; check_uint --save-every "$2"; SAVE_EVERY=$2; shift 2 ;;
            --stop-at) need_value "$@"; check_uint --stop-at "$2"; STOP_AT=$2; shift 2 ;;
            --resume) RESUME=1; shift ;;
            --cpu) USE_CPU=1; shift ;;
            --gpus) need_value "$@"; check_pos --gpus "$2"; GPUS=$2; shift 2 ;;
            --hostfile) need_value "$@"; HOSTFILE=$2; shift 2 ;;
            --srun) USE_SRUN=1; shift ;;
            --) shift; EXTRA=("$@"); break ;;
            *) parse_common "$@"; shift "$SHIFT" ;;
        esac
    done
    check_model "$MODEL"
    check_choice objective "$OBJECTIVE" ar mdm
    [ "$MICRO_BATCH" -le "$GLOBAL_BATCH" ] && [ $((GLOBAL_BATCH % MICRO_BATCH)) -eq 0 ] ||
        die "--batch $GLOBAL_BATCH is not a multiple of --micro-batch $MICRO_BATCH"
    [ $((GLOBAL_BATCH % (MICRO_BATCH * GPUS))) -eq 0 ] ||
        die "--batch $GLOBAL_BATCH is not a multiple of --micro-batch $MICRO_BATCH x --gpus $GPUS"
    [ "$USE_SRUN" = 0 ] || [ "$GPUS" = 1 ] || die "--srun takes its ranks from the Slurm allocation: drop --gpus"
    [ "$USE_SRUN" = 0 ] || [ -z "$HOSTFILE" ] || die "--srun and --hostfile are two different launchers: pick one"
    [ -z "$HOSTFILE" ] || [ "$GPUS" -gt 1 ] || die "--hostfile needs --gpus N (the total number of ranks)"
}

# launcher_cmd: sets LAUNCH, the words that start the trainer's processes (none for one process). On a multi-node
# run mpirun passes MASTER_ADDR to every rank, so the NCCL id travels over TCP from rank 0 (llmc/bootstrap.h).
launcher_cmd() {
    LAUNCH=()
    # LAUNCH_TIMEOUT (seconds, set per run by crossover.sh's time limit): the run is stopped if still going then.
    if [ -n "$LAUNCH_TIMEOUT" ] && [ "$DRY_RUN" != 1 ]; then LAUNCH=(timeout --foreground -k 10 "$LAUNCH_TIMEOUT"); fi
    if [ "$USE_SRUN" = 1 ]; then LAUNCH+=(srun); return 0; fi
    [ "$GPUS" -gt 1 ] || return 0
    LAUNCH+=(mpirun -np "$GPUS")
    if [ -n "$HOSTFILE" ]; then
        [ "$DRY_RUN" = 1 ] || [ -f "$HOSTFILE" ] || die "--hostfile $HOSTFILE not found"
        local master
        master=$( (grep -vE '^[[:space:]]*(#|$)' "$HOSTFILE" 2>/dev/null || echo HOST0) | head -n 1 | awk '{print $1}')
        LAUNCH+=(--hostfile "$HOSTFILE" -x "MASTER_ADDR=$master" -x "MASTER_PORT=${MASTER_PORT:-29500}"
                 -x PATH -x LD_LIBRARY_PATH)
    fi
}

# train_inputs TRAIN VAL: sets TRAINER (the command for OBJECTIVE, CPU or GPU) and, unless --dry-run, fails with one
# error line when a dataset or the trainer is missing (data first: that check does not need the GPU build).
train_inputs() {
    if [ "$USE_CPU" = 1 ] && [ "$GPUS" -gt 1 ]; then TRAINER=("$BUILD_DIR/train_cpu_mpi" --objective "$OBJECTIVE")
    elif [ "$USE_CPU" = 1 ]; then TRAINER=("$BUILD_DIR/train_cpu" --objective "$OBJECTIVE")
    elif [ "$OBJECTIVE" = ar ]; then TRAINER=("$BUILD_DIR/train_gpt")
    else TRAINER=("$BUILD_DIR/train_mdm"); fi
    [ "$DRY_RUN" = 0 ] || return 0
    local p; for p in "$1" "$2"; do
        [ -f "$p.bin" ] && [ -f "$p.idx" ] || die "dataset $p.bin/.idx not found ($DATA_HINT)"
    done
    [ -x "${TRAINER[0]}" ] || die "trainer ${TRAINER[0]} not built (run: make ${TRAINER[0]})"
}

train_run() {
    local run_dir="$OUT_DIR/$RUN_NAME" train=${TRAIN_DATA:-$DATA_DIR/$TRAIN_100M_NAME} val=${VAL_DATA:-$DATA_DIR/$VAL_NAME}
    local samples steps warmup plan=()
    if [ -n "$STEPS" ]; then  # grid runs: the sample count is given (seed_spec §2.2, Chinchilla/data-value)
        steps=$STEPS; warmup=$WARMUP; samples=$((STEPS * GLOBAL_BATCH))
        plan=(--unique-tokens "$UNIQUE" --steps "$steps")
    else
        [ "$UNIQUE" -gt 0 ] || die "--unique-tokens must be > 0 for an epoch-based run"
        samples=$(seed_train_samples "$UNIQUE" "$EPOCHS"); warmup=$(seed_warmup "$samples"); steps=$(seed_iters "$samples")
        [ "$steps" -ge 1 ] || die "U=$UNIQUE x $EPOCHS epochs give $samples samples of $SEQ_LEN tokens: less than one batch of $GLOBAL_BATCH"
        # --epochs with --steps 0 (derive): the trainer then computes the same TRAIN_SAMPLES and steps, and its
        # cosine decays over TRAIN_SAMPLES like the seed's; an explicit --steps would decay over steps x batch.
        plan=(--unique-tokens "$UNIQUE" --subset exact --epochs "$EPOCHS" --steps 0)
    fi
    [ "$STOP_AT" -le "$steps" ] || die "--stop-at $STOP_AT is beyond the run's $steps steps"
    train_inputs "$train" "$val"
    launcher_cmd
    [ "$DRY_RUN" = 1 ] || [ "$RESUME" = 0 ] || [ -f "$run_dir/model.ckpt" ] || die "--resume: $run_dir/model.ckpt does not exist"
    note "plan: $OBJECTIVE $MODEL U=$UNIQUE epochs=${EPOCHS:-from-steps} samples=$samples steps=$steps warmup=$warmup" \
         "micro-batch=$MICRO_BATCH grad-accum=$((GLOBAL_BATCH / MICRO_BATCH / GPUS)) x $GPUS rank(s) run=$run_dir"
    local cmd=("${LAUNCH[@]}" "${TRAINER[@]}" --model "$MODEL" --seq-len "$SEQ_LEN" --train-data "$train" --val-data "$val"
               "${plan[@]}" --batch "$GLOBAL_BATCH" --micro-batch "$MICRO_BATCH"
               --lr "$LR" --min-lr "$MIN_LR" --warmup-samples "$warmup" --weight-decay "$WEIGHT_DECAY"
               --beta1 "$BETA1" --beta2 "$BETA2" --adam-eps "$ADAM_EPS" --clip "$CLIP"
               --dropout "$DROPOUT" --attn-dropout "$ATTN_DROPOUT" --seed "$SEED"
               --eval-every "$EVAL_EVERY" --eval-samples $((EVAL_ITERS * GLOBAL_BATCH)))
    if [ "$OBJECTIVE" = mdm ]; then cmd+=(--mc-samples "$TRAIN_MC_SAMPLES"); fi
    if [ "$CHECKPOINTS" = 1 ]; then cmd+=(--ckpt-dir "$run_dir" --save-every "$SAVE_EVERY"); fi
    cmd+=(--log "$run_dir/train.jsonl")
    if [ "$STOP_AT" -gt 0 ]; then cmd+=(--stop-at "$STOP_AT"); fi
    if [ "$RESUME" = 1 ]; then cmd+=(--resume "$run_dir/model.ckpt"); fi
    run_cmd mkdir -p "$run_dir"
    run_cmd "${cmd[@]}" "${EXTRA[@]}"
}
