// dev/cuda/mdm_corrupt.cu — kernel lab for llmc/mdm.cuh's corruption (mdm_corrupt): masks, inputs, targets,
// weights, per-sequence p and the compacted masked-row list against the host batch builders of
// llmc/objective.h (make_mdm_batch with and without the seed's options, make_mdm_eval_batch), bit for bit,
// for training and MC-ELBO keys (independent and stratified t), ragged shapes, eps 1e-3 and 0, suffix masking
// (--ar-ratio, including the K = 0 whole-row quirk) and low-noise start; determinism; timing.
// Usage: build/cuda/mdm_corrupt [--seed N] [--quick] [--no-bench]
//   --quick: small shapes only, no timing (for compute-sanitizer runs)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include "dev/cuda/lab.h"
#include "dev/test/test.h"
#include "llmc/mdm.cuh"

static const int MASK = 50257;  // the seed's mask id; clean test tokens are drawn below it

// ---- host-only checks (no GPU): bad arguments die before touching the device ----

static std::vector<int> random_tokens(int B, int stride) {
    std::vector<int> y((size_t)B * stride);
    for (int& t : y) t = (int)(rng() % (uint64_t)MASK);
    return y;
}

// Rejected calls (run in a child by CHECK_DIES): more rows than the batch holds; MC draw k = K.
static void corrupt_too_many_rows() {
    MdmBatch mb;
    mb.max_rows = 2, mb.max_len = 8;
    mdm_corrupt(mb, nullptr, 8, 3, 8, mdm_train_keys(1, 0, 0, 1e-3f, MASK), 0);
}
static void corrupt_bad_draw() {
    MdmBatch mb;
    mb.max_rows = 2, mb.max_len = 8;
    mdm_corrupt(mb, nullptr, 8, 2, 8, mdm_eval_keys(1, 8, 8, false, 0, 1e-3f, MASK), 0);
}

static void host_checks() {
    CHECK_DIES(corrupt_too_many_rows, "do not fit");
    CHECK_DIES(corrupt_bad_draw, "bad keys");
}

// ---- GPU checks ----------------------------------------------------------------------------------------

// p of validation draws on the device must equal the host's bit for bit: llmc/mdm.h divides with mdm_div_rn, so
// --use_fast_math's approximate division cannot move a stratified t.
__global__ void eval_prob_kernel(float* out, int K, int nsamp, bool stratified) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nsamp * K) return;
    out[i] = mdm_eval_prob(99, (uint32_t)(i / K) * 7919u, i % K, K, stratified, 1e-3f);
}

