#!/usr/bin/env bash
# scripts/seed/grid.sh — the seed's compute-fixed configurations (seed_spec §2.6): Chinchilla single-epoch runs on
# full C4 (C in {6e18,1e19,3e19,1e20}, model user-chosen) and the data-value runs (fixed C, the D = C/(6N) tokens
# drawn from a subset of D/k unique tokens repeated k times, k in {1,2,4,10,20,50,100}). D = int(C/6/N) with the
# seed's parameter formula N (§1.11), samples = round(D/2048), warmup = max(round(samples/100), 100), steps =
# samples // 256. --list prints the grid; otherwise one run is launched. Dataset prefixes are UNCONFIRMED names
# (the full C4 and the DATA_7B6_* ... subsets are not released): pass --train-data.
source "$(dirname "$0")/common.sh"
usage() { echo "usage: scripts/seed/grid.sh --list [chinchilla|data-value] | --kind K --objective ar|mdm --compute C [--model M] [--repeat k] [options]
  --kind chinchilla|data-value   experiment family
  --compute C                    6e18, 1e19, 3e19 or 1e20 (data-value: 1e19, 3e19, 1e20; fixes the model)
  --model PRESET                 chinchilla: required; data-value: fixed by objective and C
  --repeat k                     data-value epochs k in {1,2,4,10,20,50,100}
$TRAIN_HELP
$COMMON_HELP"; }
CHIN_MODELS="117m 217m 425m 724m"; REPEATS="1 2 4 10 20 50 100"
dv_model() { case $1:$2 in ar:1e19) echo 217m;; ar:3e19) echo 425m;; ar:1e20) echo 724m;;
                           mdm:1e19) echo 117m;; mdm:3e19) echo 217m;; mdm:1e20) echo 425m;; esac; }
# grid_numbers MODEL C K: "N D samples warmup steps U" (python3 for the seed's float int()/round()).
grid_numbers() {
    local hl; hl=$(grep -E "^ *\{\"$1\", " llmc/config.h | tr -d '{}",' | awk '{print $2, $6}')
    python3 -c "
import sys; h, L, C, k, B = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
F = h // 24 * 64; N = 4*L*h*h + 3*L*h*F + 6*L*h + 50257*h; D = int(C / 6 / N); s = round(D / 2048)
print(N, D, s, max(round(s / 100), 100), s // B, D // k)" $hl "$2" "$3" "$GLOBAL_BATCH"
}
KIND=""; OBJECTIVE=""; COMPUTE=""; REPEAT=1; LIST=""; MODEL=""; rest=()
while [ $# -gt 0 ]; do
    case $1 in
        --list) LIST=all; if [ $# -ge 2 ] && [[ "$2" != --* ]]; then check_choice --list "$2" chinchilla data-value; LIST=$2; shift; fi; shift ;;
        --kind) need_value "$@"; check_choice --kind "$2" chinchilla data-value; KIND=$2; shift 2 ;;
        --objective) need_value "$@"; check_choice --objective "$2" ar mdm; OBJECTIVE=$2; shift 2 ;;
        --compute) need_value "$@"; check_choice --compute "$2" 6e18 1e19 3e19 1e20; COMPUTE=$2; shift 2 ;;
        --repeat) need_value "$@"; check_choice --repeat "$2" $REPEATS; REPEAT=$2; shift 2 ;;
        --help|-h) usage; exit 0 ;;
        --) rest+=("$@"); break ;;
        *) rest+=("$1"); shift ;;
    esac
done
if [ -n "$LIST" ]; then
    printf '%-10s %-4s %-6s %-5s %4s %12s %13s %10s %7s %6s %12s\n' kind obj model C k N D samples warmup steps U
    row() { printf '%-10s %-4s %-6s %-5s %4s %12s %13s %10s %7s %6s %12s\n' "$1" "$2" "$3" "$4" "$5" $(grid_numbers "$3" "$4" "$5"); }
    if [ "$LIST" != data-value ]; then
        for o in ar mdm; do for c in 6e18 1e19 3e19 1e20; do for m in $CHIN_MODELS; do row chinchilla $o $m $c 1; done; done; done
    fi
    if [ "$LIST" != chinchilla ]; then
        for o in ar mdm; do for c in 1e19 3e19 1e20; do for k in $REPEATS; do row data-value $o "$(dv_model $o $c)" $c $k; done; done; done
    fi
    exit 0
fi
[ -n "$KIND" ] || die "--kind is required (or --list)"
[ -n "$OBJECTIVE" ] || die "--objective is required"
[ -n "$COMPUTE" ] || die "--compute is required"
if [ "$KIND" = data-value ]; then
    [ "$COMPUTE" != 6e18 ] || die "--compute 6e18 has no data-value configuration (1e19, 3e19, 1e20)"
    MODEL=$(dv_model "$OBJECTIVE" "$COMPUTE")
else
    REPEAT=1
fi
EPOCHS=""; UNIQUE=0; TRAIN_DATA=""
train_parse "${rest[@]}"
[ -n "$MODEL" ] || die "--model is required for --kind chinchilla"
read -r _N _D _S WARMUP STEPS _U <<<"$(grid_numbers "$MODEL" "$COMPUTE" "$REPEAT")"
if [ "$KIND" = chinchilla ]; then
    TRAIN_DATA=${TRAIN_DATA:-$DATA_DIR/gpt2tok_c4_full_text_document}
    RUN_NAME=chinchilla_${OBJECTIVE}_${MODEL}_${COMPUTE}
else
    TRAIN_DATA=${TRAIN_DATA:-$DATA_DIR/datavalue_${OBJECTIVE}_${COMPUTE}_k${REPEAT}_text_document}
    RUN_NAME=datavalue_${OBJECTIVE}_${MODEL}_${COMPUTE}_k${REPEAT}
fi
note "grid: N=$_N D=$_D samples=$_S unique~$_U (the dataset file holds the unique tokens)"
train_run
