# dev/test/lib.sh — sourced by the shell tests of the command-line programs: pass/fail counting, the one-line
# error check, and the closing "N passed, M failed" line the test runner reads.
pass=0
fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect_error NEEDLE CMD...: CMD exits non-zero with exactly one stderr line "error: ...NEEDLE...".
expect_error() {
    local needle=$1; shift
    local err rc
    err=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -ne 0 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [[ "$err" == error:* ]] && [[ "$err" == *"$needle"* ]]; then
        ok
    else
        bad "'$*' should fail with one error line containing '$needle' (rc $rc): $err"
    fi
}

# has TEXT NEEDLE / hasnt TEXT NEEDLE: TEXT (a command's output) contains / lacks NEEDLE.
has() { [[ "$1" == *"$2"* ]] && ok || bad "missing '$2' in: ${1:0:400}"; }
hasnt() { [[ "$1" != *"$2"* ]] && ok || bad "unexpected '$2'"; }

# fake_program PATH LINE...: an executable shell script of these lines, standing in for a program a test cannot run
# here (a GPU trainer, nvidia-smi, compute-sanitizer) or one that must fail or hang.
fake_program() {
    local f=$1; shift
    { echo '#!/bin/sh'; printf '%s\n' "$@"; } >"$f"
    chmod +x "$f"
}
# cpu_trainer_as DIR NAME OBJECTIVE: DIR/NAME (train_gpt, train_mdm) is build/train_cpu --objective OBJECTIVE.
cpu_trainer_as() { fake_program "$1/$2" "exec $(printf '%q' "$PWD/build/train_cpu") --objective $3 \"\$@\""; }

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
