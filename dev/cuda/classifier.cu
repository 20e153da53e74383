// dev/cuda/classifier.cu — kernel lab for llmc/classifier.cuh: fused cross-entropy (loss + in-place dlogits)
// against ref::crossentropy_forward_backward, the deterministic loss sum, and the MDM row gather/scatter.
// Usage: build/cuda/classifier [seed]
#include "dev/cuda/lab.h"  // lab_args: --seed N, --quick, --no-bench
#include <algorithm>
#include <cmath>
#include <ctime>
#include <random>
#include "dev/cpu/reference.h"
#include "dev/test/test.h"
#include "llmc/classifier.cuh"

// Loss: fp32 online log-sum-exp (fast-math exp/log, a few ulp) against the fp64 reference on the same bf16
// logits: ~1e-7 relative; 1e-5 leaves room yet any wrong row or target shows up at O(1).
static const double TOL_LOSS = 1e-5;
// dlogits: fp32 math, then one bf16 rounding of the output (relative error <= 2^-9): 1e-2.
static const double TOL_DLOGITS = 1e-2;
// Weighted loss sum: fp64 sums of fp32 losses; the per-row loss tolerance carries over.
static const double TOL_SUM = 1e-5;


static void check_classifier(int N, int V, bool uniform) {
    printf("classifier N=%d V=%d weights=%s\n", N, V, uniform ? "uniform (nullptr)" : "per-row, some zero");
    std::normal_distribution<float> nd(0.0f, 3.0f);
    std::uniform_real_distribution<float> ud(0.0f, 1.0f);
    std::vector<floatX> hl((size_t)N * V);
    std::vector<float> fl((size_t)N * V);
    for (size_t i = 0; i < hl.size(); i++) {
        hl[i] = float_to_bf16_host(nd(rng));
        fl[i] = bf16_to_float_host(hl[i]);
    }
    std::vector<int> targets(N);
    std::vector<float> weights(N);
    const float uw = 1.0f / (float)N;
    for (int n = 0; n < N; n++) {
        targets[n] = (int)(rng() % (uint64_t)V);
        weights[n] = uniform ? uw : (n % 5 == 2 ? 0.0f : ud(rng) / (float)N);  // zeros: rows of unmasked tokens
    }
    std::vector<float> dl_ref((size_t)N * V), loss_ref(N);
    ref::crossentropy_forward_backward(dl_ref.data(), loss_ref.data(), fl.data(), targets.data(), weights.data(), N,
                                       V);
    double sum_ref = 0;
    for (int n = 0; n < N; n++) sum_ref += (double)loss_ref[n] * weights[n];

    floatX* dlog = to_device(hl);
    int* dtar = to_device(targets);
    float* dw = to_device(weights);
    float* dloss;
    double* dsum;
    cudaCheck(cudaMalloc(&dloss, N * sizeof(float)));
    cudaCheck(cudaMalloc(&dsum, sizeof(double)));

    // Eval mode first: losses only, logits must come back untouched.
    poison(dloss, N * sizeof(float));
    classifier_forward_backward(dlog, dloss, dtar, uniform ? nullptr : dw, uw, N, V, false, 0);
    std::vector<float> loss_eval = to_host(dloss, N);
    std::vector<floatX> untouched = to_host(dlog, hl.size());
    CHECK(memcmp(untouched.data(), hl.data(), hl.size() * sizeof(floatX)) == 0, "eval mode wrote the logits");
    double e_eval = rel_error(loss_eval.data(), loss_ref.data(), N);
    printf("  eval loss      rel err %.3e (tol %.0e, fp32 vs fp64 log-sum-exp)\n", e_eval, TOL_LOSS);
    CHECK(e_eval < TOL_LOSS, "eval loss N=%d V=%d: %.3e", N, V, e_eval);

    std::vector<float> loss1;
    std::vector<floatX> dl1;
    double sum1 = 0;
    for (int run = 0; run < 2; run++) {
        cudaCheck(cudaMemcpy(dlog, hl.data(), hl.size() * sizeof(floatX), cudaMemcpyHostToDevice));
        poison(dloss, N * sizeof(float));
        poison(dsum, sizeof(double));
        classifier_forward_backward(dlog, dloss, dtar, uniform ? nullptr : dw, uw, N, V, true, 0);
        loss_reduce(dsum, dloss, uniform ? nullptr : dw, uw, N, false, 0);
        std::vector<float> loss = to_host(dloss, N);
        std::vector<floatX> dl = to_host(dlog, hl.size());
        double sum = to_host(dsum, 1)[0];
        if (run == 0) {
            std::vector<float> fdl(dl.size()), nt_gpu, nt_ref;
            for (size_t i = 0; i < dl.size(); i++) fdl[i] = bf16_to_float_host(dl[i]);
            // Non-target entries separately: the large one-hot entries would hide errors in the softmax part.
            for (int n = 0; n < N; n++)
                for (int v = 0; v < V; v++)
                    if (v != targets[n] && weights[n] != 0.0f) {
                        nt_gpu.push_back(fdl[(size_t)n * V + v]);
                        nt_ref.push_back(dl_ref[(size_t)n * V + v]);
                    }
            double e_loss = rel_error(loss.data(), loss_ref.data(), N);
            double e_dl = rel_error(fdl.data(), dl_ref.data(), fdl.size());
            double e_nt = rel_error(nt_gpu.data(), nt_ref.data(), nt_ref.size());
            double e_sum = fabs(sum - sum_ref) / fabs(sum_ref);
            bool zero_rows_ok = true;
            for (int n = 0; n < N; n++)
                if (weights[n] == 0.0f)
                    for (int v = 0; v < V; v++) zero_rows_ok &= fdl[(size_t)n * V + v] == 0.0f;
            printf("  loss           rel err %.3e (tol %.0e, fp32 vs fp64 log-sum-exp)\n", e_loss, TOL_LOSS);
            printf("  dlogits        rel err %.3e (tol %.0e, bf16 output)\n", e_dl, TOL_DLOGITS);
            printf("  dlogits !tgt   rel err %.3e (tol %.0e, bf16 output, softmax part alone)\n", e_nt, TOL_DLOGITS);
            printf("  sum w*loss     rel err %.3e (tol %.0e) gpu %.9g ref %.9g\n", e_sum, TOL_SUM, sum, sum_ref);
            CHECK(e_loss < TOL_LOSS, "loss N=%d V=%d: %.3e", N, V, e_loss);
            CHECK(e_dl < TOL_DLOGITS, "dlogits N=%d V=%d: %.3e", N, V, e_dl);
            CHECK(e_nt < TOL_DLOGITS, "dlogits non-target N=%d V=%d: %.3e", N, V, e_nt);
            CHECK(e_sum < TOL_SUM, "loss sum N=%d V=%d: %.3e", N, V, e_sum);
            CHECK(zero_rows_ok, "rows with weight 0 must get a zero gradient");
            CHECK(memcmp(loss.data(), loss_eval.data(), N * sizeof(float)) == 0,
                  "training and eval mode losses differ");
            loss1 = loss, dl1 = dl, sum1 = sum;
        } else {
            bool same = memcmp(loss.data(), loss1.data(), N * sizeof(float)) == 0 &&
                        memcmp(dl.data(), dl1.data(), dl.size() * sizeof(floatX)) == 0 &&
                        memcmp(&sum, &sum1, sizeof sum) == 0;
            printf("  second run bit-identical: %s\n", same ? "yes" : "NO");
            CHECK(same, "classifier N=%d V=%d not deterministic", N, V);
        }
    }
    // accumulate = true adds onto the previous value: sum + sum is exact in fp64.
    loss_reduce(dsum, dloss, uniform ? nullptr : dw, uw, N, true, 0);
    double acc = to_host(dsum, 1)[0];
    CHECK(acc == 2.0 * sum1, "loss_reduce accumulate: %.17g vs %.17g", acc, 2.0 * sum1);
    cudaCheck(cudaFree(dlog));
    cudaCheck(cudaFree(dtar));
    cudaCheck(cudaFree(dw));
    cudaCheck(cudaFree(dloss));
    cudaCheck(cudaFree(dsum));
}

