#!/usr/bin/env bash
# scripts/seed/subsets.sh — one training run on the seed's 25M, 50M or 100M unique-token C4 subset (seed_spec
# §2.6, utils/epoch_tokens.sh) with the seed's settings, or --list of the subsets. The paper's grid of
# (model x U x epochs) is not in the seed repository, so for 25m/50m --model and --epochs are required.
# --source bin (default) takes the first U tokens of the released 100M .bin (exact U; its documents differ from the
# seed's subset because that .bin is not in JSONL order); --source jsonl tokenises the first K lines of
# c4_100m.jsonl, K = floor(U_nominal / 478.625835) as the seed's head -n (25M: 52,232, 50M: 104,465; UNCONFIRMED).
source "$(dirname "$0")/common.sh"
usage() { echo "usage: scripts/seed/subsets.sh --list | --size 25m|50m|100m --objective ar|mdm [options] [-- trainer flags]
  --list                print size, U, JSONL lines and samples per epoch of each subset
  --size 25m|50m|100m   the subset (U = $DATA_25M / $DATA_50M / $DATA_100M)
  --objective ar|mdm    100m defaults to the best models: ar 140m x 50, mdm 425m x 500 epochs
  --source bin|jsonl    first U tokens of the 100M .bin (default) or the first K JSONL documents
$TRAIN_HELP
$COMMON_HELP"; }
SIZE=""; OBJECTIVE=""; SOURCE=bin; LIST=0; MODEL=""; EPOCHS=""; rest=()
while [ $# -gt 0 ]; do
    case $1 in
        --list) LIST=1; shift ;;
        --size) need_value "$@"; check_choice --size "$2" 25m 50m 100m; SIZE=$2; shift 2 ;;
        --objective) need_value "$@"; check_choice --objective "$2" ar mdm; OBJECTIVE=$2; shift 2 ;;
        --source) need_value "$@"; check_choice --source "$2" bin jsonl; SOURCE=$2; shift 2 ;;
        --help|-h) usage; exit 0 ;;
        --) rest+=("$@"); break ;;
        *) rest+=("$1"); shift ;;
    esac
done
docs_for() { python3 -c "import sys; print(int(int(sys.argv[1]) * 1e6 / $TOKENS_PER_DOC))" "$1"; }
if [ "$LIST" = 1 ]; then
    printf '%-6s %12s %12s %16s\n' size U jsonl_lines samples/epoch
    for s in 25 50 100; do u_var=DATA_${s}M
        printf '%-6s %12d %12d %16d\n' "${s}m" "${!u_var}" "$(docs_for $s)" "$(seed_train_samples "${!u_var}" 1)"
    done
    exit 0
fi
[ -n "$SIZE" ] || die "--size is required (or --list)"
[ -n "$OBJECTIVE" ] || die "--objective is required"
n=${SIZE%m}; u_var=DATA_${n}M; UNIQUE=${!u_var}; TRAIN_DATA=""
if [ "$SIZE" = 100m ]; then
    MODEL=$([ "$OBJECTIVE" = ar ] && echo 140m || echo 425m); EPOCHS=$([ "$OBJECTIVE" = ar ] && echo 50 || echo 500)
fi
train_parse "${rest[@]}"
[ -n "$MODEL" ] || die "--model is required for --size $SIZE (the seed does not list its grid)"
[ -n "$EPOCHS" ] || die "--epochs is required for --size $SIZE"
RUN_NAME=${OBJECTIVE}_${MODEL}_${SIZE}_${EPOCHS}ep
if [ "$SOURCE" = jsonl ] && [ "$SIZE" != 100m ] && [ -z "$TRAIN_DATA" ]; then
    TRAIN_DATA=$DATA_DIR/gpt2tok_c4_${n}_text_document
    if [ "$DRY_RUN" = 0 ]; then [ -f "$DATA_DIR/c4_100m.jsonl" ] || die "$DATA_DIR/c4_100m.jsonl not found (run scripts/seed/download.sh)"; fi
    run_cmd "$BUILD_DIR/prepare" --input "$DATA_DIR/c4_100m.jsonl" --max-docs "$(docs_for "$n")" --output-prefix "$TRAIN_DATA"
fi
train_run
