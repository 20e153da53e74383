#!/usr/bin/env bash
# dev/test/test_tools.sh — the data tools from the outside: every bad input gives exactly one "error:" line on
# stderr and exit status 1 (and leaves no output files); a tiny prepare -> inspect round trip decodes back.
# Run from the repository root after `make build/prepare build/inspect`. Expected token ids are GPT-2 facts
# (from HF tokenizers), not outputs of this project.
set -u
PREPARE=build/prepare
INSPECT=build/inspect
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

for b in $PREPARE $INSPECT; do
    [ -x "$b" ] || { echo "FAIL: $b is not built (make $b)"; echo "0 passed, 1 failed"; exit 1; }
done
T=$(mktemp -d /tmp/llmc_test_tools_XXXXXX)
trap 'rm -rf "$T"' EXIT

# expect_error NAME SUBSTRING CMD...: exit status 1, stderr exactly one line "error: ...SUBSTRING...".
expect_error() {
    local name=$1 want=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    local rc=$? lines
    lines=$(wc -l <"$T/err")
    if [ $rc -ne 1 ]; then bad "$name: exit status $rc, want 1"; return; fi
    if [ "$lines" -ne 1 ] || ! grep -q '^error: ' "$T/err"; then bad "$name: stderr is not one error line:"; cat "$T/err"; return; fi
    if ! grep -qF -- "$want" "$T/err"; then bad "$name: '$(cat "$T/err")' does not mention '$want'"; return; fi
    ok
}
# no_output NAME PREFIX: an aborted prepare leaves neither the dataset nor temporary files.
no_output() {
    if ls "$2".* >/dev/null 2>&1; then bad "$1: output files left: $(ls "$2".*)"; else ok; fi
}

printf '{"text": "Hello world"}\n{"text": ""}\n{"id": 7, "text": "The cat sat."}\n' >"$T/good.jsonl"
printf '{"text": "Hello world"}\n{"text": "broken\n{"text": "x"}\n' >"$T/malformed.jsonl"
printf '{"text": "a"}\n{"text": "b"}\n{"title": "no text"}\n' >"$T/nokey.jsonl"
printf '{"text": "a"}\n{"text": "caf\xc3\xa9 \xff!"}\n' >"$T/badutf8.jsonl"
gzip -c "$T/good.jsonl" >"$T/good.jsonl.gz"
printf 'First paragraph\nline two\n\n  \nSecond one.\n' >"$T/doc.txt"

# --- prepare: bad inputs
expect_error "prepare missing input" "$T/none.jsonl" $PREPARE --input "$T/none.jsonl" --output-prefix "$T/o1"
no_output "prepare missing input" "$T/o1"
expect_error "prepare second input missing" "$T/none2.jsonl" \
    $PREPARE --input "$T/good.jsonl" --input "$T/none2.jsonl" --output-prefix "$T/o2"
no_output "prepare second input missing" "$T/o2"
expect_error "prepare bad --threads" "--threads" $PREPARE --input "$T/good.jsonl" --output-prefix "$T/o3" --threads abc
expect_error "prepare --threads 0" "--threads" $PREPARE --input "$T/good.jsonl" --output-prefix "$T/o3" --threads 0
expect_error "prepare bad --format" "--format" $PREPARE --input "$T/good.jsonl" --output-prefix "$T/o3" --format xml
expect_error "prepare unknown flag" "--frobnicate" $PREPARE --input "$T/good.jsonl" --output-prefix "$T/o3" --frobnicate 1
expect_error "prepare no output prefix" "--output-prefix" $PREPARE --input "$T/good.jsonl"
expect_error "prepare missing vocab" "$T/novocab.json" \
    $PREPARE --input "$T/good.jsonl" --output-prefix "$T/o3" --vocab "$T/novocab.json"
no_output "prepare bad flags" "$T/o3"
expect_error "prepare malformed JSON" "$T/malformed.jsonl:2:" $PREPARE --input "$T/malformed.jsonl" --output-prefix "$T/o4"
no_output "prepare malformed JSON" "$T/o4"
expect_error "prepare missing text field" "$T/nokey.jsonl:3:" $PREPARE --input "$T/nokey.jsonl" --output-prefix "$T/o5"
expect_error "prepare missing text field names the key" '"text"' $PREPARE --input "$T/nokey.jsonl" --output-prefix "$T/o5"
no_output "prepare missing text field" "$T/o5"
expect_error "prepare invalid UTF-8" "$T/badutf8.jsonl:2:" $PREPARE --input "$T/badutf8.jsonl" --output-prefix "$T/o6"
expect_error "prepare invalid UTF-8 offset" "invalid UTF-8 at byte offset 6" \
    $PREPARE --input "$T/badutf8.jsonl" --output-prefix "$T/o6" --threads 2
