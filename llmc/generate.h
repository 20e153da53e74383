// llmc/generate.h — sampling from a trained model, independent of how the logits are computed: the CPU
// reference and the CUDA trainers both plug in a LogitsFn.
//
//   * AR: n new tokens after the prompt, one forward of the whole window per token (causal, so the padding
//     after the last token never influences it); temperature (0 = argmax) and top-k.
//   * MDM (LLaDA-style iterative unmasking): the completion starts as L mask tokens; over N steps every masked
//     position is predicted, and k_s of the predictions are committed while the rest are re-masked, where
//     k_s spreads the L tokens evenly over the steps (the first L mod N steps take one extra). Which ones are
//     kept: the most confident (low-confidence remasking; confidence = softmax probability of the chosen token)
//     or uniformly random ones. Semi-autoregressive blocks of b positions are completed left to right, each
//     with N·b/L steps. The seed's greedy generator (seed_spec §4.4) is N = L, temperature 0, one block.
//     Positions of the window beyond prompt + L are filled with the mask id, as the seed pads its input.
//
// Sampling draws are categorical over the first `vocab` (50257) real classes only — never the mask/pad
// classes — by the Gumbel-max trick in float64: the float32 version distorts low-probability tokens because
// -log(-log(u)) of a 24-bit u cannot reach the tail. Every draw is keyed by (seed, RNG_GENERATE, step, sample,
// position, token), so a run is a pure function of its seed, independent of batching and threading.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>
#include "philox.h"
#include "utils.h"

// Runs the model on tokens [B*S] and fills logits [B*(hi-lo), Vp] for the positions [lo, hi) of every sequence
// (row b*(hi-lo) + p-lo = the prediction at position p of sequence b): only the rows a sampler reads are asked
// for, so a long context costs one forward, not B*S rows of logits.
using LogitsFn = std::function<void(const int* tokens, int B, int S, int lo, int hi, float* logits)>;

struct GenConfig {
    int seq_len = 0;        // S: every LogitsFn call gets B sequences of exactly S tokens
    int padded_vocab = 0;   // Vp: the row stride of the logits
    int vocab = 50257;      // real classes: no id >= vocab is ever emitted
    int mask_id = 50257;    // MDM: the mask token
    int length = 0;         // L: tokens to generate
    double temperature = 1.0;  // 0 = argmax
    int top_k = 0;          // AR: sample among the k most likely tokens (0 = all)
    int steps = 0;          // MDM: N denoising steps (0 = L, one token per step)
    int block = 0;          // MDM: semi-autoregressive block size (0 = L, a single block)
    bool random_remasking = false;  // MDM: keep random predictions instead of the most confident
    uint32_t seed = 0;
};

// Noise streams inside RNG_GENERATE, kept apart by the high byte of Philox's `sub` word.
enum GenStream : uint32_t { GEN_AR_TOKEN = 0, GEN_MDM_TOKEN = 1, GEN_MDM_REMASK = 2 };
inline uint32_t gen_sub(GenStream s, int position) { return ((uint32_t)s << 24) | (uint32_t)position; }

// Uniform in (0, 1) with 53 random bits from two 32-bit lanes: never 0 or 1, so the Gumbel is finite.
inline double gen_uniform53(uint32_t hi, uint32_t lo) {
    uint64_t m = ((uint64_t)hi << 21) | (lo >> 11);
    return ((double)m + 0.5) * (1.0 / 9007199254740992.0);
}

// Standard Gumbel noise for token v: one Philox call {v/2, sub, sample, step} serves tokens 2j and 2j+1.
inline double gen_gumbel(uint32_t seed, uint32_t step, uint32_t sample, uint32_t sub, uint32_t v) {
    Philox4 r = philox4x32_10(Philox4{{v >> 1, sub, sample, step}}, seed, RNG_GENERATE);
    const int lane = 2 * (int)(v & 1);
    return -std::log(-std::log(gen_uniform53(r.v[lane], r.v[lane + 1])));
}

// Uniform (0,1) draw for MDM random remasking of one position (lanes 0-1 of token slot 0).
inline double gen_priority(uint32_t seed, uint32_t step, uint32_t sample, int position) {
    Philox4 r = philox4x32_10(Philox4{{0, gen_sub(GEN_MDM_REMASK, position), sample, step}}, seed, RNG_GENERATE);
    return gen_uniform53(r.v[0], r.v[1]);
}

