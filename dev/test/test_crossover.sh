#!/usr/bin/env bash
# scripts/crossover.sh + scripts/plot_crossover.py: the default GPU plan's dry-run (steps, cadence, flags, run order
# and time-limit skips worked out by hand here), one "error:" line for bad input, the verdict on synthetic logs
# with a known answer (crossover found at the right compute, none, within noise; cut-off runs left out), a tiny real
# CPU experiment (2 AR + 2 MDM runs) whose table carries the numbers of its own JSONL logs, plus the PNG when
# matplotlib is importable, and a real run cut by the time limit on its measured rate.
set -u
cd "$(dirname "$0")/../.."
source dev/test/lib.sh
PY=${PYTHON:-/usr/bin/python3}
X=scripts/crossover.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# ---- dry-run of the default plan: U=2e6 of the Wikipedia sample, S=512, batch 32, 8 validations per run
out=$(bash $X --dry-run 2>&1)
[ "$(grep -c '^build/train_gpt ' <<<"$out")" -eq 6 ] && ok || bad "expected 6 AR commands"
[ "$(grep -c '^build/train_mdm ' <<<"$out")" -eq 4 ] && ok || bad "expected 4 MDM commands"
ar4=$(grep '^build/train_gpt .*--epochs 4 ' <<<"$out")
# 4 x 2e6 / 512 = 15625 samples -> 488 steps of 32, warmup 156 samples, validation every 488 / 8 = 61 steps
for w in "--model mini" "--seq-len 512" "--unique-tokens 2000000" "--batch 32" "--warmup-samples 156" "--eval-every 61" \
         "--eval-samples 128" "--dropout 0.1" "--attn-dropout 0.1" "--lr 1e-3" "--min-lr 1e-4" "--train-data build/data/wiki_train" \
         "--val-data build/data/wiki_val" "--log runs/crossover/ar_e4/train.jsonl"; do has "$ar4" "$w"; done
hasnt "$ar4" "--stratified"; hasnt "$ar4" "--mc-samples"
mdm128=$(grep '^build/train_mdm .*--epochs 128 ' <<<"$out")
# 128 x 2e6 / 512 = 500000 samples -> 15625 steps, warmup 5000, validation every ceil(15625 / 8) = 1954 steps
# (7 validations at 1954 ... 13678, the 8th at the end)
for w in "--eval-every 1954" "--warmup-samples 5000" "--mc-samples 16" "--stratified"; do has "$mdm128" "$w"; done
hasnt "$out" "--ckpt-dir"
has "$out" "steps=15625 "; has "$out" "predicted time 3.0 minutes (AR 2.81M / MDM 3.37M tok/s as measured on one H200, 2026-11-28)"; has "$out" "scripts/plot_crossover.py --runs runs/crossover"
# cheapest first, ties (4 epochs) AR first
order=$(grep -o '^build/train_[a-z]* .*--epochs [0-9]* ' <<<"$out" | sed -E 's/^build\/train_(gpt|mdm) .*--epochs ([0-9]+) $/\1\2/' | tr '\n' ' ')
[ "$order" = "gpt1 gpt2 gpt4 mdm4 gpt8 gpt16 mdm16 gpt32 mdm64 mdm128 " ] && ok || bad "run order: $order"
# The time limit on the measured mini rates (AR 2,810,660 tok/s + 0.6 s a run, MDM 3,368,410 + 1.5), each run's
# prediction rounded to 0.1 s: AR 1.3 + 2.0 + 3.4 + 6.3 + 12.0 + 23.4 = 48.4 s, MDM 3.9 + 11.0 + 39.5 = 54.4 s, so the
# nine cheaper runs take 102.8 s and mdm_e128 256e6 / 3,368,410 + 1.5 = 77.5 s: the plan needs 180.3 s, so a 180 s
# limit skips mdm_e128 alone (77.2 s left) and 181 s skips nothing.
out=$(bash $X --dry-run --time-limit 180 2>&1)
[ "$(grep -c '^build/train_' <<<"$out")" -eq 9 ] && ok || bad "--time-limit 180 should leave 9 runs"
has "$out" "skipped mdm_e128: predicted 77.5s, 77s of the time limit left"
has "$out" "--epochs-ar none --epochs-mdm 128 --time-limit 0"
out=$(bash $X --dry-run --time-limit 181 2>&1)
[ "$(grep -c '^build/train_' <<<"$out")" -eq 10 ] && ok || bad "--time-limit 181 should leave 10 runs"
hasnt "$out" "skipped"
out=$(bash $X --dry-run --trainer cpu --epochs-ar none --epochs-mdm 3 --mc-samples 32 -- --threads 2 2>&1)
has "$out" "build/train_cpu --objective mdm"; has "$out" "--mc-samples 32"; has "$out" "--threads 2"
[ "$(grep -c '^build/train_cpu ' <<<"$out")" -eq 1 ] && ok || bad "--epochs-ar none should leave one run"
hasnt "$out" "predicted time"
has "$out" "warning: the CPU reference trains ~10^3 tokens/s"
bash $X --help | grep -q '^usage:' && ok || bad "--help"
bash $X --help | grep -q 'made by make data;' && ok || bad "--help text must print, not run, make data"

