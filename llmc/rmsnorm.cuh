// llmc/rmsnorm.cuh — the residual stream: fused "residual + dropout(branch)" with RMSNorm, plain RMSNorm, the
// RMSNorm backward (deterministic dw), and the backward of the branch dropout. Also hosts the small helpers
// shared by the residual-stream kernels (16-byte bf16 packs, the hidden-dropout mask), reused by embedding.cuh.
//
// Precision: the residual stream is bf16 (seed §1.2), statistics fp32. The residual GRADIENT stream is fp32
// ([N, C] floats, "dres"): every branch adds into it, so keeping it in fp32 avoids rounding the sum of 2L+1
// contributions to 8 bits at each step (a deliberate, more accurate deviation from the seed's bf16 grads).
#pragma once
#include <algorithm>
#include <type_traits>
#include "cuda_common.cuh"
#include "philox.h"

// ---- shared helpers ---------------------------------------------------------------------------------------

// Hidden dropout of one [B, S, C] tensor (ref::dropout_forward): element (b, s, c) is kept iff
// dropout_keep(p, seed, purpose, step, sample0 + b, sub, s*C + c); kept values are scaled by 1/(1-p).
// p = 0 turns it off (eval mode, or "no branch dropout").
struct HiddenDropout {
    float p = 0.0f;
    uint32_t seed = 0, purpose = 0, step = 0, sample0 = 0, sub = 0;
};

// 1/(1-p) computed on the host in double, as the CPU reference does (--use_fast_math would turn a device-side
// division into an approximation).
inline float hidden_dropout_scale(const HiddenDropout& d) {
    return d.p > 0.0f ? (float)(1.0 / (1.0 - (double)d.p)) : 1.0f;
}

// Keep flags of 8 consecutive elements starting at idx (idx % 4 == 0): two Philox calls, each serving four
// lanes exactly as rng_u32 does, so the mask is bit-identical to dropout_keep() on the CPU.
__device__ inline void hidden_dropout_keep8(bool keep[8], const HiddenDropout& d, uint32_t sample, uint32_t idx) {
    if (d.p <= 0.0f) {  // dropout off: no draws, as dropout_keep()
#pragma unroll
        for (int i = 0; i < 8; i++) keep[i] = true;
        return;
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        Philox4 r = philox4x32_10(Philox4{{(idx >> 2) + h, d.sub, sample, d.step}}, d.seed, d.purpose);
#pragma unroll
        for (int i = 0; i < 4; i++) keep[4 * h + i] = u32_to_uniform(r.v[i]) >= d.p;
    }
}

// Same for 4 consecutive elements (idx % 4 == 0): one Philox call.
__device__ inline void hidden_dropout_keep4(bool keep[4], const HiddenDropout& d, uint32_t sample, uint32_t idx) {
    if (d.p <= 0.0f) {
#pragma unroll
        for (int i = 0; i < 4; i++) keep[i] = true;
        return;
    }
    Philox4 r = philox4x32_10(Philox4{{idx >> 2, d.sub, sample, d.step}}, d.seed, d.purpose);
#pragma unroll
    for (int i = 0; i < 4; i++) keep[i] = u32_to_uniform(r.v[i]) >= d.p;
}

// 8 bf16 values moved as one 16-byte access (the pointer must be 16-byte aligned).
__device__ inline void load_bf16x8(float out[8], const floatX* p) {
    uint4 raw = *reinterpret_cast<const uint4*>(p);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 f = __bfloat1622float2(h[i]);
        out[2 * i] = f.x;
        out[2 * i + 1] = f.y;
    }
}
__device__ inline void store_bf16x8(floatX* p, const float in[8]) {
    uint4 raw;
    __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
    *reinterpret_cast<uint4*>(p) = raw;
}

// Sum over a warp by butterfly shuffles: every lane ends with the same, order-fixed result.
__device__ inline float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// One warp per row; lane `l` owns channel chunks c = (k*32 + l)*8, k < K, so a row of C channels needs
// K = ceil(C/256) register chunks. Kernels are instantiated for a few K; C up to 4096 (C % 8 == 0).
constexpr int RMS_WARPS = 8;          // warps (rows in flight) per block
constexpr int RMS_MAX_C = 4096;
template <class F>
inline void rms_dispatch_chunks(int C, F&& launch) {
    if (C <= 0 || C % 8 != 0 || C > RMS_MAX_C)
        llmc_die("rmsnorm: channel count %d must be a positive multiple of 8 and at most %d", C, RMS_MAX_C);
    int k = ceil_div(C, 256);
    if (k <= 1) launch(std::integral_constant<int, 1>{});
    else if (k <= 2) launch(std::integral_constant<int, 2>{});
    else if (k <= 3) launch(std::integral_constant<int, 3>{});
    else if (k <= 4) launch(std::integral_constant<int, 4>{});
    else if (k <= 6) launch(std::integral_constant<int, 6>{});
    else if (k <= 8) launch(std::integral_constant<int, 8>{});
    else if (k <= 10) launch(std::integral_constant<int, 10>{});
    else if (k <= 12) launch(std::integral_constant<int, 12>{});
    else launch(std::integral_constant<int, 16>{});
}

