// dev/test/test.h — the smallest test harness that can fail: CHECK counts passes and failures, prints each
// failure with its location, and test_summary() prints "N passed, M failed" and returns the exit status.
#pragma once
#include <cmath>
#include <cstdio>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

static int g_test_passed = 0, g_test_failed = 0;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) {                                                             \
            g_test_passed++;                                                    \
        } else {                                                                \
            g_test_failed++;                                                    \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);              \
            printf(__VA_ARGS__);                                                \
            printf("\n");                                                       \
        }                                                                       \
    } while (0)

// Relative error ||a-b|| / ||b|| of two arrays (b the reference); 0 when both are zero.
template <class A, class B>
inline double rel_error(const A* a, const B* b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return sqrt(num / den);
}

// Runs fn() in a child process and returns what it wrote to stderr; *status gets its exit status (or -1 if it
// did not exit normally). Used to check that bad input ends in one "error: ..." line and a non-zero exit.
template <class Fn>
inline std::string run_in_child(Fn fn, int* status) {
    int fds[2];
    if (pipe(fds) != 0) { *status = -1; return ""; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn();
        _exit(0);
    }
    close(fds[1]);
    std::string err;
    char buf[512];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, (size_t)n);
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return err;
}

// CHECKs that fn() exits non-zero with exactly one stderr line starting "error: " and containing `needle`.
#define CHECK_DIES(fn, needle)                                                                          \
    do {                                                                                                \
        int st_;                                                                                        \
        std::string e_ = run_in_child(fn, &st_);                                                        \
        bool one_line_ = e_.rfind("error: ", 0) == 0 && e_.find('\n') == e_.size() - 1;                 \
        CHECK(st_ != 0 && one_line_ && e_.find(needle) != std::string::npos,                            \
              "expected one 'error: ...%s...' line and non-zero exit, got status %d, stderr '%s'", needle, \
              st_, e_.c_str());                                                                         \
    } while (0)

inline int test_summary() {
    printf("%d passed, %d failed\n", g_test_passed, g_test_failed);
    return g_test_failed ? 1 : 0;
}
