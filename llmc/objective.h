// llmc/objective.h — the two training objectives as batch construction on the host: what the network sees
// (inputs), what it must predict (targets) and how much each position's cross-entropy counts (weight).
// Loss = sum_n weight[n] * CE[n]. This is where AR and MDM differ (with the attention mask); every trainer —
// the CPU reference, train_gpt.cu, train_mdm.cu — builds its batches here. y is [B, S+1] (each training sample
// holds S+1 tokens); outputs are [B*S].
#pragma once
#include <cstdint>
#include <vector>
#include "mdm.h"

// AR: inputs = y[:, 0:S], targets = y[:, 1:S+1], weight = 1/(B*S) (token-mean CE).
template <class T>
void make_ar_batch(int* inputs, int* targets, T* weight, const int* y, int B, int S) {
    const T w = (T)(1.0 / ((double)B * S));
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) {
            inputs[b * S + s] = y[(size_t)b * (S + 1) + s];
            targets[b * S + s] = y[(size_t)b * (S + 1) + s + 1];
            weight[b * S + s] = w;
        }
}

// MDM with given per-row masking probabilities p[b]: position s of row b is masked iff
// mdm_is_masked(seed, purpose_mask, step, sample0 + b, s, p[b]); inputs = masked ? mask_id : x;
// targets = x = y[:, 0:S]; weight = masked ? 1/(p_b*B*S) : 0. Returns the number of masked tokens.
template <class T>
int mdm_apply_mask(int* inputs, int* targets, T* weight, const int* y, int B, int S, int mask_id, const float* p,
                   uint32_t seed, uint32_t purpose_mask, uint32_t step, uint32_t sample0) {
    int count = 0;
    for (int b = 0; b < B; b++) {
        const T w = (T)(1.0 / ((double)p[b] * B * S));
        for (int s = 0; s < S; s++) {
            const int x = y[(size_t)b * (S + 1) + s];
            const bool masked = mdm_is_masked(seed, purpose_mask, step, sample0 + (uint32_t)b, (uint32_t)s, p[b]);
            inputs[b * S + s] = masked ? mask_id : x;
            targets[b * S + s] = x;
            weight[b * S + s] = masked ? w : (T)0;
            count += masked;
        }
    }
    return count;
}

// MDM training batch: p_b = mdm_train_prob (t_b = mdm_time(seed, RNG_MDM_T, step, sample0+b), p = (1-eps)t + eps,
// with the low-noise option), masks from RNG_MDM_MASK; rows chosen by mdm_suffix_row (--ar-ratio) keep their
// masked count K but have it moved to the last mdm_suffix_count(K, S) positions (same weight 1/(p_b*B*S)).
// p_out (size B, optional) receives the p_b. Returns the number of masked tokens.
template <class T>
int make_mdm_batch(int* inputs, int* targets, T* weight, const int* y, int B, int S, int mask_id, float eps,
                   uint32_t seed, uint32_t step, uint32_t sample0, float* p_out = nullptr,
                   const MdmOptions& opt = MdmOptions()) {
    std::vector<float> p(B);
    for (int b = 0; b < B; b++) p[b] = mdm_train_prob(seed, step, sample0 + (uint32_t)b, eps, opt);
    if (p_out)
        for (int b = 0; b < B; b++) p_out[b] = p[b];
    int count = mdm_apply_mask(inputs, targets, weight, y, B, S, mask_id, p.data(), seed, RNG_MDM_MASK, step, sample0);
    for (int b = 0; b < B; b++) {
        if (!mdm_suffix_row(seed, step, sample0 + (uint32_t)b, opt.ar_ratio)) continue;
        int K = 0;  // weights are 1/(p*B*S) != 0 exactly on the masked positions
        for (int s = 0; s < S; s++) K += weight[(size_t)b * S + s] != (T)0;
        const int masked = mdm_suffix_count(K, S);
        const T w = (T)(1.0 / ((double)p[b] * B * S));
        for (int s = 0; s < S; s++) {
            const bool m = s >= S - masked;
            inputs[(size_t)b * S + s] = m ? mask_id : y[(size_t)b * (S + 1) + s];
            weight[(size_t)b * S + s] = m ? w : (T)0;
        }
        count += masked - K;
    }
    return count;
}

// MC-ELBO validation batch: draw k (of K) of validation sequences sample0 .. sample0+B-1 (llmc/mdm.h
// mdm_eval_prob: independent or stratified t; masks keyed by RNG_EVAL_MASK, draw k, sequence index).
template <class T>
int make_mdm_eval_batch(int* inputs, int* targets, T* weight, const int* y, int B, int S, int mask_id, float eps,
                        uint32_t seed, int k, int K, bool stratified, uint32_t sample0) {
    std::vector<float> p(B);
    for (int b = 0; b < B; b++) p[b] = mdm_eval_prob(seed, sample0 + (uint32_t)b, k, K, stratified, eps);
    return mdm_apply_mask(inputs, targets, weight, y, B, S, mask_id, p.data(), seed, RNG_EVAL_MASK, (uint32_t)k, sample0);
}
