// dev/cuda/mdm_loss.cu — kernel lab for the masked-diffusion LM head and loss (llmc/mdm.cuh
// mdm_head_forward_backward / mdm_head_eval): the tied head run on the compacted masked rows only, with weights
// 1/(p*B*S), against (a) the same head run on all rows with weight 0 on unmasked rows, and (b) the CPU reference
// (ref::matmul_forward + ref::crossentropy_forward_backward + ref::matmul_backward), both in plain fp32 and
// emulating the GPU's two bf16 roundings (logits, dlogits); (c) the mask token's row of the embedding, a softmax
// class that is never a target; (d) determinism; then the time of both heads at the 425M model's shape.
// Usage: build/cuda/mdm_loss [--seed N] [--quick] [--no-bench]
//   --quick: small shapes only, no timing (for compute-sanitizer runs)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include "dev/cpu/reference.h"
#include "dev/cuda/lab.h"
#include "dev/test/test.h"
#include "llmc/mdm.cuh"

// Masked rows vs all rows on the GPU: the same rows meet the same weights; only the matmul shapes (hence
// possibly cuBLASLt's accumulation order) differ, which can flip a rare bf16 logit by one ulp. Loss: 1e-5.
static const double TOL_LOSS_PATHS = 1e-5;
// dh is a bf16 output (one rounding, relative error <= 2^-9 per element, RMS ~1e-3): 4e-3, as dev/cuda/matmul.cu.
static const double TOL_DH_PATHS = 4e-3;
// dwte increments: fp32 sums of the same bf16 products, zero rows adding exactly 0: ~1e-6 when both shapes give
// identical logits; if their accumulation orders differ, ~5e-4 of the logits move by one bf16 ulp and a heavy
// token's dlogits with them (~1e-4 of dwte): 1e-3.
static const double TOL_DWTE_PATHS = 1e-3;
// Against the CPU reference fed the masked path's own bf16 logits, rounding dlogits to bf16 as the GPU does: what
// remains is fp32 vs fp64 softmax and summation order (loss ~1e-7 relative, dwte ~1e-5), plus dh's final bf16
// rounding and rare one-ulp dlogit differences.
static const double TOL_LOSS_EMU = 1e-5, TOL_DH_EMU = 4e-3, TOL_DWTE_EMU = 1e-3;
// Against the plain fp32 reference: the GPU's bf16 logits move each token's loss by up to half an ulp of its
// target logit (<= 0.004 for |logit| < 2, against a ~11 nat loss: <= 4e-4 even when one heavy token, p ~ eps,
// carries the whole weighted loss), and its bf16 dlogits carry ~2e-3 relative error into both gradients.
static const double TOL_LOSS_F32 = 1e-3, TOL_DH_F32 = 1e-2, TOL_DWTE_F32 = 1e-2;
// One row of dwte (the mask token's, C values) can be dominated by one heavy token (p ~ eps, weight ~1/eps): a
// one-ulp bf16 difference of its dlogit is 2^-8 = 3.9e-3 of the row (1e-2); against plain fp32, the bf16
// rounding of that token's mask logit adds up to 2^-8 more per unit of |logit| (3e-2). Whole tensors average out.
static const double TOL_ROW_EMU = 1e-2, TOL_ROW_F32 = 3e-2;
// Per-sequence sums of the evaluation head (fp64 sums of the same fp32 products, other grouping) vs the loss.
static const double TOL_SEQ_SUM = 1e-12;


// Random normal * scale rounded to bf16: the device values and their exact float twins for the reference.
static void random_bf16(std::vector<floatX>& h, std::vector<float>& f, size_t n, float scale) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    h.resize(n), f.resize(n);
    for (size_t i = 0; i < n; i++) {
        h[i] = float_to_bf16_host(nd(rng) * scale);
        f[i] = bf16_to_float_host(h[i]);
    }
}

