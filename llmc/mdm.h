// llmc/mdm.h — the masked-diffusion corruption, shared bit-for-bit by the CPU reference and the CUDA kernels.
//
// Per sequence: t ~ U[0,1), p = (1-eps)*t + eps; per token: masked iff u < p (u ~ U[0,1) i.i.d.), and a masked
// token is replaced by the mask id. All draws are keyed Philox draws (llmc/philox.h): training uses purposes
// RNG_MDM_T / RNG_MDM_MASK with (step, global sample index); the MC-ELBO uses RNG_EVAL_T / RNG_EVAL_MASK with
// (MC draw k, validation sample index), so every evaluation of every checkpoint sees the same t's and masks.
#pragma once
#include <cmath>
#include "philox.h"

// The noise level of one sequence.
LLMC_HD inline float mdm_time(uint32_t seed, uint32_t purpose_t, uint32_t step, uint32_t sample) {
    return rng_uniform(seed, purpose_t, step, sample, 0, 0);
}

// Stratified ("low-discrepancy") time of MC draw k of K: t_k = (u + k/K) mod 1, u = the sequence's draw.
LLMC_HD inline float mdm_time_stratified(float u, int k, int K) {
    float t = u + (float)k / (float)K;
    return t >= 1.0f ? t - 1.0f : t;
}

// Masking probability p = (1-eps)*t + eps, written as an explicit fma so host and device round identically.
LLMC_HD inline float mdm_mask_prob(float t, float eps) { return fmaf(1.0f - eps, t, eps); }

// Whether position `pos` of the sequence is masked at masking probability p.
LLMC_HD inline bool mdm_is_masked(uint32_t seed, uint32_t purpose_mask, uint32_t step, uint32_t sample,
                                  uint32_t pos, float p) {
    return rng_uniform(seed, purpose_mask, step, sample, 0, pos) < p;
}

// Masking probability of MC draw k (of K) for validation sequence `sample` in the MC-ELBO: independent t per
// draw by default (the seed's num-mc replication), or stratified t_k = (u + k/K) mod 1 with one u per sequence.
// Masks of that draw are mdm_is_masked(seed, RNG_EVAL_MASK, k, sample, pos, p).
LLMC_HD inline float mdm_eval_prob(uint32_t seed, uint32_t sample, int k, int K, bool stratified, float eps) {
    float t = stratified ? mdm_time_stratified(mdm_time(seed, RNG_EVAL_T, 0, sample), k, K)
                         : mdm_time(seed, RNG_EVAL_T, (uint32_t)k, sample);
    return mdm_mask_prob(t, eps);
}
