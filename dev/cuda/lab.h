// dev/cuda/lab.h — what every kernel-lab program shares: the command line, the random-input generator, host <->
// device copies, bf16 rounding of inputs (the CPU twin gets the exact rounded values), timing with CUDA events
// (median after warm-up), and the error / bandwidth report lines. The command line:
//   --seed N     input seed (default: time, printed so a failure can be replayed)
//   --quick      small shapes only, no timing (what make gpucheck runs under compute-sanitizer)
//   --no-bench   correctness only
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <ctime>
#include <random>
#include <vector>
#include "dev/test/test.h"
#include "llmc/cuda_common.cuh"

// Random inputs of a lab program, seeded by lab_args from --seed.
inline std::mt19937_64 rng;

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
    rng.seed(a.seed);
    return a;
}

// False (and one failure counted, so the run cannot pass) when there is no GPU: the caller then prints its summary.
inline bool lab_have_device() {
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) == cudaSuccess && ndev > 0) return true;
    printf("no CUDA device: GPU checks not run\n");
    g_test_failed++;
    return false;
}

inline float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }

template <class T>
inline T* to_device(const std::vector<T>& h) {
    T* d;
    cudaCheck(cudaMalloc(&d, std::max<size_t>(h.size(), 1) * sizeof(T)));
    cudaCheck(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

template <class T>
inline std::vector<T> to_host(const T* d, size_t n) {
    std::vector<T> h(n);
    cudaCheck(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

inline std::vector<float> to_float(const std::vector<floatX>& h) {
    std::vector<float> f(h.size());
    for (size_t i = 0; i < h.size(); i++) f[i] = bf16_to_float_host(h[i]);
    return f;
}

inline void random_bf16(std::vector<floatX>& h, std::vector<float>& f, size_t n, float lo, float hi) {
    h.resize(n);
    f.resize(n);
    for (size_t i = 0; i < n; i++) {
        h[i] = float_to_bf16_host(uniform(lo, hi));
        f[i] = bf16_to_float_host(h[i]);
    }
}

template <class Fn>
inline float median_ms(Fn fn, int reps = 25) {
    for (int i = 0; i < 3; i++) fn();
    cudaEvent_t a, b;
    cudaCheck(cudaEventCreate(&a));
    cudaCheck(cudaEventCreate(&b));
    std::vector<float> ms(reps);
    for (int i = 0; i < reps; i++) {
        cudaCheck(cudaEventRecord(a));
        fn();
        cudaCheck(cudaEventRecord(b));
        cudaCheck(cudaEventSynchronize(b));
        cudaCheck(cudaEventElapsedTime(&ms[i], a, b));
    }
    cudaCheck(cudaEventDestroy(a));
    cudaCheck(cudaEventDestroy(b));
    std::sort(ms.begin(), ms.end());
    return ms[reps / 2];
}

inline void report_bw(const char* what, double bytes, float ms, const DevicePeaks& pk) {
    double gbps = bytes / (ms * 1e-3) / 1e9;
    if (pk.mem_gbps > 0)
        printf("  %-44s %8.3f ms  %7.1f GB/s  (%.0f%% of %.0f GB/s)\n", what, ms, gbps, 100.0 * gbps / pk.mem_gbps,
               pk.mem_gbps);
    else
        printf("  %-44s %8.3f ms  %7.1f GB/s  (peak n/a)\n", what, ms, gbps);
}

inline void check_err(const char* what, const float* gpu, const float* ref, size_t n, double tol) {
    double e = rel_error(gpu, ref, n);
    printf("  %-40s rel err %.3e (tol %.0e)\n", what, e, tol);
    CHECK(e <= tol, "%s: rel err %.3e > %.0e", what, e, tol);
}