static double rel_scalar(double a, double b) { return b == 0 ? fabs(a) : fabs(a - b) / fabs(b); }

// Prints one comparison line and records it.
static void report(const char* what, double err, double tol, const char* why) {
    printf("    %-34s rel err %.3e (tol %.0e, %s)\n", what, err, tol, why);
    CHECK(err < tol, "%s: %.3e >= %.0e", what, err, tol);
}

struct Case {
    const char* name;
    int B, S, C, V, mask_id;
    float eps;
    MdmOptions opt;  // low-noise ratio 0 with eps 0 gives p = 0: no masked token
};

// The GPU head outputs of one run.
struct HeadOut {
    double loss = 0;
    std::vector<floatX> dh;
    std::vector<float> dwte, losses;
};

static void check_case(MatmulContext& ctx, const Case& c) {
    const int B = c.B, S = c.S, C = c.C, V = c.V, N = B * S;
    printf("case %s: B=%d S=%d C=%d V=%d mask id %d eps %g\n", c.name, B, S, C, V, c.mask_id, c.eps);
    std::vector<floatX> hh, hw;
    std::vector<float> hf, wf;
    random_bf16(hh, hf, (size_t)N * C, 1.0f);   // final-norm output: unit scale
    random_bf16(hw, wf, (size_t)V * C, 1.0f / sqrtf((float)C));  // logits ~N(0, 1) at any width
    std::vector<int> y((size_t)B * (S + 1));
    for (int& t : y) t = (int)(rng() % (uint64_t)c.mask_id);  // the mask token is never a target
    const uint32_t seed = (uint32_t)rng(), step = (uint32_t)(rng() % 100000), sample0 = (uint32_t)(rng() >> 33);

    // Host batch (the oracle's weights and targets) and the device corruption of the same keys.
    std::vector<int> inputs(N), targets(N);
    std::vector<float> weight(N);
    const int M_host = make_mdm_batch(inputs.data(), targets.data(), weight.data(), y.data(), B, S, c.mask_id, c.eps,
                                      seed, step, sample0, nullptr, c.opt);
    MdmBatch mb;
    mdm_batch_alloc(mb, B, S);
    int* dy = to_device(y);
    mdm_corrupt(mb, dy, S + 1, B, S, mdm_train_keys(seed, step, sample0, c.eps, c.mask_id, c.opt), 0);
    const int M = mdm_read_count(mb, 0), Mp = mdm_padded_rows(M);
    printf("  masked rows %d of %d (padded to %d)\n", M, N, Mp);
    CHECK(memcmp(to_host(mb.weight, N).data(), weight.data(), (size_t)N * 4) == 0, "device weights differ from host");

    // The compacted rows on the host (from the host masks; clean tokens are below the mask id).
    std::vector<int> crow, ctgt;
    std::vector<float> cw;
    for (int n = 0; n < N; n++)
        if (inputs[n] == c.mask_id) crow.push_back(n), ctgt.push_back(targets[n]), cw.push_back(weight[n]);
    const bool same_rows = M == M_host && (M == 0 || memcmp(to_host(mb.rows, M).data(), crow.data(), M * 4) == 0);
    CHECK(same_rows, "device masked-row list differs from the host masks");
    if (!same_rows) {  // the comparisons below index the host list with the device count
        cudaCheck(cudaFree(dy));
        mdm_batch_free(mb);
        return;
    }

    // Reference 1, plain fp32 over all rows: ref::matmul_forward, weighted cross-entropy, ref::matmul_backward.
    std::vector<float> logits_ref((size_t)N * V), loss_f(N);
    ref::matmul_forward(logits_ref.data(), hf.data(), wf.data(), N, C, V);
    ref::crossentropy_forward_backward(logits_ref.data(), loss_f.data(), logits_ref.data(), targets.data(),
                                       weight.data(), N, V);  // in place: logits_ref now holds dlogits
    std::vector<float> dh_f((size_t)N * C, 0.0f), g_f((size_t)V * C, 0.0f);
    ref::matmul_backward(dh_f.data(), g_f.data(), logits_ref.data(), hf.data(), wf.data(), N, C, V);
    double loss_ref_f = 0;
    for (int n = 0; n < N; n++) loss_ref_f += (double)weight[n] * loss_f[n];
    std::vector<float>().swap(logits_ref);
    // dwte starts at a random value as large as the gradient, so overwriting instead of accumulating fails.
    double g_rms = 0;
    for (float v : g_f) g_rms += (double)v * v;
    g_rms = sqrt(g_rms / g_f.size());
    std::vector<float> dW0((size_t)V * C);
    std::normal_distribution<float> nd(0.0f, g_rms > 0 ? (float)g_rms : 1e-3f);
    for (float& v : dW0) v = nd(rng);

    // Device buffers.
    const size_t rows = mdm_head_rows(N);
    floatX* dh_in = to_device(hh);
    floatX* dwte_bf = to_device(hw);
    float* dwte = to_device(dW0);
    floatX *ddh, *dhc, *dlog, *dlog_all, *ddh_all;
    float *dlosses, *dlosses_all, *dwte_all;
    double *dloss, *dloss_all, *dseq;
    cudaCheck(cudaMalloc(&ddh, (size_t)N * C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&dhc, rows * C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&dlog, rows * V * sizeof(floatX)));
    cudaCheck(cudaMalloc(&dlosses, rows * sizeof(float)));
    cudaCheck(cudaMalloc(&dloss, sizeof(double)));
    cudaCheck(cudaMalloc(&dseq, (size_t)B * sizeof(double)));
    cudaCheck(cudaMalloc(&dlog_all, (size_t)N * V * sizeof(floatX)));
    cudaCheck(cudaMalloc(&ddh_all, (size_t)N * C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&dlosses_all, (size_t)N * sizeof(float)));
    cudaCheck(cudaMalloc(&dloss_all, sizeof(double)));
    dwte_all = to_device(dW0);

    // The bf16 logits each path will compute, captured with the same pinned matmul plans: the masked path's
    // (gather + matmul on the padded compact rows, the buffers mdm_head_forward_backward uses) and all rows'.
    gather_rows(dhc, dh_in, mb.rows, Mp, C, 0);
    matmul_forward(ctx, dlog, dhc, dwte_bf, Mp, C, V, 0);
    matmul_forward(ctx, dlog_all, dh_in, dwte_bf, N, C, V, 0);
    std::vector<floatX> lc = to_host(dlog, (size_t)M * V), la = to_host(dlog_all, (size_t)N * V);
    size_t differ = 0;
    for (int j = 0; j < M; j++)
        differ += memcmp(&lc[(size_t)j * V], &la[(size_t)crow[j] * V], (size_t)V * sizeof(floatX)) != 0;
    std::vector<floatX>().swap(la);
    printf("  masked rows whose bf16 logits differ between the two paths' matmul shapes: %zu of %d\n", differ, M);

    // Reference 2, the GPU's arithmetic emulated on the masked path's own bf16 logits: fp64 cross-entropy,
    // dlogits rounded to bf16, ref::matmul_backward on the masked rows, dh rounded to bf16.
    std::vector<float> dl_e((size_t)M * V), loss_c(M), hc_f((size_t)M * C);
    for (size_t i = 0; i < dl_e.size(); i++) dl_e[i] = bf16_to_float_host(lc[i]);
    std::vector<floatX>().swap(lc);
    ref::crossentropy_forward_backward(dl_e.data(), loss_c.data(), dl_e.data(), ctgt.data(), cw.data(), M, V);
    for (float& v : dl_e) v = ref::round_to_bf16(v);
    for (int j = 0; j < M; j++) memcpy(&hc_f[(size_t)j * C], &hf[(size_t)crow[j] * C], (size_t)C * sizeof(float));
    std::vector<float> dhc_e((size_t)M * C, 0.0f), g_e((size_t)V * C, 0.0f), dh_e((size_t)N * C, 0.0f);
    ref::matmul_backward(dhc_e.data(), g_e.data(), dl_e.data(), hc_f.data(), wf.data(), M, C, V);
    for (int j = 0; j < M; j++)
        for (int ch = 0; ch < C; ch++) dh_e[(size_t)crow[j] * C + ch] = ref::round_to_bf16(dhc_e[(size_t)j * C + ch]);
    double loss_ref_e = 0;
    std::vector<double> seq_e(B, 0.0);
    for (int j = 0; j < M; j++) {
        loss_ref_e += (double)cw[j] * loss_c[j];
        seq_e[crow[j] / S] += (double)cw[j] * loss_c[j];
    }

    // (a) masked rows, twice (determinism).
    HeadOut run[2];
    for (int r = 0; r < 2; r++) {
        cudaCheck(cudaMemcpy(dwte, dW0.data(), dW0.size() * 4, cudaMemcpyHostToDevice));
        poison(ddh, (size_t)N * C * sizeof(floatX));
        poison(dhc, rows * C * sizeof(floatX));
        poison(dlog, rows * V * sizeof(floatX));
        poison(dlosses, rows * sizeof(float));
        poison(dloss, sizeof(double));
        mdm_head_forward_backward(ctx, ddh, dwte, dloss, false, dh_in, dwte_bf, mb, M, N, C, V, dhc, dlog, dlosses, 0);
        cudaCheck(cudaDeviceSynchronize());
        run[r].loss = to_host(dloss, 1)[0];
        run[r].dh = to_host(ddh, (size_t)N * C);
        run[r].dwte = to_host(dwte, dW0.size());
        run[r].losses = to_host(dlosses, (size_t)Mp);
    }
    // The all-rows head: every row through the matmuls and the classifier, weight 0 where unmasked.
    poison(dlog_all, (size_t)N * V * sizeof(floatX));
    poison(ddh_all, (size_t)N * C * sizeof(floatX));
    poison(dlosses_all, (size_t)N * sizeof(float));
    poison(dloss_all, sizeof(double));
    matmul_forward(ctx, dlog_all, dh_in, dwte_bf, N, C, V, 0);
    classifier_forward_backward(dlog_all, dlosses_all, mb.targets, mb.weight, 0.0f, N, V, true, 0);
    loss_reduce(dloss_all, dlosses_all, mb.weight, 0.0f, N, false, 0);
    matmul_backward_dw(ctx, dwte_all, dlog_all, dh_in, N, C, V, 0);
    matmul_backward_dx(ctx, ddh_all, dlog_all, dwte_bf, N, C, V, 0);
    // The evaluation head on the same rows.
    poison(dseq, (size_t)B * sizeof(double));
    mdm_head_eval(ctx, dseq, dh_in, dwte_bf, mb, M, B, N, C, V, dhc, dlog, dlosses, 0);
    cudaCheck(cudaDeviceSynchronize());
    const double loss_all = to_host(dloss_all, 1)[0];
    std::vector<float> dh_all = to_float(to_host(ddh_all, (size_t)N * C));
    std::vector<float> dwte_all_h = to_host(dwte_all, dW0.size());
    std::vector<double> seq = to_host(dseq, B);

    const HeadOut& g = run[0];
    std::vector<float> dh_g = to_float(g.dh), inc((size_t)V * C), inc_all((size_t)V * C);
    for (size_t i = 0; i < inc.size(); i++) {
        inc[i] = (float)((double)g.dwte[i] - dW0[i]);
        inc_all[i] = (float)((double)dwte_all_h[i] - dW0[i]);
    }
    printf("  loss: masked rows %.9g, all rows %.9g, reference bf16-emulated %.9g, fp32 %.9g\n", g.loss, loss_all,
           loss_ref_e, loss_ref_f);
    printf("  (a) masked rows vs all rows (GPU)\n");
    report("loss", rel_scalar(g.loss, loss_all), TOL_LOSS_PATHS, "same rows, other matmul shape");
    report("dh", rel_error(dh_g.data(), dh_all.data(), dh_g.size()), TOL_DH_PATHS, "bf16 output");
    report("dwte increment", rel_error(inc.data(), inc_all.data(), inc.size()), TOL_DWTE_PATHS, "fp32 sums");
    bool zero_rows = true;
    for (int n = 0; n < N; n++)
        if (weight[n] == 0.0f)
            for (int ch = 0; ch < C; ch++) zero_rows &= dh_g[(size_t)n * C + ch] == 0.0f;
    printf("    dh exactly 0 on unmasked rows: %s\n", zero_rows ? "yes" : "NO");
    CHECK(zero_rows, "dh not zero on unmasked rows");
    printf("  (b) against the CPU reference\n");
    report("loss vs bf16-emulated ref", rel_scalar(g.loss, loss_ref_e), TOL_LOSS_EMU, "fp32 vs fp64 softmax");
    report("dh vs bf16-emulated ref", rel_error(dh_g.data(), dh_e.data(), dh_g.size()), TOL_DH_EMU, "bf16 output");
    report("dwte incr vs bf16-emulated ref", rel_error(inc.data(), g_e.data(), inc.size()), TOL_DWTE_EMU,
           "fp32 sums");
    report("loss vs fp32 ref", rel_scalar(g.loss, loss_ref_f), TOL_LOSS_F32, "bf16 logits");
    report("dh vs fp32 ref", rel_error(dh_g.data(), dh_f.data(), dh_g.size()), TOL_DH_F32, "bf16 logits, dlogits");
    report("dwte incr vs fp32 ref", rel_error(inc.data(), g_f.data(), inc.size()), TOL_DWTE_F32,
           "bf16 logits, dlogits");
    report("all-rows loss vs fp32 ref", rel_scalar(loss_all, loss_ref_f), TOL_LOSS_F32, "bf16 logits");
    // (c) The mask token's row: a class of every masked row's softmax, never a target.
    const size_t mo = (size_t)c.mask_id * C;
    double mask_norm = 0;
    for (int ch = 0; ch < C; ch++) mask_norm += (double)inc[mo + ch] * inc[mo + ch];
    printf("  (c) mask-token row %d of dwte: |grad| = %.3e\n", c.mask_id, sqrt(mask_norm));
    report("mask row vs bf16-emulated ref", rel_error(&inc[mo], &g_e[mo], C), TOL_ROW_EMU, "one row, bf16 dlogits");
    report("mask row vs fp32 ref", rel_error(&inc[mo], &g_f[mo], C), TOL_ROW_F32, "one row, bf16 logits");
    report("mask row masked vs all rows", rel_error(&inc[mo], &inc_all[mo], C), TOL_ROW_EMU, "one row, bf16 dlogits");
    CHECK((M > 0) == (mask_norm > 0), "mask row gradient %s with %d masked rows", mask_norm > 0 ? "non-zero" : "zero",
          M);
    if (M == 0) {  // nothing masked: zero loss, zero dh, dwte untouched (bitwise)
        CHECK(g.loss == 0.0 && memcmp(g.dwte.data(), dW0.data(), dW0.size() * 4) == 0,
              "no masked row must leave loss 0 and dwte untouched");
    }
    // (d) Determinism.
    const HeadOut& g2 = run[1];
    const bool same = memcmp(&g.loss, &g2.loss, sizeof(double)) == 0 &&
                      memcmp(g.dh.data(), g2.dh.data(), g.dh.size() * sizeof(floatX)) == 0 &&
                      memcmp(g.dwte.data(), g2.dwte.data(), g.dwte.size() * 4) == 0 &&
                      (Mp == 0 || memcmp(g.losses.data(), g2.losses.data(), (size_t)Mp * 4) == 0);
    printf("  (d) second run bit-identical: %s\n", same ? "yes" : "NO");
    CHECK(same, "masked-rows head not deterministic");
    // Evaluation head: per-sequence sums.
    double seq_sum = 0;
    for (double v : seq) seq_sum += v;
    printf("  eval head: per-sequence losses (sum %.9g)\n", seq_sum);
    report("per-sequence vs bf16-emulated ref", rel_error(seq.data(), seq_e.data(), B), TOL_LOSS_EMU,
           "fp32 vs fp64 softmax");
    report("sum of sequences vs training loss", rel_scalar(seq_sum, g.loss), TOL_SEQ_SUM, "fp64 sums");

    for (void* ptr : {(void*)dy, (void*)dh_in, (void*)dwte_bf, (void*)dwte, (void*)ddh, (void*)dhc, (void*)dlog,
                      (void*)dlosses, (void*)dloss, (void*)dseq, (void*)dlog_all, (void*)ddh_all, (void*)dlosses_all,
                      (void*)dloss_all, (void*)dwte_all})
        cudaCheck(cudaFree(ptr));
    mdm_batch_free(mb);
}