# ---- bad input: one error line, non-zero exit
expect_error "--epochs-ar" bash $X --epochs-ar 2,x --dry-run
expect_error "--epochs-ar" bash $X --epochs-ar 0,2 --dry-run
expect_error "--epochs-mdm" bash $X --epochs-mdm 4, --dry-run
expect_error "twice" bash $X --epochs-mdm 4,8,4 --dry-run
expect_error "unknown option" bash $X --bogus
expect_error "--trainer" bash $X --trainer tpu
expect_error ">= 16" bash $X --mc-samples 8 --dry-run
expect_error "needs a value" bash $X --out
expect_error "--lr" bash $X --lr fast --dry-run
expect_error "--time-limit must be a non-negative number" bash $X --time-limit 1m --dry-run
expect_error "--dropout must be below 1" bash $X --dropout 1.5 --dry-run
expect_error "unknown preset" bash $X --model 3m --dry-run
expect_error "nothing to train" bash $X --epochs-ar none --epochs-mdm none --dry-run
expect_error "less than one batch" bash $X --unique-tokens 1000 --epochs-ar 1 --dry-run
expect_error "not built" bash $X --build-dir "$tmp/nobuild" --out "$tmp/x"
expect_error "train_mdm not built" bash $X --trainer gpu --epochs-ar none --build-dir "$tmp/nobuild" --out "$tmp/x"
expect_error "not found" bash $X --train-data "$tmp/nodata" --out "$tmp/x"
expect_error "make data" bash $X --val-data "$tmp/nodata" --out "$tmp/x"
expect_error "not a folder" env PYTHON="$PY" bash $X --report-only --out "$tmp/none"
mkdir "$tmp/empty"; expect_error "no run folders" env PYTHON="$PY" bash $X --report-only --out "$tmp/empty"

