// llmc/schedule.h — the seed's learning-rate schedule (Megatron OptimizerParamScheduler, seed_spec §2.2).
//
// The schedule is indexed by consumed training SAMPLES s, not steps. Optimizer step k (1-based) runs at
// s = global_batch*(k-1): Megatron's scheduler is stepped once at construction with increment 0 and then after
// each optimizer step, so the FIRST step uses lr(0) = 0. We reproduce that deliberately.
#pragma once
#include <cmath>
#include <cstdint>

struct LrSchedule {
    double max_lr = 2e-4;
    double min_lr = 2e-5;
    int64_t warmup_samples = 0;  // W; seed default: train_samples / 100 (integer division)
    int64_t decay_samples = 0;   // D; seed: train_samples (cosine reaches min_lr there)

    // lr at s consumed samples: linear warmup to max_lr at s = W, cosine to min_lr at s = D, then flat.
    double lr_at(int64_t s) const {
        if (warmup_samples > 0 && s <= warmup_samples) return max_lr * (double)s / (double)warmup_samples;
        if (s > decay_samples) return min_lr;
        double r = (double)(s - warmup_samples) / (double)(decay_samples - warmup_samples);
        return min_lr + (max_lr - min_lr) * 0.5 * (1.0 + cos(M_PI * r));
    }
    // lr of optimizer step k (1-based) with a global batch of G samples.
    double lr_for_step(int64_t k, int64_t global_batch) const { return lr_at(global_batch * (k - 1)); }
};

// The quickstart scripts' defaults: W = train_samples // 100, D = train_samples.
inline LrSchedule seed_schedule(double max_lr, double min_lr, int64_t train_samples) {
    LrSchedule s;
    s.max_lr = max_lr;
    s.min_lr = min_lr;
    s.warmup_samples = train_samples / 100;
    s.decay_samples = train_samples;
    return s;
}
