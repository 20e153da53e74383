// dev/test/test_gradcheck.cpp — finite-difference check (fp64) of the CPU reference's backward for every
// parameter tensor, both objectives (AR causal, MDM bidirectional with a real random mask and 1/p weights), with
// hidden and attention dropout ON (the masks are pure functions of the Philox keys, not of the weights, so the
// loss stays a smooth function of the parameters and finite differences are valid).
//
// Derivative estimate: the fourth-order central stencil (f(-2h) - 8f(-h) + 8f(h) - f(2h)) / 12h with h = 1e-4.
// Its truncation error is ~h^4/30 * f^(5) ~ 1e-17 and its rounding error ~ 1.5 * eps_loss / h ~ 1e-11 (the
// loss, ~4, is known to ~1e-15 in double), so any element whose gradient is above ~1e-5 must agree to a
// relative 1e-6; a wrong backward is off by O(1). Elements whose |gradient| is below ABS_FLOOR are instead held
// to an absolute error ABS_TOL (they cannot show a relative 1e-6 through rounding noise), and are counted.
#include <chrono>
#include <cstdio>
#include <vector>
#include "dev/cpu/reference.h"
#include "dev/test/test.h"

using Clock = std::chrono::steady_clock;

static const double FD_H = 1e-4, REL_TOL = 1e-6, ABS_FLOOR = 1e-5, ABS_TOL = 1e-11;

static ModelConfig tiny_config() {
    ModelConfig c;
    c.vocab_size = 60;
    c.padded_vocab = 64;
    c.mask_id = 60;
    c.d_model = 16;
    c.n_layer = 2;
    c.n_head = 2;
    c.head_dim = 8;
    c.ffn = 32;
    c.seq_len = 8;
    return c;
}

// Weights large enough that every path (attention pattern, SwiGLU curvature, gains) carries gradient:
// 2-D weights N(0, 1/fan_in) (embedding N(0, 0.5^2)), gains 1 + N(0, 0.3^2).
static void randomize(ref::Model<double>& m, uint32_t seed) {
    const ModelConfig& c = m.cfg;
    size_t sizes[NUM_PARAM_TENSORS];
    param_sizes(c, sizes);
    const double fan_in[NUM_PARAM_TENSORS] = {0, 0, (double)c.d_model, (double)c.attn_dim(), 0, (double)c.d_model,
                                              (double)c.ffn, 0};
    for (int k = 0; k < NUM_PARAM_TENSORS; k++)
        for (size_t i = 0; i < sizes[k]; i++) {
            double z = rng_normal(seed, RNG_GENERATE, 0, (uint32_t)k, 0, (uint32_t)i);
            if (!param_has_decay(k)) m.param(k)[i] = 1.0 + 0.3 * z;
            else if (k == P_WTE) m.param(k)[i] = 0.5 * z;
            else m.param(k)[i] = z / sqrt(fan_in[k]);
        }
}

struct Objective {
    const char* name;
    bool causal;
    std::vector<int> inputs, targets;
    std::vector<double> weight;
};

