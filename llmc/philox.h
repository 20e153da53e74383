// llmc/philox.h — Philox4x32-10 counter-based RNG (Salmon et al., SC'11, "Parallel random numbers: as
// easy as 1, 2, 3") and the project's keyed draws.
//
// Every random number in the project is a pure function of (seed, purpose, step, sample, sub, idx), so the
// CPU reference, the CUDA kernels, any number of GPUs and a resumed run all draw the same masks and
// dropout patterns. This deliberately replaces the seed's stateful torch/numpy generators.
//
// Layout of one draw: counter = {idx >> 2, sub, sample, step}, key = {seed, purpose}; the four 32-bit outputs
// of one Philox call serve idx, idx+1, idx+2, idx+3 (lane idx & 3), so a GPU thread that handles four
// consecutive elements makes one call.
#pragma once
#include <cmath>
#include <cstdint>
#include "utils.h"

struct Philox4 {
    uint32_t v[4];
};

LLMC_HD inline void philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

// The Random123 reference algorithm: 10 rounds, key bumped by the Weyl constants between rounds.
LLMC_HD inline Philox4 philox4x32_10(Philox4 ctr, uint32_t k0, uint32_t k1) {
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    for (int round = 0; round < 10; round++) {
        if (round > 0) { k0 += W0; k1 += W1; }
        uint32_t hi0, lo0, hi1, lo1;
        philox_mulhilo(M0, ctr.v[0], &hi0, &lo0);
        philox_mulhilo(M1, ctr.v[2], &hi1, &lo1);
        Philox4 next = {{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
        ctr = next;
    }
    return ctr;
}

// What a draw is for. Part of the Philox key, so streams for different purposes never overlap.
enum RngPurpose : uint32_t {
    RNG_INIT = 1,           // weight init: sample = tensor id, idx = element
    RNG_DROPOUT_EMB = 2,    // embedding-output dropout: idx = position*C + channel
    RNG_DROPOUT_ATTN = 3,   // attention-branch output dropout: sub = layer, idx = position*C + channel
    RNG_DROPOUT_MLP = 4,    // MLP-branch output dropout: sub = layer, idx = position*C + channel
    RNG_DROPOUT_PROB = 5,   // attention-probability dropout: sub = layer, idx = (head*T + query)*T + key
    RNG_MDM_T = 6,          // MDM noise level t of a training sequence: idx = 0
    RNG_MDM_MASK = 7,       // MDM per-token mask of a training sequence: idx = position
    RNG_SHUFFLE_DOCS = 8,   // sampler: document-order shuffle
    RNG_SHUFFLE_SAMPLES = 9,// sampler: sample-order shuffle
    RNG_EVAL_T = 10,        // MC-ELBO: t of validation sequence `sample`, MC draw `step`
    RNG_EVAL_MASK = 11,     // MC-ELBO: masks of validation sequence `sample`, MC draw `step`
    RNG_GENERATE = 12,      // sampling / generation noise
    RNG_MDM_AR = 13,        // MDM --ar-ratio: whether a training sequence gets suffix masking: idx = 0
};

// One 32-bit draw keyed by (seed, purpose, step, sample, sub, idx).
LLMC_HD inline uint32_t rng_u32(uint32_t seed, uint32_t purpose, uint32_t step, uint32_t sample, uint32_t sub,
                                uint32_t idx) {
    Philox4 ctr = {{idx >> 2, sub, sample, step}};
    return philox4x32_10(ctr, seed, purpose).v[idx & 3];
}

// Uniform in [0, 1) with 24 random bits: exactly representable in float, so float and double code and the
// GPU compare it against a threshold with identical results.
LLMC_HD inline float u32_to_uniform(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

LLMC_HD inline float rng_uniform(uint32_t seed, uint32_t purpose, uint32_t step, uint32_t sample, uint32_t sub,
                                 uint32_t idx) {
    return u32_to_uniform(rng_u32(seed, purpose, step, sample, sub, idx));
}

// Dropout decision for one element: dropped with probability p (kept values are scaled by 1/(1-p) by the
// caller). p = 0 keeps everything without drawing.
LLMC_HD inline bool dropout_keep(float p, uint32_t seed, uint32_t purpose, uint32_t step, uint32_t sample,
                                 uint32_t sub, uint32_t idx) {
    return p <= 0.0f || rng_uniform(seed, purpose, step, sample, sub, idx) >= p;
}

// Standard normal (host side, double) by Box–Muller from one Philox call: counter = {idx, sub, sample, step},
// lanes 0 and 1. Used for weight init only, which happens on the host for every trainer.
inline double rng_normal(uint32_t seed, uint32_t purpose, uint32_t step, uint32_t sample, uint32_t sub,
                         uint32_t idx) {
    Philox4 r = philox4x32_10(Philox4{{idx, sub, sample, step}}, seed, purpose);
    double u1 = ((double)r.v[0] + 1.0) / 4294967296.0;  // (0, 1]: log is finite
    double u2 = (double)r.v[1] / 4294967296.0;           // [0, 1)
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

// Unbiased integer in [0, n) (n >= 1) from a stream of u32 draws, by Lemire's multiply-and-reject method.
// `next` is called until a draw is accepted; with n << 2^32 it almost never needs a second draw.
template <class NextU32>
inline uint32_t rng_bounded(uint32_t n, NextU32&& next) {
    uint64_t m = (uint64_t)next() * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)next() * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}
