// dev/cuda/global_norm.cu — kernel lab for llmc/global_norm.cuh: the deterministic fp64 global L2 norm and the
// on-device clip factor against ref::global_norm / ref::clip_coefficient; bit-identical across runs.
// Usage: build/cuda/global_norm [seed]
#include "dev/cuda/lab.h"  // lab_args: --seed N, --quick, --no-bench
#include <algorithm>
#include <cmath>
#include <ctime>
#include <random>
#include "dev/cpu/reference.h"
#include "dev/test/test.h"
#include "llmc/global_norm.cuh"

// Both sides sum fp32 squares in fp64, in different orders. The reference's sequential sum alone may carry up
// to n * 2^-53 relative (5e-9 at n = 5e7, typically ~sqrt(n) * 2^-53); 1e-9 is far below any real bug.
static const double TOL_NORM = 1e-9;
// The clip factor is computed in fp64 from the norm and rounded once to fp32 (2^-24 ~ 6e-8).
static const double TOL_CLIP = 1e-6;

static void check_norm(size_t n, int offset, float scale, double max_norm) {
    printf("global_norm n=%zu offset=%d max_norm=%g\n", n, offset, max_norm);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> g(n);
    for (auto& x : g) x = nd(rng) * scale;
    const double norm_ref = ref::global_norm(g.data(), n);
    const double clip_ref = ref::clip_coefficient(norm_ref, max_norm);
    float* base;
    cudaCheck(cudaMalloc(&base, (n + offset) * sizeof(float)));
    cudaCheck(cudaMemcpy(base + offset, g.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    GlobalNorm gn;
    global_norm_init(gn);
    double norms[2];
    float clips[2];
    for (int run = 0; run < 2; run++) {
        poison(gn.norm, sizeof(double));
        poison(gn.clip, sizeof(float));
        poison(gn.partials, GNORM_BLOCKS * sizeof(double));
        global_norm(gn, base + offset, n, max_norm, 0);
        norms[run] = global_norm_read(gn, 0);
        cudaCheck(cudaMemcpy(&clips[run], gn.clip, sizeof(float), cudaMemcpyDeviceToHost));
    }
    double e_norm = fabs(norms[0] - norm_ref) / norm_ref, e_clip = fabs(clips[0] - clip_ref) / clip_ref;
    bool same = memcmp(&norms[0], &norms[1], sizeof(double)) == 0 && memcmp(&clips[0], &clips[1], sizeof(float)) == 0;
    printf("  norm %.17g ref %.17g rel err %.2e (tol %.0e)\n", norms[0], norm_ref, e_norm, TOL_NORM);
    printf("  clip %.9g ref %.9g rel err %.2e (tol %.0e); second run bit-identical: %s\n", clips[0], clip_ref, e_clip,
           TOL_CLIP, same ? "yes" : "NO");
    CHECK(e_norm < TOL_NORM, "norm n=%zu: %.3e", n, e_norm);
    CHECK(e_clip < TOL_CLIP, "clip n=%zu: %.3e", n, e_clip);
    CHECK(clip_ref < 1.0 || clips[0] == 1.0f, "no clipping must give exactly 1, got %.9g", clips[0]);
    CHECK(same, "global_norm n=%zu not deterministic", n);
    global_norm_free(gn);
    cudaCheck(cudaFree(base));
}

static void bench() {
    DevicePeaks pk = device_peaks();
    const size_t n = num_parameters(model_preset("140m", 2048));
    float* g;
    cudaCheck(cudaMalloc(&g, n * sizeof(float)));
    cudaCheck(cudaMemset(g, 0, n * sizeof(float)));
    GlobalNorm gn;
    global_norm_init(gn);
    const float ms = median_ms([&] { global_norm(gn, g, n, 1.0, 0); }, 20);
    double gbs = (double)n * sizeof(float) / (ms * 1e-3) / 1e9;
    printf("timing on %s: 140m model gradient, %zu floats: %.3f ms, %.0f GB/s", pk.name, n, ms, gbs);
    if (pk.mem_gbps > 0) printf(" (%.1f%% of %.0f)", 100 * gbs / pk.mem_gbps, pk.mem_gbps);
    printf(", median of 20\n");
    global_norm_free(gn);
    cudaCheck(cudaFree(g));
}

int main(int argc, char** argv) {
    const LabArgs args = lab_args(argc, argv);
    if (!lab_have_device()) return test_summary();
    unsigned long long seed = args.seed;
    printf("global_norm kernel test, seed %llu\n", seed);
    check_norm(1, 0, 3.0f, 1.0);              // one element, clipped
    check_norm(7, 0, 0.01f, 1.0);             // fewer than a vector: tail loop only, no clipping
    check_norm(1000003, 0, 0.01f, 1.0);       // ragged: n % 4 = 3, norm ~10 -> clipped
    check_norm(1000003, 1, 0.01f, 1.0);       // unaligned pointer: scalar kernel
    check_norm(3000000, 0, 1e-4f, 1.0);       // norm ~0.17: factor exactly 1
    check_norm(3000000, 0, 1e-2f, 0.0);       // max_norm 0 disables clipping
    check_norm(50000001, 0, 1e-3f, 1.0);      // larger than the fixed grid's stride many times over
    if (g_test_failed == 0 && args.bench) bench();
    return test_summary();
}
