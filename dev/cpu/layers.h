// dev/cpu/layers.h — the CPU reference layers (forward and backward) of the seed transformer: the oracle that
// every CUDA kernel is compared against. Plain loops, templates on T (float for the oracle, double for
// finite-difference checks), row-major, N = B*S rows. Gradient outputs marked "+=" ACCUMULATE.
//
// Determinism: OpenMP splits work so that each output element is computed by exactly one thread, summing its
// terms in a fixed order, so results are bit-identical for any thread count. Reductions outside the matmuls
// (norm statistics, softmax denominators, cross-entropy) accumulate in double; matmuls accumulate in T.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#include "llmc/philox.h"
#ifdef _OPENMP
#include <omp.h>
#endif

// Full unrolling keeps the matmul micro-kernel's accumulators in registers under g++ -O2 and -O3; nvcc's front
// end rejects GCC pragmas, so CUDA translation units (which use this code only as the oracle) go without.
#if defined(__CUDACC__) || !defined(__GNUC__)
#define LLMC_UNROLL8
#else
#define LLMC_UNROLL8 _Pragma("GCC unroll 8")
#endif

namespace ref {

// Round an fp32 value to the nearest bf16 (ties to even) and return it as fp32: the seed allocates and
// initialises its weights in bf16, so our fp32 masters start from bf16-representable values.
inline float round_to_bf16(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if ((bits & 0x7F800000u) == 0x7F800000u) {   // inf stays inf; NaN stays a (quiet) NaN
        if (bits & 0x007FFFFFu) bits |= 0x00400000u;
        bits &= 0xFFFF0000u;
    } else {
        bits += 0x7FFFu + ((bits >> 16) & 1u);    // adding just under half an ulp, plus the lsb, rounds ties to even
        bits &= 0xFFFF0000u;
    }
    float y;
    memcpy(&y, &bits, 4);
    return y;
}

// Keep-decisions of n consecutive draw indices idx0..idx0+n-1 (identical to dropout_keep for each), sharing
// one Philox call between the four lanes of a counter.
inline void dropout_mask_run(uint8_t* keep, int n, float p, uint32_t seed, uint32_t purpose, uint32_t step,
                             uint32_t sample, uint32_t sub, uint32_t idx0) {
    if (p <= 0.0f) {
        memset(keep, 1, (size_t)n);
        return;
    }
    int k = 0;
    while (k < n) {
        uint32_t idx = idx0 + (uint32_t)k;
        Philox4 r = philox4x32_10(Philox4{{idx >> 2, sub, sample, step}}, seed, purpose);
        for (uint32_t lane = idx & 3u; lane < 4 && k < n; lane++, k++) keep[k] = u32_to_uniform(r.v[lane]) >= p;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Embedding

// out[n,:] = wte[tokens[n],:]
template <class T>
void embedding_forward(T* out, const int* tokens, const T* wte, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * C, wte + (size_t)tokens[n] * C, sizeof(T) * C);
}

// dwte[tokens[n],:] += dout[n,:]. Serial: a scatter whose cost is negligible next to the matmuls, and serial
// order makes repeated tokens sum in n order.
template <class T>
void embedding_backward(T* dwte, const T* dout, const int* tokens, int N, int C) {
    for (int n = 0; n < N; n++) {
        T* d = dwte + (size_t)tokens[n] * C;
        const T* g = dout + (size_t)n * C;
        for (int c = 0; c < C; c++) d[c] += g[c];
    }
}

// ---------------------------------------------------------------------------------------------------------
// RMSNorm: rstd[n] = 1/sqrt(mean_c x[n,c]^2 + eps); out = x * rstd * w

template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* w, int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const T* xr = x + (size_t)n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)xr[c] * (double)xr[c];
        T r = (T)(1.0 / sqrt(ss / C + (double)eps));
        rstd[n] = r;
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = xr[c] * r * w[c];
    }
}

