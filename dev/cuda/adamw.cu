// dev/cuda/adamw.cu — kernel lab for llmc/adamw.cuh: three consecutive AdamW steps over a flat buffer with
// per-range weight decay and a gradient scale, against ref::adamw_update, plus the bf16 copy and determinism.
// Usage: build/cuda/adamw [seed]
#include "dev/cuda/lab.h"  // lab_args: --seed N, --quick, --no-bench
#include <algorithm>
#include <cmath>
#include <ctime>
#include <random>
#include "dev/cpu/reference.h"
#include "dev/test/test.h"
#include "llmc/adamw.cuh"
#include "llmc/dist.h"  // ShardLayout: the ZeRO-1 slices of the shard case
#include "llmc/global_norm.cuh"

// m, v, p: fp32 arithmetic with one rounding per operation (IEEE div/sqrt) against the reference's fp64
// arithmetic rounded once to fp32: a few ulp, i.e. <= ~5e-7 relative; 1e-6 bounds it.
static const double TOL_STATE = 1e-6;
// The step taken (p_new - p_old) alone: it is ~lr while p carries ulp(p) rounding from both sides, so its
// relative error is ulp(|p|)/lr ~ 1e-7..1e-6 here; 1e-5 still catches a wrong decay flag (wd*lr*p ~ 10% of it).
static const double TOL_DELTA = 1e-5;

struct Range {
    size_t begin, end;
    bool decay;
};

