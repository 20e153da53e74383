#!/usr/bin/env bash
# scripts/crossover.sh — the scaled-down data-constrained crossover (issue 7 part 2) as one command: AR and MDM
# trained on the same U unique tokens at several epoch counts, each run's best validation loss (AR NLL; MDM
# stratified Monte-Carlo ELBO, K >= 16, +- its standard error) tabulated and plotted against epochs and FLOPs, and
# whether / from which compute MDM's best loss drops below AR's.
#
# The default GPU plan (U = 2M; AR 1..32 epochs, MDM 4..128; 10 runs, 32 x 512 tokens per step; 126M AR and 424M
# MDM tokens) ran in 181 s on one H200 on 2026-11-28 (docs/results/crossover_h200_2026-11-28: mini trained at 2.8M
# AR / 3.4M MDM tok/s, 30-35 % MFU), and the same plan with --model 44m at AR 4..16, MDM 32, 80 epochs in 271 s.
# Those measured rates (MEASURED below) predict a plan's time; --time-limit (default 590 s on the GPU) keeps the
# experiment under 10 minutes whatever the rate on another card: runs go cheapest first, each one's time is
# predicted from the rates measured so far in this experiment, and a run that would end past the limit is skipped
# and named (rerun it later into the same --out).
#
# Why this setting. A PyTorch probe of the same model family at U = 0.5M C4 tokens (30M parameters, no dropout)
# found no crossover (AR best NLL 6.95 at ~10 epochs, MDM best ELBO 7.07 at ~45, both overfitting beyond), with
# losses near unigram level: 60 parameters per unique token memorise rather than model. The paper's best 100M-token
# models have 1.4 (AR 140M) and 4.3 (MDM 425M) parameters per unique token. Mini (the smallest preset the GPU
# kernels take) at U = 2M has 8, and 1.5 non-embedding ones: the nearest to the paper's regime that still trains
# MDM to 128 epochs within the budget. U = 2M needs more text than the bundled C4 sample (1.28M tokens), so the
# default data is the bundled Wikipedia sample (`make data`: build/data/wiki_train, 9.9M tokens; wiki_val 0.49M).
# Dropout 0.1 is the seed's. The paper's critical compute, C_crit(U) = 2.12e15 * (U/1e6)^2.174 FLOPs as recollected
# in seed_spec section 7 (unconfirmed, and fitted far above this scale), is ~9.6e15 at U = 2M; the plan's runs
# span ~1.9e14 (AR, 1 epoch) to ~2.4e16 (MDM, 128 epochs) at 6N = 95 MFLOP/token, so they bracket it.
# Whether MDM overtakes AR here is the experiment's question, not an assumption. (On 2026-11-28 it did not: AR's best
# NLL 5.58, MDM's best ELBO 5.77 +- 0.014 with the 3x larger 44m model; README, "Scaled-down crossover".)
source "$(dirname "$0")/seed/common.sh"  # die / check_* / seed arithmetic / dry-run printing / train_run launcher

# Measured one-GPU time model at S=512 (one H200, 2026-11-28, the runs above): training tok/s and the seconds a run
# spends besides training steps (start-up, validations), per model and objective; other settings have no estimate.
declare -A MEASURED=([mini:ar]="2810660 0.6" [mini:mdm]="3368410 1.5" [44m:ar]="1044870 1.2" [44m:mdm]="1078051 3.0")
MEASURED_ON="one H200, 2026-11-28"
DEFAULT_GPU_TIME_LIMIT=590  # seconds of training runs: the whole experiment within 10 minutes of one GPU
OVERRUN_S=${CROSSOVER_OVERRUN_S:-20}  # with a time limit, a run still going this long past it is stopped

