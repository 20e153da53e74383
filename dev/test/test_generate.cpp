// dev/test/test_generate.cpp — the samplers of llmc/generate.h driven by synthetic "models" whose logits are
// known in closed form, so every expectation below is derived by hand, not from the code under test.
#include <map>
#include "dev/test/test.h"
#include "llmc/generate.h"

static const int V = 50257, VP = 50304, MASK = 50257;

static GenConfig base_config(int S, int L) {
    GenConfig g;
    g.seq_len = S; g.padded_vocab = VP; g.vocab = V; g.mask_id = MASK; g.length = L;
    return g;
}

// Fake AR model: at every position all mass on (token + 1); the classes past the real vocabulary get an even
// larger logit, which a correct sampler must never pick.
// Visits the requested positions [lo, hi) of every sequence: f(position n = b*S + p, p, output row).
template <class F>
static void each_row(int B, int S, int lo, int hi, int vp, float* logits, F f) {
    for (int b = 0; b < B; b++)
        for (int p = lo; p < hi; p++) f(b * S + p, p, logits + ((size_t)b * (hi - lo) + p - lo) * vp);
}

static void successor_logits(const int* tokens, int B, int S, int lo, int hi, float* logits) {
    each_row(B, S, lo, hi, VP, logits, [&](int n, int, float* row) {
        std::fill(row, row + VP, 0.0f);
        row[(tokens[n] + 1) % V] = 30.0f;
        for (int v = V; v < VP; v++) row[v] = 100.0f;
    });
}

// Fake model over a small vocabulary (16 real classes of 24, mask 16; small so thousands of samples fit in
// memory) with a fixed distribution at every position: logits 0, 1, 2, 3 on tokens 10..13, -inf-like elsewhere.
static const int SV = 16, SVP = 24, SMASK = 16;
static const float kLogits[4] = {0.0f, 1.0f, 2.0f, 3.0f};
static void fixed_logits(const int*, int B, int S, int lo, int hi, float* logits) {
    each_row(B, S, lo, hi, SVP, logits, [&](int, int, float* row) {
        std::fill(row, row + SVP, -1e4f);
        for (int i = 0; i < 4; i++) row[10 + i] = kLogits[i];
        row[SMASK] = 50.0f;  // the mask class is never a valid output
    });
}
static GenConfig small_config(int S, int L) {
    GenConfig g;
    g.seq_len = S; g.padded_vocab = SVP; g.vocab = SV; g.mask_id = SMASK; g.length = L;
    return g;
}

// Checks sampled frequencies of tokens 10..13 against softmax(kLogits/T) restricted to the top `k` (5 sigma).
static void check_frequencies(const std::vector<int>& toks, double T, int k, const char* what) {
    double p[4], z = 0;
    for (int i = 0; i < 4; i++) { p[i] = i >= 4 - k ? std::exp(kLogits[i] / T) : 0.0; z += p[i]; }
    std::map<int, int> count;
    for (int t : toks) count[t]++;
    int outside = 0;
    for (auto& kv : count) if (kv.first < 10 || kv.first > 13) outside += kv.second;
    CHECK(outside == 0, "%s: %d draws outside tokens 10..13", what, outside);
    const double n = (double)toks.size();
    for (int i = 0; i < 4; i++) {
        const double q = p[i] / z, sigma = std::sqrt(n * q * (1 - q)) + 1e-9, c = count[10 + i];
        CHECK(std::fabs(c - n * q) <= 5 * sigma + (q == 0 ? 0 : 1), "%s: token %d drawn %g times, expected %.1f +- %.1f",
              what, 10 + i, c, n * q, sigma);
    }
}