// Runs 3 steps on n elements split into `ranges`; buffers are shifted by `offset` floats (offset 1 forces the
// unaligned scalar kernel). shards > 1 updates the buffer as ZeRO-1 does, in `shards` launches over consecutive
// slices (64-element aligned, as llmc/dist.h ShardLayout for the GPU), each told its offset in the layout.
// Returns the final GPU state for the determinism and shard comparisons.
static std::vector<float> run_case(const char* name, const std::vector<Range>& ranges, int offset, bool check,
                                   int shards = 1) {
    const size_t n = ranges.back().end;
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
    if (check) printf("%s: n=%zu, %zu ranges, pointer offset %d floats\n", name, n, ranges.size(), offset);
    AdamWGroups groups;
    for (const Range& r : ranges) adamw_groups_add(groups, r.end, r.decay);

    // Initial state (same seed for both runs of one case: the caller reseeds).
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> p(n), m(n, 0.0f), v(n, 0.0f);
    for (auto& x : p) x = bf16_to_float_host(float_to_bf16_host(nd(rng) * 0.05f));
    std::vector<std::vector<float>> grads(3, std::vector<float>(n));
    for (auto& g : grads)
        for (auto& x : g) x = nd(rng) * 1e-3f;

    float *bp, *bg, *bm, *bv, *dscale;
    floatX* bpb;
    cudaCheck(cudaMalloc(&bp, (n + offset) * sizeof(float)));
    cudaCheck(cudaMalloc(&bg, (n + offset) * sizeof(float)));
    cudaCheck(cudaMalloc(&bm, (n + offset) * sizeof(float)));
    cudaCheck(cudaMalloc(&bv, (n + offset) * sizeof(float)));
    cudaCheck(cudaMalloc(&bpb, (n + offset) * sizeof(floatX)));
    cudaCheck(cudaMalloc(&dscale, sizeof(float)));
    float *dp = bp + offset, *dg = bg + offset, *dm = bm + offset, *dv = bv + offset;
    floatX* dpb = bpb + offset;
    cudaCheck(cudaMemcpy(dp, p.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemset(dm, 0, n * sizeof(float)));
    cudaCheck(cudaMemset(dv, 0, n * sizeof(float)));
    GlobalNorm gn;
    global_norm_init(gn);
    const ShardLayout shard_layout(n, shards, 64);
    auto update = [&](const float* d_scale, float h_scale, int t, float lr_, float b1_, float b2_, float eps_, float wd_) {
        for (int r = 0; r < shards; r++) {
            const size_t lo = shard_layout.begin(r), len = shard_layout.end(r) - lo;
            adamw_update(dp + lo, dpb + lo, dg + lo, dm + lo, dv + lo, len, groups, lr_, b1_, b2_, eps_, wd_, t,
                         d_scale, h_scale, 0, lo);
        }
    };

    std::vector<float> rp = p, rm = m, rv = v, prev_gpu = p, prev_ref = p;
    for (int t = 1; t <= 3; t++) {
        const std::vector<float>& g = grads[t - 1];
        cudaCheck(cudaMemcpy(dg, g.data(), n * sizeof(float), cudaMemcpyHostToDevice));
        poison(dpb, n * sizeof(floatX));
        // Step 1: scale from a device scalar; step 2: host scale (no clipping); step 3: the clip factor computed
        // on the device by global_norm (max_norm below the norm, so clipping is active), read by the kernel.
        float scale_used;
        if (t == 1) {
            scale_used = 0.5f;
            cudaCheck(cudaMemcpy(dscale, &scale_used, sizeof(float), cudaMemcpyHostToDevice));
            update(dscale, 123.0f, t, lr, b1, b2, eps, wd);
        } else if (t == 2) {
            scale_used = 1.0f;
            update(nullptr, 1.0f, t, lr, b1, b2, eps, wd);
        } else {
            double norm = ref::global_norm(g.data(), n);
            global_norm(gn, dg, n, 0.5 * norm, 0);
            update(gn.clip, 1.0f, t, lr, b1, b2, eps, wd);
            scale_used = to_host(gn.clip, 1)[0];  // the reference uses the very factor the kernel read
            if (check) CHECK(scale_used < 0.51f && scale_used > 0.49f, "clip factor %g, expected ~0.5", scale_used);
        }
        std::vector<float> gs(n);
        for (size_t i = 0; i < n; i++) gs[i] = g[i] * scale_used;
        for (const Range& r : ranges)
            ref::adamw_update(rp.data() + r.begin, gs.data() + r.begin, rm.data() + r.begin, rv.data() + r.begin,
                              r.end - r.begin, lr, b1, b2, eps, r.decay ? wd : 0.0f, t);
        cudaCheck(cudaDeviceSynchronize());
        std::vector<float> gp = to_host(dp, n), gm = to_host(dm, n), gv = to_host(dv, n);
        std::vector<floatX> gpb = to_host(dpb, n);
        if (check) {
            std::vector<float> dgpu(n), dref(n);
            for (size_t i = 0; i < n; i++) dgpu[i] = gp[i] - prev_gpu[i], dref[i] = rp[i] - prev_ref[i];
            double ep = rel_error(gp.data(), rp.data(), n), em = rel_error(gm.data(), rm.data(), n);
            double ev = rel_error(gv.data(), rv.data(), n), ed = rel_error(dgpu.data(), dref.data(), n);
            size_t bad_bf16 = 0;
            for (size_t i = 0; i < n; i++) {
                floatX want = float_to_bf16_host(gp[i]);
                bad_bf16 += memcmp(&want, &gpb[i], sizeof(floatX)) != 0;
            }
            printf("  step %d (scale %.6g): p %.2e  m %.2e  v %.2e  (tol %.0e)  step taken %.2e (tol %.0e)  "
                   "bf16 copy mismatches %zu\n",
                   t, scale_used, ep, em, ev, TOL_STATE, ed, TOL_DELTA, bad_bf16);
            CHECK(ep < TOL_STATE, "%s step %d p: %.3e", name, t, ep);
            CHECK(em < TOL_STATE, "%s step %d m: %.3e", name, t, em);
            CHECK(ev < TOL_STATE, "%s step %d v: %.3e", name, t, ev);
            CHECK(ed < TOL_DELTA, "%s step %d update: %.3e", name, t, ed);
            CHECK(bad_bf16 == 0, "%s step %d: %zu bf16 copies differ from round-to-nearest-even(master)", name, t,
                  bad_bf16);
        }
        prev_gpu = gp, prev_ref = rp;
        if (t == 3) {  // final state, bits of everything, for the determinism check
            std::vector<float> all = gp;
            all.insert(all.end(), gm.begin(), gm.end());
            all.insert(all.end(), gv.begin(), gv.end());
            for (size_t i = 0; i < n; i++) all.push_back(bf16_to_float_host(gpb[i]));
            global_norm_free(gn);
            cudaCheck(cudaFree(bp));
            cudaCheck(cudaFree(bg));
            cudaCheck(cudaFree(bm));
            cudaCheck(cudaFree(bv));
            cudaCheck(cudaFree(bpb));
            cudaCheck(cudaFree(dscale));
            return all;
        }
    }
    return {};
}

static void check_case(const char* name, const std::vector<Range>& ranges, int offset, unsigned long long seed) {
    rng.seed(seed);
    std::vector<float> a = run_case(name, ranges, offset, true);
    rng.seed(seed);
    std::vector<float> b = run_case(name, ranges, offset, false);
    bool same = a.size() == b.size() && memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
    printf("  second run bit-identical: %s\n", same ? "yes" : "NO");
    CHECK(same, "%s: AdamW not deterministic", name);
}

// ZeRO-1: the buffer updated in 3 slices, each told its offset, must equal the one-launch update bit for bit
// (the decay groups follow the layout position, not the slice position).
static void check_shards(const char* name, const std::vector<Range>& ranges, unsigned long long seed) {
    rng.seed(seed);
    std::vector<float> sliced = run_case(name, ranges, 0, true, 3);
    rng.seed(seed);
    std::vector<float> whole = run_case(name, ranges, 0, false, 1);
    bool same = sliced.size() == whole.size() && memcmp(sliced.data(), whole.data(), whole.size() * sizeof(float)) == 0;
    printf("  3 slices == one launch, bit for bit: %s\n", same ? "yes" : "NO");
    CHECK(same, "%s: sliced AdamW differs from the whole-buffer update", name);
}

static std::vector<Range> model_ranges(const ModelConfig& c) {
    size_t off[NUM_PARAM_TENSORS], sz[NUM_PARAM_TENSORS];
    param_offsets(c, off);
    param_sizes(c, sz);
    std::vector<Range> r;
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) r.push_back({off[i], off[i] + sz[i], param_has_decay(i)});
    return r;
}

