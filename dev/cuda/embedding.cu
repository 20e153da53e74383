// dev/cuda/embedding.cu — kernel lab for llmc/embedding.cuh: the token-embedding gather fused with the embedding
// dropout, and the deterministic (sorted, atomic-free) backward into the fp32 dwte, against ref::embedding_* and
// ref::dropout_forward on identical inputs; determinism; then GB/s at the trainer's shapes.
// Usage: build/cuda/embedding [--seed N] [--quick] [--no-bench]   (dev/cuda/lab.h)
#include "dev/cuda/lab.h"  // lab_args: --seed N, --quick, --no-bench
#include <algorithm>
#include <chrono>
#include <ctime>
#include <random>
#include "dev/cpu/reference.h"
#include "dev/test/test.h"
#include "llmc/embedding.cuh"

// Forward: a gather plus ONE fp32 multiply by the same 1/(1-p), rounded to bf16 the same way (RNE) on both
// sides, so the GPU output must equal round_to_bf16(reference) bit for bit; any mask or index error shows.
// Backward (fp32): single-segment tokens add rows in the reference's order from the same start value; frequent
// tokens are summed per 64-row segment first, so only rounding order differs (~1e-7): 1e-5 catches any real bug.
static const double TOL_DWTE = 1e-5;

// Median wall time of fn over `reps` timed runs after 3 warm-ups, by CUDA events on the default stream.

struct Case {
    int B, S, C, Vp;
    float mask_frac;  // fraction of positions set to the MDM mask token (exercises the split-bucket path)
    float p;          // embedding dropout
};

// Tokens uniform in [0, Vp) with a fraction replaced by MASK_ID (or Vp-1 for small vocabularies).
static std::vector<int> random_tokens(int N, int Vp, float mask_frac) {
    std::vector<int> t(N);
    int mask = std::min(MASK_ID, Vp - 1);
    for (int n = 0; n < N; n++) t[n] = uniform(0, 1) < mask_frac ? mask : (int)(rng() % (uint64_t)Vp);
    return t;
}

