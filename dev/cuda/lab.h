// dev/cuda/lab.h — the command line every kernel-lab program shares:
//   --seed N     input seed (default: time, printed so a failure can be replayed)
//   --quick      small shapes only, no timing (what make gpucheck runs under compute-sanitizer)
//   --no-bench   correctness only
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include "llmc/utils.h"

struct LabArgs {
    uint64_t seed;
    bool quick = false;
    bool bench = true;
};

inline LabArgs lab_args(int argc, char** argv) {
    LabArgs a;
    a.seed = (uint64_t)time(nullptr);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) a.seed = strtoull(argv[++i], nullptr, 10);
        else if (!strcmp(argv[i], "--quick")) a.quick = true, a.bench = false;
        else if (!strcmp(argv[i], "--no-bench")) a.bench = false;
        else llmc_die("unknown argument '%s' (use --seed N, --quick, --no-bench)", argv[i]);
    }
    printf("%s: seed %llu%s\n", argv[0], (unsigned long long)a.seed, a.quick ? " (quick)" : "");
    return a;
}
