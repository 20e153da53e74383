#!/usr/bin/env bash
# build/eval_cpu end to end on tiny checkpoints of both objectives (validation line and task accuracy lines),
# its one-line errors on bad input, and scripts/convert_tasks.py on small inline samples of each public format.
set -u
cd "$(dirname "$0")/../.."
T=build/train_cpu; E=build/eval_cpu; PY=${PYTHON:-/usr/bin/python3}
source dev/test/lib.sh
for b in $T $E; do [ -x "$b" ] || { echo "FAIL: $b not built (run make)"; echo "0 passed, 1 failed"; exit 1; }; done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
TASK=dev/data/tasks/capitals.jsonl
num='[0-9]+\.[0-9]{4}'

# 1. Tiny checkpoints, then validation and task scoring.
for obj in ar mdm; do
    $T --objective $obj --steps 2 --seq-len 32 --batch 2 --eval-samples 2 --threads 2 --quiet --ckpt-dir "$tmp/$obj" >/dev/null 2>&1 \
        || bad "$obj: training the tiny checkpoint failed"
done
out=$($E --load "$tmp/ar/model.ckpt" --eval-samples 8 --threads 2 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -Eq "^val dev/data/c4_val: 8 sequences \| NLL $num nats/token \| ppl [0-9.]+$" && ok \
    || bad "ar validation output (rc $rc): $out"
out=$($E --load "$tmp/mdm/model.ckpt" --eval-samples 8 --mc-samples 4 --stratified --threads 2 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -Eq "^val dev/data/c4_val: 8 sequences \| ELBO $num \+- $num nats/token \(K=4, stratified\)$" && ok \
    || bad "mdm validation output (rc $rc): $out"
# Same seed, same numbers: the evaluated set and the draws are fixed.
out2=$($E --load "$tmp/mdm/model.ckpt" --eval-samples 8 --mc-samples 4 --stratified --threads 2 2>&1)
[ "$out" = "$out2" ] && ok || bad "mdm validation not reproducible"
# (MDM with K=2 on one task: each draw is a full forward, and the CPU lm-head over 50304 classes is the cost.)
for obj in ar mdm; do
    tasks=(--task $TASK --task dev/data/tasks/common_sense.jsonl); want=2
    [ $obj = mdm ] && { tasks=(--task $TASK --mc-samples 2); want=1; }
    out=$($E --load "$tmp/$obj/model.ckpt" "${tasks[@]}" --threads 2 2>&1); rc=$?
    n=$(echo "$out" | grep -Ec "^task dev/data/tasks/[a-z_]+\.jsonl: [0-9]+ examples \| acc $num \+- $num \| acc_norm $num \+- $num")
    [ $rc -eq 0 ] && [ "$n" -eq $want ] && ok || bad "$obj task output (rc $rc): $out"
    echo "$out" | grep -q '^val ' && bad "$obj: --task alone should not run validation" || ok
done
out=$($E --load "$tmp/ar/model.ckpt" --task $TASK --val-data dev/data/c4_val --eval-samples 4 2>&1)
echo "$out" | grep -q '^val ' && echo "$out" | grep -q '^task ' && ok || bad "--task with --val-data should run both: $out"

# 2. Bad input: exactly one "error:" line on stderr and a non-zero exit.
head -c 5000 "$tmp/ar/model.ckpt" > "$tmp/trunc.ckpt"
printf '{"context": "a", "choices": [" b", " c"], "gold": 0}\n{"context": "a", "choices": [" b", " c"], "gold": 5}\n' > "$tmp/bad.jsonl"
printf '{"context": "a", "choices": [" b", " c"], "gold": 0}\n{"context": "a" "choices": []}\n' > "$tmp/bad2.jsonl"
expect_error "cannot open checkpoint" $E --load "$tmp/missing.ckpt"
expect_error "truncated parameters" $E --load "$tmp/trunc.ckpt"
expect_error "--load CHECKPOINT is required" $E
expect_error "is an ar model, --objective is mdm" $E --load "$tmp/ar/model.ckpt" --objective mdm
expect_error "--mc-samples: K must be >= 1, got 0" $E --load "$tmp/mdm/model.ckpt" --mc-samples 0
expect_error "$tmp/bad.jsonl:2: \"gold\" 5 is not an index" $E --load "$tmp/ar/model.ckpt" --task "$tmp/bad.jsonl"
expect_error "$tmp/bad2.jsonl:2: " $E --load "$tmp/ar/model.ckpt" --task "$tmp/bad2.jsonl"
expect_error "cannot open task file" $E --load "$tmp/ar/model.ckpt" --task "$tmp/none.jsonl"
expect_error "flag --task needs a value" $E --load "$tmp/ar/model.ckpt" --task
expect_error "cannot open" $E --load "$tmp/ar/model.ckpt" --val-data "$tmp/nope"

# 3. scripts/convert_tasks.py on inline samples of each format; the output loads in eval_cpu's parser.
C=scripts/convert_tasks.py
cat > "$tmp/hs.jsonl" <<'J'
{"ind": 4, "activity_label": "Removing ice from car", "ctx_a": "Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles.", "ctx_b": "then", "endings": [", the man adds wax to the windshield and cuts it.", ", a person board a ski lift, while two men supporting the head of the person wearing winter clothes snow as the we girls sled.", ", the man puts on a christmas coat, knitted with netting.", ", the man continues removing the snow on his car."], "label": "3"}
{"activity_label": "Home and Garden", "ctx_a": "[header] How to clean a grill.", "ctx_b": "scrub", "endings": ["the grates [title] Use a brush.", "b", "c", "d"], "label": 0}
J
want_hs='{"context": "Removing ice from car: Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles. Then", "choices": [" , the man adds wax to the windshield and cuts it.", " , a person board a ski lift, while two men supporting the head of the person wearing winter clothes snow as the we girls sled.", " , the man puts on a christmas coat, knitted with netting.", " , the man continues removing the snow on his car."], "gold": 3}'
got=$($PY $C hellaswag "$tmp/hs.jsonl" 2>/dev/null | head -n 1)
[ "$got" = "$want_hs" ] && ok || bad "hellaswag conversion: $got"
got=$($PY $C hellaswag "$tmp/hs.jsonl" 2>/dev/null | sed -n 2p)
[ "$got" = '{"context": "Home and Garden: How to clean a grill. Scrub", "choices": [" the grates. Use a brush.", " b", " c", " d"], "gold": 0}' ] && ok \
    || bad "hellaswag [title]/[header] cleanup: $got"
cat > "$tmp/arc.jsonl" <<'J'
{"id": "x1", "question": "Which is a source of light?", "choices": {"text": ["a rock", "the Sun", "water"], "label": ["A", "B", "C"]}, "answerKey": "B"}
{"id": "x2", "question": {"stem": "2+2?", "choices": [{"text": "3", "label": "1"}, {"text": "4", "label": "2"}]}, "answerKey": "2"}
J
got=$($PY $C arc "$tmp/arc.jsonl" 2>/dev/null)
want=$(printf '%s\n%s' '{"context": "Question: Which is a source of light?\nAnswer:", "choices": [" a rock", " the Sun", " water"], "gold": 1}' \
                        '{"context": "Question: 2+2?\nAnswer:", "choices": [" 3", " 4"], "gold": 1}')
[ "$got" = "$want" ] && ok || bad "arc conversion: $got"
printf '{"goal": "Open a jar", "sol1": "twist the lid", "sol2": "eat the lid"}\n{"goal": "Dry hair", "sol1": "use water", "sol2": "use a towel"}\n' > "$tmp/piqa.jsonl"
printf '0\n1\n' > "$tmp/piqa.lst"
$PY $C piqa "$tmp/piqa.jsonl" --labels "$tmp/piqa.lst" -o "$tmp/piqa_out.jsonl" 2>/dev/null
[ "$(sed -n 2p "$tmp/piqa_out.jsonl")" = '{"context": "Question: Dry hair\nAnswer:", "choices": [" use water", " use a towel"], "gold": 1}' ] && ok \
    || bad "piqa conversion: $(cat "$tmp/piqa_out.jsonl")"
$PY $C hellaswag "$tmp/hs.jsonl" > "$tmp/hs_out.jsonl" 2>/dev/null
$PY $C arc "$tmp/arc.jsonl" > "$tmp/arc_out.jsonl" 2>/dev/null
out=$($E --load "$tmp/ar/model.ckpt" --task "$tmp/hs_out.jsonl" --task "$tmp/arc_out.jsonl" --task "$tmp/piqa_out.jsonl" --threads 2 2>&1)
for f in hs_out arc_out piqa_out; do
    echo "$out" | grep -q "^task .*$f.jsonl: 2 examples" && ok || bad "converted $f does not evaluate: $out"
done
err=$($PY $C piqa "$tmp/piqa.jsonl" 2>&1 >/dev/null); [ $? -ne 0 ] && [[ "$err" == *"piqa.jsonl:1: PIQA needs --labels"* ]] && ok || bad "piqa without labels: $err"
printf '{"question": "q", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "C"}\n' > "$tmp/arc_bad.jsonl"
err=$($PY $C arc "$tmp/arc_bad.jsonl" 2>&1 >/dev/null); [ $? -ne 0 ] && [[ "$err" == error:*"arc_bad.jsonl:1: answerKey 'C'"* ]] && ok || bad "arc bad key: $err"
printf '{"goal": "g"}\n' > "$tmp/piqa_bad.jsonl"
err=$($PY $C piqa "$tmp/piqa_bad.jsonl" --labels "$tmp/piqa.lst" 2>&1 >/dev/null); [ $? -ne 0 ] && [[ "$err" == *"missing field 'sol1'"* ]] && ok || bad "piqa missing field: $err"

finish