static void bench() {
    DevicePeaks pk = device_peaks();
    ModelConfig c = model_preset("140m", 2048);
    const size_t n = num_parameters(c);
    AdamWGroups groups = adamw_groups_from_config(c);
    float *p, *g, *m, *v;
    floatX* pb;
    cudaCheck(cudaMalloc(&p, n * sizeof(float)));
    cudaCheck(cudaMalloc(&g, n * sizeof(float)));
    cudaCheck(cudaMalloc(&m, n * sizeof(float)));
    cudaCheck(cudaMalloc(&v, n * sizeof(float)));
    cudaCheck(cudaMalloc(&pb, n * sizeof(floatX)));
    for (float* b : {p, g, m, v}) cudaCheck(cudaMemset(b, 0, n * sizeof(float)));
    int t = 0;  // each call is the next AdamW step
    const float ms = median_ms([&] { adamw_update(p, pb, g, m, v, n, groups, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, ++t,
                                                  nullptr, 1.0f, 0); }, 20);
    double bytes = (double)n * (4 * 4 + 3 * 4 + 2);  // read p, g, m, v; write p, m, v, bf16 p
    double gbs = bytes / (ms * 1e-3) / 1e9;
    printf("timing on %s: 140m model, %zu params: %.3f ms, %.0f GB/s", pk.name, n, ms, gbs);
    if (pk.mem_gbps > 0) printf(" (%.1f%% of %.0f)", 100 * gbs / pk.mem_gbps, pk.mem_gbps);
    printf(", median of 20\n");
    for (float* q : {p, g, m, v}) cudaCheck(cudaFree(q));
    cudaCheck(cudaFree(pb));
}

int main(int argc, char** argv) {
    const LabArgs args = lab_args(argc, argv);
    if (!lab_have_device()) return test_summary();
    unsigned long long seed = args.seed;
    printf("adamw kernel test, seed %llu\n", seed);
    // The real layout of the tiny model (decay on 2-D weights only), ragged ranges whose boundaries fall inside
    // a 4-element vector with an n % 4 tail, and the same ranges on unaligned pointers (scalar kernel).
    check_case("tiny model layout", model_ranges(model_preset("tiny", 64)), 0, seed);
    std::vector<Range> ragged = {{0, 333, true}, {333, 701, false}, {701, 702, true}, {702, 1001, false}};
    check_case("ragged ranges", ragged, 0, seed + 1);
    check_case("ragged ranges, unaligned", ragged, 1, seed + 2);
    check_shards("tiny model layout in 3 ZeRO-1 slices", model_ranges(model_preset("tiny", 64)), seed + 3);
    check_shards("ragged ranges in 3 ZeRO-1 slices", ragged, seed + 4);
    if (g_test_failed == 0 && args.bench) bench();
    return test_summary();
}
