#!/usr/bin/env bash
# scripts/seed/download.sh — fetches the seed's released quickstart data (seed_spec §5.1): the 100M-token C4 subset
# and C4 validation as Megatron .bin/.idx, the raw JSONL, and the GPT-2 tokenizer files, into --data-dir.
# The file names are taken from seed_spec §5.1 (the seed's download.sh); whether they sit in subfolders of the
# Hugging Face repository is UNCONFIRMED. --models also fetches the released 100M checkpoints (needs huggingface-cli).
source "$(dirname "$0")/common.sh"
usage() { echo "usage: scripts/seed/download.sh [options]
Downloads the seed's quickstart data into \$DATA_DIR (resumable, skips complete files).
  --no-jsonl     skip the raw JSONL (only needed for subsets.sh --source jsonl)
  --models       also download $HF_MODEL_REPO folder $HF_MODEL_FOLDER into \$DATA_DIR/models
$COMMON_HELP"; }
JSONL=1; MODELS=0
while [ $# -gt 0 ]; do
    case $1 in
        --no-jsonl) JSONL=0; shift ;;
        --models) MODELS=1; shift ;;
        *) parse_common "$@"; shift "$SHIFT" ;;
    esac
done
HF=https://huggingface.co
files=("$TRAIN_100M_NAME.bin" "$TRAIN_100M_NAME.idx" "$VAL_NAME.bin" "$VAL_NAME.idx")
[ "$JSONL" = 0 ] || files+=(c4_100m.jsonl c4_validation.jsonl)
if [ "$DRY_RUN" = 0 ]; then command -v curl >/dev/null || die "curl not found"; fi
run_cmd mkdir -p "$DATA_DIR"
for f in "${files[@]}"; do
    run_cmd curl -fL --retry 3 -C - -o "$DATA_DIR/$f" "$HF/datasets/$HF_DATA_REPO/resolve/main/$f"
done
# GPT-2 BPE files (the same as the bundled dev/data/gpt2-vocab.json / gpt2-merges.txt).
run_cmd curl -fL --retry 3 -o "$DATA_DIR/gpt2-vocab.json" "$HF/openai-community/gpt2/resolve/main/vocab.json"
run_cmd curl -fL --retry 3 -o "$DATA_DIR/gpt2-merges.txt" "$HF/openai-community/gpt2/resolve/main/merges.txt"
if [ "$MODELS" = 1 ]; then
    if [ "$DRY_RUN" = 0 ]; then command -v huggingface-cli >/dev/null || die "--models needs huggingface-cli (pip install huggingface_hub)"; fi
    run_cmd huggingface-cli download "$HF_MODEL_REPO" --include "$HF_MODEL_FOLDER/*" --local-dir "$DATA_DIR/models"
    note "then: python3 scripts/import_seed_checkpoint.py $DATA_DIR/models/$HF_MODEL_FOLDER/<run> --objective ar|mdm --out FILE"
fi