static void check_objective(ref::Model<double>& m, Objective& ob, const ref::StepKeys& keys, int B) {
    const ModelConfig& c = m.cfg;
    auto loss_at = [&]() { return m.forward(ob.inputs.data(), ob.targets.data(), ob.weight.data(), B, ob.causal, keys); };
    m.zero_grad();
    const double loss0 = loss_at();
    m.backward(1.0);
    std::vector<double> analytic = m.grads;
    printf("%s: loss %.6f\n", ob.name, loss0);

    // Dropout must really be active, or the check would not cover the masks.
    ref::StepKeys eval = keys;
    eval.hidden_dropout = eval.attn_dropout = 0;
    const double loss_eval = m.forward(ob.inputs.data(), ob.targets.data(), ob.weight.data(), B, ob.causal, eval);
    CHECK(fabs(loss_eval - loss0) > 1e-6, "%s: dropout changed nothing (%.9f vs %.9f)", ob.name, loss_eval, loss0);

    size_t sizes[NUM_PARAM_TENSORS];
    param_sizes(c, sizes);
    uint32_t pick = 0;
    for (int k = 0; k < NUM_PARAM_TENSORS; k++) {
        std::vector<size_t> idx;
        if (sizes[k] <= 48) {
            for (size_t i = 0; i < sizes[k]; i++) idx.push_back(i);
        } else {
            for (int r = 0; r < 32; r++)
                idx.push_back(rng_u32(99, RNG_GENERATE, 1, (uint32_t)k, 0, pick++) % sizes[k]);
        }
        if (k == P_WTE) {  // the mask-token row, a padding row and the row of the first input token
            const int rows[3] = {c.mask_id, c.padded_vocab - 1, ob.inputs[0]};
            for (int r : rows)
                for (int col : {0, 5, c.d_model - 1}) idx.push_back((size_t)r * c.d_model + col);
        }
        double worst = 0;
        int small = 0, fails = 0;
        for (size_t i : idx) {
            double& p = m.param(k)[i];
            const double p0 = p;
            double f[4];
            const double steps[4] = {-2, -1, 1, 2};
            for (int s = 0; s < 4; s++) {
                p = p0 + steps[s] * FD_H;
                f[s] = loss_at();
            }
            p = p0;
            const double fd = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * FD_H);
            const double an = analytic[m.offset(k) + i], err = fabs(fd - an);
            const double scale = fmax(fabs(fd), fabs(an));
            if (scale < ABS_FLOOR) {
                small++;
                if (err > ABS_TOL) {
                    fails++;
                    printf("  %s[%zu]: fd %.12e analytic %.12e abs err %.3e\n", param_name(k), i, fd, an, err);
                }
                continue;
            }
            const double rel = err / scale;
            if (rel > worst) worst = rel;
            if (rel > REL_TOL) {
                fails++;
                printf("  %s[%zu]: fd %.12e analytic %.12e rel err %.3e\n", param_name(k), i, fd, an, rel);
            }
        }
        printf("  %-10s %3zu elements, worst rel err %.3e (%d below |g| %.0e, held to abs %.0e)\n", param_name(k),
               idx.size(), worst, small, ABS_FLOOR, ABS_TOL);
        CHECK(fails == 0, "%s: %s: %d of %zu elements disagree with finite differences", ob.name, param_name(k), fails,
              idx.size());
        CHECK(small * 2 < (int)idx.size(), "%s: %s: too many tiny gradients (%d of %zu): weak check", ob.name,
              param_name(k), small, idx.size());
    }
}

int main() {
    const auto t0 = Clock::now();
#ifdef _OPENMP
    omp_set_num_threads(1);  // tiny problem: thread start-up would dominate (thread-count independence is tested in test_reference)
#endif
    const ModelConfig c = tiny_config();
    const int B = 2, S = c.seq_len, N = B * S;
    ref::Model<double> m(c);
    randomize(m, 7);

    std::vector<int> y((size_t)B * (S + 1));
    for (size_t i = 0; i < y.size(); i++) y[i] = (int)(rng_u32(5, RNG_GENERATE, 2, 0, 0, (uint32_t)i) % c.vocab_size);
    const ref::StepKeys keys{1234, 7, 3, 0.1f, 0.1f};

    Objective ar{"AR", true, std::vector<int>(N), std::vector<int>(N), std::vector<double>(N)};
    make_ar_batch(ar.inputs.data(), ar.targets.data(), ar.weight.data(), y.data(), B, S);
    check_objective(m, ar, keys, B);

    // MDM: pick the first training step whose random masks leave both masked and unmasked tokens in every row.
    Objective mdm{"MDM", false, std::vector<int>(N), std::vector<int>(N), std::vector<double>(N)};
    float p[2];
    uint32_t step = 0;
    for (;; step++) {
        make_mdm_batch(mdm.inputs.data(), mdm.targets.data(), mdm.weight.data(), y.data(), B, S, c.mask_id, 1e-3f,
                            keys.seed, step, keys.sample0, p);
        int mixed = 0;
        for (int b = 0; b < B; b++) {
            int cnt = 0;
            for (int s = 0; s < S; s++) cnt += mdm.inputs[b * S + s] == c.mask_id;
            mixed += cnt > 0 && cnt < S;
        }
        if (mixed == B) break;
    }
    printf("MDM step %u: p = %.4f, %.4f\n", step, p[0], p[1]);
    ref::StepKeys mkeys = keys;
    mkeys.step = step;
    check_objective(m, mdm, mkeys, B);

    printf("time %.2f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
    return test_summary();
}
