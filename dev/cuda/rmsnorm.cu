// dev/cuda/rmsnorm.cu — kernel lab for llmc/rmsnorm.cuh: fused residual + dropout + RMSNorm forward, plain
// RMSNorm forward, the RMSNorm backward (fp32 residual gradient +=, deterministic dw +=) and the branch-dropout
// backward, against ref::rmsnorm_* / ref::dropout_forward on identical inputs; determinism; then GB/s.
// Usage: build/cuda/rmsnorm [--seed N] [--quick] [--no-bench]   (dev/cuda/lab.h)
#include "dev/cuda/lab.h"  // lab_args: --seed N, --quick, --no-bench
#include <algorithm>
#include <ctime>
#include <random>
#include "dev/cpu/reference.h"
#include "dev/test/test.h"
#include "llmc/rmsnorm.cuh"

// Tolerances on ||gpu - ref|| / ||ref||. bf16 round-to-nearest has a relative error of at most u = 2^-8 per
// element (RMS ~1.7e-3 on random data), so these are worst-case bounds that hold even for one-row cases, and
// any indexing or mask error (O(1)) still fails.
// Outputs rounded once from fp32 math on the same inputs: <= u.
static const double TOL_BF16_ONE_ROUNDING = 5e-3;
// Fused norm output: the GPU normalises the bf16-ROUNDED residual (the stream is bf16; this also moves rstd by
// <= u) and rounds the output; the fp32 reference does neither: <= 3u = 1.17e-2 (typically ~2.5e-3).
static const double TOL_BF16_TWO_ROUNDINGS = 1.2e-2;
// rstd of the fused path: statistics of the rounded vs the unrounded residual, <= u (typically ~1e-4).
static const double TOL_RSTD_FUSED = 5e-3;
// rstd of the plain path: same bf16 inputs, fp32 vs double sum of squares: ~1e-7.
static const double TOL_RSTD_PLAIN = 1e-5;
// Backward, fp32 outputs from identical inputs: only fp32-vs-double accumulation differs (~1e-6).
static const double TOL_FP32_GRAD = 1e-4;

// Random values in [lo, hi) rounded to bf16: device copy in h, exact float twin in f.

