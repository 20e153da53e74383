// dev/test/test_reference.cpp — unit checks of the CPU reference (dev/cpu/reference.h): each layer against a
// naive formula written from the spec (or, for backward passes, against fp64 finite differences), RoPE's
// algebraic properties, AdamW and clipping against hand-computed numbers, the objective helpers, and model-level
// properties (causality, bit-identical results for any OpenMP thread count, init statistics).
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>
#include "dev/cpu/reference.h"
#include "dev/test/test.h"

using Clock = std::chrono::steady_clock;
using Vec = std::vector<double>;

// Deterministic N(0,1) test data: stream `tag`, element i.
static Vec randn(size_t n, uint32_t tag, double scale = 1.0) {
    Vec v(n);
    for (size_t i = 0; i < n; i++) v[i] = scale * rng_normal(77, RNG_GENERATE, 3, tag, 0, (uint32_t)i);
    return v;
}
static std::vector<float> to_float(const Vec& v) { return std::vector<float>(v.begin(), v.end()); }
static double max_abs_diff(const Vec& a, const Vec& b) {
    double m = 0;
    for (size_t i = 0; i < a.size(); i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

// ||fd - analytic|| / ||analytic|| over all elements of x, where fd is the fourth-order central difference
// (h = 1e-4) of the scalar loss() with respect to each x[i].
static double fd_rel_error(Vec& x, const Vec& analytic, const std::function<double()>& loss) {
    const double h = 1e-4;
    Vec fd(x.size());
    for (size_t i = 0; i < x.size(); i++) {
        const double x0 = x[i];
        double f[4];
        const double st[4] = {-2, -1, 1, 2};
        for (int s = 0; s < 4; s++) {
            x[i] = x0 + st[s] * h;
            f[s] = loss();
        }
        x[i] = x0;
        fd[i] = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h);
    }
    return rel_error(analytic.data(), fd.data(), x.size());
}
static double dot(const Vec& a, const Vec& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
    return s;
}

static void test_bf16() {
    const float one = 1.0f;
    CHECK(ref::round_to_bf16(one) == one, "1 must be exact");
    CHECK(ref::round_to_bf16(1.0f + 0x1p-8f) == 1.0f, "tie 1+2^-8 must round to even (1)");
    CHECK(ref::round_to_bf16(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f, "tie 1+3*2^-8 must round to even (1+2^-6)");
    CHECK(ref::round_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f, "above the tie must round up");
    CHECK(ref::round_to_bf16(-(1.0f + 0x1p-8f + 0x1p-20f)) == -(1.0f + 0x1p-7f), "sign symmetric");
    CHECK(ref::round_to_bf16(0.02f) == 0.0200195313f, "0.02 -> %.10g", ref::round_to_bf16(0.02f));
    CHECK(std::isinf(ref::round_to_bf16(3.4028235e38f)), "FLT_MAX rounds up to inf in bf16");
    CHECK(std::isnan(ref::round_to_bf16(NAN)), "NaN stays NaN");
    CHECK(ref::round_to_bf16(INFINITY) == INFINITY, "inf stays inf");
}

static void test_dropout() {
    // The shared-Philox run must equal dropout_keep element by element, for unaligned starts too.
    int bad = 0;
    for (uint32_t idx0 : {0u, 1u, 2u, 3u, 4u, 13u, 1000001u}) {
        for (int n : {1, 2, 5, 64}) {
            std::vector<uint8_t> keep(n);
            ref::dropout_mask_run(keep.data(), n, 0.3f, 11, RNG_DROPOUT_ATTN, 4, 9, 2, idx0);
            for (int k = 0; k < n; k++) bad += keep[k] != dropout_keep(0.3f, 11, RNG_DROPOUT_ATTN, 4, 9, 2, idx0 + k);
        }
    }
    CHECK(bad == 0, "dropout_mask_run differs from dropout_keep at %d elements", bad);

    const int B = 2, S = 50, C = 40;
    Vec x = randn((size_t)B * S * C, 1), y = x;
    ref::dropout_forward(y.data(), B, S, C, 0.1f, 5, RNG_DROPOUT_MLP, 3, 100, 1);
    int kept = 0, wrong = 0;
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++)
            for (int c = 0; c < C; c++) {
                size_t i = ((size_t)b * S + s) * C + c;
                bool k = dropout_keep(0.1f, 5, RNG_DROPOUT_MLP, 3, 100 + b, 1, (uint32_t)(s * C + c));
                double want = k ? x[i] / (1.0 - (double)0.1f) : 0.0;
                kept += k;
                wrong += fabs(y[i] - want) > 1e-12 * fabs(want);
            }
    const double n = (double)B * S * C, frac = kept / n, sd = sqrt(0.09 / n);
    CHECK(wrong == 0, "dropout values: %d wrong", wrong);
    CHECK(fabs(frac - 0.9) < 5 * sd, "kept fraction %.4f, want 0.9 +- %.4f", frac, 5 * sd);
    Vec z = x;
    ref::dropout_forward(z.data(), B, S, C, 0.0f, 5, RNG_DROPOUT_MLP, 3, 100, 1);
    CHECK(z == x, "p = 0 must be the identity");
}

static void test_embedding() {
    const int N = 6, C = 5, V = 4;
    const int tok[N] = {3, 1, 3, 0, 3, 2};
    Vec wte = randn((size_t)V * C, 2), out((size_t)N * C), dout = randn((size_t)N * C, 3), dwte((size_t)V * C, 1.0);
    ref::embedding_forward(out.data(), tok, wte.data(), N, C);
    double err = 0;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) err = fmax(err, fabs(out[n * C + c] - wte[tok[n] * C + c]));
    CHECK(err == 0, "embedding forward gather");
    ref::embedding_backward(dwte.data(), dout.data(), tok, N, C);
    for (int c = 0; c < C; c++) {
        double want3 = 1.0 + dout[0 * C + c] + dout[2 * C + c] + dout[4 * C + c];
        CHECK(fabs(dwte[3 * C + c] - want3) < 1e-14, "repeated token must sum its gradients (+= onto 1)");
        CHECK(fabs(dwte[1 * C + c] - (1.0 + dout[1 * C + c])) < 1e-14, "row 1 gradient");
    }
}