# ---- the verdict on synthetic logs: U=1000, 1 sequence of 100 tokens per step, 10 steps per epoch, 6 MFLOP/token
# run DIR OBJ EPOCHS LAST_STEP "STEP:LOSS:SE ...": a log as the trainers write it (config, 2 train steps of 50 ms, evals)
run() {
    local d=$1 obj=$2 e=$3 last=$4 ev best=99 bstep=0 s l se
    mkdir -p "$d"
    {
        echo "{\"kind\": \"config\", \"step\": 0, \"objective\": \"$obj\", \"model\": \"mini\", \"params_seed_formula\": 1000000," \
             "\"unique_tokens\": 1000, \"total_steps\": $((e * 10)), \"batch\": 1, \"seq_len\": 100, \"flops_per_token_seed\": 6000000," \
             "\"train_data\": \"$tmp/tr\", \"seed\": ${SEED_OF_RUN:-1234}, \"lr\": 0.001}"
        echo '{"kind": "train", "step": 1, "loss": 9, "ms": 50, "tok_per_s": 2000}'
        echo '{"kind": "train", "step": 2, "loss": 8, "ms": 50, "tok_per_s": 2000}'
        for ev in $5; do
            IFS=: read -r s l se <<<"$ev"
            if awk -v a="$l" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$l; bstep=$s; fi
            echo "{\"kind\": \"eval\", \"step\": $s, \"val_loss\": $l, \"val_stderr\": $se, \"mc_samples\": 16," \
                 "\"best_val_loss\": $best, \"best_step\": $bstep, \"sequences\": 8}"
        done
    } >"$d/train.jsonl"
}
S=$tmp/synth
run $S/ar_e1 ar 1 10 "5:5.5:0 10:5.0:0"
run $S/ar_e4 ar 4 40 "20:4.6:0 40:4.5:0"
run $S/ar_e16 ar 16 160 "40:4.55:0 80:4.7:0 160:4.9:0"
run $S/mdm_e4 mdm 4 40 "40:4.9:0.01"
run $S/mdm_e16 mdm 16 160 "160:4.6:0.01"
run $S/mdm_e64 mdm 64 640 "320:4.4:0.01 640:4.3:0.01"
run $S/mdm_e128 mdm 128 1280 "640:3.9:0.01"   # cut off at step 640 of 1280: listed, not compared
echo 12.5 >$S/ar_e4/wall_seconds
out=$("$PY" scripts/plot_crossover.py --runs $S 2>&1) && ok || bad "plot_crossover on synthetic logs: $out"
has "$out" "MDM overtakes AR"; has "$out" "lower by 0.2000"
# fronts: 4e5 FLOPs AR 4.5 / MDM 4.9; 9.6e10: 4.5 / 4.6; 3.84e11 (64 epochs x 1000 tokens x 6e6): 4.5 / 4.3
has "$out" "from 3.84e+11 FLOPs on (64 epochs, run mdm_e64; the crossing lies between 9.6e+10 and 3.84e+11 FLOPs)"
has "$out" "| ar | mini | 1.00M | 1,000 | 4 | 40 | 4,000 | 2.4e+10 | 4.5000 | 40 | 16 | 12.5 | 2,000 |"
has "$out" "| mdm | mini | 1.00M | 1,000 | 128 | 1,280 | 128,000 | 7.68e+11 | 3.9000 +- 0.0100 | 640 | 16 | n/a | 2,000 | incomplete"
has "$out" "note: MDM's best is its longest run"
# the paper's critical compute at U = 1000 = 0.001M tokens, beside the complete runs' span (ar_e1 6e9 ... mdm_e64 3.84e11)
has "$out" "is $(awk 'BEGIN { printf "%.3g", 2.12e15 * 0.001 ^ 2.174 }') here; these runs span 6e+09 - 3.84e+11 FLOPs"
grep -q '^ar_e16,ar,mini,1000000,1000,16.0,160,16000,96000000000.0,4.55,0.0,40,16,,2000.0,1$' $S/results.csv && ok ||
    bad "results.csv row of ar_e16: $(grep ar_e16 $S/results.csv)"