// One categorical draw from softmax(logits[0:V] / T), restricted to the top_k largest logits (0 = all;
// ties broken towards the lower id). T = 0 is argmax. `cand` is scratch space.
inline int gen_sample_row(const float* logits, int V, double temperature, int top_k, uint32_t seed, uint32_t step,
                          uint32_t sample, uint32_t sub, std::vector<int>& cand) {
    auto better = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    if (temperature <= 0) {
        int best = 0;
        for (int v = 1; v < V; v++) if (better(v, best)) best = v;
        return best;
    }
    int best = -1;
    double best_score = -INFINITY;
    auto consider = [&](int v, double g) {
        double s = (double)logits[v] / temperature + g;
        if (best < 0 || s > best_score) { best = v; best_score = s; }
    };
    if (top_k > 0 && top_k < V) {
        cand.resize(V);
        for (int v = 0; v < V; v++) cand[v] = v;
        std::nth_element(cand.begin(), cand.begin() + (top_k - 1), cand.end(), better);
        std::sort(cand.begin(), cand.begin() + top_k);  // visit ids in order, so equal scores resolve as below
        for (int i = 0; i < top_k; i++) consider(cand[i], gen_gumbel(seed, step, sample, sub, (uint32_t)cand[i]));
    } else {
        for (int v = 0; v < V; v += 2) {  // one Philox call per token pair, same numbers as gen_gumbel
            Philox4 r = philox4x32_10(Philox4{{(uint32_t)v >> 1, sub, sample, step}}, seed, RNG_GENERATE);
            consider(v, -std::log(-std::log(gen_uniform53(r.v[0], r.v[1]))));
            if (v + 1 < V) consider(v + 1, -std::log(-std::log(gen_uniform53(r.v[2], r.v[3]))));
        }
    }
    return best;
}

// Softmax probability of token c among the V real classes, in float64.
inline double gen_prob(const float* logits, int V, int c) {
    double mx = -INFINITY;
    for (int v = 0; v < V; v++) mx = std::max(mx, (double)logits[v]);
    double z = 0;
    for (int v = 0; v < V; v++) z += std::exp((double)logits[v] - mx);
    return std::exp((double)logits[c] - mx) / z;
}

// "" if the configuration can generate from a prompt of prompt_len tokens, else what is wrong.
inline std::string gen_validate(const GenConfig& g, int prompt_len, bool mdm) {
    auto s = [](long x) { return std::to_string(x); };
    if (g.seq_len < 1 || g.vocab < 1 || g.padded_vocab < g.vocab) return "bad model shape (seq_len/vocab)";
    if (g.length < 1) return "--length must be at least 1 (got " + s(g.length) + ")";
    if (g.temperature < 0 || !std::isfinite(g.temperature)) return "--temperature must be >= 0";
    if (g.top_k < 0) return "--top-k must be >= 0 (0 = all tokens)";
    if (!mdm && prompt_len < 1) return "AR generation needs at least one prompt token";
    if ((long)prompt_len + g.length > g.seq_len)
        return "prompt (" + s(prompt_len) + " tokens) + --length " + s(g.length) + " exceeds the model's context of " +
               s(g.seq_len) + " tokens";
    if (!mdm) return "";
    if (g.mask_id < g.vocab || g.mask_id >= g.padded_vocab) return "mask id " + s(g.mask_id) + " is not a padding class";
    const int b = g.block ? g.block : g.length, n = g.steps ? g.steps : g.length;
    if (b < 1 || g.length % b) return "--length " + s(g.length) + " is not a multiple of --block " + s(b);
    if (n < 1 || n % (g.length / b))
        return "--steps " + s(n) + " is not a multiple of the number of blocks (" + s(g.length / b) + ")";
    return "";
}