static void test_rmsnorm() {
    const int N = 5, C = 12;
    const float eps = 1e-5f;
    Vec x = randn((size_t)N * C, 4), w = randn(C, 5), out((size_t)N * C), rstd(N);
    for (auto& v : w) v += 1.0;
    ref::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, eps);
    double err = 0;
    for (int n = 0; n < N; n++) {
        double ms = 0;
        for (int c = 0; c < C; c++) ms += x[n * C + c] * x[n * C + c] / C;
        for (int c = 0; c < C; c++) err = fmax(err, fabs(out[n * C + c] - x[n * C + c] / sqrt(ms + eps) * w[c]));
    }
    CHECK(err < 1e-14, "rmsnorm forward vs formula: %.3e", err);

    Vec R = randn((size_t)N * C, 6), dx((size_t)N * C), dw(C);
    ref::rmsnorm_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C);
    auto loss = [&]() {
        Vec o((size_t)N * C), r(N);
        ref::rmsnorm_forward(o.data(), r.data(), x.data(), w.data(), N, C, eps);
        return dot(o, R);
    };
    double ex = fd_rel_error(x, dx, loss), ew = fd_rel_error(w, dw, loss);
    printf("rmsnorm backward vs FD: dx %.2e dw %.2e\n", ex, ew);
    CHECK(ex < 1e-8 && ew < 1e-8, "rmsnorm backward vs FD: dx %.3e dw %.3e", ex, ew);
}

