// dev/cuda/rope.cu — kernel lab for llmc/rope.cuh: in-place RoPE forward/backward on the Q and K thirds of
// qkv, against ref::rope_forward / ref::rope_backward on identical inputs; the host cos/sin table against the
// reference's angles; V untouched; forward∘backward = identity; determinism; then GB/s.
// Usage: build/cuda/rope [--seed N] [--quick] [--no-bench]   (dev/cuda/lab.h)
#include "dev/cuda/lab.h"  // lab_args: --seed N, --quick, --no-bench
#include <algorithm>
#include <ctime>
#include <random>
#include "dev/cpu/reference.h"
#include "dev/test/test.h"
#include "llmc/rope.cuh"

// Same bf16 inputs and the same fp32 cos/sin on both sides; the GPU rounds each output once to bf16 (relative
// error <= 2^-8 per element, ~1.7e-3 RMS): 5e-3 is a worst-case bound, while a wrong angle, pair or head is O(1).
static const double TOL_BF16_ONE_ROUNDING = 5e-3;
// forward then backward on the GPU: two bf16 roundings (<= 2 * 2^-8 = 7.8e-3) against the original input.
static const double TOL_ROUNDTRIP = 1e-2;

// The host table must hold exactly the reference's cos/sin of the reference's fp32 angles.
static void check_table(int S, int hd, float theta) {
    std::vector<float2> t;
    rope_table_host(t, S, hd, theta);
    size_t bad = 0;
    for (int s = 0; s < S; s++)
        for (int j = 0; j < hd / 2; j++) {
            double a = (double)ref::rope_angle(s, j, hd, theta);
            float2 e = t[(size_t)s * (hd / 2) + j];
            bad += e.x != (float)cos(a) || e.y != (float)sin(a);
        }
    printf("table S=%d hd=%d: %zu entries differ from the reference's cos/sin (must be 0)\n", S, hd, bad);
    CHECK(bad == 0, "rope table differs in %zu entries", bad);
}

struct Case {
    int B, S, nh, hd;
};

static void check_case(const Case& cs, float theta) {
    const int B = cs.B, S = cs.S, nh = cs.nh, hd = cs.hd, N = B * S, A = nh * hd;
    const size_t total = (size_t)N * 3 * A;
    printf("case B=%d S=%d nh=%d hd=%d (%s path)\n", B, S, nh, hd, hd % 16 == 0 ? "16-byte" : "scalar");
    std::vector<floatX> q_h, g_h;
    std::vector<float> q_f, g_f;
    random_bf16(q_h, q_f, total, -2.0f, 2.0f);
    random_bf16(g_h, g_f, total, -2.0f, 2.0f);
    std::vector<float> fwd_ref = q_f, bwd_ref = g_f;
    ref::rope_forward(fwd_ref.data(), B, S, nh, hd, theta);
    ref::rope_backward(bwd_ref.data(), B, S, nh, hd, theta);

    RopeTable table = rope_table_create(S + 3, hd, theta);  // a longer table than needed is allowed
    floatX* d_q = to_device(q_h);
    floatX* d_g = to_device(g_h);
    std::vector<floatX> fwd[2], bwd[2];
    for (int run = 0; run < 2; run++) {
        cudaCheck(cudaMemcpy(d_q, q_h.data(), total * sizeof(floatX), cudaMemcpyHostToDevice));
        cudaCheck(cudaMemcpy(d_g, g_h.data(), total * sizeof(floatX), cudaMemcpyHostToDevice));
        rope_forward(d_q, table, B, S, nh, hd, 0);
        rope_backward(d_g, table, B, S, nh, hd, 0);
        cudaCheck(cudaDeviceSynchronize());
        fwd[run] = to_host(d_q, total);
        bwd[run] = to_host(d_g, total);
    }
    // Separate the rotated thirds (compared to the reference) from V (must be bit-identical to the input).
    std::vector<float> fq, rq, bq, rb;
    size_t v_changed = 0;
    std::vector<float> ff = to_float(fwd[0]), bf = to_float(bwd[0]);
    for (size_t i = 0; i < total; i++) {
        bool is_v = (int)(i % (3 * A)) >= 2 * A;
        if (is_v) {
            v_changed += memcmp(&fwd[0][i], &q_h[i], sizeof(floatX)) != 0 || memcmp(&bwd[0][i], &g_h[i], sizeof(floatX)) != 0;
            continue;
        }
        fq.push_back(ff[i]);
        rq.push_back(fwd_ref[i]);
        bq.push_back(bf[i]);
        rb.push_back(bwd_ref[i]);
    }
    check_err("forward: rotated Q,K", fq.data(), rq.data(), fq.size(), TOL_BF16_ONE_ROUNDING);
    check_err("backward: rotated dQ,dK", bq.data(), rb.data(), bq.size(), TOL_BF16_ONE_ROUNDING);
    printf("  V elements changed: %zu (must be 0)\n", v_changed);
    CHECK(v_changed == 0, "rope modified %zu V elements", v_changed);

    // Round trip on the GPU: backward undoes forward (a rotation's transpose is its inverse).
    rope_backward(d_q, table, B, S, nh, hd, 0);
    std::vector<float> back = to_float(to_host(d_q, total));
    check_err("backward(forward(x)) vs x", back.data(), q_f.data(), total, TOL_ROUNDTRIP);

    bool det = memcmp(fwd[0].data(), fwd[1].data(), total * sizeof(floatX)) == 0 &&
               memcmp(bwd[0].data(), bwd[1].data(), total * sizeof(floatX)) == 0;
    printf("  determinism: %s\n", det ? "bit-identical over two runs" : "RUNS DIFFER");
    CHECK(det, "two runs differ");
    cudaCheck(cudaFree(d_q));
    cudaCheck(cudaFree(d_g));
    rope_table_free(table);
}