// Gather M of N rows, scatter them back: exact copies, zero elsewhere.
static void check_gather_scatter(int N, int C, double frac) {
    std::vector<int> rows;
    std::uniform_real_distribution<double> ud(0.0, 1.0);
    for (int n = 0; n < N; n++)
        if (ud(rng) < frac) rows.push_back(n);
    const int M = (int)rows.size();
    printf("gather/scatter N=%d C=%d M=%d\n", N, C, M);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<floatX> full((size_t)N * C), compact((size_t)M * C);
    for (auto& x : full) x = float_to_bf16_host(nd(rng));
    for (auto& x : compact) x = float_to_bf16_host(nd(rng));
    floatX* dfull = to_device(full);
    floatX* dcomp = to_device(compact);
    int* drows = to_device(rows);
    floatX *dgath, *dscat;
    cudaCheck(cudaMalloc(&dgath, std::max(M * C, 1) * sizeof(floatX)));
    cudaCheck(cudaMalloc(&dscat, (size_t)N * C * sizeof(floatX)));
    poison(dgath, std::max(M * C, 1) * sizeof(floatX));
    poison(dscat, (size_t)N * C * sizeof(floatX));
    gather_rows(dgath, dfull, drows, M, C, 0);
    scatter_rows(dscat, dcomp, drows, M, N, C, 0);
    std::vector<floatX> g = to_host(dgath, (size_t)M * C), s = to_host(dscat, (size_t)N * C);
    bool gok = true, sok = true;
    for (int j = 0; j < M; j++)
        gok &= memcmp(&g[(size_t)j * C], &full[(size_t)rows[j] * C], C * sizeof(floatX)) == 0;
    std::vector<int> pos(N, -1);
    for (int j = 0; j < M; j++) pos[rows[j]] = j;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            float want = pos[n] >= 0 ? bf16_to_float_host(compact[(size_t)pos[n] * C + c]) : 0.0f;
            float got = bf16_to_float_host(s[(size_t)n * C + c]);
            sok &= memcmp(&want, &got, sizeof want) == 0;  // bitwise: NaN poison and -0 both fail
        }
    printf("  gather exact: %s, scatter exact with zero elsewhere: %s\n", gok ? "yes" : "NO", sok ? "yes" : "NO");
    CHECK(gok, "gather_rows N=%d C=%d M=%d", N, C, M);
    CHECK(sok, "scatter_rows N=%d C=%d M=%d", N, C, M);
    cudaCheck(cudaFree(dfull));
    cudaCheck(cudaFree(dcomp));
    cudaCheck(cudaFree(drows));
    cudaCheck(cudaFree(dgath));
    cudaCheck(cudaFree(dscat));
}