static void test_matmul() {
    // Sizes crossing the kernel's tiles (4 rows, 256 columns, 128-deep chunks) and leaving remainders.
    const int N = 7, IC = 150, OC = 300;
    Vec xd = randn((size_t)N * IC, 7), Wd = randn((size_t)OC * IC, 8), dd = randn((size_t)N * OC, 9);
    std::vector<float> x = to_float(xd), W = to_float(Wd), dout = to_float(dd);
    std::vector<float> out((size_t)N * OC), dx((size_t)N * IC, 0.5f), dW((size_t)OC * IC, -0.25f);
    ref::matmul_forward(out.data(), x.data(), W.data(), N, IC, OC);
    ref::matmul_backward(dx.data(), dW.data(), dout.data(), x.data(), W.data(), N, IC, OC);
    Vec ro((size_t)N * OC), rdx((size_t)N * IC, 0.5), rdW((size_t)OC * IC, -0.25);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int i = 0; i < IC; i++) s += (double)x[n * IC + i] * W[(size_t)o * IC + i];
            ro[(size_t)n * OC + o] = s;
            for (int i = 0; i < IC; i++) {
                rdx[n * IC + i] += (double)dout[n * OC + o] * W[(size_t)o * IC + i];
                rdW[(size_t)o * IC + i] += (double)dout[n * OC + o] * x[n * IC + i];
            }
        }
    // fp32 sums of <= 150 terms of unit-scale products: relative error ~1e-7, far under 1e-5.
    double e1 = rel_error(out.data(), ro.data(), ro.size()), e2 = rel_error(dx.data(), rdx.data(), rdx.size()),
           e3 = rel_error(dW.data(), rdW.data(), rdW.size());
    printf("matmul fp32 vs fp64 naive: out %.2e dx %.2e dW %.2e\n", e1, e2, e3);
    CHECK(e1 < 1e-5 && e2 < 1e-5 && e3 < 1e-5, "matmul: out %.3e dx(+=) %.3e dW(+=) %.3e", e1, e2, e3);
    // Each element is the plain in-order sum: identical bits to a serial dot product.
    int bad = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            float s = 0;
            for (int i = 0; i < IC; i++) s += x[n * IC + i] * W[(size_t)o * IC + i];
            bad += s != out[(size_t)n * OC + o];
        }
    CHECK(bad == 0, "matmul forward differs from the in-order fp32 dot product at %d elements", bad);
}

static void test_swiglu() {
    const int N = 4, F = 6;
    Vec in = randn((size_t)N * 2 * F, 10, 2.0), out((size_t)N * F);
    ref::swiglu_forward(out.data(), in.data(), N, F);
    double err = 0;
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++) {
            double g = in[n * 2 * F + f], u = in[n * 2 * F + F + f];
            err = fmax(err, fabs(out[n * F + f] - g / (1 + exp(-g)) * u));
        }
    CHECK(err < 1e-14, "swiglu forward: %.3e", err);
    Vec R = randn((size_t)N * F, 11), din((size_t)N * 2 * F);
    ref::swiglu_backward(din.data(), R.data(), in.data(), N, F);
    double e = fd_rel_error(in, din, [&]() {
        Vec o((size_t)N * F);
        ref::swiglu_forward(o.data(), in.data(), N, F);
        return dot(o, R);
    });
    CHECK(e < 1e-8, "swiglu backward vs FD: %.3e", e);
}

static void test_rope() {
    const int B = 2, S = 9, nh = 2, hd = 8, A = nh * hd;
    const float theta = 10000.0f;
    Vec x = randn((size_t)B * S * 3 * A, 12), y = x;
    ref::rope_forward(y.data(), B, S, nh, hd, theta);
    // Hand value: s = 3, j = 1, hd = 8 -> angle = 3 * 10000^(-1/4) = 0.3.
    {
        const size_t base = ((size_t)0 * S + 3) * 3 * A + 1 * hd;  // Q, head 1, row s = 3 of sequence 0
        double lo = x[base + 1], hi = x[base + 1 + hd / 2];
        double want_lo = lo * cos(0.3) - hi * sin(0.3), want_hi = hi * cos(0.3) + lo * sin(0.3);
        CHECK(fabs(y[base + 1] - want_lo) < 1e-6 && fabs(y[base + 1 + hd / 2] - want_hi) < 1e-6,
              "rope hand value: got (%.8f, %.8f) want (%.8f, %.8f)", y[base + 1], y[base + 5], want_lo, want_hi);
    }
    double norm_err = 0, v_err = 0, p0_err = 0;
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) {
            const size_t row = ((size_t)b * S + s) * 3 * A;
            for (int c = 2 * A; c < 3 * A; c++) v_err = fmax(v_err, fabs(y[row + c] - x[row + c]));
            for (int h = 0; h < 2 * nh; h++)  // Q and K heads
                for (int j = 0; j < hd / 2; j++) {
                    size_t i0 = row + (size_t)h * hd + j, i1 = i0 + hd / 2;
                    double n0 = x[i0] * x[i0] + x[i1] * x[i1], n1 = y[i0] * y[i0] + y[i1] * y[i1];
                    norm_err = fmax(norm_err, fabs(n0 - n1));
                    if (s == 0) p0_err = fmax(p0_err, fabs(y[i0] - x[i0]) + fabs(y[i1] - x[i1]));
                }
        }
    CHECK(norm_err < 1e-12, "rope must preserve each pair's norm: %.3e", norm_err);
    CHECK(v_err == 0, "rope must not touch V");
    CHECK(p0_err == 0, "rope at position 0 is the identity");
    Vec z = y;
    ref::rope_backward(z.data(), B, S, nh, hd, theta);
    CHECK(max_abs_diff(z, x) < 1e-12, "rope backward must invert the forward rotation");

    // Relative positions: with the same q at every position and the same k at every position, the rotated
    // q_i . k_j depends only on i - j.
    Vec u((size_t)S * 3 * A), qv = randn(hd, 13), kv = randn(hd, 14);
    for (int s = 0; s < S; s++)
        for (int d = 0; d < hd; d++) {
            u[(size_t)s * 3 * A + d] = qv[d];
            u[(size_t)s * 3 * A + A + d] = kv[d];
        }
    ref::rope_forward(u.data(), 1, S, nh, hd, theta);
    auto score = [&](int i, int j) {
        double s = 0;
        for (int d = 0; d < hd; d++) s += u[(size_t)i * 3 * A + d] * u[(size_t)j * 3 * A + A + d];
        return s;
    };
    CHECK(fabs(score(5, 2) - score(7, 4)) < 1e-5 && fabs(score(1, 6) - score(3, 8)) < 1e-5,
          "rope scores must depend on i - j only: %.8f %.8f, %.8f %.8f", score(5, 2), score(7, 4), score(1, 6),
          score(3, 8));
    CHECK(fabs(score(5, 2) - score(5, 3)) > 1e-3, "rope scores must depend on the offset");
}