static void test_ar() {
    // Greedy follows the successor chain exactly; 50256 is followed by 0, never by a pad/mask class.
    GenConfig g = base_config(16, 6);
    g.temperature = 0;
    std::vector<int> out = generate_ar(successor_logits, g, {50253}, 2);
    const int want[6] = {50254, 50255, 50256, 0, 1, 2};
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 6; i++) CHECK(out[b * 6 + i] == want[i], "AR greedy sample %d token %d: %d", b, i, out[b * 6 + i]);
    // Sampling at temperature 1 from a near-one-hot distribution, and top-k = 1, give the same chain.
    g.temperature = 1.0;
    CHECK(generate_ar(successor_logits, g, {50253}, 2) == out, "AR T=1 on a one-hot model differs from greedy");
    g.top_k = 1;
    g.temperature = 5.0;
    CHECK(generate_ar(successor_logits, g, {50253}, 2) == out, "top-k 1 differs from greedy");

    // Prompt + length must fit the context; an empty AR prompt is rejected.
    CHECK(gen_validate(base_config(16, 6), 11, false).find("exceeds the model's context of 16") != std::string::npos, "overflow");
    CHECK(gen_validate(base_config(16, 6), 10, false).empty(), "exact fit accepted");
    CHECK(!gen_validate(base_config(16, 6), 0, false).empty(), "empty AR prompt");
    GenConfig bad = base_config(16, 6);
    bad.top_k = -1;
    CHECK(!gen_validate(bad, 1, false).empty(), "negative top-k");

    // Frequencies: many independent samples (sample index is part of the key) of one token each.
    GenConfig f = small_config(2, 1);
    f.seed = 7;
    f.temperature = 1.0;
    check_frequencies(generate_ar(fixed_logits, f, {0}, 40000), 1.0, 4, "AR T=1 full vocab");
    f.temperature = 0.5;
    f.top_k = 4;
    check_frequencies(generate_ar(fixed_logits, f, {0}, 40000), 0.5, 4, "AR T=0.5 top-4");
    f.temperature = 2.0;
    f.top_k = 2;
    check_frequencies(generate_ar(fixed_logits, f, {0}, 40000), 2.0, 2, "AR T=2 top-2");
    // Top-k = V draws the same noise per token as the unrestricted sampler, so results coincide.
    f.temperature = 1.0;
    f.top_k = 0;
    std::vector<int> all = generate_ar(fixed_logits, f, {0}, 200);
    f.top_k = SV;
    CHECK(generate_ar(fixed_logits, f, {0}, 200) == all, "top-k = V differs from no top-k");

    // Determinism per seed; different seeds give different samples.
    f.top_k = 0;
    f.seed = 1;
    std::vector<int> a = generate_ar(fixed_logits, f, {0}, 64);
    CHECK(generate_ar(fixed_logits, f, {0}, 64) == a, "AR not deterministic");
    f.seed = 2;
    CHECK(generate_ar(fixed_logits, f, {0}, 64) != a, "AR seeds 1 and 2 agree on 64 samples");
}

// The float64 Gumbel noise: mean = Euler's constant, variance = pi^2/6, and 53-bit resolution — among 2e5
// draws a 24-bit (float32-style) uniform would repeat ~1200 values (birthday bound), a 53-bit one none.
static void test_gumbel() {
    double sum = 0, sum2 = 0, mx = 0;
    const int n = 200000;
    std::vector<double> xs(n);
    for (int i = 0; i < n; i++) {
        double x = xs[i] = gen_gumbel(3, 0, 0, 0, (uint32_t)i);
        sum += x; sum2 += x * x; mx = std::max(mx, x);
    }
    const double mean = sum / n, var = sum2 / n - mean * mean;
    CHECK(std::fabs(mean - 0.5772156649) < 0.01, "Gumbel mean %f", mean);
    CHECK(std::fabs(var - 1.6449340668) < 0.03, "Gumbel variance %f (pi^2/6)", var);
    CHECK(mx > 10.0, "Gumbel max over 2e5 draws %f (expect ~12.8)", mx);
    std::sort(xs.begin(), xs.end());
    const long dups = (long)(xs.end() - std::unique(xs.begin(), xs.end()));
    CHECK(dups == 0, "%ld repeated Gumbel values among 2e5 draws: the uniform has too few bits", dups);
}