// ---- forward ----------------------------------------------------------------------------------------------

// x = residual_in (+ dropout(branch) when branch != nullptr, rounded to bf16), stored to residual_out if given;
// rstd = 1/sqrt(mean(x^2) + eps) over the STORED bf16 x (what the backward sees); norm_out = x * rstd * w.
// residual_out may alias residual_in (each element is read and written by the same lane).
template <int K>
__global__ void __launch_bounds__(RMS_WARPS * 32)
    residual_rmsnorm_forward_kernel(floatX* residual_out, floatX* norm_out, float* rstd, const floatX* residual_in,
                                    const floatX* branch, const floatX* w, int N, int S, int C, float eps,
                                    HiddenDropout drop, float drop_scale) {
    int lane = threadIdx.x % 32;
    int n = blockIdx.x * RMS_WARPS + threadIdx.x / 32;
    if (n >= N) return;  // whole warps leave together; no block-level synchronisation below
    size_t row = (size_t)n * C;
    uint32_t sample = drop.sample0 + (uint32_t)(n / S), pos = (uint32_t)(n % S);
    float x[K][8];
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = (k * 32 + lane) * 8;
        if (c >= C) continue;
        load_bf16x8(x[k], residual_in + row + c);
        if (branch) {
            float br[8];
            load_bf16x8(br, branch + row + c);
            bool keep[8];
            hidden_dropout_keep8(keep, drop, sample, pos * (uint32_t)C + (uint32_t)c);
#pragma unroll
            for (int i = 0; i < 8; i++) {
                float sum = x[k][i] + (keep[i] ? br[i] * drop_scale : 0.0f);
                x[k][i] = __bfloat162float(__float2bfloat16_rn(sum));  // the value the stream keeps
            }
        }
        if (residual_out) store_bf16x8(residual_out + row + c, x[k]);
#pragma unroll
        for (int i = 0; i < 8; i++) ss += x[k][i] * x[k][i];
    }
    ss = warp_sum(ss);
    float r = 1.0f / sqrtf(ss / (float)C + eps);
    if (lane == 0 && rstd) rstd[n] = r;
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = (k * 32 + lane) * 8;
        if (c >= C) continue;
        float wv[8], o[8];
        load_bf16x8(wv, w + c);
#pragma unroll
        for (int i = 0; i < 8; i++) o[i] = x[k][i] * r * wv[i];
        store_bf16x8(norm_out + row + c, o);
    }
}

// residual_out = residual_in + dropout(branch) (bf16, may alias residual_in); norm_out = rmsnorm(residual_out)*w;
// rstd[N] fp32 (may be nullptr when no backward follows). N = B*S rows of C channels; row n is position n % S of
// sequence n / S, which keys its dropout (drop.p = 0: plain add).
inline void fused_residual_rmsnorm_forward(floatX* residual_out, floatX* norm_out, float* rstd,
                                           const floatX* residual_in, const floatX* branch, const floatX* w, int B,
                                           int S, int C, float eps, const HiddenDropout& drop, cudaStream_t stream) {
    int N = B * S;
    if (N <= 0) return;
    float scale = hidden_dropout_scale(drop);
    rms_dispatch_chunks(C, [&](auto kc) {
        constexpr int K = decltype(kc)::value;
        residual_rmsnorm_forward_kernel<K><<<ceil_div(N, RMS_WARPS), RMS_WARPS * 32, 0, stream>>>(
            residual_out, norm_out, rstd, residual_in, branch, w, N, S, C, eps, drop, scale);
        cudaCheckLaunch();
    });
}

// Plain RMSNorm: out = x * rstd * w, rstd[N] fp32 (nullptr allowed). Used for the first layer's input and
// wherever no residual add precedes the norm.
inline void rmsnorm_forward(floatX* out, float* rstd, const floatX* x, const floatX* w, int N, int C, float eps,
                            cudaStream_t stream) {
    if (N <= 0) return;
    rms_dispatch_chunks(C, [&](auto kc) {
        constexpr int K = decltype(kc)::value;
        residual_rmsnorm_forward_kernel<K><<<ceil_div(N, RMS_WARPS), RMS_WARPS * 32, 0, stream>>>(
            nullptr, out, rstd, x, nullptr, w, N, 1, C, eps, HiddenDropout{}, 1.0f);
        cudaCheckLaunch();
    });
}