// Attention from the definition: explicit score matrix, -inf above the diagonal when causal, softmax,
// dropout mask from dropout_keep, P V.
static void naive_attention(Vec& out, Vec& lse, const Vec& qkv, int B, int S, int nh, int hd, bool causal,
                            const ref::AttnDropout& d) {
    const int A = nh * hd;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < S; i++) {
                Vec sc(S);
                for (int j = 0; j < S; j++) {
                    double s = 0;
                    for (int e = 0; e < hd; e++)
                        s += qkv[((size_t)b * S + i) * 3 * A + h * hd + e] * qkv[((size_t)b * S + j) * 3 * A + A + h * hd + e];
                    sc[j] = (causal && j > i) ? -INFINITY : s / sqrt((double)hd);
                }
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < S; j++) mx = fmax(mx, sc[j]);
                for (int j = 0; j < S; j++) sum += exp(sc[j] - mx);
                lse[((size_t)b * nh + h) * S + i] = mx + log(sum);
                for (int e = 0; e < hd; e++) {
                    double o = 0;
                    for (int j = 0; j < S; j++) {
                        bool keep = dropout_keep(d.p, d.seed, RNG_DROPOUT_PROB, d.step, d.sample0 + b, d.layer,
                                                 (uint32_t)((h * S + i) * S + j));
                        double P = exp(sc[j] - mx) / sum * (keep ? 1.0 / (1.0 - d.p) : 0.0);
                        o += P * qkv[((size_t)b * S + j) * 3 * A + 2 * A + h * hd + e];
                    }
                    out[((size_t)b * S + i) * A + h * hd + e] = o;
                }
            }
}

static void test_attention() {
    const int B = 2, S = 7, nh = 2, hd = 4, A = nh * hd;
    for (int causal = 0; causal < 2; causal++)
        for (float p : {0.0f, 0.3f}) {
            const ref::AttnDropout d{p, 21, 5, 40, 1};
            Vec qkv = randn((size_t)B * S * 3 * A, 15 + causal, 1.5), out((size_t)B * S * A), lse((size_t)B * nh * S);
            Vec nout(out.size()), nlse(lse.size());
            ref::attention_forward(out.data(), lse.data(), qkv.data(), B, S, nh, hd, causal, d);
            naive_attention(nout, nlse, qkv, B, S, nh, hd, causal, d);
            const double eo = max_abs_diff(out, nout), el = max_abs_diff(lse, nlse);
            CHECK(eo < 1e-12 && el < 1e-12, "attention forward (causal %d, p %.1f) vs naive: out %.3e lse %.3e", causal,
                  p, eo, el);
            // Backward against finite differences of sum(R * out) with respect to every qkv element.
            Vec R = randn(out.size(), 17), dqkv(qkv.size());
            ref::attention_backward(dqkv.data(), R.data(), qkv.data(), out.data(), lse.data(), B, S, nh, hd, causal, d);
            const double e = fd_rel_error(qkv, dqkv, [&]() {
                Vec o(out.size()), l(lse.size());
                ref::attention_forward(o.data(), l.data(), qkv.data(), B, S, nh, hd, causal, d);
                return dot(o, R);
            });
            printf("attention causal %d p %.1f: forward vs naive %.2e, backward vs FD %.2e\n", causal, p, eo, e);
            CHECK(e < 1e-8, "attention backward (causal %d, p %.1f) vs FD: %.3e", causal, p, e);
        }
    // Causal row 0 attends only to itself: out = V_0 (no dropout).
    Vec qkv = randn((size_t)S * 3 * A, 19), out((size_t)S * A), lse((size_t)nh * S);
    ref::attention_forward(out.data(), lse.data(), qkv.data(), 1, S, nh, hd, true, ref::AttnDropout{0, 0, 0, 0, 0});
    double e = 0;
    for (int c = 0; c < A; c++) e = fmax(e, fabs(out[c] - qkv[2 * A + c]));
    CHECK(e < 1e-15, "causal first query must return V_0");
}