# A lead MDM takes at low compute and AR takes back is not the crossing: AR 5.5 / 5.0 / 4.5 at 1 / 4 / 16 epochs,
# MDM 4.8 at 4 epochs (ahead at 2.4e10 FLOPs, behind at 9.6e10) and 4.3 at 64: the crossing is mdm_e64's 3.84e11.
L=$tmp/lead
run $L/ar_e1 ar 1 10 "10:5.5:0"; run $L/ar_e4 ar 4 40 "40:5.0:0"; run $L/ar_e16 ar 16 160 "160:4.5:0"
run $L/mdm_e4 mdm 4 40 "40:4.8:0.01"; run $L/mdm_e64 mdm 64 640 "640:4.3:0.01"
out=$("$PY" scripts/plot_crossover.py --runs $L 2>&1)
has "$out" "from 3.84e+11 FLOPs on (64 epochs, run mdm_e64; the crossing lies between 9.6e+10 and 3.84e+11 FLOPs)"
has "$out" "note: AR's best is its longest run"   # ar_e16's best is its last validation: it may still improve
run $L/ar_e16 ar 16 160 "80:4.4:0 160:4.5:0"     # ... but not once it peaked mid-run (it has overfit)
out=$("$PY" scripts/plot_crossover.py --runs $L 2>&1)
hasnt "$out" "note: AR's best is its longest run"
run $S/mdm_e64 mdm 64 640 "640:4.49:0.01"
out=$("$PY" scripts/plot_crossover.py --runs $S --out $tmp/synth_out 2>&1)
has "$out" "inconclusive: the best losses differ by 0.0100"; [ -f $tmp/synth_out/results.md ] && ok || bad "--out ignored"
run $S/mdm_e64 mdm 64 640 "640:4.7:0.01"
out=$("$PY" scripts/plot_crossover.py --runs $S 2>&1)
has "$out" "no crossover: AR's best loss is lower by 0.1000"
# The unigram reference: training stream 600 x id 5, 300 x id 7, 100 x id 9 (U = 1000), then 50 ids the model never
# saw; validation ids 5, 7, 8. Add-one over 50257 ids: mean of ln(51257) - ln(count + 1) = ln 51257 - (ln 601 + ln 301) / 3.
"$PY" -c "
import array, sys
array.array('H', [5] * 600 + [7] * 300 + [9] * 100 + [11] * 50).tofile(open('$tmp/tr.bin', 'wb'))
array.array('H', [5, 7, 8]).tofile(open('$tmp/va.bin', 'wb'))"
want=$(awk 'BEGIN { printf "%.4f", log(51257) - (log(601) + log(301)) / 3 }')
out=$("$PY" scripts/plot_crossover.py --runs $S --out $tmp/ref --val-data $tmp/va 2>&1) && ok || bad "--val-data: $out"
has "$out" "scores $want nats/token on $tmp/va"
hasnt "$out" "warning:"
# Without the data the report still comes, saying why the reference is missing.
out=$("$PY" scripts/plot_crossover.py --runs $S --out $tmp/ref --val-data $tmp/none 2>&1) && ok || bad "missing val data: $out"
has "$out" "reference: no unigram loss (cannot read '$tmp/none.bin'"
truncate -s 1000 $tmp/tr.bin
out=$("$PY" scripts/plot_crossover.py --runs $S --out $tmp/ref --val-data $tmp/va 2>&1)
has "$out" "holds 500 tokens, fewer than U = 1,000"
# Runs of another seed in the folder: named, not silently mixed into the comparison.
SEED_OF_RUN=7 run $S/ar_e2 ar 2 20 "20:4.8:0"
out=$("$PY" scripts/plot_crossover.py --runs $S --out $tmp/ref 2>&1)
has "$out" "warning: these runs differ in seed: they are not one experiment"
rm -r $S/ar_e2
# A run that ended before its first validation (config and train records only) is left out with a note.
run $S/ar_e2 ar 2 20 ""
out=$("$PY" scripts/plot_crossover.py --runs $S --out $tmp/ref 2>&1) && ok || bad "a run without validations: $out"
has "$out" "note: run '$S/ar_e2' left out: log '$S/ar_e2/train.jsonl': no eval records after step 0"
has "$out" "no crossover"
mkdir -p $tmp/noeval && mv $S/ar_e2 $tmp/noeval/

# ---- the archived GPU results (docs/results/*/runs, gzipped logs) regenerate byte for byte from their logs
for A in docs/results/crossover_*/; do
    out=$("$PY" scripts/plot_crossover.py --runs "$A/runs" --out $tmp/archive --val-data build/data/wiki_val 2>&1) &&
        ok || bad "report of $A: $out"
    for f in results.csv results.md; do
        cmp -s "$A/$f" $tmp/archive/$f && ok || bad "$A$f is not what its logs say: $(diff "$A/$f" $tmp/archive/$f | head -5)"
    done
done
expect_error "none of the 1 runs in '$tmp/noeval' has a validation after step 0" "$PY" scripts/plot_crossover.py --runs $tmp/noeval
echo '{"kind": "eval", "step": 3, "val_loss": "x"}' >>$S/ar_e1/train.jsonl
expect_error "ar_e1/train.jsonl' line 6" "$PY" scripts/plot_crossover.py --runs $S