// ---- timing ----------------------------------------------------------------------------------------------

// Device-side random bf16 fill (uniform in [-scale, scale)): the timing tensors are too large to draw on the host.
__global__ void fill_uniform_kernel(floatX* x, size_t n, float scale, uint32_t seed) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = __float2bfloat16((2.0f * rng_uniform(seed, 0, 0, (uint32_t)(i >> 32), 0, (uint32_t)i) - 1.0f) * scale);
}

static void bench(MatmulContext& ctx) {
    DevicePeaks pk = device_peaks();
    const int B = 8, S = 2048, C = 1280, V = PADDED_VOCAB, N = B * S;
    printf("timing on %s: LM head forward+backward, B=%d S=%d C=%d V=%d (425M), median of 20\n", pk.name, B, S, C, V);
    // A mask with probability 1/2 per token (the average of t ~ U[0,1)), built on the host.
    std::vector<int> rows, ctargets, targets(N);
    std::vector<float> cweight, weight(N, 0.0f);
    const float w = 1.0f / (0.5f * N);
    for (int n = 0; n < N; n++) {
        targets[n] = (int)(rng() % (uint64_t)GPT2_VOCAB);
        if (rng() & 1) rows.push_back(n), ctargets.push_back(targets[n]), cweight.push_back(w), weight[n] = w;
    }
    const int M = (int)rows.size(), Mp = mdm_padded_rows(M);
    rows.resize(Mp, 0), ctargets.resize(Mp, 0), cweight.resize(Mp, 0.0f);
    MdmBatch mb;
    mdm_batch_alloc(mb, B, S);
    cudaCheck(cudaMemcpy(mb.rows, rows.data(), (size_t)Mp * 4, cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(mb.ctargets, ctargets.data(), (size_t)Mp * 4, cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(mb.cweight, cweight.data(), (size_t)Mp * 4, cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(mb.targets, targets.data(), (size_t)N * 4, cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(mb.weight, weight.data(), (size_t)N * 4, cudaMemcpyHostToDevice));

    floatX *h, *wte, *dh, *hc, *logits;
    float *dwte, *losses;
    double* loss;
    cudaCheck(cudaMalloc(&h, (size_t)N * C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&dh, (size_t)N * C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&hc, mdm_head_rows(N) * C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&wte, (size_t)V * C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&logits, mdm_head_rows(N) * V * sizeof(floatX)));  // also the all-rows logits
    cudaCheck(cudaMalloc(&dwte, (size_t)V * C * sizeof(float)));
    cudaCheck(cudaMalloc(&losses, mdm_head_rows(N) * sizeof(float)));
    cudaCheck(cudaMalloc(&loss, sizeof(double)));
    fill_uniform_kernel<<<1024, 256>>>(h, (size_t)N * C, 1.7f, 1);
    cudaCheckLaunch();
    fill_uniform_kernel<<<1024, 256>>>(wte, (size_t)V * C, 0.05f, 2);
    cudaCheckLaunch();
    cudaCheck(cudaMemset(dwte, 0, (size_t)V * C * sizeof(float)));

    const float ms_masked = median_ms([&] {
        mdm_head_forward_backward(ctx, dh, dwte, loss, false, h, wte, mb, M, N, C, V, hc, logits, losses, 0);
    }, 20);
    const float ms_all = median_ms([&] {
        matmul_forward(ctx, logits, h, wte, N, C, V, 0);
        classifier_forward_backward(logits, losses, mb.targets, mb.weight, 0.0f, N, V, true, 0);
        loss_reduce(loss, losses, mb.weight, 0.0f, N, false, 0);
        matmul_backward_dw(ctx, dwte, logits, h, N, C, V, 0);
        matmul_backward_dx(ctx, dh, logits, wte, N, C, V, 0);
    }, 20);
    auto line = [&](const char* what, float ms, int rows_done) {
        const double tf = 6.0 * rows_done * C * V / (ms * 1e-3) / 1e12;
        printf("  %-34s %8.3f ms  %6.1f TFLOP/s", what, ms, tf);
        if (pk.bf16_tflops > 0) printf(" (%4.1f%% of %.0f)", 100 * tf / pk.bf16_tflops, pk.bf16_tflops);
        printf("\n");
    };
    char what[96];
    snprintf(what, sizeof what, "masked rows (%d of %d, padded %d)", M, N, Mp);
    line(what, ms_masked, Mp);
    line("all rows", ms_all, N);
    printf("  speedup of the masked-rows head: %.2fx\n", ms_all / ms_masked);
    for (void* ptr : {(void*)h, (void*)dh, (void*)hc, (void*)wte, (void*)logits, (void*)dwte, (void*)losses, (void*)loss})
        cudaCheck(cudaFree(ptr));
    mdm_batch_free(mb);
}

int main(int argc, char** argv) {
    const LabArgs args = lab_args(argc, argv);
    const bool quick = args.quick, do_bench = args.bench;
    if (!lab_have_device()) return test_summary();
    MdmOptions none;  // p = eps * 1 + 0 ... with eps 0 and ratio 0: p = 0, nothing masked
    none.low_noise = true, none.low_noise_iters = 0xffffffffu, none.low_noise_ratio = 0.0f;
    MdmOptions suffix;
    suffix.ar_ratio = 0.5f;
    std::vector<Case> cases = {
        {"small vocab, ragged", 4, 33, 96, 1024, 1000, 1e-3f, MdmOptions()},
        {"nothing masked", 2, 20, 64, PADDED_VOCAB, MASK_ID, 0.0f, none},
        {"real vocab", 2, 16, 64, PADDED_VOCAB, MASK_ID, 1e-3f, MdmOptions()},
    };
    if (!quick) {
        cases.push_back({"real vocab, ragged, eps 0", 3, 37, 128, PADDED_VOCAB, MASK_ID, 0.0f, MdmOptions()});
        cases.push_back({"everything masked (eps 1)", 1, 100, 64, PADDED_VOCAB, MASK_ID, 1.0f, MdmOptions()});
        cases.push_back({"suffix masking 0.5", 4, 40, 64, PADDED_VOCAB, MASK_ID, 1e-3f, suffix});
        cases.push_back({"C = 768", 1, 40, 768, PADDED_VOCAB, MASK_ID, 1e-3f, MdmOptions()});
    }
    MatmulContext ctx;
    matmul_init(ctx);
    const auto t0 = std::chrono::steady_clock::now();
    for (const Case& c : cases) check_case(ctx, c);
    printf("correctness: %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (do_bench && g_test_failed == 0) bench(ctx);
    matmul_free(ctx);
    return test_summary();
}