static void test_crossentropy() {
    const int N = 5, V = 11;
    Vec logits = randn((size_t)N * V, 20, 3.0), w = {0.5, 0.0, 1.5, 0.25, 1.0}, loss(N), dl((size_t)N * V);
    const int tg[N] = {3, 0, 10, 7, 3};
    ref::crossentropy_forward_backward(dl.data(), loss.data(), logits.data(), tg, w.data(), N, V);
    double err = 0;
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int v = 0; v < V; v++) s += exp(logits[n * V + v]);
        err = fmax(err, fabs(loss[n] - (log(s) - logits[n * V + tg[n]])));
    }
    CHECK(err < 1e-13, "CE loss vs -log softmax: %.3e", err);
    double z = 0;
    for (int v = 0; v < V; v++) z = fmax(z, fabs(dl[1 * V + v]));
    CHECK(loss[1] > 0 && z == 0, "weight-0 row: loss kept (%.3f), zero gradient", loss[1]);
    const double e = fd_rel_error(logits, dl, [&]() {
        Vec l(N);
        ref::crossentropy_forward_backward((double*)nullptr, l.data(), logits.data(), tg, w.data(), N, V);
        return dot(l, w);
    });
    CHECK(e < 1e-9, "CE gradient vs FD: %.3e", e);
    Vec inplace = logits, l2(N);
    ref::crossentropy_forward_backward(inplace.data(), l2.data(), inplace.data(), tg, w.data(), N, V);
    CHECK(inplace == dl && l2 == loss, "in-place (aliased) dlogits must equal the separate-buffer result");
}

static void test_adamw_clip() {
    // Hand computation, one element: p 0.5, g 0.2, lr 0.01, wd 0.1, t 1: mhat = g, vhat = g^2,
    // p' = 0.5 - 0.01 * (0.2/(0.2 + 1e-8) + 0.05) = 0.48950000049999997...
    double p = 0.5, g = 0.2, m = 0, v = 0;
    ref::adamw_update(&p, &g, &m, &v, 1, 0.01f, 0.9f, 0.95f, 1e-8f, 0.1f, 1);
    const double want1 = 0.5 - (double)0.01f * (0.2 / (0.2 + (double)1e-8f) + (double)0.1f * 0.5);
    CHECK(fabs(p - want1) < 1e-15 && fabs(p - 0.4895000005) < 1e-9, "adamw t=1: %.15f want %.15f", p, want1);
    // Second step, g = -0.1, from the moments above (betas as the fp32 values the API receives).
    const double b1 = 0.9f, b2 = 0.95f;
    const double m1 = (1 - b1) * 0.2, v1 = (1 - b2) * 0.04;
    const double m2 = b1 * m1 + (1 - b1) * -0.1, v2 = b2 * v1 + (1 - b2) * 0.01;
    const double want2 = p - (double)0.01f * ((m2 / (1 - b1 * b1)) / (sqrt(v2 / (1 - b2 * b2)) + (double)1e-8f) +
                                              (double)0.1f * p);
    g = -0.1;
    ref::adamw_update(&p, &g, &m, &v, 1, 0.01f, 0.9f, 0.95f, 1e-8f, 0.1f, 2);
    CHECK(fabs(p - want2) < 1e-15 && fabs(m - m2) < 1e-16 && fabs(v - v2) < 1e-16, "adamw t=2: %.15f want %.15f",
          p, want2);

    const double g34[2] = {3, 4};
    CHECK(ref::global_norm(g34, 2) == 5.0, "global norm of (3,4)");
    CHECK(fabs(ref::clip_coefficient(2.0, 1.0) - 1.0 / (2.0 + 1e-6)) < 1e-16, "clip factor above max");
    CHECK(ref::clip_coefficient(0.5, 1.0) == 1.0, "no clip below max");
    CHECK(ref::clip_coefficient(1.0, 1.0) < 1.0, "norm == max clips slightly (1/(1+1e-6)), as the seed does");
    CHECK(ref::clip_coefficient(100.0, 0.0) == 1.0, "max_norm 0 disables clipping");
}

