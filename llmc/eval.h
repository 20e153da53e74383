// llmc/eval.h — validation statistics shared by every trainer: AR mean NLL (and perplexity), and the MDM
// Monte-Carlo ELBO with its standard error.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>
#include "objective.h"

// The per-token loss estimates of N sequences x K Monte-Carlo draws (K = 1 for AR, where the NLL is exact), each
// with its draw's masking probability p. mean() is the average over sequences and draws. mc_stderr() is the
// standard error of that mean due to the Monte-Carlo draws alone, for the fixed validation set: sqrt(sum_i v_i) / N
// with v_i the estimated variance of sequence i's mean of K draws; it is what separates two checkpoints evaluated
// on the same set. Independent draws: v_i = sample variance / K.
// Stratified draws t_k = (u + k/K) mod 1 share one u, so they are not independent, and the sample variance would
// count the ELBO integrand's rise over t, which stratification removes. v_i has two parts then:
//  - the draws' own noise: collapsed strata, i.e. the draws sorted by t in neighbouring pairs (the last group a
//    triple when K is odd), each pair's spread taken as that of two independent draws;
//  - what the shared u leaves: the mean of the t_k is frac(K u)/K + const, uniform over a width 1/K, so a rise of b
//    per unit t moves the mean with variance b^2 / (12 K^2); b is the least-squares slope of the K draws over p
//    (= t for eps << 1). The pairs already see 6/K of that term, so (K - 6) b^2 / (12 K^3) is added (K > 6).
struct LossStats {
    int K = 1;
    bool stratified = false;
    std::vector<double> value, p;  // draw k of sequence i at i*K + k

    LossStats(int64_t n_sequences, int draws, bool stratified_draws)
        : K(draws), stratified(stratified_draws), value((size_t)(n_sequences * draws), 0.0),
          p((size_t)(n_sequences * draws), 0.0) {}
    // v = the per-token loss estimate of draw k of sequence i, drawn at masking probability prob (1 for AR).
    void set(int64_t i, int k, double v, double prob) {
        value[(size_t)(i * K + k)] = v;
        p[(size_t)(i * K + k)] = prob;
    }
    // Data parallel: every rank fills its own sequences and leaves the rest 0, so the element-wise sum of these
    // arrays over ranks is the one-process result; sum_arrays(f) calls f on each (f sums it across ranks).
    template <class F> void sum_arrays(F&& f) { f(value); f(p); }

    int64_t sequences() const { return (int64_t)(value.size() / (size_t)K); }
    double mean() const {
        double s = 0;
        for (double x : value) s += x;
        return value.empty() ? NAN : s / (double)value.size();
    }
    double mc_stderr() const {
        if (K < 2 || value.empty()) return 0.0;
        double v = 0;
        std::vector<int> order((size_t)K);
        // Draws in groups taken as independent draws from their union, each adding n * sample variance / K^2:
        // independent draws are one group of K; stratified ones, sorted by t, pairs (the last a triple if K is odd).
        const int g = stratified ? 2 : K;
        for (int64_t i = 0; i < sequences(); i++) {
            const double* f = value.data() + (size_t)(i * K);
            const double* t = p.data() + (size_t)(i * K);
            for (int k = 0; k < K; k++) order[(size_t)k] = k;
            if (stratified) std::sort(order.begin(), order.end(), [&](int a, int b) { return t[a] < t[b]; });
            for (int j0 = 0; j0 + 1 < K; j0 += g) {
                const int n = K - j0 < 2 * g ? K - j0 : g;
                double m = 0, ss = 0;
                for (int j = j0; j < j0 + n; j++) m += f[order[(size_t)j]];
                m /= n;
                for (int j = j0; j < j0 + n; j++) ss += (f[order[(size_t)j]] - m) * (f[order[(size_t)j]] - m);
                v += n * (ss / (n - 1)) / ((double)K * K);
                if (n != g) break;
            }
            if (stratified && K > 6) {  // the shared u: slope of the draws over p
                double tm = 0, fm = 0, stf = 0, stt = 0;
                for (int k = 0; k < K; k++) { tm += t[k]; fm += f[k]; }
                tm /= K;
                fm /= K;
                for (int k = 0; k < K; k++) { stf += (t[k] - tm) * (f[k] - fm); stt += (t[k] - tm) * (t[k] - tm); }
                const double b = stt > 0 ? stf / stt : 0.0;
                v += (K - 6) * b * b / (12.0 * K * K * K);
            }
        }
        return sqrt(v) / (double)sequences();
    }
};

// Perplexity as the seed prints it: exp(min(20, loss)).
inline double perplexity(double loss) { return exp(loss < 20 ? loss : 20); }

// The validation pass shared by every trainer. AR: mean next-token NLL over the first N sequences of the
// shuffled validation set. MDM: the Monte-Carlo ELBO with K draws per sequence (llmc/objective.h
// make_mdm_eval_batch: keyed by eval seed, draw k and sequence index, so every evaluation of every checkpoint
// uses the same t's and masks). `forward(inputs, targets, weight, rows, row_loss)` runs the model with dropout
// off on `rows` sequences and writes the per-position cross-entropy (rows*S values) into row_loss.
// Data parallel: rank r of W evaluates batches r, r + W, ... (all K draws of a batch on one rank) and leaves the
// other sequences' sums 0, so summing the ranks' stats element-wise gives exactly the one-process result.
template <class Sampler, class Forward>
LossStats run_validation(const Sampler& val, int64_t n_sequences, int S, int micro_batch, bool mdm, int K,
                         bool stratified, float eps, uint32_t seed, int mask_id, Forward&& forward, int rank = 0,
                         int world = 1) {
    if (!mdm) K = 1;
    const int64_t N = val.size() < n_sequences ? val.size() : n_sequences;
    const int B = micro_batch;
    LossStats stats(N, K, mdm && stratified);
    std::vector<int> y((size_t)B * (S + 1)), inputs((size_t)B * S), targets((size_t)B * S);
    std::vector<float> weight((size_t)B * S), row_loss((size_t)B * S);
    for (int k = 0; k < K; k++) {
        for (int64_t i0 = 0; i0 < N; i0 += B) {
            if ((i0 / B) % world != rank) continue;
            const int rows = (int)(N - i0 < B ? N - i0 : B);
            for (int b = 0; b < rows; b++) val.get_sample(i0 + b, y.data() + (size_t)b * (S + 1));
            if (mdm)
                make_mdm_eval_batch(inputs.data(), targets.data(), weight.data(), y.data(), rows, S, mask_id, eps,
                                    seed, k, K, stratified, (uint32_t)i0);
            else
                make_ar_batch(inputs.data(), targets.data(), weight.data(), y.data(), rows, S);
            forward(inputs.data(), targets.data(), weight.data(), rows, row_loss.data());
            // Per-token estimate of one sequence: sum_s weight*CE*rows — the mean CE for AR, and
            // (sum over masked positions of CE/p) / S for MDM.
            for (int b = 0; b < rows; b++) {
                double v = 0;
                for (int s = 0; s < S; s++) v += (double)weight[(size_t)b * S + s] * row_loss[(size_t)b * S + s];
                const double p = mdm ? mdm_eval_prob(seed, (uint32_t)(i0 + b), k, K, stratified, eps) : 1.0;
                stats.set(i0 + b, k, v * rows, p);
            }
        }
    }
    return stats;
}
