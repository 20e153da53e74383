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

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