// With xh = x*rstd: dx = rstd * (dout*w - xh * mean_c(dout*w*xh)); dw = sum_n dout*xh.
template <class T>
void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const T *xr = x + (size_t)n * C, *dr = dout + (size_t)n * C;
        double r = rstd[n], dot = 0;
        for (int c = 0; c < C; c++) dot += (double)dr[c] * w[c] * xr[c] * r;
        double mean = dot / C;
        for (int c = 0; c < C; c++)
            dx[(size_t)n * C + c] += (T)(r * ((double)dr[c] * w[c] - (double)xr[c] * r * mean));
    }
    // dw: each channel owned by one thread, rows summed in order.
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double acc = 0;
        for (int n = 0; n < N; n++) acc += (double)dout[(size_t)n * C + c] * x[(size_t)n * C + c] * rstd[n];
        dw[c] += (T)acc;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Matrix products

// An RB x (NV*lanes) block of out (row stride ldo) summed over k in [k0, k1), continuing from out's partial sums
// when k0 > 0. The accumulators are explicit 16-byte vectors (GNU vector extension) so they stay in registers
// whatever the optimisation level; each lane still sums its own element in k order.
template <class T, int RB, int NV>
inline void gemm_micro(T* out, size_t ldo, const T* A, size_t a_rs, size_t a_cs, const T* Bm, size_t ldb, int k0,
                       int k1) {
    typedef T V __attribute__((vector_size(16)));
    constexpr int L = 16 / sizeof(T);
    V c[RB][NV];
LLMC_UNROLL8
    for (int r = 0; r < RB; r++)
LLMC_UNROLL8
        for (int v = 0; v < NV; v++) {
            if (k0 > 0) memcpy(&c[r][v], out + r * ldo + v * L, 16);
            else c[r][v] = V{};
        }
    for (int k = k0; k < k1; k++) {
        const T* bk = Bm + (size_t)k * ldb;
        V b[NV];
LLMC_UNROLL8
        for (int v = 0; v < NV; v++) memcpy(&b[v], bk + v * L, 16);
LLMC_UNROLL8
        for (int r = 0; r < RB; r++) {
            const T a = A[r * a_rs + (size_t)k * a_cs];
LLMC_UNROLL8
            for (int v = 0; v < NV; v++) c[r][v] += a * b[v];
        }
    }
LLMC_UNROLL8
    for (int r = 0; r < RB; r++)
LLMC_UNROLL8
        for (int v = 0; v < NV; v++) memcpy(out + r * ldo + v * L, &c[r][v], 16);
}

// The same for a ragged rw x cw edge block.
template <class T>
inline void gemm_edge(T* out, size_t ldo, const T* A, size_t a_rs, size_t a_cs, const T* Bm, size_t ldb, int k0,
                      int k1, int rw, int cw) {
    for (int r = 0; r < rw; r++)
        for (int j = 0; j < cw; j++) {
            T s = k0 > 0 ? out[r * ldo + j] : (T)0;
            for (int k = k0; k < k1; k++) s += A[r * a_rs + (size_t)k * a_cs] * Bm[(size_t)k * ldb + j];
            out[r * ldo + j] = s;
        }
}

// out[r,m] = sum_k A(r,k) * Bm[k,m], A(r,k) = A[r*a_rs + k*a_cs] (strides let one kernel serve x·W^T, dout·W and
// dout^T·x). Each element sums k in increasing order from 0, so the result does not depend on the tiling or on
// the thread count. Tiles: RB rows x MB columns, K in chunks of KB so a [KB, MB] panel of Bm stays in cache while
// a thread sweeps its rows. With accumulate, the finished sum is added to the old value (out + sum, as a BLAS
// beta = 1 does), so accumulating g twice gives exactly 2g.
template <class T>
void gemm_strided(T* out, const T* A, size_t a_rs, size_t a_cs, const T* Bm, int R, int K, int M, bool accumulate) {
    if (accumulate) {
        std::vector<T> sum((size_t)R * M);
        gemm_strided(sum.data(), A, a_rs, a_cs, Bm, R, K, M, false);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < (size_t)R * M; i++) out[i] += sum[i];
        return;
    }
    if (K == 0) {  // empty sum
        memset(out, 0, sizeof(T) * (size_t)R * M);
        return;
    }
    constexpr int RB = 4, CW = 8, MB = 256, KB = 128;
    const int nrb = (R + RB - 1) / RB;
