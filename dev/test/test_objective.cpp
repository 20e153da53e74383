// The seed's optional MDM corruption variants in llmc/objective.h make_mdm_batch (seed_spec §3): suffix masking
// (--ar-ratio, with the K = 0 whole-row quirk) and the low-noise start, against their definitions.
#include <cmath>
#include <cstring>
#include <random>
#include "dev/test/test.h"
#include "llmc/objective.h"

static std::mt19937_64 rng(20261127);
static const int MASK = 50257;  // the seed's mask id; clean test tokens are drawn below it

// Masked flags of one host batch (inputs == MASK; clean tokens are < MASK).
static std::vector<char> mask_of(const std::vector<int>& inputs) {
    std::vector<char> m(inputs.size());
    for (size_t i = 0; i < inputs.size(); i++) m[i] = inputs[i] == MASK;
    return m;
}

static std::vector<int> random_tokens(int B, int stride) {
    std::vector<int> y((size_t)B * stride);
    for (int& t : y) t = (int)(rng() % (uint64_t)MASK);
    return y;
}

int main() {
        const int shapes[][2] = {{3, 37}, {256, 4}, {5, 1000}};
    int k0_rows = 0, suffix_rows = 0, total_rows = 0;
    for (const auto& sh : shapes) {
        const int B = sh[0], S = sh[1], N = B * S;
        for (float eps : {1e-3f, 0.0f}) {
            const uint32_t seed = (uint32_t)rng(), step = (uint32_t)(rng() % 100000), sample0 = (uint32_t)(rng() >> 33);
            std::vector<int> y = random_tokens(B, S + 1);
            std::vector<int> in0(N), tg0(N), in1(N), tg1(N);
            std::vector<float> w0(N), w1(N), p0(B), p1(B);
            const int c0 = make_mdm_batch(in0.data(), tg0.data(), w0.data(), y.data(), B, S, MASK, eps, seed, step,
                                          sample0, p0.data());
            int plain_masked = 0;
            for (int v : in0) plain_masked += v == MASK;
            CHECK(c0 == plain_masked, "returned masked count %d, inputs hold %d mask tokens", c0, plain_masked);
            int c1;
            // ar_ratio 1: every row keeps its i.i.d. count K, moved to the last K positions (all when K = 0).
            MdmOptions o;
            o.ar_ratio = 1.0f;
            c1 = make_mdm_batch(in1.data(), tg1.data(), w1.data(), y.data(), B, S, MASK, eps, seed, step,
                                    sample0, p1.data(), o);
            std::vector<char> m0 = mask_of(in0), m1 = mask_of(in1);
            bool ok = tg0 == tg1 && memcmp(p0.data(), p1.data(), B * 4) == 0;
            int expect_count = 0;
            for (int b = 0; b < B; b++) {
                int K = 0;
                for (int s = 0; s < S; s++) K += m0[b * S + s];
                const int keep = K == 0 ? S : K;
                k0_rows += K == 0;
                expect_count += keep;
                const float w = (float)(1.0 / ((double)p0[b] * B * S));
                for (int s = 0; s < S; s++) {
                    const bool want = s >= S - keep;
                    ok &= m1[b * S + s] == want && in1[b * S + s] == (want ? MASK : y[(size_t)b * (S + 1) + s]);
                    ok &= w1[b * S + s] == (want ? w : 0.0f);
                }
            }
            CHECK(ok && c1 == expect_count, "ar_ratio 1 suffix masking wrong (B=%d S=%d)", B, S);
            // ar_ratio 0.5: rows whose coin (RNG_MDM_AR) says no are untouched; the others are suffix rows.
            o.ar_ratio = 0.5f;
            make_mdm_batch(in1.data(), tg1.data(), w1.data(), y.data(), B, S, MASK, eps, seed, step, sample0, nullptr, o);
            m1 = mask_of(in1);
            ok = true;
            for (int b = 0; b < B; b++) {
                const bool coin = rng_uniform(seed, RNG_MDM_AR, step, sample0 + (uint32_t)b, 0, 0) < 0.5f;
                suffix_rows += coin;
                total_rows++;
                int K = 0;
                for (int s = 0; s < S; s++) K += m0[b * S + s];
                const int keep = K == 0 ? S : K;
                for (int s = 0; s < S; s++) {
                    const bool want = coin ? s >= S - keep : (bool)m0[b * S + s];
                    ok &= m1[b * S + s] == want;
                }
            }
            CHECK(ok, "ar_ratio 0.5 row selection wrong (B=%d S=%d)", B, S);
            // Low-noise start: t halved while step < iters, untouched from iters on.
            o = MdmOptions();
            o.low_noise = true;
            o.low_noise_iters = step + 1;
            make_mdm_batch(in1.data(), tg1.data(), w1.data(), y.data(), B, S, MASK, eps, seed, step, sample0, p1.data(), o);
            ok = true;
            for (int b = 0; b < B; b++) {
                const float t = mdm_time(seed, RNG_MDM_T, step, sample0 + (uint32_t)b);
                ok &= p1[b] == fmaf(1.0f - eps, t * 0.5f, eps) && p1[b] <= p0[b];
            }
            CHECK(ok, "low-noise p wrong (B=%d S=%d)", B, S);
            o.low_noise_iters = step;
            make_mdm_batch(in1.data(), tg1.data(), w1.data(), y.data(), B, S, MASK, eps, seed, step, sample0, p1.data(), o);
            CHECK(memcmp(p0.data(), p1.data(), B * 4) == 0 && in0 == in1, "low-noise active at step >= iters");
        }
    }
    printf("  K = 0 suffix rows seen: %d; coin said suffix on %d of %d rows at ar_ratio 0.5\n", k0_rows, suffix_rows,
           total_rows);
    CHECK(k0_rows > 0, "the K = 0 quirk was never exercised");
    CHECK(suffix_rows > total_rows * 0.35 && suffix_rows < total_rows * 0.65, "suffix coin rate %d / %d",
          suffix_rows, total_rows);
    return test_summary();
}