static bool same_bits(const void* a, const void* b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

struct Case {
    int B, S, C;
    float p;
};

static void check_case(const Case& cs) {
    const int B = cs.B, S = cs.S, C = cs.C, N = B * S;
    const size_t NC = (size_t)N * C;
    const float eps = 1e-5f;
    const HiddenDropout drop{cs.p, 99u, RNG_DROPOUT_MLP, 12u, 345u, 3u};  // layer 3's MLP branch
    printf("case B=%d S=%d C=%d p=%.2f\n", B, S, C, cs.p);

    std::vector<floatX> res_h, br_h, w_h, dout_h;
    std::vector<float> res_f, br_f, w_f, dout_f;
    random_bf16(res_h, res_f, NC, -2.0f, 2.0f);
    random_bf16(br_h, br_f, NC, -1.0f, 1.0f);
    random_bf16(w_h, w_f, C, 0.5f, 1.5f);
    random_bf16(dout_h, dout_f, NC, -1.0f, 1.0f);
    std::vector<float> dres0(NC), dw0(C);
    for (float& v : dres0) v = uniform(-1.0f, 1.0f);  // non-zero starts: both gradients must accumulate
    for (float& v : dw0) v = uniform(-1.0f, 1.0f);

    // CPU oracle: fused forward = add of the dropped branch, then RMSNorm (all fp32, nothing rounded).
    std::vector<float> x_ref = br_f, norm_ref(NC), rstd_ref(N), pnorm_ref(NC), prstd_ref(N);
    ref::dropout_forward(x_ref.data(), B, S, C, drop.p, drop.seed, drop.purpose, drop.step, drop.sample0, drop.sub);
    for (size_t i = 0; i < NC; i++) x_ref[i] += res_f[i];
    ref::rmsnorm_forward(norm_ref.data(), rstd_ref.data(), x_ref.data(), w_f.data(), N, C, eps);
    ref::rmsnorm_forward(pnorm_ref.data(), prstd_ref.data(), res_f.data(), w_f.data(), N, C, eps);
    // Backward on the plain path's bf16 input x = res (exact on both sides) with its reference rstd.
    std::vector<float> dres_ref = dres0, dw_ref = dw0;
    ref::rmsnorm_backward(dres_ref.data(), dw_ref.data(), dout_f.data(), res_f.data(), w_f.data(), prstd_ref.data(),
                          N, C);
    // Branch-dropout backward: mask * dres / (1-p), rounded to bf16 (one identical fp32 multiply on both sides).
    std::vector<float> dbr_ref = dres0;
    ref::dropout_forward(dbr_ref.data(), B, S, C, drop.p, drop.seed, drop.purpose, drop.step, drop.sample0, drop.sub);
    for (float& v : dbr_ref) v = ref::round_to_bf16(v);

    floatX *d_res = to_device(res_h), *d_br = to_device(br_h), *d_w = to_device(w_h), *d_dout = to_device(dout_h);
    float* d_prstd = to_device(prstd_ref);
    floatX *d_resout, *d_norm, *d_pnorm, *d_dbr;
    float *d_rstd, *d_prstd_gpu, *d_dres, *d_dw, *d_scratch;
    size_t scratch_n = rmsnorm_backward_scratch_floats(N, C);
    cudaCheck(cudaMalloc(&d_resout, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_norm, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_pnorm, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dbr, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_rstd, N * sizeof(float)));
    cudaCheck(cudaMalloc(&d_prstd_gpu, N * sizeof(float)));
    cudaCheck(cudaMalloc(&d_dres, NC * sizeof(float)));
    cudaCheck(cudaMalloc(&d_dw, C * sizeof(float)));
    cudaCheck(cudaMalloc(&d_scratch, scratch_n * sizeof(float)));

    std::vector<floatX> resout[2], norm[2], pnorm[2], dbr[2];
    std::vector<float> rstd[2], prstd[2], dres[2], dw[2];
    for (int run = 0; run < 2; run++) {
        poison(d_resout, NC * sizeof(floatX));
        poison(d_norm, NC * sizeof(floatX));
        poison(d_pnorm, NC * sizeof(floatX));
        poison(d_dbr, NC * sizeof(floatX));
        poison(d_rstd, N * sizeof(float));
        poison(d_prstd_gpu, N * sizeof(float));
        poison(d_scratch, scratch_n * sizeof(float));
        cudaCheck(cudaMemcpy(d_dres, dres0.data(), NC * sizeof(float), cudaMemcpyHostToDevice));
        cudaCheck(cudaMemcpy(d_dw, dw0.data(), C * sizeof(float), cudaMemcpyHostToDevice));
        fused_residual_rmsnorm_forward(d_resout, d_norm, d_rstd, d_res, d_br, d_w, B, S, C, eps, drop, 0);
        rmsnorm_forward(d_pnorm, d_prstd_gpu, d_res, d_w, N, C, eps, 0);
        dropout_backward_to_branch(d_dbr, d_dres, B, S, C, drop, 0);  // reads dres before the norm backward
        rmsnorm_backward(d_dres, d_dw, d_scratch, d_dout, d_res, d_w, d_prstd, N, C, 0);
        cudaCheck(cudaDeviceSynchronize());
        resout[run] = to_host(d_resout, NC);
        norm[run] = to_host(d_norm, NC);
        pnorm[run] = to_host(d_pnorm, NC);
        dbr[run] = to_host(d_dbr, NC);
        rstd[run] = to_host(d_rstd, N);
        prstd[run] = to_host(d_prstd_gpu, N);
        dres[run] = to_host(d_dres, NC);
        dw[run] = to_host(d_dw, C);
    }

    check_err("fused: residual_out", to_float(resout[0]).data(), x_ref.data(), NC, TOL_BF16_ONE_ROUNDING);
    check_err("fused: norm_out", to_float(norm[0]).data(), norm_ref.data(), NC, TOL_BF16_TWO_ROUNDINGS);
    check_err("fused: rstd", rstd[0].data(), rstd_ref.data(), N, TOL_RSTD_FUSED);
    // Dropped branch elements must leave the residual exactly unchanged (mask agreement, element by element).
    std::vector<float> ones(NC, 1.0f);
    ref::dropout_forward(ones.data(), B, S, C, drop.p, drop.seed, drop.purpose, drop.step, drop.sample0, drop.sub);
    size_t bad_drop = 0, dropped = 0;
    for (size_t i = 0; i < NC; i++)
        if (ones[i] == 0.0f) {
            dropped++;
            bad_drop += bf16_to_float_host(resout[0][i]) != res_f[i];
        }
    printf("  fused: %zu dropped branch elements, %zu with a changed residual (must be 0)\n", dropped, bad_drop);
    CHECK(bad_drop == 0, "%zu dropped elements changed the residual", bad_drop);

    check_err("plain: norm_out", to_float(pnorm[0]).data(), pnorm_ref.data(), NC, TOL_BF16_ONE_ROUNDING);
    check_err("plain: rstd", prstd[0].data(), prstd_ref.data(), N, TOL_RSTD_PLAIN);

    std::vector<float> inc_gpu(NC), inc_ref(NC);
    for (size_t i = 0; i < NC; i++) {
        inc_gpu[i] = dres[0][i] - dres0[i];
        inc_ref[i] = dres_ref[i] - dres0[i];
    }
    check_err("backward: dres increment (dx)", inc_gpu.data(), inc_ref.data(), NC, TOL_FP32_GRAD);
    std::vector<float> dwi_gpu(C), dwi_ref(C);
    for (int c = 0; c < C; c++) {
        dwi_gpu[c] = dw[0][c] - dw0[c];
        dwi_ref[c] = dw_ref[c] - dw0[c];
    }
    check_err("backward: dw increment", dwi_gpu.data(), dwi_ref.data(), C, TOL_FP32_GRAD);

    std::vector<float> dbr_gpu = to_float(dbr[0]);
    size_t dbr_mis = 0;
    for (size_t i = 0; i < NC; i++) dbr_mis += !same_bits(&dbr_gpu[i], &dbr_ref[i], 4);
    printf("  dropout_backward_to_branch: %zu of %zu elements differ from bf16(ref) (must be 0)\n", dbr_mis, NC);
    CHECK(dbr_mis == 0, "branch-dropout backward differs in %zu elements", dbr_mis);

    bool det = same_bits(resout[0].data(), resout[1].data(), NC * 2) && same_bits(norm[0].data(), norm[1].data(), NC * 2) &&
               same_bits(pnorm[0].data(), pnorm[1].data(), NC * 2) && same_bits(rstd[0].data(), rstd[1].data(), N * 4) &&
               same_bits(prstd[0].data(), prstd[1].data(), N * 4) && same_bits(dbr[0].data(), dbr[1].data(), NC * 2) &&
               same_bits(dres[0].data(), dres[1].data(), NC * 4) && same_bits(dw[0].data(), dw[1].data(), C * 4);
    printf("  determinism: %s\n", det ? "all outputs bit-identical over two runs" : "RUNS DIFFER");
    CHECK(det, "two runs differ");

    for (void* p : {(void*)d_res, (void*)d_br, (void*)d_w, (void*)d_dout, (void*)d_prstd, (void*)d_resout,
                    (void*)d_norm, (void*)d_pnorm, (void*)d_dbr, (void*)d_rstd, (void*)d_prstd_gpu, (void*)d_dres,
                    (void*)d_dw, (void*)d_scratch})
        cudaCheck(cudaFree(p));
}

// In-place residual (residual_out == residual_in), as a trainer keeping one stream buffer would call it.
static void check_in_place() {
    const int B = 2, S = 65, C = 512, N = B * S;
    const size_t NC = (size_t)N * C;
    const HiddenDropout drop{0.1f, 5u, RNG_DROPOUT_ATTN, 1u, 0u, 0u};
    std::vector<floatX> res_h, br_h, w_h;
    std::vector<float> res_f, br_f, w_f;
    random_bf16(res_h, res_f, NC, -2.0f, 2.0f);
    random_bf16(br_h, br_f, NC, -1.0f, 1.0f);
    random_bf16(w_h, w_f, C, 0.5f, 1.5f);
    floatX *d_res = to_device(res_h), *d_br = to_device(br_h), *d_w = to_device(w_h), *d_out, *d_norm;
    float* d_rstd;
    cudaCheck(cudaMalloc(&d_out, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_norm, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_rstd, N * sizeof(float)));
    fused_residual_rmsnorm_forward(d_out, d_norm, d_rstd, d_res, d_br, d_w, B, S, C, 1e-5f, drop, 0);
    std::vector<floatX> expect = to_host(d_out, NC);
    fused_residual_rmsnorm_forward(d_res, d_norm, d_rstd, d_res, d_br, d_w, B, S, C, 1e-5f, drop, 0);
    std::vector<floatX> got = to_host(d_res, NC);
    bool same = same_bits(expect.data(), got.data(), NC * sizeof(floatX));
    printf("in-place residual update: %s\n", same ? "identical to out-of-place" : "DIFFERS");
    CHECK(same, "in-place fused forward differs from out-of-place");
    for (void* p : {(void*)d_res, (void*)d_br, (void*)d_w, (void*)d_out, (void*)d_norm, (void*)d_rstd})
        cudaCheck(cudaFree(p));
}

static void bench(int B, int S, int C, const DevicePeaks& pk) {
    const int N = B * S;
    const size_t NC = (size_t)N * C;
    const HiddenDropout drop{0.1f, 1u, RNG_DROPOUT_MLP, 1u, 0u, 0u};
    floatX *d_res, *d_br, *d_w, *d_out, *d_norm;
    float *d_rstd, *d_dres, *d_dw, *d_scratch;
    cudaCheck(cudaMalloc(&d_res, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_br, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_out, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_norm, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_w, C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_rstd, N * sizeof(float)));
    cudaCheck(cudaMalloc(&d_dres, NC * sizeof(float)));
    cudaCheck(cudaMalloc(&d_dw, C * sizeof(float)));
    cudaCheck(cudaMalloc(&d_scratch, rmsnorm_backward_scratch_floats(N, C) * sizeof(float)));
    cudaCheck(cudaMemset(d_res, 0, NC * sizeof(floatX)));
    cudaCheck(cudaMemset(d_br, 0, NC * sizeof(floatX)));
    cudaCheck(cudaMemset(d_w, 0, C * sizeof(floatX)));
    cudaCheck(cudaMemset(d_dres, 0, NC * sizeof(float)));
    cudaCheck(cudaMemset(d_dw, 0, C * sizeof(float)));
    rmsnorm_forward(d_norm, d_rstd, d_res, d_w, N, C, 1e-5f, 0);  // valid rstd for the backward
    printf("bench B=%d S=%d C=%d (hidden dropout 0.1)\n", B, S, C);
    float ms = median_ms([&] { fused_residual_rmsnorm_forward(d_out, d_norm, d_rstd, d_res, d_br, d_w, B, S, C, 1e-5f, drop, 0); });
    report_bw("fused residual+rmsnorm fwd (r 2x bf16, w 2x)", (double)NC * 8 + N * 4.0, ms, pk);
    ms = median_ms([&] { rmsnorm_forward(d_norm, d_rstd, d_res, d_w, N, C, 1e-5f, 0); });
    report_bw("rmsnorm fwd (r bf16, w bf16)", (double)NC * 4 + N * 4.0, ms, pk);
    ms = median_ms([&] { rmsnorm_backward(d_dres, d_dw, d_scratch, d_norm, d_res, d_w, d_rstd, N, C, 0); });
    report_bw("rmsnorm bwd (r 2x bf16, dres fp32 r+w)", (double)NC * 12 + N * 4.0, ms, pk);
    ms = median_ms([&] { dropout_backward_to_branch(d_out, d_dres, B, S, C, drop, 0); });
    report_bw("dropout_backward_to_branch (fp32 -> bf16)", (double)NC * 6, ms, pk);
    for (void* p : {(void*)d_res, (void*)d_br, (void*)d_w, (void*)d_out, (void*)d_norm, (void*)d_rstd, (void*)d_dres,
                    (void*)d_dw, (void*)d_scratch})
        cudaCheck(cudaFree(p));
}

int main(int argc, char** argv) {
    const LabArgs args = lab_args(argc, argv);
    if (!lab_have_device()) return test_summary();
    uint64_t seed = args.seed;
    const bool quick = args.quick;  // small cases only (for sanitizers)
    DevicePeaks pk = device_peaks();
    printf("rmsnorm kernel lab on %s, seed %llu\n", pk.name, (unsigned long long)seed);
    const Case cases[] = {
        {2, 7, 96, 0.0f},    {2, 7, 96, 0.1f},    {3, 129, 768, 0.1f}, {1, 2048, 1280, 0.0f},
        {1, 2048, 1280, 0.1f}, {2, 37, 1000, 0.1f}, {3, 11, 2560, 0.1f}, {1, 9, 4096, 0.1f},
        {1, 1, 8, 0.5f},
    };
    for (const Case& c : cases)
        if (!quick || (size_t)c.B * c.S * c.C <= (1u << 20)) check_case(c);
    check_in_place();
    if (args.bench) {
        bench(8, 2048, 768, pk);
        bench(8, 2048, 1280, pk);
    }
    return test_summary();
}