static void bench(int B, int S, int nh, int hd, const DevicePeaks& pk) {
    const size_t total = (size_t)B * S * 3 * nh * hd;
    RopeTable table = rope_table_create(S, hd, 10000.0f);
    floatX* d_q;
    cudaCheck(cudaMalloc(&d_q, total * sizeof(floatX)));
    cudaCheck(cudaMemset(d_q, 0, total * sizeof(floatX)));
    printf("bench B=%d S=%d nh=%d hd=%d\n", B, S, nh, hd);
    double bytes = (double)B * S * 2 * nh * hd * 2 * 2;  // Q and K read and written once
    float ms = median_ms([&] { rope_forward(d_q, table, B, S, nh, hd, 0); });
    report_bw("rope_forward (Q,K in place)", bytes, ms, pk);
    ms = median_ms([&] { rope_backward(d_q, table, B, S, nh, hd, 0); });
    report_bw("rope_backward (dQ,dK in place)", bytes, ms, pk);
    cudaCheck(cudaFree(d_q));
    rope_table_free(table);
}

int main(int argc, char** argv) {
    const LabArgs args = lab_args(argc, argv);
    if (!lab_have_device()) return test_summary();
    uint64_t seed = args.seed;
    const bool quick = args.quick;  // small cases only (for sanitizers)
    DevicePeaks pk = device_peaks();
    printf("rope kernel lab on %s, seed %llu\n", pk.name, (unsigned long long)seed);
    check_table(2048, 64, 10000.0f);
    check_table(2048, 128, 10000.0f);
    const Case cases[] = {
        {2, 7, 3, 64}, {3, 129, 12, 64}, {1, 2048, 10, 128}, {2, 2048, 2, 64},
        {2, 17, 3, 6},   // hd % 16 != 0: scalar path
        {1, 50, 4, 80},  // hd = 80: 16-byte path with 5 chunks per half
        {3, 5, 7, 36},   // scalar path, odd head count
    };
    for (const Case& c : cases)
        if (!quick || (size_t)c.B * c.S * c.nh * c.hd <= (1u << 20)) check_case(c, 10000.0f);
    check_case({2, 33, 2, 32}, 500000.0f);  // another theta
    if (args.bench) {
        bench(8, 2048, 12, 64, pk);   // AR 140M
        bench(8, 2048, 10, 128, pk);  // MDM 425M
    }
    return test_summary();
}