static void check_case(const Case& cs) {
    const int B = cs.B, S = cs.S, C = cs.C, Vp = cs.Vp, N = B * S;
    const HiddenDropout drop{cs.p, 1234u, RNG_DROPOUT_EMB, 77u, 4000u, 0u};
    printf("case B=%d S=%d C=%d Vp=%d mask_frac=%.2f p=%.2f\n", B, S, C, Vp, cs.mask_frac, cs.p);

    std::vector<int> tokens = random_tokens(N, Vp, cs.mask_frac);
    bool in_range = true;
    for (int t : tokens) in_range = in_range && t >= 0 && t < Vp;
    CHECK(in_range, "test generated a token id outside [0, %d)", Vp);
    std::vector<floatX> wte_h((size_t)Vp * C);
    std::vector<float> wte_f((size_t)Vp * C);
    for (size_t i = 0; i < wte_h.size(); i++) {
        wte_h[i] = float_to_bf16_host(uniform(-0.05f, 0.05f));
        wte_f[i] = bf16_to_float_host(wte_h[i]);
    }
    std::vector<float> dout((size_t)N * C), dwte0((size_t)Vp * C);
    for (float& v : dout) v = uniform(-1.0f, 1.0f);
    for (float& v : dwte0) v = uniform(-1.0f, 1.0f);  // non-zero start: the backward must accumulate

    // CPU oracle.
    std::vector<float> out_ref((size_t)N * C), dwte_ref = dwte0, dmasked = dout;
    ref::embedding_forward(out_ref.data(), tokens.data(), wte_f.data(), N, C);
    ref::dropout_forward(out_ref.data(), B, S, C, drop.p, drop.seed, drop.purpose, drop.step, drop.sample0, drop.sub);
    ref::dropout_forward(dmasked.data(), B, S, C, drop.p, drop.seed, drop.purpose, drop.step, drop.sample0, drop.sub);
    ref::embedding_backward(dwte_ref.data(), dmasked.data(), tokens.data(), N, C);

    // GPU.
    EmbeddingBackwardPlan plan;
    std::string err = plan.build(tokens.data(), N, Vp);
    CHECK(err.empty(), "plan rejected valid tokens: %s", err.c_str());
    int* d_tokens = to_device(tokens);
    floatX* d_wte = to_device(wte_h);
    float* d_dout = to_device(dout);
    float* d_dwte = to_device(dwte0);
    floatX* d_out;
    int* d_plan;
    float* d_scratch;
    size_t scratch_n = embedding_backward_scratch_floats(N, C);
    CHECK(plan.packed.size() <= embedding_plan_capacity_ints(N), "plan %zu ints exceeds capacity %zu",
          plan.packed.size(), embedding_plan_capacity_ints(N));
    CHECK((size_t)plan.num_slots * C <= scratch_n, "plan needs %d scratch rows, capacity %zu", plan.num_slots,
          scratch_n / C);
    cudaCheck(cudaMalloc(&d_out, (size_t)N * C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_plan, embedding_plan_capacity_ints(N) * sizeof(int)));
    cudaCheck(cudaMalloc(&d_scratch, scratch_n * sizeof(float)));
    embedding_plan_upload(d_plan, plan, 0);

    std::vector<floatX> out_gpu[2];
    std::vector<float> dwte_gpu[2];
    for (int run = 0; run < 2; run++) {
        poison(d_out, (size_t)N * C * sizeof(floatX));
        poison(d_scratch, scratch_n * sizeof(float));
        cudaCheck(cudaMemcpy(d_dwte, dwte0.data(), dwte0.size() * sizeof(float), cudaMemcpyHostToDevice));
        embedding_forward(d_out, d_tokens, d_wte, B, S, C, drop, 0);
        embedding_backward(d_dwte, d_scratch, d_plan, plan, d_dout, B, S, C, drop, 0);
        cudaCheck(cudaDeviceSynchronize());
        out_gpu[run] = to_host(d_out, (size_t)N * C);
        dwte_gpu[run] = to_host(d_dwte, dwte0.size());
    }

    // Forward: exact.
    size_t mismatches = 0, dropped = 0;
    std::vector<float> out_f((size_t)N * C);
    for (size_t i = 0; i < out_f.size(); i++) {
        out_f[i] = bf16_to_float_host(out_gpu[0][i]);
        uint32_t a, b;
        float r = ref::round_to_bf16(out_ref[i]);
        memcpy(&a, &out_f[i], 4);
        memcpy(&b, &r, 4);
        mismatches += a != b;
        dropped += out_ref[i] == 0.0f;
    }
    double e_out = rel_error(out_f.data(), out_ref.data(), out_f.size());
    printf("  forward: rel err %.3e, %zu of %zu elements differ from bf16(ref) (must be 0), %zu dropped\n", e_out,
           mismatches, out_f.size(), dropped);
    CHECK(mismatches == 0, "embedding forward differs from the reference in %zu elements", mismatches);

    // Backward: compare the increments, so untouched rows do not dilute the error (and must stay exact).
    std::vector<float> inc_gpu(dwte0.size()), inc_ref(dwte0.size());
    for (size_t i = 0; i < dwte0.size(); i++) {
        inc_gpu[i] = dwte_gpu[0][i] - dwte0[i];
        inc_ref[i] = dwte_ref[i] - dwte0[i];
    }
    double e_dw = rel_error(inc_gpu.data(), inc_ref.data(), inc_gpu.size());
    printf("  backward: dwte increment rel err %.3e (tol %.0e), %d segments, %d split tokens\n", e_dw, TOL_DWTE,
           plan.num_segs, plan.num_multi);
    CHECK(e_dw <= TOL_DWTE, "dwte rel err %.3e > %.0e", e_dw, TOL_DWTE);

    bool same_out = memcmp(out_gpu[0].data(), out_gpu[1].data(), out_gpu[0].size() * sizeof(floatX)) == 0;
    bool same_dw = memcmp(dwte_gpu[0].data(), dwte_gpu[1].data(), dwte_gpu[0].size() * sizeof(float)) == 0;
    printf("  determinism: forward %s, backward %s\n", same_out ? "bit-identical" : "DIFFERS",
           same_dw ? "bit-identical" : "DIFFERS");
    CHECK(same_out && same_dw, "two runs differ");

    cudaCheck(cudaFree(d_tokens));
    cudaCheck(cudaFree(d_wte));
    cudaCheck(cudaFree(d_dout));
    cudaCheck(cudaFree(d_dwte));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_plan));
    cudaCheck(cudaFree(d_scratch));
}

static void check_rejection() {
    std::vector<int> bad = {1, 5, 50304, 2};
    EmbeddingBackwardPlan plan;
    std::string err = plan.build(bad.data(), (int)bad.size(), 50304);
    printf("bad token rejected: \"%s\"\n", err.c_str());
    CHECK(err.find("50304") != std::string::npos && err.find("row 2") != std::string::npos,
          "out-of-range token not reported: '%s'", err.c_str());
    bad[2] = -1;
    CHECK(!plan.build(bad.data(), (int)bad.size(), 50304).empty(), "negative token id accepted");
}