#pragma omp parallel
    {
        int nt = 1, tid = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads();
        tid = omp_get_thread_num();
#endif
        const int rb_lo = (int)((long long)nrb * tid / nt), rb_hi = (int)((long long)nrb * (tid + 1) / nt);
        for (int k0 = 0; k0 < K; k0 += KB) {
            const int k1 = k0 + KB < K ? k0 + KB : K;
            for (int m0 = 0; m0 < M; m0 += MB) {
                const int m1 = m0 + MB < M ? m0 + MB : M;
                for (int rb = rb_lo; rb < rb_hi; rb++) {
                    const int r0 = rb * RB, rw = R - r0 < RB ? R - r0 : RB;
                    for (int g = m0; g < m1; g += CW) {
                        const int gw = m1 - g < CW ? m1 - g : CW;
                        T* o = out + (size_t)r0 * M + g;
                        const T* a = A + (size_t)r0 * a_rs;
                        if (rw == RB && gw == CW)
                            gemm_micro<T, RB, CW * sizeof(T) / 16>(o, M, a, a_rs, a_cs, Bm + g, M, k0, k1);
                        else
                            gemm_edge(o, M, a, a_rs, a_cs, Bm + g, M, k0, k1, rw, gw);
                    }
                }
            }
        }
    }
}

// out[N,OC] = x[N,IC] · W[OC,IC]^T
template <class T>
void matmul_forward(T* out, const T* x, const T* W, int N, int IC, int OC) {
    std::vector<T> Wt((size_t)IC * OC);  // W^T, so the inner loop runs along contiguous output columns
#pragma omp parallel for schedule(static)
    for (int i = 0; i < IC; i++)
        for (int o = 0; o < OC; o++) Wt[(size_t)i * OC + o] = W[(size_t)o * IC + i];
    gemm_strided(out, x, (size_t)IC, 1, Wt.data(), N, IC, OC, false);
}

// dx[N,IC] += dout[N,OC] · W[OC,IC];  dW[OC,IC] += dout^T · x
template <class T>
void matmul_backward(T* dx, T* dW, const T* dout, const T* x, const T* W, int N, int IC, int OC) {
    gemm_strided(dx, dout, (size_t)OC, 1, W, N, OC, IC, true);
    gemm_strided(dW, dout, 1, (size_t)OC, x, OC, N, IC, true);
}

// ---------------------------------------------------------------------------------------------------------
// RoPE, half-split ("rotate-half") layout over the full head dim, on the Q and K thirds of qkv [B,S,3*nh*hd].

// Megatron's frequencies: inv_freq_j = 1 / theta^(2j/hd) in fp32; angle = s * inv_freq_j in fp32.
LLMC_HD inline float rope_angle(int s, int j, int hd, float theta) {
    float inv_freq = 1.0f / powf(theta, (float)(2 * j) / (float)hd);
    return (float)s * inv_freq;
}

