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

// IEEE round-to-nearest float division on host and device: nvcc's --use_fast_math turns `/` into an
// approximate division in device code, which would move a stratified t by an ulp and flip masks.
LLMC_HD inline float mdm_div_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fdiv_rn(a, b);
#else
    return a / b;
#endif
}

// Stratified ("low-discrepancy") time of MC draw k of K: t_k = (u + k/K) mod 1, u = the sequence's draw.
LLMC_HD inline float mdm_time_stratified(float u, int k, int K) {
    float t = u + mdm_div_rn((float)k, (float)K);
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

// The seed's optional training-time corruption variants (seed_spec §3, off by default).
struct MdmOptions {
    float ar_ratio = 0.0f;            // --ar-ratio: probability of suffix masking per sequence
    bool low_noise = false;           // --low-noise-start
    uint32_t low_noise_iters = 1000;  // --low-noise-iter: steps 0 .. iters-1 are low-noise
    float low_noise_ratio = 0.5f;     // --low-noise-ratio
};

// Masking probability of training sequence `sample` at `step`: mdm_mask_prob(t, eps), t scaled by the
// low-noise ratio early in training.
LLMC_HD inline float mdm_train_prob(uint32_t seed, uint32_t step, uint32_t sample, float eps, const MdmOptions& o) {
    float t = mdm_time(seed, RNG_MDM_T, step, sample);
    if (o.low_noise && step < o.low_noise_iters) t *= o.low_noise_ratio;
    return mdm_mask_prob(t, eps);
}

// Whether training sequence `sample` gets suffix masking at `step` (never when ar_ratio <= 0).
LLMC_HD inline bool mdm_suffix_row(uint32_t seed, uint32_t step, uint32_t sample, float ar_ratio) {
    return ar_ratio > 0.0f && rng_uniform(seed, RNG_MDM_AR, step, sample, 0, 0) < ar_ratio;
}

// Masked positions of a suffix row whose i.i.d. draws masked K of S: the last K, or all S when K = 0 (the seed
// slices mask[-K:], and [-0:] is the whole row).
LLMC_HD inline int mdm_suffix_count(int K, int S) { return K == 0 ? S : K; }