static ModelConfig small_config(int Vp, int S) {
    ModelConfig c;
    c.vocab_size = Vp - 4;
    c.padded_vocab = Vp;
    c.mask_id = Vp - 4;
    c.d_model = 64;
    c.n_layer = 2;
    c.n_head = 4;
    c.head_dim = 16;
    c.ffn = swiglu_ffn_size(64);
    c.seq_len = S;
    return c;
}

static std::vector<int> random_tokens(size_t n, int V, uint32_t tag) {
    std::vector<int> t(n);
    for (size_t i = 0; i < n; i++) t[i] = (int)(rng_u32(3, RNG_GENERATE, 9, tag, 0, (uint32_t)i) % V);
    return t;
}

static void test_optimizer_groups() {
    ref::Model<float> m(small_config(128, 8));
    m.init_weights(3);
    std::vector<float> before = m.params, am, av;
    m.zero_grad();
    ref::optimizer_step(m, am, av, 0.01f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0, 1);  // zero grads: only decay acts
    int bad = 0;
    for (int k = 0; k < NUM_PARAM_TENSORS; k++) {
        size_t sizes[NUM_PARAM_TENSORS];
        param_sizes(m.cfg, sizes);
        for (size_t i = 0; i < sizes[k]; i++) {
            double b = before[m.offset(k) + i], a = m.param(k)[i];
            double want = param_has_decay(k) ? b * (1.0 - (double)0.01f * (double)0.1f) : b;
            bad += fabs(a - want) > 1e-7 * fabs(b);
        }
    }
    CHECK(bad == 0, "decay groups: %d elements wrong (gains must not decay, 2-D weights must)", bad);
    // Clipping: a gradient of norm 10 is returned as the pre-clip norm and scaled to norm 1/(1+1e-7).
    std::fill(m.grads.begin(), m.grads.end(), 0.0f);
    m.grads[5] = 6;
    m.grads[m.grads.size() - 1] = 8;
    double norm = ref::optimizer_step(m, am, av, 0.01f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0, 2);
    CHECK(fabs(norm - 10) < 1e-12, "pre-clip norm %.9f", norm);
    CHECK(fabs(ref::global_norm(m.grads.data(), m.grads.size()) - 10 / (10 + 1e-6)) < 1e-6, "grads clipped to 1");
}

static void test_init() {
    ModelConfig c = small_config(50304, 8);
    ref::Model<float> m(c), m2(c), m3(c);
    m.init_weights(42);
    m2.init_weights(42);
    m3.init_weights(43);
    CHECK(m.params == m2.params, "init must be deterministic");
    CHECK(m.params != m3.params, "init must depend on the seed");
    size_t sizes[NUM_PARAM_TENSORS];
    param_sizes(c, sizes);
    for (int k = 0; k < NUM_PARAM_TENSORS; k++) {
        const float* p = m.param(k);
        double ss = 0;
        int not_bf16 = 0;
        for (size_t i = 0; i < sizes[k]; i++) {
            ss += (double)p[i] * p[i];
            not_bf16 += ref::round_to_bf16(p[i]) != p[i];
        }
        CHECK(not_bf16 == 0, "%s: %d values not bf16-representable", param_name(k), not_bf16);
        if (!param_has_decay(k)) {
            bool ones = true;
            for (size_t i = 0; i < sizes[k]; i++) ones &= p[i] == 1.0f;
            CHECK(ones, "%s: gains must start at 1", param_name(k));
            continue;
        }
        const double sd = sqrt(ss / sizes[k]), want = param_init_std(c, k);
        CHECK(fabs(sd / want - 1) < 4 / sqrt((double)sizes[k]) + 0.01, "%s: std %.5f want %.5f", param_name(k), sd, want);
        // Element formula: bf16(N(0,1) draw keyed (seed, RNG_INIT, 0, tensor, 0, i) * std).
        size_t i = sizes[k] / 3;
        float want_i = ref::round_to_bf16((float)(rng_normal(42, RNG_INIT, 0, (uint32_t)k, 0, (uint32_t)i) * want));
        CHECK(p[i] == want_i, "%s[%zu] = %g, want %g", param_name(k), i, p[i], want_i);
    }
    // Tiny init weights give near-uniform predictions: AR loss ~ ln(Vp).
    const int B = 1, S = 8;
    std::vector<int> y = random_tokens((size_t)B * (S + 1), c.vocab_size, 1), in(S), tg(S);
    std::vector<float> w(S);
    make_ar_batch(in.data(), tg.data(), w.data(), y.data(), B, S);
    const double loss = m.forward(in.data(), tg.data(), w.data(), B, true, ref::StepKeys{1, 0, 0, 0, 0});
    CHECK(fabs(loss - log(50304.0)) < 0.05, "init loss %.4f vs ln(Vp) %.4f", loss, log(50304.0));
}