// ---- backward ---------------------------------------------------------------------------------------------

// dw is reduced deterministically in two stages: each of G blocks sums its rows' dout*x*rstd in a fixed order
// (per lane over its rows, then the block's warps in index order) into scratch[G, C]; a second kernel sums
// the G partials in index order and adds to dw. G = one full wave of resident blocks on this GPU (capped by
// the rows), a function of (N, C, device) only, so results are bit-identical run to run on a given GPU.
constexpr int RMS_BWD_WARPS = 4;  // small blocks: several fit per SM despite the register-held dw partials
inline int rms_sm_count() {
    int dev, sms;
    cudaCheck(cudaGetDevice(&dev));
    cudaCheck(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    return sms;
}
// Floats of scratch rmsnorm_backward needs for N rows of C channels (at most 16 resident 128-thread blocks/SM).
inline size_t rmsnorm_backward_scratch_floats(int N, int C) {
    return (size_t)std::max(1, std::min(ceil_div(N, RMS_BWD_WARPS), 16 * rms_sm_count())) * C;
}

template <int K>
__global__ void __launch_bounds__(RMS_BWD_WARPS * 32)
    rmsnorm_backward_kernel(float* dres, float* scratch, const floatX* dout, const floatX* x, const floatX* w,
                            const float* rstd, int N, int C) {
    extern __shared__ float sdw[];  // [C] this block's dw partial
    int lane = threadIdx.x % 32, wib = threadIdx.x / 32;
    int total_warps = gridDim.x * RMS_BWD_WARPS;
    float acc[K][8];
#pragma unroll
    for (int k = 0; k < K; k++)
#pragma unroll
        for (int i = 0; i < 8; i++) acc[k][i] = 0.0f;

    for (int n = blockIdx.x * RMS_BWD_WARPS + wib; n < N; n += total_warps) {
        size_t row = (size_t)n * C;
        float r = rstd[n];
        // Pass 1: the dot product, with this row's residual gradient fetched early so its latency overlaps
        // the loads and the warp reduction (dout and x are re-read in pass 2, from L1).
        float4 dr[K][2];
        float dot = 0.0f;
#pragma unroll
        for (int k = 0; k < K; k++) {
            int c = (k * 32 + lane) * 8;
            if (c >= C) continue;
            const float4* d4 = reinterpret_cast<const float4*>(dres + row + c);
            dr[k][0] = d4[0];
            dr[k][1] = d4[1];
            float dv[8], xv[8], wv[8];
            load_bf16x8(dv, dout + row + c);
            load_bf16x8(xv, x + row + c);
            load_bf16x8(wv, w + c);
#pragma unroll
            for (int i = 0; i < 8; i++) dot += dv[i] * wv[i] * xv[i];
        }
        dot = warp_sum(dot);
        // d/dx_j of x_j*r*w_j summed against dout: r*g_j - r^3 * x_j * (sum_c g_c x_c) / C, with g = dout*w.
        float coef = r * r * r * dot / (float)C;
#pragma unroll
        for (int k = 0; k < K; k++) {
            int c = (k * 32 + lane) * 8;
            if (c >= C) continue;
            float dv[8], xv[8], wv[8];
            load_bf16x8(dv, dout + row + c);
            load_bf16x8(xv, x + row + c);
            load_bf16x8(wv, w + c);
            float4 a = dr[k][0], b = dr[k][1];
            a.x += r * dv[0] * wv[0] - coef * xv[0];
            a.y += r * dv[1] * wv[1] - coef * xv[1];
            a.z += r * dv[2] * wv[2] - coef * xv[2];
            a.w += r * dv[3] * wv[3] - coef * xv[3];
            b.x += r * dv[4] * wv[4] - coef * xv[4];
            b.y += r * dv[5] * wv[5] - coef * xv[5];
            b.z += r * dv[6] * wv[6] - coef * xv[6];
            b.w += r * dv[7] * wv[7] - coef * xv[7];
            float4* d4 = reinterpret_cast<float4*>(dres + row + c);
            d4[0] = a;
            d4[1] = b;
#pragma unroll
            for (int i = 0; i < 8; i++) acc[k][i] += dv[i] * (xv[i] * r);
        }
    }
    // Combine the block's warps in index order (deterministic; no shared-memory atomics).
    for (int wj = 0; wj < RMS_BWD_WARPS; wj++) {
        if (wib == wj) {
#pragma unroll
            for (int k = 0; k < K; k++) {
                int c = (k * 32 + lane) * 8;
                if (c >= C) continue;
#pragma unroll
                for (int i = 0; i < 8; i++) sdw[c + i] = (wj == 0 ? 0.0f : sdw[c + i]) + acc[k][i];
            }
        }
        __syncthreads();
    }
    for (int c = threadIdx.x; c < C; c += blockDim.x) scratch[(size_t)blockIdx.x * C + c] = sdw[c];
}

// dw[c] += sum_g scratch[g, c], g in index order (8 strided partial sums per channel, combined in order).
__global__ void rmsnorm_dw_reduce_kernel(float* dw, const float* scratch, int G, int C) {
    __shared__ float part[8][33];
    int tx = threadIdx.x % 32, ty = threadIdx.x / 32;
    int c = blockIdx.x * 32 + tx;
    float s = 0.0f;
    if (c < C)
        for (int g = ty; g < G; g += 8) s += scratch[(size_t)g * C + c];
    part[ty][tx] = s;
    __syncthreads();
    if (ty == 0 && c < C) {
        float t = part[0][tx];
        for (int j = 1; j < 8; j++) t += part[j][tx];
        dw[c] += t;
    }
}

// RMSNorm backward for out = x * rstd * w (forward rstd reused):
//   dres[N, C] (fp32) += dx   — the residual-gradient stream; zero it before the first (final-norm) backward
//   dw[C]      (fp32) += sum_n dout * x * rstd, deterministic
// dout, x (the forward input, i.e. residual_out of the fused forward), w: bf16. scratch: at least
// rmsnorm_backward_scratch_floats(N, C) floats of device memory (contents are overwritten).
inline void rmsnorm_backward(float* dres, float* dw, float* scratch, const floatX* dout, const floatX* x,
                             const floatX* w, const float* rstd, int N, int C, cudaStream_t stream) {
    if (N <= 0) return;
    int G = 1;
    rms_dispatch_chunks(C, [&](auto kc) {
        constexpr int K = decltype(kc)::value;
        int per_sm = 0;
        cudaCheck(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, rmsnorm_backward_kernel<K>,
                                                                RMS_BWD_WARPS * 32, C * sizeof(float)));
        per_sm = std::max(1, std::min(per_sm, 16));  // 16: the bound rmsnorm_backward_scratch_floats assumes
        G = std::max(1, std::min(ceil_div(N, RMS_BWD_WARPS), per_sm * rms_sm_count()));
        rmsnorm_backward_kernel<K><<<G, RMS_BWD_WARPS * 32, C * sizeof(float), stream>>>(dres, scratch, dout, x,
                                                                                         w, rstd, N, C);
        cudaCheckLaunch();
    });
    rmsnorm_dw_reduce_kernel<<<ceil_div(C, 32), 256, 0, stream>>>(dw, scratch, G, C);
    cudaCheckLaunch();
}

