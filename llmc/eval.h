// llmc/eval.h — validation statistics shared by every trainer: AR mean NLL (and perplexity), and the MDM
// Monte-Carlo ELBO with its standard error.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>
#include "objective.h"

// Accumulates per-token loss estimates of N sequences x K Monte-Carlo draws (K = 1 for AR, where the NLL is
// exact). mean() is the average over sequences and draws. mc_stderr() is the standard error of that mean due
// to the Monte-Carlo draws alone, for the fixed validation set: sqrt(sum_i var_i / K) / N with var_i the
// sample variance of sequence i's K draws; it is what separates two checkpoints evaluated on the same set.
struct LossStats {
    int K = 1;
    std::vector<double> sum, sumsq;  // per sequence over its draws

    explicit LossStats(int draws = 1) : K(draws) {}
    // value = the per-token loss estimate of draw k of sequence i.
    void add(int64_t i, double value) {
        if ((size_t)i >= sum.size()) { sum.resize((size_t)i + 1, 0.0); sumsq.resize((size_t)i + 1, 0.0); }
        sum[(size_t)i] += value;
        sumsq[(size_t)i] += value * value;
    }
    int64_t sequences() const { return (int64_t)sum.size(); }
    double mean() const {
        double s = 0;
        for (double x : sum) s += x;
        return sum.empty() ? NAN : s / ((double)sum.size() * K);
    }
    double mc_stderr() const {
        if (K < 2 || sum.empty()) return 0.0;
        double v = 0;
        for (size_t i = 0; i < sum.size(); i++) {
            double m = sum[i] / K;
            v += (sumsq[i] - K * m * m) / (K - 1) / K;  // variance of sequence i's mean of K draws
        }
        return sqrt(v > 0 ? v : 0) / (double)sum.size();
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
    LossStats stats(K);
    stats.sum.assign((size_t)N, 0.0);
    stats.sumsq.assign((size_t)N, 0.0);
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
                stats.add(i0 + b, v * rows);
            }
        }
    }
    return stats;
}