static void bench(int B, int S, int C, float mask_frac, const DevicePeaks& pk) {
    const int N = B * S, Vp = PADDED_VOCAB;
    const HiddenDropout drop{0.1f, 1u, RNG_DROPOUT_EMB, 1u, 0u, 0u};
    std::vector<int> tokens = random_tokens(N, Vp, mask_frac);
    EmbeddingBackwardPlan plan;
    auto t0 = std::chrono::steady_clock::now();
    plan.build_or_die(tokens.data(), N, Vp);
    double plan_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    int* d_tokens = to_device(tokens);
    floatX *d_wte, *d_out;
    float *d_dout, *d_dwte, *d_scratch;
    int* d_plan;
    cudaCheck(cudaMalloc(&d_wte, (size_t)Vp * C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_out, (size_t)N * C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dout, (size_t)N * C * sizeof(float)));
    cudaCheck(cudaMalloc(&d_dwte, (size_t)Vp * C * sizeof(float)));
    cudaCheck(cudaMalloc(&d_scratch, embedding_backward_scratch_floats(N, C) * sizeof(float)));
    cudaCheck(cudaMalloc(&d_plan, embedding_plan_capacity_ints(N) * sizeof(int)));
    cudaCheck(cudaMemset(d_wte, 0, (size_t)Vp * C * sizeof(floatX)));
    cudaCheck(cudaMemset(d_dout, 0, (size_t)N * C * sizeof(float)));
    cudaCheck(cudaMemset(d_dwte, 0, (size_t)Vp * C * sizeof(float)));
    embedding_plan_upload(d_plan, plan, 0);
    int distinct = 0;
    for (int i = 0; i < plan.num_segs; i++) distinct += plan.packed[4 * i + 3] < 0;
    distinct += plan.num_multi;
    printf("bench B=%d S=%d C=%d mask_frac=%.2f p=0.1: %d distinct tokens, host plan %.2f ms\n", B, S, C, mask_frac,
           distinct, plan_ms);
    float ms = median_ms([&] { embedding_forward(d_out, d_tokens, d_wte, B, S, C, drop, 0); });
    report_bw("embedding_forward (rows read + out written)", (double)N * C * 4 + N * 4.0, ms, pk);
    ms = median_ms([&] { embedding_backward(d_dwte, d_scratch, d_plan, plan, d_dout, B, S, C, drop, 0); });
    report_bw("embedding_backward (dout + dwte rows r/w)", (double)N * C * 4 + (double)distinct * C * 8, ms, pk);
    cudaCheck(cudaFree(d_tokens));
    cudaCheck(cudaFree(d_wte));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_dout));
    cudaCheck(cudaFree(d_dwte));
    cudaCheck(cudaFree(d_scratch));
    cudaCheck(cudaFree(d_plan));
}

int main(int argc, char** argv) {
    const LabArgs args = lab_args(argc, argv);
    if (!lab_have_device()) return test_summary();
    uint64_t seed = args.seed;
    const bool quick = args.quick;  // small cases only (for sanitizers)
    DevicePeaks pk = device_peaks();
    printf("embedding kernel lab on %s, seed %llu\n", pk.name, (unsigned long long)seed);
    check_rejection();
    const Case cases[] = {
        {2, 7, 96, PADDED_VOCAB, 0.0f, 0.0f},     {2, 7, 96, PADDED_VOCAB, 0.0f, 0.1f},
        {3, 129, 768, PADDED_VOCAB, 0.0f, 0.1f},  {3, 129, 768, PADDED_VOCAB, 0.5f, 0.0f},
        {1, 2048, 1280, PADDED_VOCAB, 0.5f, 0.1f}, {2, 300, 2560, PADDED_VOCAB, 0.3f, 0.1f},
        {5, 37, 264, 97, 0.0f, 0.1f},  // tiny vocabulary: every token repeated, many split buckets
        {1, 1, 8, 3, 0.0f, 0.0f},
    };
    for (const Case& c : cases)
        if (!quick || (size_t)c.B * c.S * c.C <= (1u << 20)) check_case(c);
    if (args.bench) {
        bench(8, 2048, 768, 0.0f, pk);   // AR 140M
        bench(8, 2048, 1280, 0.5f, pk);  // MDM 425M: the mask token is about half the batch
    }
    return test_summary();
}