static void test_objectives() {
    const int B = 3, S = 4000;
    std::vector<int> y = random_tokens((size_t)B * (S + 1), 1000, 2), in((size_t)B * S), tg((size_t)B * S);
    std::vector<float> w((size_t)B * S);
    make_ar_batch(in.data(), tg.data(), w.data(), y.data(), B, S);
    CHECK(in[S + 5] == y[(S + 1) + 5] && tg[S + 5] == y[(S + 1) + 6] && w[7] == 1.0f / (B * S), "AR batch shift");

    float p[B];
    const int count = make_mdm_batch(in.data(), tg.data(), w.data(), y.data(), B, S, 5000, 1e-3f, 17, 8, 30, p);
    int total = 0, bad = 0;
    for (int b = 0; b < B; b++) {
        const float t = rng_uniform(17, RNG_MDM_T, 8, 30 + b, 0, 0);
        CHECK(p[b] == (1 - 1e-3f) * t + 1e-3f || fabs(p[b] - ((1 - 1e-3) * t + 1e-3)) < 1e-7, "p_b from t_b");
        int masked = 0;
        for (int s = 0; s < S; s++) {
            const size_t i = (size_t)b * S + s;
            const bool m = in[i] == 5000;
            masked += m;
            bad += tg[i] != y[(size_t)b * (S + 1) + s];
            bad += m ? fabs(w[i] - 1.0 / ((double)p[b] * B * S)) > 1e-6 * w[i] : w[i] != 0.0f;
            bad += !m && in[i] != y[(size_t)b * (S + 1) + s];
        }
        const double sd = sqrt(p[b] * (1 - p[b]) / S);
        CHECK(fabs((double)masked / S - p[b]) < 5 * sd + 1e-9, "row %d masked fraction %.4f vs p %.4f", b,
              (double)masked / S, p[b]);
        total += masked;
    }
    CHECK(bad == 0 && total == count, "MDM batch: %d inconsistent entries, count %d vs %d", bad, total, count);
}

// Forward + backward of a small float model at a given thread count; returns logits, loss, grads.
struct RunOut {
    std::vector<float> logits, grads;
    double loss;
};
static RunOut run_model(const ModelConfig& c, int threads, bool causal, const std::vector<int>& in,
                        const std::vector<int>& tg, const std::vector<float>& w, int B, const ref::StepKeys& k) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    ref::Model<float> m(c);
    m.init_weights(9);
    for (size_t i = 0; i < m.params.size(); i++) m.params[i] *= 4;  // livelier activations than the init
    RunOut r;
    r.loss = m.forward(in.data(), tg.data(), w.data(), B, causal, k);
    r.logits = m.logits;
    m.backward();
    r.grads = m.grads;
    return r;
}

