// Philox4x32-10 against the Random123 known-answer vectors, and the keyed draws built on it.
#include <vector>
#include "dev/test/test.h"
#include "llmc/mdm.h"
#include "llmc/philox.h"

static void check_kat(Philox4 ctr, uint32_t k0, uint32_t k1, Philox4 expect) {
    Philox4 r = philox4x32_10(ctr, k0, k1);
    bool ok = true;
    for (int i = 0; i < 4; i++) ok = ok && r.v[i] == expect.v[i];
    CHECK(ok, "philox(%08x..) = %08x %08x %08x %08x, expected %08x %08x %08x %08x", ctr.v[0], r.v[0], r.v[1], r.v[2],
          r.v[3], expect.v[0], expect.v[1], expect.v[2], expect.v[3]);
}

int main() {
    // Known-answer vectors from Random123's kat_vectors file (philox4x32_10).
    check_kat({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}});
    check_kat({{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
              {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}});
    check_kat({{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
              {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}});

    // One Philox call serves four consecutive indices.
    Philox4 block = philox4x32_10({{5, 7, 11, 13}}, 1234, RNG_MDM_MASK);
    for (uint32_t lane = 0; lane < 4; lane++)
        CHECK(rng_u32(1234, RNG_MDM_MASK, 13, 11, 7, 20 + lane) == block.v[lane], "lane %u", lane);

    // Every key component changes the draw.
    uint32_t base = rng_u32(1, 2, 3, 4, 5, 6);
    CHECK(rng_u32(9, 2, 3, 4, 5, 6) != base, "seed");
    CHECK(rng_u32(1, 9, 3, 4, 5, 6) != base, "purpose");
    CHECK(rng_u32(1, 2, 9, 4, 5, 6) != base, "step");
    CHECK(rng_u32(1, 2, 3, 9, 5, 6) != base, "sample");
    CHECK(rng_u32(1, 2, 3, 4, 9, 6) != base, "sub");
    CHECK(rng_u32(1, 2, 3, 4, 5, 7) != base, "idx");

    // Uniforms: in [0,1), mean 1/2 and variance 1/12 within 5 standard errors over 1M draws.
    const int n = 1 << 20;
    double sum = 0, sumsq = 0, umin = 1, umax = 0;
    int dropped = 0;
    for (int i = 0; i < n; i++) {
        float u = rng_uniform(42, RNG_DROPOUT_ATTN, 0, 3, 1, (uint32_t)i);
        sum += u; sumsq += (double)u * u;
        umin = u < umin ? u : umin; umax = u > umax ? u : umax;
        dropped += !dropout_keep(0.1f, 42, RNG_DROPOUT_ATTN, 0, 3, 1, (uint32_t)i);
    }
    double mean = sum / n, var = sumsq / n - mean * mean;
    CHECK(umin >= 0 && umax < 1, "uniform range [%g, %g]", umin, umax);
    CHECK(fabs(mean - 0.5) < 5 * sqrt(1.0 / 12 / n), "uniform mean %.6f", mean);
    CHECK(fabs(var - 1.0 / 12) < 1e-3, "uniform variance %.6f", var);
    double rate = (double)dropped / n;
    CHECK(fabs(rate - 0.1) < 5 * sqrt(0.09 / n), "dropout rate %.5f", rate);
    CHECK(dropout_keep(0.0f, 1, 2, 3, 4, 5, 6), "p=0 keeps");

    // Normals: mean 0, variance 1, and the fraction beyond 2 sigma ~ 4.55%.
    double ns = 0, nss = 0;
    int tail = 0;
    for (int i = 0; i < n; i++) {
        double z = rng_normal(7, RNG_INIT, 0, 2, 0, (uint32_t)i);
        ns += z; nss += z * z; tail += fabs(z) > 2;
    }
    CHECK(fabs(ns / n) < 5 / sqrt((double)n), "normal mean %.5f", ns / n);
    CHECK(fabs(nss / n - 1) < 0.01, "normal variance %.5f", nss / n);
    CHECK(fabs((double)tail / n - 0.0455) < 0.002, "normal 2-sigma tail %.4f", (double)tail / n);

    // Bounded integers: every value of [0, 10) about equally often.
    std::vector<int> hist(10, 0);
    uint32_t counter = 0;
    for (int i = 0; i < 100000; i++) hist[rng_bounded(10, [&] { return rng_u32(3, RNG_SHUFFLE_DOCS, 0, 0, 0, counter++); })]++;
    for (int v = 0; v < 10; v++) CHECK(abs(hist[v] - 10000) < 500, "bounded value %d seen %d times", v, hist[v]);

    // MDM: p = (1-eps)t + eps; stratified times stay in [0,1) and are spaced 1/K apart.
    CHECK(mdm_mask_prob(0.0f, 1e-3f) == 1e-3f, "p(t=0) = eps");
    CHECK(fabsf(mdm_mask_prob(1.0f, 1e-3f) - 1.0f) < 1e-7f, "p(t=1) = 1");
    for (int k = 0; k < 8; k++) {
        float t = mdm_time_stratified(0.9f, k, 8);
        float expect = fmodf(0.9f + k / 8.0f, 1.0f);
        CHECK(t >= 0 && t < 1 && fabsf(t - expect) < 1e-6f, "stratified t_%d = %g, expected %g", k, t, expect);
    }
    int masked = 0;
    for (int s = 0; s < 100000; s++) masked += mdm_is_masked(5, RNG_MDM_MASK, 0, 1, (uint32_t)s, 0.3f);
    CHECK(abs(masked - 30000) < 5 * 145, "mask rate at p=0.3: %d / 100000", masked);
    return test_summary();
}