# ---- a tiny real experiment on the CPU trainer: U=512 tokens, S=32, batch 4 -> 4 steps per epoch
R=$tmp/real
if [ -x build/train_cpu ]; then
    out=$(PYTHON="$PY" bash $X --trainer cpu --model tiny --seq-len 32 --batch 4 --micro-batch 4 --unique-tokens 512 \
          --epochs-ar 1,2 --epochs-mdm 1,2 --evals 2 --eval-batches 1 --out $R -- --threads 2 2>&1) && ok || bad "tiny run: $out"
    [ "$(wc -l <$R/results.csv)" -eq 5 ] && ok || bad "results.csv should have a header and 4 rows"
    for r in ar_e1:4 ar_e2:8 mdm_e1:4 mdm_e2:8; do
        name=${r%%:*} steps=${r#*:}
        row=$(grep "^$name," $R/results.csv)
        IFS=, read -r _ obj _ _ u _ st _ _ best se bstep k wall tps done <<<"$row"
        [ "$obj" = "${name%%_*}" ] && [ "$u" = 512 ] && [ "$st" = "$steps" ] && [ "$done" = 1 ] && ok || bad "row $name: $row"
        # the table's best loss, step and s.e. are the log's: its last best_val_loss, and val_stderr at that step
        last=$(grep '"kind": "eval"' $R/$name/train.jsonl | tail -n 1)
        lbest=$(grep -o '"best_val_loss": [^,]*' <<<"$last" | cut -d' ' -f2)
        lstep=$(grep -o '"best_step": [^,]*' <<<"$last" | cut -d' ' -f2)
        lse=$(grep '"kind": "eval"' $R/$name/train.jsonl | grep "\"step\": $lstep," | grep -o '"val_stderr": [^,]*' | cut -d' ' -f2)
        awk -v a="$best" -v b="$lbest" -v c="$se" -v d="$lse" 'BEGIN { exit !(a == b && c == d && a > 5 && a < 12) }' &&
            [ "$bstep" = "$lstep" ] && ok || bad "$name: table $best +- $se @ $bstep, log $lbest +- $lse @ $lstep"
        awk -v w="$wall" -v t="$tps" 'BEGIN { exit !(w > 0 && t > 0) }' && ok || bad "$name: wall '$wall' tok/s '$tps'"
        if [ "$obj" = mdm ]; then
            [ "$k" = 16 ] && awk -v c="$se" 'BEGIN { exit !(c > 0) }' && ok || bad "$name: K $k, s.e. $se"
            grep -q "stratified MC-ELBO" $R/$name/train.txt && ok || bad "$name: validation not stratified"
        fi
    done
    [ "$(grep -c '^\[[1-4]/4\] ' <<<"$out")" -eq 4 ] && ok || bad "one progress line per run expected"
    [[ "$(tail -n 1 <<<"$out")" =~ ^crossover:\ 4\ runs\ in\ [0-9]+s\;\ measured:\ AR\ [0-9]+\ tok/s\ \+\ [0-9.]+\ s\ a\ run,\ MDM\ [0-9]+\ tok/s\ \+\ [0-9.]+\ s\ a\ run$ ]] &&
        ok || bad "last line: $(tail -n 1 <<<"$out")"
    grep -Eq "MDM overtakes AR|no crossover|inconclusive" $R/results.md && ok || bad "no verdict in results.md"
    grep -q "reference: a unigram model of the U training tokens (add-one smoothed) scores [0-9.]* nats/token on build/data/wiki_val" \
        $R/results.md && ok || bad "no unigram reference in results.md"
    grep -q "warning:" $R/results.md && bad "one experiment's runs reported as mixed: $(grep warning: $R/results.md)" || ok
    if "$PY" -c "import matplotlib" 2>/dev/null; then
        [ "$(head -c 4 $R/crossover.png | od -An -c | tr -d ' ')" = '211PNG' ] && ok || bad "crossover.png missing or not a PNG"
    else
        echo "note: $PY has no matplotlib; PNG not checked"
    fi
    # A time limit on measured rates: ar_e1 runs (no rate yet, no estimate on the CPU), then ar_e8, predicted from
    # ar_e1's measured time, cannot fit in what is left of 0.01 s.
    out=$(PYTHON="$PY" bash $X --trainer cpu --model tiny --seq-len 32 --batch 4 --micro-batch 4 --unique-tokens 512 \
          --epochs-ar 1,8 --epochs-mdm none --evals 1 --eval-batches 1 --time-limit 0.01 --out $tmp/limit -- --threads 2 2>&1) &&
        ok || bad "time-limited run: $out"
    [ -f $tmp/limit/ar_e1/train.jsonl ] && [ ! -e $tmp/limit/ar_e8 ] && ok || bad "ar_e1 should run and ar_e8 be skipped: $out"
    has "$out" "[2/2] skipped ar_e8: predicted"; has "$out" "--epochs-ar 8 --epochs-mdm none --time-limit 0"
    grep -q '^ar_e1,' $tmp/limit/results.csv && ok || bad "the report should cover the run that ran"
    # No rate for MDM yet (CPU: no estimate), but no time left after ar_e1: the MDM run is skipped too.
    out=$(PYTHON="$PY" bash $X --trainer cpu --model tiny --seq-len 32 --batch 4 --micro-batch 4 --unique-tokens 512 \
          --epochs-ar 1 --epochs-mdm 1 --evals 1 --eval-batches 1 --time-limit 0.01 --out $tmp/limit2 -- --threads 2 2>&1) &&
        ok || bad "time-limited run: $out"
    has "$out" "[2/2] skipped mdm_e1: predicted ?s, 0s of the time limit left"
    # A trainer that fails: after the plan lines, one error line naming the run and the trainer's own message.
    err=$(bash $X --trainer cpu --model tiny --seq-len 32 --batch 4 --micro-batch 4 --unique-tokens 512 --epochs-ar 1 \
          --epochs-mdm none --out "$tmp/fail" -- --bogus 2>&1 >/dev/null) && bad "a failing trainer must fail the script" || ok
    [ "$(grep -c '^error' <<<"$err")" -eq 1 ] && [[ "$(tail -n 1 <<<"$err")" == "error: run ar_e1 failed: unknown flag --bogus"* ]] &&
        ok || bad "failing trainer: $err"
    # A failing objective does not end the experiment: fake GPU trainers, train_gpt = the CPU trainer's AR and
    # train_mdm = a program that fails at once. Order ar_e1, mdm_e1, ar_e2, mdm_e2: both AR runs complete and are
    # reported, mdm_e2 is skipped because mdm_e1 failed, and the script ends with one error line naming the failure.
    F=$tmp/fake && mkdir -p $F
    cpu_trainer_as $F train_gpt ar
    fake_program $F/train_mdm 'echo "error: injected failure" >&2' 'exit 3'
    set -- --model tiny --seq-len 32 --batch 4 --micro-batch 4 --unique-tokens 512 --evals 1 --eval-batches 1
    out=$(PYTHON="$PY" bash $X --build-dir $F "$@" --epochs-ar 1,2 --epochs-mdm 1,2 --out $tmp/failing -- --threads 2 2>&1) &&
        bad "a failed run must fail the script" || ok
    has "$out" "[2/4] mdm_e1 FAILED after"; has "$out" "[4/4] skipped mdm_e2: mdm_e1 failed"
    has "$out" "[3/4] ar 2 epochs: 8 steps"
    [[ "$(tail -n 1 <<<"$out")" == "error: run mdm_e1 failed: injected failure (output: $tmp/failing/mdm_e1/train.txt)" ]] &&
        ok || bad "last line: $(tail -n 1 <<<"$out")"
    has "$out" "--epochs-ar none --epochs-mdm 1,2 --time-limit 0"
    [ "$(cut -d, -f1 $tmp/failing/results.csv | tr '\n' ' ')" = "run ar_e1 ar_e2 " ] && ok || bad "report of the AR runs"
    # A run slower than its time limit is stopped (here 1 s past a 3 s limit: the fake train_mdm would sleep 30 s) and
    # the experiment goes on to its end; the stopped run is named for a rerun and is no failure.
    fake_program $F/train_mdm 'sleep 30'
    t0=$SECONDS
    out=$(CROSSOVER_OVERRUN_S=1 PYTHON="$PY" bash $X --build-dir $F "$@" --epochs-ar none --epochs-mdm 1 --time-limit 3 \
          --out $tmp/stopped -- --threads 2 2>&1) && ok || bad "a stopped run is not a failure: $out"
    [ $((SECONDS - t0)) -lt 20 ] && ok || bad "the slow run was not stopped ($((SECONDS - t0)) s)"
    has "$out" "[1/1] mdm_e1 stopped after"; has "$out" "past the time limit"
    has "$out" "--epochs-ar none --epochs-mdm 1 --time-limit 0"; has "$out" "crossover: 0 runs in"
else
    bad "build/train_cpu not built (run make)"
fi
finish