static void check_eval_prob_device() {
    const int nsamp = 1000;
    for (int K : {3, 7, 8, 32, 254})
        for (bool st : {false, true}) {
            const int n = nsamp * K;
            float* d;
            cudaCheck(cudaMalloc(&d, n * sizeof(float)));
            eval_prob_kernel<<<ceil_div(n, 256), 256>>>(d, K, nsamp, st);
            cudaCheckLaunch();
            std::vector<float> got(n);
            cudaCheck(cudaMemcpy(got.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
            cudaCheck(cudaFree(d));
            int bad = 0;
            for (int i = 0; i < n; i++) bad += got[i] != mdm_eval_prob(99, (uint32_t)(i / K) * 7919u, i % K, K, st, 1e-3f);
            CHECK(bad == 0, "device eval p differs from the host in %d of %d draws (K=%d, stratified %d)", bad, n, K, st);
        }
}

enum Mode { TRAIN, TRAIN_AR_HALF, TRAIN_AR_ALL, TRAIN_LOW_NOISE, TRAIN_LOW_NOISE_OVER, EVAL, EVAL_STRAT, NMODES };
static const char* mode_name[NMODES] = {"train",          "train ar 0.5", "train ar 1.0", "train low-noise",
                                        "low-noise over", "eval indep",   "eval strat"};

// What the GPU must produce, from the host builders.
struct Expected {
    std::vector<int> inputs, targets;
    std::vector<float> weight, p;
    int count = 0;
};

struct GpuOut {
    std::vector<int> inputs, targets, rows, ctargets, row_start;
    std::vector<float> weight, p, cweight;
    int count = -1;
    bool guard_ok = false;  // nothing written past the outputs of this batch
};

// Elements checked past the end of each output: they must keep their poison (no stray writes).
static const size_t GUARD = 64;

static bool all_poison(const void* d, size_t bytes) {
    std::vector<unsigned char> h(bytes);
    if (bytes) cudaCheck(cudaMemcpy(h.data(), d, bytes, cudaMemcpyDeviceToHost));
    for (unsigned char c : h)
        if (c != 0xFF) return false;
    return true;
}

static GpuOut run_gpu(const MdmBatch& mb, const int* dy, int stride, int B, int S, const MdmKeys& keys) {
    // Poison what this batch uses plus a guard (not the whole, much larger, buffers: that would dominate the run).
    const size_t N = (size_t)B * S, cap = (size_t)mb.max_rows * mb.max_len;
    const size_t nf = std::min(cap, N + GUARD), nc = std::min((size_t)mb.capacity, (size_t)mdm_padded_rows((int)N) + GUARD);
    poison(mb.inputs, nf * 4);
    poison(mb.targets, nf * 4);
    poison(mb.weight, nf * 4);
    poison(mb.p, mb.max_rows * 4);
    poison(mb.rows, nc * 4);
    poison(mb.ctargets, nc * 4);
    poison(mb.cweight, nc * 4);
    poison(mb.row_start, ((size_t)mb.max_rows + 1) * 4);
    poison(mb.count, 4);
    poison(mb.row_info, 2 * (size_t)mb.max_rows * 4);
    mdm_corrupt(mb, dy, stride, B, S, keys, 0);
    GpuOut g;
    g.count = mdm_read_count(mb, 0);
    const int np = (g.count >= 0 && g.count <= (int)N) ? mdm_padded_rows(g.count) : 0;
    g.inputs.resize(N), g.targets.resize(N), g.weight.resize(N), g.p.resize(B), g.row_start.resize(B + 1);
    g.rows.resize(np), g.ctargets.resize(np), g.cweight.resize(np);
    cudaCheck(cudaMemcpy(g.inputs.data(), mb.inputs, N * 4, cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(g.targets.data(), mb.targets, N * 4, cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(g.weight.data(), mb.weight, N * 4, cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(g.p.data(), mb.p, (size_t)B * 4, cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(g.row_start.data(), mb.row_start, ((size_t)B + 1) * 4, cudaMemcpyDeviceToHost));
    if (np) {
        cudaCheck(cudaMemcpy(g.rows.data(), mb.rows, (size_t)np * 4, cudaMemcpyDeviceToHost));
        cudaCheck(cudaMemcpy(g.ctargets.data(), mb.ctargets, (size_t)np * 4, cudaMemcpyDeviceToHost));
        cudaCheck(cudaMemcpy(g.cweight.data(), mb.cweight, (size_t)np * 4, cudaMemcpyDeviceToHost));
    }
    const size_t cend = std::min(nc, (size_t)np + GUARD);
    g.guard_ok = all_poison(mb.inputs + N, (nf - N) * 4) && all_poison(mb.targets + N, (nf - N) * 4) &&
                 all_poison(mb.weight + N, (nf - N) * 4) && all_poison(mb.p + B, (size_t)(mb.max_rows - B) * 4) &&
                 all_poison(mb.rows + np, (cend - np) * 4) && all_poison(mb.ctargets + np, (cend - np) * 4) &&
                 all_poison(mb.cweight + np, (cend - np) * 4) &&
                 all_poison(mb.row_start + B + 1, (size_t)(mb.max_rows - B) * 4);
    return g;
}

static bool same_bits(const GpuOut& a, const GpuOut& b) {
    auto eq = [](const auto& x, const auto& y) {
        return x.size() == y.size() && (x.empty() || memcmp(x.data(), y.data(), x.size() * sizeof(x[0])) == 0);
    };
    return a.count == b.count && eq(a.inputs, b.inputs) && eq(a.targets, b.targets) && eq(a.weight, b.weight) &&
           eq(a.p, b.p) && eq(a.rows, b.rows) && eq(a.ctargets, b.ctargets) && eq(a.cweight, b.cweight) &&
           eq(a.row_start, b.row_start);
}

static int g_gpu_k0_rows = 0;  // suffix rows whose i.i.d. count was 0, checked on the GPU

// One (shape, eps, mode, stride) case: host expectation, two GPU runs, bitwise comparisons.
static void check_case(const MdmBatch& mb, int B, int S, float eps, Mode mode, bool packed) {
    const int N = B * S, stride = packed ? S : S + 1;
    const uint32_t seed = (uint32_t)rng(), step = (uint32_t)(rng() % 100000), sample0 = (uint32_t)(rng() >> 33);
    std::vector<int> y = random_tokens(B, S + 1);  // host builders take [B, S+1]
    std::vector<int> ydev((size_t)B * stride);
    for (int b = 0; b < B; b++)
        for (int s = 0; s < stride; s++) ydev[(size_t)b * stride + s] = y[(size_t)b * (S + 1) + s];

    Expected e;
    e.inputs.resize(N), e.targets.resize(N), e.weight.resize(N), e.p.resize(B);
    MdmKeys keys;
    const int K = 8;
    MdmOptions o;
    switch (mode) {
        case TRAIN:
        case TRAIN_LOW_NOISE_OVER:
            if (mode == TRAIN_LOW_NOISE_OVER) o.low_noise = true, o.low_noise_iters = step;  // step >= iters: off
            keys = mdm_train_keys(seed, step, sample0, eps, MASK, o);
            e.count = make_mdm_batch(e.inputs.data(), e.targets.data(), e.weight.data(), y.data(), B, S, MASK, eps, seed,
                                     step, sample0, e.p.data());
            break;
        case TRAIN_AR_HALF:
        case TRAIN_AR_ALL:
        case TRAIN_LOW_NOISE:
            if (mode == TRAIN_AR_HALF) o.ar_ratio = 0.5f;
            if (mode == TRAIN_AR_ALL) o.ar_ratio = 1.0f;
            if (mode == TRAIN_LOW_NOISE) o.low_noise = true, o.low_noise_iters = step + 1 + (uint32_t)(rng() % 5);
            keys = mdm_train_keys(seed, step, sample0, eps, MASK, o);
            e.count = make_mdm_batch(e.inputs.data(), e.targets.data(), e.weight.data(), y.data(), B, S, MASK, eps,
                                         seed, step, sample0, e.p.data(), o);
            if (mode == TRAIN_AR_ALL) {  // count the rows where the seed's K = 0 quirk applies
                std::vector<int> i0(N), t0(N);
                std::vector<float> w0(N);
                make_mdm_batch(i0.data(), t0.data(), w0.data(), y.data(), B, S, MASK, eps, seed, step, sample0);
                for (int b = 0; b < B; b++) {
                    bool any = false;
                    for (int s = 0; s < S; s++) any |= w0[(size_t)b * S + s] != 0.0f;
                    g_gpu_k0_rows += !any;
                }
            }
            break;
        case EVAL:
        case EVAL_STRAT: {
            const bool st = mode == EVAL_STRAT;
            const int k = st ? K - 1 - (int)(rng() % 2) : (int)(rng() % K);  // stratified: the wrap-around draws
            keys = mdm_eval_keys(seed, k, K, st, sample0, eps, MASK);
            e.count = make_mdm_eval_batch(e.inputs.data(), e.targets.data(), e.weight.data(), y.data(), B, S, MASK,
                                          eps, seed, k, K, st, sample0);
            for (int b = 0; b < B; b++) e.p[b] = mdm_eval_prob(seed, sample0 + (uint32_t)b, k, K, st, eps);
            break;
        }
        default: break;
    }
    // The compacted list the GPU must produce, from the host's masks.
    std::vector<int> rows, ctargets, row_start(B + 1, 0);
    std::vector<float> cweight;
    for (int n = 0; n < N; n++)
        if (e.inputs[n] == MASK) rows.push_back(n), ctargets.push_back(e.targets[n]), cweight.push_back(e.weight[n]);
    for (int b = 0; b < B; b++) {
        int c = 0;
        for (int s = 0; s < S; s++) c += e.inputs[(size_t)b * S + s] == MASK;
        row_start[b + 1] = row_start[b] + c;
    }
    const int M = (int)rows.size(), Mp = mdm_padded_rows(M);
    rows.resize(Mp, 0), ctargets.resize(Mp, 0), cweight.resize(Mp, 0.0f);

    int* dy;
    cudaCheck(cudaMalloc(&dy, std::max<size_t>(ydev.size(), 1) * 4));
    cudaCheck(cudaMemcpy(dy, ydev.data(), ydev.size() * 4, cudaMemcpyHostToDevice));
    GpuOut g = run_gpu(mb, dy, stride, B, S, keys);
    GpuOut g2 = run_gpu(mb, dy, stride, B, S, keys);
    cudaCheck(cudaFree(dy));

    auto bits = [](const void* a, const void* b, size_t bytes) { return bytes == 0 || memcmp(a, b, bytes) == 0; };
    const bool ok_count = g.count == M && M == e.count;
    const bool ok_full = bits(g.inputs.data(), e.inputs.data(), (size_t)N * 4) &&
                         bits(g.targets.data(), e.targets.data(), (size_t)N * 4) &&
                         bits(g.weight.data(), e.weight.data(), (size_t)N * 4);
    const bool ok_p = bits(g.p.data(), e.p.data(), (size_t)B * 4);
    const bool ok_compact = ok_count && bits(g.rows.data(), rows.data(), (size_t)Mp * 4) &&
                            bits(g.ctargets.data(), ctargets.data(), (size_t)Mp * 4) &&
                            bits(g.cweight.data(), cweight.data(), (size_t)Mp * 4);
    const bool ok_starts = g.row_start == row_start;
    const bool det = same_bits(g, g2);
    const bool all = ok_count && ok_full && ok_p && ok_compact && ok_starts && det && g.guard_ok;
    printf("  B=%-3d S=%-5d eps=%-5g %-15s %s: masked %6d/%-6d %s\n", B, S, eps, mode_name[mode],
           packed ? "[B,S]  " : "[B,S+1]", g.count, N, all ? "ok" : "MISMATCH");
    CHECK(ok_count, "count: gpu %d, host list %d, host builder %d", g.count, M, e.count);
    CHECK(ok_full, "inputs/targets/weights differ from the host builder");
    CHECK(ok_p, "per-sequence p differs from the host");
    CHECK(ok_compact, "compacted rows/targets/weights (or padding) differ");
    CHECK(ok_starts, "row_start differs");
    CHECK(det, "second run not bit-identical");
    CHECK(g.guard_ok, "something was written past the outputs of this batch");
}

static void bench(const MdmBatch& mb) {
    DevicePeaks pk = device_peaks();
    printf("timing on %s (median of 50 mdm_corrupt calls = 2 kernels)\n", pk.name);
    for (int B : {8, 64}) {
        const int S = 2048;
        if (B > mb.max_rows || S > mb.max_len) continue;
        std::vector<int> y = random_tokens(B, S + 1);
        int* dy;
        cudaCheck(cudaMalloc(&dy, y.size() * 4));
        cudaCheck(cudaMemcpy(dy, y.data(), y.size() * 4, cudaMemcpyHostToDevice));
        const MdmKeys keys = mdm_train_keys(1234, 7, 0, 1e-3f, MASK);
        mdm_corrupt(mb, dy, S + 1, B, S, keys, 0);
        const int M = mdm_read_count(mb, 0);
        const float ms = median_ms([&] { mdm_corrupt(mb, dy, S + 1, B, S, keys, 0); }, 50);
        // y read once, inputs/targets/weights written, M compacted (row, target, weight) triples written.
        const double bytes = (double)B * S * 4 * 4 + (double)M * 12;
        const double gbs = bytes / (ms * 1e-3) / 1e9;
        printf("  B=%-2d S=%d masked %6d: %8.2f us  %7.1f GB/s", B, S, M, ms * 1e3, gbs);
        if (pk.mem_gbps > 0) printf(" (%.1f%% of %.0f; expected launch-bound at this size)", 100 * gbs / pk.mem_gbps, pk.mem_gbps);
        printf("\n");
        cudaCheck(cudaFree(dy));
    }
}

int main(int argc, char** argv) {
    const LabArgs args = lab_args(argc, argv);
    const bool quick = args.quick, do_bench = args.bench;
    host_checks();
    printf("host checks: %d passed, %d failed\n", g_test_passed, g_test_failed);

    if (!lab_have_device()) return test_summary();
    check_eval_prob_device();
    // Ragged shapes around the 1024-position pass and the 64-row padding; {256, 4} exercises K = 0 rows.
    std::vector<std::pair<int, int>> shapes = {{1, 1}, {2, 3}, {3, 37}, {4, 1024}, {5, 1023}, {2, 1025},
                                               {256, 4}, {7, 130}};
    if (!quick) {
        shapes.push_back({8, 2048});
        shapes.push_back({3, 4099});
        shapes.push_back({16, 2048});
        shapes.push_back({1, 20000});
    }
    int max_rows = 0, max_len = 0;
    for (auto& s : shapes) max_rows = std::max(max_rows, s.first), max_len = std::max(max_len, s.second);
    max_rows = std::max(max_rows, 64), max_len = std::max(max_len, 2048);  // also the timing shapes
    MdmBatch mb;
    mdm_batch_alloc(mb, max_rows, max_len);  // larger than most cases: B below capacity, as in a short batch
    for (auto& s : shapes)
        for (float eps : {1e-3f, 0.0f}) {
            for (int m = 0; m < NMODES; m++) check_case(mb, s.first, s.second, eps, (Mode)m, false);
            check_case(mb, s.first, s.second, eps, TRAIN, true);  // y given as [B, S]
        }
    {  // an empty batch: count 0, nothing else touched
        poison(mb.count, 4);
        mdm_corrupt(mb, mb.inputs, 1, 0, 1, mdm_train_keys(1, 0, 0, 1e-3f, MASK), 0);
        const int c0 = mdm_read_count(mb, 0);
        printf("  B=0: masked %d\n", c0);
        CHECK(c0 == 0, "empty batch: count %d", c0);
    }
    printf("K = 0 suffix rows checked on the GPU: %d\n", g_gpu_k0_rows);
    CHECK(g_gpu_k0_rows > 0, "the K = 0 whole-row quirk was never exercised on the GPU");
    if (do_bench && g_test_failed == 0) bench(mb);
    mdm_batch_free(mb);
    return test_summary();
}