static void bench() {
    DevicePeaks pk = device_peaks();
    const int N = 16384, V = PADDED_VOCAB, C = 768;
    printf("timing on %s, N=%d (B=8, S=2048), V=%d, median of 20\n", pk.name, N, V);
    floatX* logits;
    float *loss, *w;
    int* tar;
    cudaCheck(cudaMalloc(&logits, (size_t)N * V * sizeof(floatX)));
    cudaCheck(cudaMalloc(&loss, N * sizeof(float)));
    cudaCheck(cudaMalloc(&w, N * sizeof(float)));
    cudaCheck(cudaMalloc(&tar, N * sizeof(int)));
    cudaCheck(cudaMemset(logits, 0, (size_t)N * V * sizeof(floatX)));  // zeros: gradients stay finite when re-run
    cudaCheck(cudaMemset(tar, 0, N * sizeof(int)));
    cudaCheck(cudaMemset(w, 0, N * sizeof(float)));
    auto report = [&](const char* what, float ms, double bytes) {
        double gbs = bytes / (ms * 1e-3) / 1e9;
        if (pk.mem_gbps > 0)
            printf("  %-28s %8.3f ms %7.0f GB/s (%4.1f%% of %.0f)\n", what, ms, gbs, 100 * gbs / pk.mem_gbps,
                   pk.mem_gbps);
        else
            printf("  %-28s %8.3f ms %7.0f GB/s\n", what, ms, gbs);
    };
    double row_bytes = (double)N * V * sizeof(floatX);
    report("classifier loss+dlogits", median_ms([&] {
               classifier_forward_backward(logits, loss, tar, w, 0.0f, N, V, true, 0);
           }),
           2 * row_bytes);
    report("classifier loss only (eval)", median_ms([&] {
               classifier_forward_backward(logits, loss, tar, w, 0.0f, N, V, false, 0);
           }),
           row_bytes);
    // MDM at t ~ U[0,1): about half of the rows are masked.
    const int M = N / 2;
    std::vector<int> rows(M);
    for (int j = 0; j < M; j++) rows[j] = 2 * j + 1;
    int* drows = to_device(rows);
    floatX *full, *comp;
    cudaCheck(cudaMalloc(&full, (size_t)N * C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&comp, (size_t)M * C * sizeof(floatX)));
    cudaCheck(cudaMemset(full, 0, (size_t)N * C * sizeof(floatX)));
    double gbytes = 2.0 * M * C * sizeof(floatX);
    report("gather_rows (M=N/2, C=768)", median_ms([&] { gather_rows(comp, full, drows, M, C, 0); }), gbytes);
    report("scatter_rows (incl. zeroing)", median_ms([&] { scatter_rows(full, comp, drows, M, N, C, 0); }),
           gbytes + (double)N * C * sizeof(floatX));
    cudaCheck(cudaFree(logits));
    cudaCheck(cudaFree(loss));
    cudaCheck(cudaFree(w));
    cudaCheck(cudaFree(tar));
    cudaCheck(cudaFree(drows));
    cudaCheck(cudaFree(full));
    cudaCheck(cudaFree(comp));
}

int main(int argc, char** argv) {
    const LabArgs args = lab_args(argc, argv);
    if (!lab_have_device()) return test_summary();
    unsigned long long seed = args.seed;
    printf("classifier kernel test, seed %llu\n", seed);
    // The real vocabulary (vector + shared-memory path), ragged row counts, a row too long for shared memory
    // (plain vector path), a V % 8 != 0 case (scalar path), tiny rows. Eval mode always takes the vector path.
    check_classifier(1, PADDED_VOCAB, false);
    check_classifier(37, PADDED_VOCAB, false);
    check_classifier(300, PADDED_VOCAB, false);
    check_classifier(129, PADDED_VOCAB, true);
    check_classifier(64, 1000, false);
    check_classifier(9, 120000, false);  // 240 KB rows: more than any card's shared memory per block
    check_classifier(33, 1003, false);
    check_classifier(5, 7, true);
    check_gather_scatter(1000, 768, 0.4);
    check_gather_scatter(257, 100, 0.5);  // C % 8 != 0: scalar copy path
    check_gather_scatter(64, 768, 0.0);   // no masked row: all zeros
    check_gather_scatter(64, 768, 1.0);   // every row masked
    if (g_test_failed == 0 && args.bench) bench();
    return test_summary();
}