// sign = +1 rotates by +angle (forward), -1 by -angle (backward: the transpose of a rotation is its inverse).
template <class T>
void rope_rotate(T* qkv, int B, int S, int nh, int hd, float theta, int sign) {
    const int half = hd / 2, A = nh * hd;
    std::vector<T> cs((size_t)S * half), sn((size_t)S * half);
    for (int s = 0; s < S; s++)
        for (int j = 0; j < half; j++) {
            double a = (double)rope_angle(s, j, hd, theta);
            cs[(size_t)s * half + j] = (T)cos(a);
            sn[(size_t)s * half + j] = (T)(sign * sin(a));
        }
#pragma omp parallel for schedule(static)
    for (int bs = 0; bs < B * S; bs++) {
        const int s = bs % S;
        const T *c = cs.data() + (size_t)s * half, *sv = sn.data() + (size_t)s * half;
        for (int part = 0; part < 2; part++)  // Q then K; V is not rotated
            for (int h = 0; h < nh; h++) {
                T* v = qkv + (size_t)bs * 3 * A + (size_t)part * A + (size_t)h * hd;
                for (int j = 0; j < half; j++) {
                    T lo = v[j], hi = v[j + half];
                    v[j] = lo * c[j] - hi * sv[j];
                    v[j + half] = hi * c[j] + lo * sv[j];
                }
            }
    }
}

template <class T>
void rope_forward(T* qkv, int B, int S, int nh, int hd, float theta) {
    rope_rotate(qkv, B, S, nh, hd, theta, +1);
}
template <class T>
void rope_backward(T* dqkv, int B, int S, int nh, int hd, float theta) {
    rope_rotate(dqkv, B, S, nh, hd, theta, -1);
}

// ---------------------------------------------------------------------------------------------------------
// Attention (softmax(QK^T/sqrt(hd)) V per head) with attention-probability dropout.

struct AttnDropout {
    float p;
    uint32_t seed, step, sample0, layer;
};  // p = 0: no dropout

// Keep flags of query row i of head h of sequence b (keys 0..S-1).
inline void attn_keep_row(uint8_t* keep, const AttnDropout& d, int b, int h, int i, int S) {
    dropout_mask_run(keep, S, d.p, d.seed, RNG_DROPOUT_PROB, d.step, d.sample0 + (uint32_t)b, d.layer,
                     (uint32_t)(((size_t)h * S + i) * S));
}

// out [B,S,nh*hd], lse [B,nh,S]. P_ij = exp(score_ij - lse_i) with lse in double; out_i = sum_j P_ij*keep_ij/(1-p) V_j.
template <class T>
void attention_forward(T* out, T* lse, const T* qkv, int B, int S, int nh, int hd, bool causal,
                       const AttnDropout& drop) {
    const int A = nh * hd;
    const size_t rs = (size_t)3 * A;  // qkv row stride
    const T scale = (T)(1.0 / sqrt((double)hd));
    const T kscale = (T)(1.0 / (1.0 - (double)drop.p));
#pragma omp parallel
    {
        std::vector<T> sc(S);
        std::vector<uint8_t> keep(S);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * nh; bh++) {
            const int b = bh / nh, h = bh % nh;
            const T* base = qkv + (size_t)b * S * rs;
            for (int i = 0; i < S; i++) {
                const int nj = causal ? i + 1 : S;
                const T* q = base + (size_t)i * rs + (size_t)h * hd;
                double mx = -INFINITY;
                for (int j = 0; j < nj; j++) {
                    const T* k = base + (size_t)j * rs + A + (size_t)h * hd;
                    T dot = 0;
                    for (int d = 0; d < hd; d++) dot += q[d] * k[d];
                    sc[j] = dot * scale;
                    if (sc[j] > mx) mx = sc[j];
                }
                double sum = 0;
                for (int j = 0; j < nj; j++) sum += exp((double)sc[j] - mx);
                // P uses the stored (T-rounded) lse so the backward's recomputed P is bit-identical.
                const T lT = (T)(mx + log(sum));
                const double l = lT;
                lse[((size_t)b * nh + h) * S + i] = lT;
                attn_keep_row(keep.data(), drop, b, h, i, S);
                T* o = out + ((size_t)b * S + i) * A + (size_t)h * hd;
                for (int d = 0; d < hd; d++) o[d] = 0;
                for (int j = 0; j < nj; j++) {
                    if (!keep[j]) continue;
                    const T pj = (T)exp((double)sc[j] - l) * kscale;
                    const T* v = base + (size_t)j * rs + 2 * A + (size_t)h * hd;
                    for (int d = 0; d < hd; d++) o[d] += pj * v[d];
                }
            }
        }
    }
}

