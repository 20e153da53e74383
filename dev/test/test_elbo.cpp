// The MDM Monte-Carlo ELBO estimator (llmc/eval.h run_validation + llmc/objective.h) on a fixed model and the
// bundled validation data: estimates with more draws converge, the reported standard error shrinks as
// 1/sqrt(K) and describes the actual spread of independent estimates, stratified t agrees with independent t.
#include "dev/cpu/reference.h"
#include "dev/test/test.h"
#include "llmc/dataset.h"
#include "llmc/eval.h"
#include "llmc/sampler.h"

int main() {
    const int S = 32, N = 4, B = 4;
    ModelConfig c = model_preset("tiny", S);
    ref::Model<float> model(c);
    model.init_weights(7);
    IndexedDataset ds;
    ds.open_or_die("dev/data/c4_val");
    Sampler val;
    std::string err;
    CHECK(build_validation_sampler(val, ds, S, N, 1234, &err), "validation sampler: %s", err.c_str());
    const ref::StepKeys keys{0, 0, 0, 0.0f, 0.0f};
    auto elbo = [&](int K, bool stratified, uint32_t seed) {
        return run_validation(val, N, S, B, true, K, stratified, 1e-3f, seed, c.mask_id,
                              [&](const int* in, const int* tgt, const float* w, int rows, float* row_loss) {
                                  model.forward(in, tgt, w, rows, false, keys);
                                  std::copy(model.row_loss.begin(), model.row_loss.begin() + (size_t)rows * S, row_loss);
                              });
    };
    // Reference value: many draws.
    LossStats ref = elbo(256, false, 99);
    printf("K=256 independent: ELBO %.4f +- %.4f nats/token\n", ref.mean(), ref.mc_stderr());
    CHECK(ref.sequences() == N, "sequences %lld", (long long)ref.sequences());
    CHECK(ref.mean() > 9 && ref.mean() < 13, "random model ELBO near ln(50304) = 10.8: %.3f", ref.mean());

    // Independent K=16 estimates with different seeds scatter around the reference as their s.e. says.
    const int trials = 8;
    double z2 = 0, se16 = 0;
    for (int t = 0; t < trials; t++) {
        LossStats e = elbo(16, false, 1000 + t);
        double se = sqrt(e.mc_stderr() * e.mc_stderr() + ref.mc_stderr() * ref.mc_stderr());
        double z = (e.mean() - ref.mean()) / se;
        z2 += z * z;
        se16 += e.mc_stderr() / trials;
        CHECK(fabs(z) < 4.5, "K=16 seed %d: %.4f vs %.4f is %.1f standard errors away", t, e.mean(), ref.mean(), z);
    }
    // The mean squared z-score estimates (true spread / reported s.e.)^2: near 1 if the s.e. is honest. The
    // per-draw estimate CE/p is heavy-tailed (p near eps is rare but weighs 1/eps), so sample variances are
    // noisy and the bounds are wide; a missing sqrt(K) or a variance-for-s.e. slip moves it by >= 4x.
    double ratio = z2 / trials;
    printf("K=16: mean s.e. %.4f, mean squared z-score %.2f over %d seeds\n", se16, ratio, trials);
    CHECK(ratio > 0.08 && ratio < 4.0, "reported standard error does not match the spread: mean z^2 = %.2f", ratio);
    // s.e. shrinks as 1/sqrt(K): K 16 -> 256 is a factor sqrt(16) = 4.
    double shrink = se16 / ref.mc_stderr();
    CHECK(shrink > 2.5 && shrink < 6.5, "s.e. ratio K=16 / K=256 = %.2f, expected ~4", shrink);

    // Stratified t: same expectation; its s.e. (computed as if independent) must not exceed independent draws' much.
    LossStats st = elbo(64, true, 5);
    double z = (st.mean() - ref.mean()) / sqrt(st.mc_stderr() * st.mc_stderr() + ref.mc_stderr() * ref.mc_stderr());
    printf("K=64 stratified: ELBO %.4f +- %.4f (%.1f s.e. from K=256 independent)\n", st.mean(), st.mc_stderr(), z);
    CHECK(fabs(z) < 4.5, "stratified estimate %.4f vs %.4f: %.1f s.e.", st.mean(), ref.mean(), z);
    // Determinism: the same seed gives the same draws and the same value.
    CHECK(elbo(4, false, 3).mean() == elbo(4, false, 3).mean(), "ELBO is deterministic for a seed");
    return test_summary();
}