usage() { echo "usage: scripts/crossover.sh [options] [-- trainer flags]
Trains AR and MDM on U unique tokens at each epoch count, then writes OUT/results.md, OUT/results.csv and
OUT/crossover.png (scripts/plot_crossover.py) and prints the table and whether/where MDM overtakes AR.
One run per objective and epoch count in OUT/<objective>_e<epochs>/ (train.jsonl, train.txt, wall_seconds; no
checkpoints). The report covers every OUT/*/train.jsonl, so a cut-off experiment is completed by rerunning only
the missing epoch counts into the same OUT (the last lines print that command). A failed run ends its objective
(its later runs are skipped), not the experiment: the report covers what ran, then the script exits non-zero.

The default GPU plan (mini, U=2M of the bundled Wikipedia sample, AR 1..32 and MDM 4..128 epochs) ran in 181 s on
one H200 (2026-11-28); the dry-run prints the time the rates measured then predict (mini and 44m at S=512). Runs go
cheapest first; with a time limit, a run predicted (from the rates measured so far) to end past it is skipped and
named, so the experiment stays within the limit.

options:
  --trainer gpu|cpu     gpu: build/train_gpt + build/train_mdm; cpu: build/train_cpu --objective ar|mdm (default gpu)
  --unique-tokens U     unique training tokens, the first U of --train-data (default 2000000; bundled Wikipedia
                        9,865,443, bundled C4 1,278,120)
  --epochs-ar LIST      AR epoch counts, comma-separated positive integers, or none (default 1,2,4,8,16,32)
  --epochs-mdm LIST     MDM epoch counts, or none (default 4,16,64,128)
  --time-limit SECONDS  skip runs predicted to end more than SECONDS after the first run started (a run with
                        nothing to predict from: once SECONDS have passed), and stop a run still going $OVERRUN_S s past
                        it (the report lists it as incomplete); 0 = no limit
                        (default 590 with --trainer gpu, 0 with --trainer cpu)
  --model PRESET        model preset of llmc/config.h (default mini; shape overrides go after --)
  --seq-len S           sequence length (default 512)
  --batch N             sequences per optimizer step (default 32)
  --micro-batch N       sequences per forward/backward (default 32; memory only)
  --lr X, --min-lr X    cosine learning rate from X down to --min-lr (default 1e-3 -> 1e-4; warmup 1 % of samples)
  --dropout X           hidden and attention dropout (default 0.1, the seed's)
  --evals N             validations per run, evenly spaced, the last at the end (default 8)
  --eval-batches N      validation sequences = N x --batch (default 4: 128 x 512 tokens of wiki_val's 487,853)
  --mc-samples K        MDM ELBO draws per validation sequence, stratified, K >= 16 (default 16)
  --seed N              seed of init, data order, dropout and masks (default 1234)
  --train-data PREFIX   training .bin/.idx (default build/data/wiki_train, made by make data; the bundled C4
                        sample is dev/data/c4_train)
  --val-data PREFIX     validation .bin/.idx (default build/data/wiki_val; C4: dev/data/c4_val)
  --build-dir DIR       where the trainers are (default build)
  --out DIR             results folder (default runs/crossover)
  --report-only         train nothing: tabulate and plot the runs already in --out
  --dry-run             print the plan and the exact commands, run nothing
  --help                this text
  -- FLAGS...           extra trainer flags for every run, appended last (e.g. -- --threads 2 for --trainer cpu)
environment: PYTHON (default python3) runs scripts/plot_crossover.py; matplotlib is needed only for the PNG."; }

TRAINER_KIND=gpu
UNIQUE=2000000
EPOCHS_AR=1,2,4,8,16,32
EPOCHS_MDM=4,16,64,128
TIME_LIMIT=
MODEL=mini
SEQ_LEN=512
GLOBAL_BATCH=32
MICRO_BATCH=32
LR=1e-3
MIN_LR=1e-4
EVALS=8
EVAL_ITERS=4
TRAIN_MC_SAMPLES=16
TRAIN_DATA=build/data/wiki_train
VAL_DATA=build/data/wiki_val
OUT_DIR=runs/crossover
PYTHON=${PYTHON:-python3}
REPORT_ONLY=0
USER_EXTRA=()
CHECKPOINTS=0  # dozens of 190 MB checkpoint writes would cost more time than some runs; the logs hold the results
DATA_HINT="make data tokenises the bundled Wikipedia sample into build/data; other text: build/prepare"

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
        --time-limit) need_value "$@"; check_num --time-limit "$2"; TIME_LIMIT=$2; shift 2 ;;
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
if [ -z "$TIME_LIMIT" ]; then
    if [ "$TRAINER_KIND" = gpu ]; then TIME_LIMIT=$DEFAULT_GPU_TIME_LIMIT; else TIME_LIMIT=0; fi
fi

REPORT=(scripts/plot_crossover.py --runs "$OUT_DIR" --out "$OUT_DIR" --val-data "$VAL_DATA")
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

# eval_every STEPS: the cadence giving --evals validations, the last at the end (the trainers always validate at
# their last step): ceil(STEPS / EVALS).
eval_every() { echo $(( ($1 + EVALS - 1) / EVALS )); }

# The time model of a run: a fixed part (start-up, validations, the end) plus its tokens at the rate of training
# steps. From MEASURED (GPU, S=512, a model measured there) until a run of the objective has been measured here,
# then from that objective's runs so far: the steps' time from the log's "ms" of each step, the rest of the wall
# time per run.
declare -A EST_RATE EST_OVERHEAD TRAIN_SECONDS_DONE OTHER_SECONDS_DONE TOKENS_DONE RUNS_DONE
if [ "$TRAINER_KIND" = gpu ] && [ "$SEQ_LEN" = 512 ]; then
    for obj in ar mdm; do
        if [ -n "${MEASURED[$MODEL:$obj]:-}" ]; then read -r "EST_RATE[$obj]" "EST_OVERHEAD[$obj]" <<<"${MEASURED[$MODEL:$obj]}"; fi
    done
fi
# predict_seconds OBJ TOKENS: the run's predicted wall time, or nothing when there is no rate to go by.
predict_seconds() {
    if [ -n "${TOKENS_DONE[$1]:-}" ]; then
        awk -v s="${TRAIN_SECONDS_DONE[$1]}" -v d="${TOKENS_DONE[$1]}" -v o="${OTHER_SECONDS_DONE[$1]}" \
            -v n="${RUNS_DONE[$1]}" -v t="$2" 'BEGIN { printf "%.1f", t * s / d + o / n }'
    elif [ -n "${EST_RATE[$1]:-}" ]; then
        awk -v r="${EST_RATE[$1]}" -v t="$2" -v o="${EST_OVERHEAD[$1]}" 'BEGIN { printf "%.1f", t / r + o }'
    fi
}

# The plan: steps by the seed's arithmetic (as train_run derives them), tokens, and the time estimate.
declare -A STEPS_OF TOKENS_OF
tok_ar=0; tok_mdm=0; est_s=0  # est_s: the runs' predicted seconds, from MEASURED (no run measured here yet)
note "plan: $TRAINER_KIND trainer, $MODEL, U=$UNIQUE, S=$SEQ_LEN, batch $GLOBAL_BATCH, lr $LR -> $MIN_LR, dropout $DROPOUT," \
     "$EVALS validations per run on $((EVAL_ITERS * GLOBAL_BATCH)) sequences (MDM: K=$TRAIN_MC_SAMPLES stratified)"
for r in "${RUNS[@]}"; do
    obj=${r%%:*} e=${r#*:}
    steps=$(seed_iters "$(seed_train_samples "$UNIQUE" "$e")")
    [ "$steps" -ge 1 ] || die "$obj at $e epochs: U=$UNIQUE x $e / S=$SEQ_LEN is less than one batch of $GLOBAL_BATCH sequences"
    STEPS_OF[$r]=$steps
    t=$((steps * GLOBAL_BATCH * SEQ_LEN))
    TOKENS_OF[$r]=$t
    if [ "$obj" = ar ]; then tok_ar=$((tok_ar + t)); else tok_mdm=$((tok_mdm + t)); fi
    est_s=$(awk -v a="$est_s" -v p="$(predict_seconds "$obj" "$t")" 'BEGIN { print a + p }')
    note "  ${obj}_e$e: $e epochs, $steps steps, $t tokens, validation every $(eval_every "$steps") steps"
done
if [ "$TRAINER_KIND" = cpu ] && [ $((tok_ar + tok_mdm)) -gt 2000000 ]; then
    note "warning: the CPU reference trains ~10^3 tokens/s at its tiny size, so $((tok_ar + tok_mdm)) tokens take days; a" \
         "CPU check of the pipeline: --model tiny --seq-len 32 --batch 4 --micro-batch 4 --unique-tokens 512" \
         "--epochs-ar 1,2 --epochs-mdm 1,2 --evals 2 --eval-batches 1"
fi
if [ "$TRAINER_KIND" = gpu ]; then
    note "$(awk -v a="$tok_ar" -v m="$tok_mdm" -v ra="${EST_RATE[ar]:-0}" -v rm="${EST_RATE[mdm]:-0}" -v e="$est_s" -v on="$MEASURED_ON" 'BEGIN {
        printf "training tokens: AR %.1fM, MDM %.1fM; ", a / 1e6, m / 1e6
        if (ra > 0 && rm > 0) printf "predicted time %.1f minutes (AR %.2fM / MDM %.2fM tok/s as measured on %s)", e / 60, ra / 1e6, rm / 1e6, on
        else printf "no time prediction for this model / sequence length (measured: mini and 44m at S=512)" }')"
fi
limited() { awk -v l="$TIME_LIMIT" 'BEGIN { exit !(l > 0) }'; }
if limited; then note "time limit: $TIME_LIMIT s of training runs (--time-limit; 0 = none)"; fi
# Cheapest run first (ties: AR first): both objectives' rates are measured early, and a time limit falls on the
# most expensive runs, whose absence the report shows (MDM's best at its longest run completed is flagged).
mapfile -t RUNS < <(for k in "${!RUNS[@]}"; do printf '%s\t%s\t%s\n' "${TOKENS_OF[${RUNS[$k]}]}" "$k" "${RUNS[$k]}"; done |
                    sort -n -k1,1 -k2,2 | cut -f3)

SKIPPED=() FAILED=() FAILED_WHY=() STOPPED=()  # runs as objective:epochs
declare -A FAILED_RUN  # objective -> its run that failed: the objective's later runs are skipped (same trainer)
elapsed=0  # seconds since the first run started (dry-run: the predicted seconds of the runs before)
t_start=$EPOCHREALTIME
i=0
for r in "${RUNS[@]}"; do
    i=$((i + 1))
    OBJECTIVE=${r%%:*} EPOCHS=${r#*:}
    RUN_NAME=${OBJECTIVE}_e$EPOCHS
    steps=${STEPS_OF[$r]}
    EVAL_EVERY=$(eval_every "$steps")
    EXTRA=()
    if [ "$OBJECTIVE" = mdm ]; then EXTRA+=(--stratified); fi
    EXTRA+=("${USER_EXTRA[@]}")
    if [ -n "${FAILED_RUN[$OBJECTIVE]:-}" ]; then
        SKIPPED+=("$r")
        note "[$i/${#RUNS[@]}] skipped $RUN_NAME: ${FAILED_RUN[$OBJECTIVE]} failed"
        continue
    fi
    pred=$(predict_seconds "$OBJECTIVE" "${TOKENS_OF[$r]}")
    # Over the limit: predicted to end past it, or (no rate to predict with) started with no time left.
    if limited && awk -v e="$elapsed" -v p="${pred:--1}" -v l="$TIME_LIMIT" \
           'BEGIN { exit !(p >= 0 ? e + p > l : e >= l) }'; then
        SKIPPED+=("$r")
        note "[$i/${#RUNS[@]}] skipped $RUN_NAME: predicted ${pred:-?}s, $(awk -v e="$elapsed" -v l="$TIME_LIMIT" \
             'BEGIN { printf "%.0f", (l > e ? l - e : 0) }')s of the time limit left"
        continue
    fi
    if [ "$DRY_RUN" = 1 ]; then
        train_run
        elapsed=$(awk -v e="$elapsed" -v p="${pred:-0}" 'BEGIN { print e + p }')
        continue
    fi
    # A run slower than predicted is stopped OVERRUN_S past the limit, so that the report (and whatever else a
    # device session runs after it) still happens; its log ends early and the report lists it as incomplete.
    LAUNCH_TIMEOUT=
    if limited; then
        LAUNCH_TIMEOUT=$(awk -v e="$elapsed" -v l="$TIME_LIMIT" -v g=$OVERRUN_S 'BEGIN { printf "%.0f", (l > e ? l - e : 0) + g }')
    fi
    run_dir=$OUT_DIR/$RUN_NAME
    mkdir -p "$run_dir"
    rm -f "$run_dir/wall_seconds" "$run_dir/train.jsonl"  # a rerun into the same --out starts a fresh log
    t0=$EPOCHREALTIME
    # A subshell, so that a die inside the launcher ends only it; the trainer's own error line is then reported.
    rc=0
    (train_run) >"$run_dir/train.txt" 2>&1 || rc=$?
    wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
    elapsed=$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
    if [ $rc -ne 0 ]; then
        # timeout's own codes: 124 (stopped by TERM), 137 (KILL after it); a 137 before the limit is another kill.
        if [ -n "$LAUNCH_TIMEOUT" ] && { [ $rc -eq 124 ] ||
                { [ $rc -eq 137 ] && awk -v w="$wall" -v l="$LAUNCH_TIMEOUT" 'BEGIN { exit !(w >= l) }'; }; }; then
            STOPPED+=("$r")
            echo "[$i/${#RUNS[@]}] $RUN_NAME stopped after ${wall}s (predicted ${pred:-?}s): ${OVERRUN_S}s past the time limit" >&2
            continue
        fi
        why=$(grep -m1 '^error' "$run_dir/train.txt" || tail -n 1 "$run_dir/train.txt")
        why=${why#error: }
        FAILED+=("$r")
        FAILED_WHY+=("$RUN_NAME: $why (output: $run_dir/train.txt)")
        FAILED_RUN[$OBJECTIVE]=$RUN_NAME
        echo "[$i/${#RUNS[@]}] $RUN_NAME FAILED after ${wall}s: $why" >&2
        continue
    fi
    echo "$wall" >"$run_dir/wall_seconds"
    steps_s=$(grep '"kind": "train"' "$run_dir/train.jsonl" | grep -o '"ms": [0-9.eE+-]*' |
              awk '{ s += $2 } END { printf "%.3f", s / 1000 }')
    TRAIN_SECONDS_DONE[$OBJECTIVE]=$(awk -v a="${TRAIN_SECONDS_DONE[$OBJECTIVE]:-0}" -v w="$steps_s" 'BEGIN { print a + w }')
    OTHER_SECONDS_DONE[$OBJECTIVE]=$(awk -v a="${OTHER_SECONDS_DONE[$OBJECTIVE]:-0}" -v w="$wall" -v t="$steps_s" \
                                      'BEGIN { print a + (w > t ? w - t : 0) }')
    TOKENS_DONE[$OBJECTIVE]=$(( ${TOKENS_DONE[$OBJECTIVE]:-0} + TOKENS_OF[$r] ))
    RUNS_DONE[$OBJECTIVE]=$(( ${RUNS_DONE[$OBJECTIVE]:-0} + 1 ))
    best=$(grep '"kind": "eval"' "$run_dir/train.jsonl" | tail -n 1 | grep -o '"best_val_loss": [^,}]*' | cut -d' ' -f2 || true)
    echo "[$i/${#RUNS[@]}] $OBJECTIVE $EPOCHS epochs: $steps steps in ${wall}s (predicted ${pred:-?}s), best validation loss $best" >&2
done
# The report covers every run folder with a log (a failed run's too, if it validated before failing).
report_rc=0
if [ "$DRY_RUN" = 1 ] || compgen -G "$OUT_DIR/*/train.jsonl" >/dev/null; then report || report_rc=$?; fi
if [ "$DRY_RUN" != 1 ]; then  # the measured time model, to size the next plan with (MEASURED above)
    rates=()
    for obj in ar mdm; do
        [ -n "${TOKENS_DONE[$obj]:-}" ] && rates+=("$(awk -v o="${obj^^}" -v t="${TOKENS_DONE[$obj]}" \
            -v s="${TRAIN_SECONDS_DONE[$obj]}" -v x="${OTHER_SECONDS_DONE[$obj]}" -v n="${RUNS_DONE[$obj]}" \
            -v e="${EST_RATE[$obj]:-}" -v eo="${EST_OVERHEAD[$obj]:-}" 'BEGIN {
            printf "%s %.0f tok/s + %.1f s a run", o, (s > 0 ? t / s : 0), x / n
            if (e) printf " (predicted from %.0f + %.1f)", e, eo }')")
    done
    echo "crossover: $((i - ${#SKIPPED[@]} - ${#FAILED[@]} - ${#STOPPED[@]})) runs in $(printf '%.0f' "$elapsed")s; measured: $(IFS=';'; echo "${rates[*]:-none}" | sed 's/;/, /g')"
fi
INCOMPLETE=()  # in plan order
for r in "${RUNS[@]}"; do
    [[ " ${SKIPPED[*]} ${STOPPED[*]} ${FAILED[*]} " == *" $r "* ]] && INCOMPLETE+=("$r")
done
if [ ${#INCOMPLETE[@]} -gt 0 ]; then
    redo_ar=() redo_mdm=()
    for r in "${INCOMPLETE[@]}"; do if [ "${r%%:*}" = ar ]; then redo_ar+=("${r#*:}"); else redo_mdm+=("${r#*:}"); fi; done
    join() { local IFS=,; echo "${*:-none}"; }
    note "not run to the end: $(for r in "${INCOMPLETE[@]}"; do printf '%s_e%s ' "${r%%:*}" "${r#*:}"; done)- to complete the experiment later, rerun with the same options and" \
         "--epochs-ar $(join "${redo_ar[@]}") --epochs-mdm $(join "${redo_mdm[@]}") --time-limit 0 (same --out)"
fi
if [ ${#FAILED[@]} -eq 1 ]; then die "run ${FAILED_WHY[0]/: / failed: }"; fi
[ "$report_rc" -eq 0 ] || exit "$report_rc"  # the report's own error line is above
if [ ${#FAILED[@]} -gt 1 ]; then die "${#FAILED[@]} runs failed: $(IFS=';'; echo "${FAILED_WHY[*]}" | sed 's/;/; /g')"; fi
