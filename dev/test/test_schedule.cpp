// The seed's sample-based warmup + cosine schedule (seed_spec §2.2) at its landmarks.
#include "dev/test/test.h"
#include "llmc/schedule.h"

int main() {
    // Quickstart AR run: U = 99,952,399 tokens x 50 epochs / 2048 = 2,440,244 samples, 9,532 steps of 256.
    int64_t train_samples = 99952399LL * 50 / 2048;
    CHECK(train_samples == 2440244, "train samples %lld", (long long)train_samples);
    LrSchedule s = seed_schedule(2e-4, 2e-5, train_samples);
    CHECK(s.warmup_samples == 24402, "warmup %lld", (long long)s.warmup_samples);
    CHECK(s.lr_for_step(1, 256) == 0.0, "first optimizer step runs at lr 0");
    CHECK(fabs(s.lr_for_step(2, 256) - 2e-4 * 256 / 24402) < 1e-15, "second step: linear warmup");
    CHECK(fabs(s.lr_at(24402) - 2e-4) < 1e-18, "end of warmup reaches max lr");
    double mid = s.lr_at(24402 + (train_samples - 24402) / 2);
    CHECK(fabs(mid - 1.1e-4) < 1e-9, "half-way through the cosine: (max+min)/2, got %g", mid);
    CHECK(fabs(s.lr_at(train_samples) - 2e-5) < 1e-15, "cosine ends at min lr");
    CHECK(s.lr_at(train_samples + 1) == 2e-5, "flat min lr after decay");
    // The last step of the run (k = 9532) sits just before the end of the decay.
    double last = s.lr_for_step(9532, 256);
    CHECK(last > 2e-5 && last < 2.0001e-5 + 1e-9, "last step lr %g", last);
    // Monotone: rising during warmup, falling after.
    bool up = true, down = true;
    for (int64_t x = 1; x <= 24402; x += 97) up = up && s.lr_at(x) > s.lr_at(x - 1);
    for (int64_t x = 24403; x <= train_samples; x += 997) down = down && s.lr_at(x) <= s.lr_at(x - 1);
    CHECK(up && down, "monotone warmup and decay");
    LrSchedule nw = seed_schedule(1e-3, 1e-4, 50);  // 50 samples: W = 0, pure cosine from the start
    CHECK(nw.warmup_samples == 0 && nw.lr_at(0) == 1e-3, "no warmup when train_samples < 100");
    return test_summary();
}
