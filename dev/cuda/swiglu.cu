// dev/cuda/swiglu.cu — kernel lab for llmc/swiglu.cuh: SwiGLU forward/backward against ref::swiglu_forward /
// ref::swiglu_backward on identical bf16 inputs; in-place backward; determinism; then GB/s at the MLP shapes.
// Usage: build/cuda/swiglu [--seed N] [--quick] [--no-bench]   (dev/cuda/lab.h)
#include "dev/cuda/lab.h"  // lab_args: --seed N, --quick, --no-bench
#include <algorithm>
#include <ctime>
#include <random>
#include "dev/cpu/reference.h"
#include "dev/test/test.h"
#include "llmc/swiglu.cuh"

// Same bf16 inputs; fp32 math (fast-math exp, a few ulp) vs the reference's double sigmoid; the GPU rounds each
// output once to bf16 (relative error <= 2^-8 per element, ~1.7e-3 RMS): 5e-3 is a worst-case bound, while a
// swapped half or a wrong formula is O(1).
static const double TOL_BF16_ONE_ROUNDING = 5e-3;

static void check_case(int N, int F) {
    printf("case N=%d F=%d (%s path)\n", N, F, F % 8 == 0 ? "16-byte" : "scalar");
    const size_t NF = (size_t)N * F;
    std::vector<floatX> in_h, dout_h;
    std::vector<float> in_f, dout_f;
    random_bf16(in_h, in_f, 2 * NF, -8.0f, 8.0f);  // covers both saturated tails of the sigmoid
    random_bf16(dout_h, dout_f, NF, -1.0f, 1.0f);
    std::vector<float> out_ref(NF), din_ref(2 * NF, 0.0f);
    ref::swiglu_forward(out_ref.data(), in_f.data(), N, F);
    ref::swiglu_backward(din_ref.data(), dout_f.data(), in_f.data(), N, F);  // += into zeros: the GPU writes

    floatX* d_in = to_device(in_h);
    floatX* d_dout = to_device(dout_h);
    floatX *d_out, *d_din;
    cudaCheck(cudaMalloc(&d_out, NF * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_din, 2 * NF * sizeof(floatX)));
    std::vector<floatX> out[2], din[2];
    for (int run = 0; run < 2; run++) {
        poison(d_out, NF * sizeof(floatX));
        poison(d_din, 2 * NF * sizeof(floatX));
        swiglu_forward(d_out, d_in, N, F, 0);
        swiglu_backward(d_din, d_dout, d_in, N, F, 0);
        cudaCheck(cudaDeviceSynchronize());
        out[run] = to_host(d_out, NF);
        din[run] = to_host(d_din, 2 * NF);
    }
    check_err("forward: out", to_float(out[0]).data(), out_ref.data(), NF, TOL_BF16_ONE_ROUNDING);
    std::vector<float> din_f = to_float(din[0]);
    std::vector<float> dg, dgr, du, dur;
    for (size_t i = 0; i < 2 * NF; i++) {
        bool gate = (int)(i % (2 * (size_t)F)) < F;
        (gate ? dg : du).push_back(din_f[i]);
        (gate ? dgr : dur).push_back(din_ref[i]);
    }
    check_err("backward: d gate", dg.data(), dgr.data(), dg.size(), TOL_BF16_ONE_ROUNDING);
    check_err("backward: d up", du.data(), dur.data(), du.size(), TOL_BF16_ONE_ROUNDING);

    // In place: din overwrites in (the trainer may reuse the up-projection output buffer).
    swiglu_backward(d_in, d_dout, d_in, N, F, 0);
    std::vector<floatX> inplace = to_host(d_in, 2 * NF);
    bool same_inplace = memcmp(inplace.data(), din[0].data(), 2 * NF * sizeof(floatX)) == 0;
    printf("  in-place backward: %s\n", same_inplace ? "identical to out-of-place" : "DIFFERS");
    CHECK(same_inplace, "in-place swiglu backward differs");

    bool det = memcmp(out[0].data(), out[1].data(), NF * sizeof(floatX)) == 0 &&
               memcmp(din[0].data(), din[1].data(), 2 * NF * sizeof(floatX)) == 0;
    printf("  determinism: %s\n", det ? "bit-identical over two runs" : "RUNS DIFFER");
    CHECK(det, "two runs differ");
    cudaCheck(cudaFree(d_in));
    cudaCheck(cudaFree(d_dout));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_din));
}

static void bench(int N, int F, const DevicePeaks& pk) {
    const size_t NF = (size_t)N * F;
    floatX *d_in, *d_out, *d_din;
    cudaCheck(cudaMalloc(&d_in, 2 * NF * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_out, NF * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_din, 2 * NF * sizeof(floatX)));
    cudaCheck(cudaMemset(d_in, 0, 2 * NF * sizeof(floatX)));
    cudaCheck(cudaMemset(d_out, 0, NF * sizeof(floatX)));
    printf("bench N=%d F=%d\n", N, F);
    float ms = median_ms([&] { swiglu_forward(d_out, d_in, N, F, 0); });
    report_bw("swiglu_forward (in 2F read, out F written)", (double)NF * 6, ms, pk);
    ms = median_ms([&] { swiglu_backward(d_din, d_out, d_in, N, F, 0); });
    report_bw("swiglu_backward (in, dout read, din written)", (double)NF * 10, ms, pk);
    cudaCheck(cudaFree(d_in));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_din));
}

int main(int argc, char** argv) {
    const LabArgs args = lab_args(argc, argv);
    if (!lab_have_device()) return test_summary();
    uint64_t seed = args.seed;
    const bool quick = args.quick;  // small cases only (for sanitizers)
    DevicePeaks pk = device_peaks();
    printf("swiglu kernel lab on %s, seed %llu\n", pk.name, (unsigned long long)seed);
    const int cases[][2] = {{14, 96}, {387, 2048}, {2048, 3392}, {77, 100}, {5, 7}, {1, 8}, {129, 5120}};
    for (const auto& c : cases)
        if (!quick || (size_t)c[0] * c[1] <= (1u << 20)) check_case(c[0], c[1]);
    if (args.bench) {
        bench(8 * 2048, 2048, pk);  // AR 140M: F = 2048
        bench(8 * 2048, 3392, pk);  // MDM 425M: F = 3392
    }
    return test_summary();
}