no_output "prepare invalid UTF-8" "$T/o6"
head -c 60 "$T/good.jsonl.gz" >"$T/cut.jsonl.gz"
expect_error "prepare truncated gzip" "gzip data is truncated" $PREPARE --input "$T/cut.jsonl.gz" --output-prefix "$T/o7"
no_output "prepare truncated gzip" "$T/o7"
expect_error "prepare output dir missing" "$T/nodir/" $PREPARE --input "$T/good.jsonl" --output-prefix "$T/nodir/x"

# --- prepare -> inspect round trip
if $PREPARE --input "$T/good.jsonl" --output-prefix "$T/rt" --threads 2 >"$T/out" 2>"$T/err"; then ok; else bad "prepare good.jsonl: $(cat "$T/err")"; fi
grep -q "2 documents (1 empty dropped), 8 tokens" "$T/out" && ok || bad "prepare summary: $(tail -1 "$T/out")"
$INSPECT "$T/rt" --validate >"$T/out" 2>"$T/err" && ok || bad "inspect: $(cat "$T/err")"
grep -q "2 items, 2 documents (doc_idx entries - 1), 8 tokens" "$T/out" && ok || bad "inspect stats: $(cat "$T/out")"
grep -q "EOD tokens 2" "$T/out" && ok || bad "inspect EOD count: $(cat "$T/out")"
$INSPECT "$T/rt" --doc 1 --ids >"$T/out" 2>&1
grep -qx "464 3797 3332 13 50256" "$T/out" && ok || bad "doc 1 ids: $(cat "$T/out")"
grep -qx "The cat sat.<|endoftext|>" "$T/out" && ok || bad "doc 1 text: $(cat "$T/out")"
# The 8 tokens make exactly one sample of S+1 = 8: both documents, in either shuffled order.
$INSPECT "$T/rt" --sample 0 --seq-len 7 --ids >"$T/out" 2>&1
grep -qxE "(15496 995 50256 464 3797 3332 13 50256)|(464 3797 3332 13 50256 15496 995 50256)" "$T/out" && ok || bad "sample 0: $(cat "$T/out")"
# gzip input, several threads, and text format
$PREPARE --input "$T/good.jsonl.gz" --output-prefix "$T/gz" --threads 1 >/dev/null 2>&1
cmp -s "$T/gz.bin" "$T/rt.bin" && cmp -s "$T/gz.idx" "$T/rt.idx" && ok || bad "gzip input or --threads changed the output"
$PREPARE --input "$T/good.jsonl" --input "$T/good.jsonl" --output-prefix "$T/two" --max-docs 4 >/dev/null 2>&1
$INSPECT "$T/two" >"$T/out" 2>&1
grep -q "3 items" "$T/out" && ok || bad "two inputs with --max-docs 4 (3 non-empty): $(cat "$T/out")"
$PREPARE --input "$T/doc.txt" --format text --output-prefix "$T/txt" >/dev/null 2>"$T/err" || bad "text format: $(cat "$T/err")"
$INSPECT "$T/txt" --doc 0 --ids >"$T/out" 2>&1
grep -qx "5962 7322 198 1370 734 50256" "$T/out" && ok || bad "text doc 0: $(cat "$T/out")"
$INSPECT "$T/txt" --doc 1 --ids >"$T/out" 2>&1
grep -qx "12211 530 13 50256" "$T/out" && ok || bad "text doc 1: $(cat "$T/out")"

# --- inspect: bad inputs
expect_error "inspect missing dataset" "$T/none.idx" $INSPECT "$T/none"
expect_error "inspect no prefix" "no dataset" $INSPECT --doc 1
expect_error "inspect bad --sample" "--sample" $INSPECT "$T/rt" --sample x
expect_error "inspect bad --subset" "--subset" $INSPECT "$T/rt" --subset some
expect_error "inspect --doc out of range" "--doc 5" $INSPECT "$T/rt" --doc 5
expect_error "inspect --sample out of range" "--sample 9" $INSPECT "$T/rt" --sample 9 --seq-len 6
expect_error "inspect too many unique tokens" "exceed" $INSPECT "$T/rt" --sample 0 --unique-tokens 100 --seq-len 2
cp "$T/rt.idx" "$T/corrupt.idx"
cp "$T/rt.bin" "$T/corrupt.bin"
printf 'X' | dd of="$T/corrupt.idx" bs=1 conv=notrunc status=none
expect_error "inspect bad magic" "bad magic" $INSPECT "$T/corrupt"
cp "$T/rt.idx" "$T/trunc.idx"
head -c 10 "$T/rt.bin" >"$T/trunc.bin"
expect_error "inspect truncated .bin" "truncated" $INSPECT "$T/trunc"

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