// Recomputes P from lse (as the flash-style GPU backward does). With dropout mask M and k = 1/(1-p):
// dV_j += P_ij M_ij k dO_i; dP_ij = M_ij k (dO_i·V_j); dS_ij = P_ij (dP_ij - D_i) with D_i = dO_i·O_i
// (= sum_j P_ij dP_ij); dQ_i += scale sum_j dS_ij K_j; dK_j += scale dS_ij Q_i.
template <class T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* out, const T* lse, int B, int S, int nh,
                        int hd, bool causal, const AttnDropout& drop) {
    const int A = nh * hd;
    const size_t rs = (size_t)3 * A;
    const T scale = (T)(1.0 / sqrt((double)hd));
    const T kscale = (T)(1.0 / (1.0 - (double)drop.p));
#pragma omp parallel
    {
        std::vector<uint8_t> keep(S);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * nh; bh++) {  // one (sequence, head) owns its dQ, dK, dV columns
            const int b = bh / nh, h = bh % nh;
            const T* base = qkv + (size_t)b * S * rs;
            T* dbase = dqkv + (size_t)b * S * rs;
            for (int i = 0; i < S; i++) {
                const int nj = causal ? i + 1 : S;
                const T* q = base + (size_t)i * rs + (size_t)h * hd;
                const T* dO = dout + ((size_t)b * S + i) * A + (size_t)h * hd;
                const T* O = out + ((size_t)b * S + i) * A + (size_t)h * hd;
                T* dq = dbase + (size_t)i * rs + (size_t)h * hd;
                T Di = 0;
                for (int d = 0; d < hd; d++) Di += dO[d] * O[d];
                const double l = lse[((size_t)b * nh + h) * S + i];
                attn_keep_row(keep.data(), drop, b, h, i, S);
                for (int j = 0; j < nj; j++) {
                    const T* k = base + (size_t)j * rs + A + (size_t)h * hd;
                    const T* v = base + (size_t)j * rs + 2 * A + (size_t)h * hd;
                    T* dk = dbase + (size_t)j * rs + A + (size_t)h * hd;
                    T* dv = dbase + (size_t)j * rs + 2 * A + (size_t)h * hd;
                    T dot = 0;
                    for (int d = 0; d < hd; d++) dot += q[d] * k[d];
                    const T P = (T)exp((double)(dot * scale) - l);
                    T dP = 0;
                    if (keep[j]) {
                        const T pk = P * kscale;
                        T dPd = 0;
                        for (int d = 0; d < hd; d++) {
                            dPd += dO[d] * v[d];
                            dv[d] += pk * dO[d];
                        }
                        dP = dPd * kscale;
                    }
                    const T dS = P * (dP - Di) * scale;
                    for (int d = 0; d < hd; d++) {
                        dq[d] += dS * k[d];
                        dk[d] += dS * q[d];
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// SwiGLU: in [N, 2F] = [gate | up]; out [N, F] = silu(gate) * up

template <class T>
void swiglu_forward(T* out, const T* in, int N, int F) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++) {
            const T g = in[(size_t)n * 2 * F + f], u = in[(size_t)n * 2 * F + F + f];
            const T sig = (T)(1.0 / (1.0 + exp(-(double)g)));
            out[(size_t)n * F + f] = g * sig * u;
        }
}

// d gate = dout * up * sig * (1 + g (1 - sig)); d up = dout * silu(g)
template <class T>
void swiglu_backward(T* din, const T* dout, const T* in, int N, int F) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++) {
            const T g = in[(size_t)n * 2 * F + f], u = in[(size_t)n * 2 * F + F + f];
            const T sig = (T)(1.0 / (1.0 + exp(-(double)g)));
            const T d = dout[(size_t)n * F + f];
            din[(size_t)n * 2 * F + f] += d * u * sig * ((T)1 + g * ((T)1 - sig));
            din[(size_t)n * 2 * F + F + f] += d * g * sig;
        }
}

// ---------------------------------------------------------------------------------------------------------
// Hidden dropout, in place on x [B,S,C]; element (b,s,c) uses draw index s*C + c of sample sample0 + b.
// The backward is this same call on the gradient.
template <class T>
void dropout_forward(T* x, int B, int S, int C, float p, uint32_t seed, uint32_t purpose, uint32_t step,
                     uint32_t sample0, uint32_t sub) {
    if (p <= 0.0f) return;
    const T kscale = (T)(1.0 / (1.0 - (double)p));
#pragma omp parallel
    {
        std::vector<uint8_t> keep(C);
#pragma omp for schedule(static)
        for (int bs = 0; bs < B * S; bs++) {
            const int b = bs / S, s = bs % S;
            dropout_mask_run(keep.data(), C, p, seed, purpose, step, sample0 + (uint32_t)b, sub,
                             (uint32_t)((size_t)s * C));
            T* row = x + (size_t)bs * C;
            for (int c = 0; c < C; c++) row[c] = keep[c] ? row[c] * kscale : (T)0;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Cross-entropy over all V (padded) classes. losses[n] = logsumexp(logits[n]) - logits[n,target]; the
// exponentials are taken in T and summed in double. If dlogits: dlogits[n,:] = weight[n] * (softmax - onehot)
// (the exponentials are parked in dlogits, then normalised). dlogits may alias logits.
template <class T>
void crossentropy_forward_backward(T* dlogits, T* losses, const T* logits, const int* targets, const T* weight,
                                   int N, int V) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const T* l = logits + (size_t)n * V;
        T mx = l[0];
        for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
        const int t = targets[n];
        const T lt = l[t];
        double sum = 0;
        if (dlogits) {
            T* d = dlogits + (size_t)n * V;
            for (int v = 0; v < V; v++) {
                const T e = std::exp(l[v] - mx);
                sum += e;
                d[v] = e;  // overwrites l[v] when aliased, after its last read
            }
        } else {
            for (int v = 0; v < V; v++) sum += std::exp(l[v] - mx);
        }
        losses[n] = (T)((double)mx + log(sum) - (double)lt);
        if (!dlogits) continue;
        const double w = weight[n], ws = w / sum;
        T* d = dlogits + (size_t)n * V;
        for (int v = 0; v < V; v++) d[v] = (T)(ws * (double)d[v]);
        d[t] = (T)(ws * (double)std::exp(lt - mx) - w);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Optimizer pieces

// AdamW (decoupled decay, bias correction, 1-based t), arithmetic in double, state stored in T.
template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, size_t n, float lr, float beta1, float beta2, float eps, float wd,
                  int t) {
    const double b1 = beta1, b2 = beta2, bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const double gi = g[i];
        const double mi = b1 * (double)m[i] + (1.0 - b1) * gi;
        const double vi = b2 * (double)v[i] + (1.0 - b2) * gi * gi;
        m[i] = (T)mi;
        v[i] = (T)vi;
        const double mhat = mi / bc1, vhat = vi / bc2;
        p[i] = (T)((double)p[i] - (double)lr * (mhat / (sqrt(vhat) + (double)eps) + (double)wd * (double)p[i]));
    }
}

// Global L2 norm, squares accumulated in double in index order (serial: deterministic and cheap).
template <class T>
double global_norm(const T* g, size_t n) {
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * (double)g[i];
    return sqrt(ss);
}

// The seed's (DeepSpeed's) clip factor: max_norm / (norm + 1e-6), used only when below 1. max_norm <= 0
// disables clipping.
inline double clip_coefficient(double norm, double max_norm) {
    if (max_norm <= 0) return 1.0;
    const double c = max_norm / (norm + 1e-6);
    return c < 1.0 ? c : 1.0;
}

}  // namespace ref
