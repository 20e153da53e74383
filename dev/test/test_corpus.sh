#!/usr/bin/env bash
# dev/test/test_corpus.sh — the bundled Wikipedia sample (dev/data/corpus) is the text its manifest describes and
# `make data` tokenises it to the manifest's counts. The expected sha256 values, document and token counts are the
# corpus curator's (../shared/data/corpus/SOURCES.md, counted with a separate GPT-2 BPE implementation), copied
# into dev/data/README.md: a tokenizer change that moves one token boundary in 9.9M tokens fails here.
# Run from the repository root after `make data`.
set -u
cd "$(dirname "$0")/../.."
source dev/test/lib.sh
check() {  # check NAME GOT WANT
    if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi
}

CORPUS=dev/data/corpus
# split, sha256 of the uncompressed JSONL, documents, GPT-2 tokens including one EOD per document
while read -r split sha docs tokens; do
    gz=$CORPUS/wikipedia_$split.jsonl.gz
    prefix=build/data/wiki_$split
    if [ ! -f "$gz" ]; then bad "$gz is missing"; continue; fi
    check "$gz sha256 (uncompressed)" "$(zcat "$gz" | sha256sum | cut -d' ' -f1)" "$sha"
    check "$gz documents" "$(zcat "$gz" | wc -l)" "$docs"
    if [ ! -f "$prefix.bin" ] || [ ! -f "$prefix.idx" ]; then bad "$prefix.bin/.idx not built (make data)"; continue; fi
    check "$prefix.bin tokens (uint16)" $(( $(stat -c %s "$prefix.bin") / 2 )) "$tokens"
    stats=$(build/inspect "$prefix" | head -n 2)
    check "$prefix documents" "$(sed -nE 's/.* ([0-9]+) documents .*/\1/p' <<<"$stats")" "$docs"
    check "$prefix EOD tokens" "$(sed -nE 's/.*EOD tokens ([0-9]+);.*/\1/p' <<<"$stats")" "$docs"
    check "$prefix largest id" "$(sed -nE 's/.*largest token id ([0-9]+).*/\1/p' <<<"$stats")" 50256
done <<'EOF'
train 7cc3f5a859df00adc1d17c118519e1dd5a844a61575221e5edfdbfcc043b115d 2142 9865443
val 7652dd09a7371ccde7ba095caccb08b7d68417b10ebfd4f344db0e3d8db1f432 113 487853
EOF

# Validation text never appears in training (whole documents; the crossover's held-out loss depends on it).
dups=$(zcat $CORPUS/wikipedia_train.jsonl.gz $CORPUS/wikipedia_val.jsonl.gz | sort | uniq -d | wc -l)
check "documents shared by train and val" "$dups" 0
# Attribution (CC BY-SA 4.0): every article of both splits is listed by title.
check "titles listed" "$(grep -vc '^#' $CORPUS/wikipedia_titles.txt)" $((2142 + 113))

finish