static void test_model_properties() {
    // N = 256 rows crosses the matmul's 128-deep chunks in the weight-gradient products.
    const ModelConfig c = small_config(1024, 64);
    const int B = 4, S = c.seq_len, N = B * S;
    std::vector<int> y = random_tokens((size_t)B * (S + 1), c.vocab_size, 4), in(N), tg(N);
    std::vector<float> w(N);
    make_ar_batch(in.data(), tg.data(), w.data(), y.data(), B, S);
    const ref::StepKeys k{5, 11, 64, 0.1f, 0.1f};
#ifdef _OPENMP
    const int max_threads = omp_get_max_threads();
#else
    const int max_threads = 1;
#endif
    RunOut r1 = run_model(c, 1, true, in, tg, w, B, k), r2 = run_model(c, 2, true, in, tg, w, B, k),
           r3 = run_model(c, 3, true, in, tg, w, B, k);
    CHECK(r1.loss == r2.loss && r1.loss == r3.loss, "loss differs across thread counts");
    CHECK(r1.logits == r2.logits && r1.logits == r3.logits, "logits differ across thread counts");
    CHECK(r1.grads == r2.grads && r1.grads == r3.grads, "grads differ across thread counts (1, 2, 3 threads)");

    // Dropout keys matter; eval mode (p = 0) ignores them.
    ref::StepKeys k2 = k;
    k2.step++;
    RunOut rs = run_model(c, max_threads, true, in, tg, w, B, k2);
    CHECK(rs.loss != r1.loss, "a different step must draw different dropout masks");
    ref::StepKeys e1{5, 11, 64, 0, 0}, e2{6, 12, 0, 0, 0};
    RunOut ev1 = run_model(c, max_threads, true, in, tg, w, B, e1), ev2 = run_model(c, max_threads, true, in, tg, w, B, e2);
    CHECK(ev1.logits == ev2.logits, "eval mode must not depend on the keys");

    // Causality (eval mode): changing input 20 of row 1 changes AR logits only at rows 1, positions >= 20;
    // bidirectional (MDM) attention changes all positions of row 1.
    std::vector<int> in2 = in;
    in2[S + 20] = (in2[S + 20] + 1) % c.vocab_size;
    for (int causal = 0; causal < 2; causal++) {
        RunOut a = run_model(c, max_threads, causal, in, tg, w, B, e1),
               b = run_model(c, max_threads, causal, in2, tg, w, B, e1);
        int changed_before = 0, changed_after = 0, changed_other = 0;
        const int Vp = c.padded_vocab;
        for (int n = 0; n < N; n++) {
            bool diff = false;
            for (int v = 0; v < Vp; v++) diff |= a.logits[(size_t)n * Vp + v] != b.logits[(size_t)n * Vp + v];
            if (n / S != 1) changed_other += diff;
            else if (n % S < 20) changed_before += diff;
            else changed_after += diff;
        }
        CHECK(changed_other == 0, "causal %d: other sequences changed (%d rows)", causal, changed_other);
        CHECK(changed_after == S - 20, "causal %d: %d of %d later positions changed", causal, changed_after, S - 20);
        if (causal) CHECK(changed_before == 0, "causal: %d earlier positions changed", changed_before);
        else CHECK(changed_before == 20, "bidirectional: only %d of 20 earlier positions changed", changed_before);
    }

    // Backward accumulates, and grad_scale scales exactly (power of two).
#ifdef _OPENMP
    omp_set_num_threads(max_threads);
#endif
    ref::Model<float> m(c);
    m.init_weights(9);
    m.zero_grad();
    m.forward(in.data(), tg.data(), w.data(), B, true, k);
    m.backward(0.5);
    std::vector<float> half = m.grads;
    m.forward(in.data(), tg.data(), w.data(), B, true, k);
    m.backward(0.5);
    std::vector<float> twice(half.size());
    for (size_t i = 0; i < half.size(); i++) twice[i] = 2 * half[i];
    // Not bitwise: the embedding scatter adds onto the LM-head gradient of wte term by term.
    const double acc_err = rel_error(m.grads.data(), twice.data(), twice.size());
    CHECK(acc_err < 1e-6, "two backward(0.5) passes must accumulate to twice one pass: %.3e", acc_err);
    int bad = 0;
    for (size_t i = m.offset(P_LN1); i < half.size(); i++) bad += m.grads[i] != twice[i];
    CHECK(bad == 0, "non-embedding grads of two passes must be exactly twice one pass (%d differ)", bad);
    m.zero_grad();
    m.forward(in.data(), tg.data(), w.data(), B, true, k);
    m.backward(1.0);
    bad = 0;
    for (size_t i = 0; i < half.size(); i++) bad += m.grads[i] != 2 * half[i];
    CHECK(bad == 0, "backward(1) must equal twice backward(0.5) (%d differ)", bad);
}

int main() {
    const auto t0 = Clock::now();
    test_bf16();
    test_dropout();
    test_embedding();
    test_rmsnorm();
    test_matmul();
    test_swiglu();
    test_rope();
    test_attention();
    test_crossentropy();
    test_adamw_clip();
    test_optimizer_groups();
    test_init();
    test_objectives();
    test_model_properties();
    printf("time %.2f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
    return test_summary();
}