// AR: returns the B x L generated tokens (sample b = row b). Dies on an invalid configuration.
inline std::vector<int> generate_ar(const LogitsFn& fn, const GenConfig& g, const std::vector<int>& prompt, int B) {
    std::string err = gen_validate(g, (int)prompt.size(), false);
    if (!err.empty()) llmc_die("%s", err.c_str());
    const int S = g.seq_len, P = (int)prompt.size(), L = g.length;
    std::vector<int> tokens((size_t)B * S, 0), out((size_t)B * L);
    for (int b = 0; b < B; b++) std::copy(prompt.begin(), prompt.end(), tokens.begin() + (size_t)b * S);
    std::vector<float> logits((size_t)B * g.padded_vocab);
    for (int n = P; n < P + L; n++) {
        fn(tokens.data(), B, S, n - 1, n, logits.data());  // the prediction for position n sits at n - 1
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            std::vector<int> cand;
            const float* row = logits.data() + (size_t)b * g.padded_vocab;
            int t = gen_sample_row(row, g.vocab, g.temperature, g.top_k, g.seed, (uint32_t)n, (uint32_t)b,
                                   gen_sub(GEN_AR_TOKEN, n), cand);
            tokens[(size_t)b * S + n] = t;
            out[(size_t)b * L + n - P] = t;
        }
    }
    return out;
}

// Tokens committed at each step of one block: LLaDA's schedule, the remainder going to the first steps.
inline int gen_commits_at(int block_len, int block_steps, int s) {
    return block_len / block_steps + (s < block_len % block_steps ? 1 : 0);
}

// MDM: returns the B x L generated tokens. If commit_step is given it receives, for each sample and completion
// position, the global step (0..N-1) at which that position was committed.
inline std::vector<int> generate_mdm(const LogitsFn& fn, const GenConfig& g, const std::vector<int>& prompt, int B,
                                     std::vector<int>* commit_step = nullptr) {
    std::string err = gen_validate(g, (int)prompt.size(), true);
    if (!err.empty()) llmc_die("%s", err.c_str());
    const int S = g.seq_len, P = (int)prompt.size(), L = g.length, Vp = g.padded_vocab;
    const int blen = g.block ? g.block : L, N = g.steps ? g.steps : L, nblocks = L / blen, bsteps = N / nblocks;
    std::vector<int> tokens((size_t)B * S, g.mask_id), when((size_t)B * L, -1);
    for (int b = 0; b < B; b++) std::copy(prompt.begin(), prompt.end(), tokens.begin() + (size_t)b * S);
    std::vector<float> logits((size_t)B * blen * Vp);
    for (int blk = 0; blk < nblocks; blk++) {
        const int lo = P + blk * blen, hi = lo + blen;  // window positions of this block
        for (int s = 0; s < bsteps; s++) {
            const uint32_t step = (uint32_t)(blk * bsteps + s);
            const int k = gen_commits_at(blen, bsteps, s);
            if (k == 0) continue;  // more steps than tokens: nothing to commit, no forward needed
            fn(tokens.data(), B, S, lo, hi, logits.data());
#pragma omp parallel for schedule(static)
            for (int b = 0; b < B; b++) {
                int* seq = tokens.data() + (size_t)b * S;
                std::vector<int> cand, pred(blen, -1), masked;
                std::vector<double> conf(blen, -INFINITY);
                for (int p = lo; p < hi; p++) {
                    if (seq[p] != g.mask_id) continue;
                    const float* row = logits.data() + ((size_t)b * blen + p - lo) * Vp;
                    const int t = gen_sample_row(row, g.vocab, g.temperature, 0, g.seed, step, (uint32_t)b,
                                                 gen_sub(GEN_MDM_TOKEN, p), cand);
                    pred[p - lo] = t;
                    conf[p - lo] = g.random_remasking ? gen_priority(g.seed, step, (uint32_t)b, p) : gen_prob(row, g.vocab, t);
                    masked.push_back(p - lo);
                }
                // Keep the k highest-confidence predictions (ties to the leftmost position), re-mask the rest.
                std::stable_sort(masked.begin(), masked.end(), [&](int x, int y) { return conf[x] > conf[y]; });
                for (int i = 0; i < k && i < (int)masked.size(); i++) {
                    const int j = masked[i];
                    seq[lo + j] = pred[j];
                    when[(size_t)b * L + (lo + j - P)] = (int)step;
                }
            }
        }
    }
    std::vector<int> out((size_t)B * L);
    for (int b = 0; b < B; b++)
        std::copy(tokens.begin() + (size_t)b * S + P, tokens.begin() + (size_t)b * S + P + L, out.begin() + (size_t)b * L);
    if (commit_step) *commit_step = when;
    return out;
}