// ---- backward of the branch dropout ----------------------------------------------------------------------

__global__ void dropout_backward_to_branch_kernel(floatX* dbranch, const float* dres, int N, int S, int C,
                                                  HiddenDropout drop, float drop_scale) {
    int chunks = C / 8;
    size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)N * chunks) return;
    int n = (int)(t / chunks), c = (int)(t % chunks) * 8;
    size_t off = (size_t)n * C + c;
    float4 a = reinterpret_cast<const float4*>(dres + off)[0], b = reinterpret_cast<const float4*>(dres + off)[1];
    float v[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
    if (drop.p > 0.0f) {
        bool keep[8];
        hidden_dropout_keep8(keep, drop, drop.sample0 + (uint32_t)(n / S), (uint32_t)(n % S) * (uint32_t)C + c);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = keep[i] ? v[i] * drop_scale : 0.0f;
    }
    store_bf16x8(dbranch + off, v);
}

// Gradient entering a residual branch whose output was dropout(branch): dbranch (bf16 [B*S, C], written) =
// mask * dres / (1-p), the same mask as the forward (same HiddenDropout keys). p = 0: a plain fp32->bf16 copy.
inline void dropout_backward_to_branch(floatX* dbranch, const float* dres, int B, int S, int C,
                                       const HiddenDropout& drop, cudaStream_t stream) {
    if (C <= 0 || C % 8 != 0) llmc_die("dropout_backward_to_branch: C = %d must be a positive multiple of 8", C);
    size_t total = (size_t)B * S * (C / 8);
    if (total == 0) return;
    dropout_backward_to_branch_kernel<<<(unsigned)ceil_div(total, (size_t)256), 256, 0, stream>>>(
        dbranch, dres, B * S, S, C, drop, hidden_dropout_scale(drop));
    cudaCheckLaunch();
}