// Fake MDM model: position p predicts token 1000 + p with logit c_p, all other classes 0, mask class huge.
// c_p = 5 + 0.01 * p + (10 if the left neighbour is unmasked): the leftmost masked position is always most
// confident, even though the static term prefers the right.
static int g_prompt_len = 0;
static void chain_logits(const int* tokens, int B, int S, int lo, int hi, float* logits) {
    each_row(B, S, lo, hi, VP, logits, [&](int n, int p, float* row) {
        std::fill(row, row + VP, 0.0f);
        const bool left_known = p > 0 && tokens[n - 1] != MASK;
        row[1000 + p] = 5.0f + 0.01f * p + (left_known ? 10.0f : 0.0f);
        row[MASK] = 80.0f;
    });
}
// Static confidences increasing to the right: c_p = 20 + 0.5 p (the target has probability ~1 everywhere, but
// less so on the left), independent of the tokens.
static void right_logits(const int*, int B, int S, int lo, int hi, float* logits) {
    each_row(B, S, lo, hi, VP, logits, [&](int, int p, float* row) {
        std::fill(row, row + VP, 0.0f);
        row[1000 + p] = 20.0f + 0.5f * p;
        for (int v = V; v < VP; v++) row[v] = 90.0f;
    });
}

static void test_mdm() {
    // Seed greedy (N = L, T = 0): one token per step, commits left to right following the chain, all filled.
    const int P = 3, L = 8;
    g_prompt_len = P;
    GenConfig g = base_config(16, L);
    g.temperature = 0;
    std::vector<int> when;
    std::vector<int> out = generate_mdm(chain_logits, g, {1, 2, 3}, 2, &when);
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < L; i++) {
            CHECK(out[b * L + i] == 1000 + P + i, "MDM greedy token %d = %d", i, out[b * L + i]);
            CHECK(when[b * L + i] == i, "MDM greedy: position %d committed at step %d", i, when[b * L + i]);
        }
    // Static confidences increasing to the right: committed right to left.
    out = generate_mdm(right_logits, g, {1, 2, 3}, 1, &when);
    for (int i = 0; i < L; i++) CHECK(when[i] == L - 1 - i, "right-confident: position %d at step %d", i, when[i]);

    // N < L: the per-step counts of LLaDA's schedule, 10 tokens over 4 steps = 3, 3, 2, 2.
    GenConfig h = base_config(16, 10);
    h.steps = 4;
    h.temperature = 1.0;
    h.seed = 5;
    out = generate_mdm(right_logits, h, {7}, 3, &when);
    for (int b = 0; b < 3; b++) {
        int per[4] = {0, 0, 0, 0};
        bool ok = true;
        for (int i = 0; i < 10; i++) {
            if (when[b * 10 + i] < 0 || when[b * 10 + i] > 3) ok = false; else per[when[b * 10 + i]]++;
            if (out[b * 10 + i] >= V) ok = false;
        }
        CHECK(ok, "sample %d: a position left masked or an id >= vocab", b);
        CHECK(per[0] == 3 && per[1] == 3 && per[2] == 2 && per[3] == 2, "commits per step %d %d %d %d", per[0], per[1],
              per[2], per[3]);
        // With confidences increasing to the right, step s commits exactly the rightmost still-masked ones.
        CHECK(when[b * 10 + 9] == 0 && when[b * 10 + 7] == 0 && when[b * 10 + 6] == 1 && when[b * 10 + 0] == 3,
              "low-confidence order with 4 steps");
    }

    // Semi-AR blocks: L = 12, blocks of 4, N = 6 -> 2 steps per block, 2 tokens per step; block j is complete
    // before block j+1 starts, even though the model is most confident on the right.
    GenConfig k = base_config(16, 12);
    k.steps = 6;
    k.block = 4;
    k.temperature = 0;
    out = generate_mdm(right_logits, k, {9}, 1, &when);
    for (int j = 0; j < 3; j++) {
        int per_step[2] = {0, 0};
        for (int i = 4 * j; i < 4 * j + 4; i++) {
            const int s = when[i] - 2 * j;
            CHECK(s == 0 || s == 1, "block %d position %d committed at step %d", j, i, when[i]);
            if (s == 0 || s == 1) per_step[s]++;
        }
        CHECK(per_step[0] == 2 && per_step[1] == 2, "block %d commits %d, %d", j, per_step[0], per_step[1]);
        CHECK(when[4 * j + 3] == 2 * j && when[4 * j] == 2 * j + 1, "block %d: not right-first inside the block", j);
    }
    for (int i = 0; i < 12; i++) CHECK(out[i] == 1001 + i, "block token %d = %d", i, out[i]);

    // Random remasking: deterministic per seed, different across seeds, and ignores confidence.
    GenConfig r = base_config(20, 16);
    r.random_remasking = true;
    r.temperature = 0;
    r.seed = 11;
    std::vector<int> w1, w2, w3;
    std::vector<int> o1 = generate_mdm(right_logits, r, {}, 2, &w1);
    std::vector<int> o2 = generate_mdm(right_logits, r, {}, 2, &w2);
    CHECK(o1 == o2 && w1 == w2, "random remasking not deterministic");
    r.seed = 12;
    generate_mdm(right_logits, r, {}, 2, &w3);
    CHECK(w1 != w3, "random remasking: seeds 11 and 12 give the same order");
    CHECK(std::vector<int>(w1.begin(), w1.begin() + 16) != std::vector<int>(w1.begin() + 16, w1.end()),
          "random remasking: both samples have the same order");
    int right_first = 0;
    for (uint32_t seed = 0; seed < 20; seed++) {
        r.seed = seed;
        generate_mdm(right_logits, r, {}, 1, &w3);
        right_first += w3[15] == 0;
    }
    CHECK(right_first < 8, "random remasking commits the most confident position first in %d/20 seeds", right_first);

    // MDM at temperature 1 over the fixed 4-token distribution with random remasking (which positions are kept
    // does not depend on what was drawn): the committed tokens follow the softmax. Low-confidence remasking
    // keeps the likelier draws first, so its committed tokens are biased towards token 13.
    GenConfig f = small_config(8, 8);
    f.temperature = 1.0;
    f.steps = 2;
    f.seed = 3;
    f.random_remasking = true;
    check_frequencies(generate_mdm(fixed_logits, f, {}, 5000), 1.0, 4, "MDM T=1 random remasking");
    f.random_remasking = false;
    std::vector<int> biased = generate_mdm(fixed_logits, f, {}, 5000);
    const double q13 = std::exp(3.0) / (1 + std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
    const double f13 = std::count(biased.begin(), biased.end(), 13) / (double)biased.size();
    CHECK(f13 > q13 + 0.05, "low-confidence remasking: token 13 at %.3f, softmax %.3f (expected a bias up)", f13, q13);

    // Validation: the block must divide L and the step count must divide into blocks.
    GenConfig bad = base_config(16, 12);
    bad.block = 5;
    CHECK(gen_validate(bad, 0, true).find("not a multiple of --block") != std::string::npos, "block 5 of 12");
    bad.block = 4;
    bad.steps = 4;
    CHECK(gen_validate(bad, 0, true).find("number of blocks (3)") != std::string::npos, "4 steps over 3 blocks");
    bad.steps = 6;
    CHECK(gen_validate(bad, 4, true).empty(), "valid MDM config: %s", gen_validate(bad, 4, true).c_str());
    CHECK(!gen_validate(bad, 5, true).empty(), "MDM prompt + length over context");
    bad.mask_id = 100;
    CHECK(!gen_validate(bad, 0, true).empty(), "mask id inside the real vocabulary");
}

int main() {
    test_gumbel();
    test_ar();
    test_mdm();
    return test_summary();
}
