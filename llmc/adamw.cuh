// llmc/adamw.cuh — one AdamW launch over the whole flat fp32 master buffer (layout of llmc/config.h), with the
// seed's parameter groups (weight decay only on 2-D weights), the clip factor applied to the gradient inside,
// and the bf16 parameter copy used by forward/backward written in the same pass.
//
// Math is fp32 like the seed's fused Adam, with IEEE-rounded division and square root (__fdiv_rn /
// __fsqrt_rn) so --use_fast_math's approximate versions never touch the weights.
#pragma once
#include "config.h"
#include "cuda_common.cuh"

// Decay flag per contiguous element range [end[k-1], end[k]) of the flat buffer (end[-1] = 0). Passed by value
// as a kernel argument, so the lookup reads the constant bank.
constexpr int ADAMW_MAX_RANGES = 16;
struct AdamWGroups {
    int count = 0;
    size_t end[ADAMW_MAX_RANGES];
    int decay[ADAMW_MAX_RANGES];
};

// Adds range [previous end, end) with the given decay flag; ranges must be added in increasing order.
inline void adamw_groups_add(AdamWGroups& g, size_t end, bool decay) {
    if (g.count == ADAMW_MAX_RANGES) llmc_die("adamw: more than %d parameter ranges", ADAMW_MAX_RANGES);
    if (g.count > 0 && end < g.end[g.count - 1]) llmc_die("adamw: parameter ranges must be added in order");
    g.end[g.count] = end;
    g.decay[g.count] = decay ? 1 : 0;
    g.count++;
}

// The seed's groups over the model's single parameter buffer: decay on every tensor with param_has_decay().
inline AdamWGroups adamw_groups_from_config(const ModelConfig& c) {
    size_t off[NUM_PARAM_TENSORS], sizes[NUM_PARAM_TENSORS];
    param_offsets(c, off);
    param_sizes(c, sizes);
    AdamWGroups g;
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) adamw_groups_add(g, off[i] + sizes[i], param_has_decay(i));
    return g;
}

struct AdamWHyper {
    float lr, beta1, beta2, eps, wd;
    float bc1, bc2;  // bias corrections 1 - beta^t (computed on the host in double, rounded once)
};

__device__ inline float adamw_decay_of(const AdamWGroups& gr, size_t i) {
    for (int k = 0; k < gr.count; k++)
        if (i < gr.end[k]) return gr.decay[k] ? 1.0f : 0.0f;
    return 0.0f;  // beyond the last range: no decay (the launcher rejects n > last end anyway)
}

// One element, same expression order as ref::adamw_update: m, v first, then p -= lr*(mhat/(sqrt(vhat)+eps)+wd*p).
__device__ inline float adamw_element(float& p, float g, float& m, float& v, float decay, const AdamWHyper& h) {
    m = h.beta1 * m + (1.0f - h.beta1) * g;
    v = h.beta2 * v + (1.0f - h.beta2) * (g * g);
    float mhat = __fdiv_rn(m, h.bc1), vhat = __fdiv_rn(v, h.bc2);
    float upd = __fdiv_rn(mhat, __fsqrt_rn(vhat) + h.eps) + decay * h.wd * p;
    p = p - h.lr * upd;
    return p;
}

// VEC: each thread step handles 4 consecutive elements with 16-byte loads (pointers checked by the launcher);
// the scalar version covers any alignment and the n % 4 tail.
template <bool VEC>
__global__ void adamw_kernel(float* master, floatX* params, const float* grads, float* mom, float* var, size_t n,
                             size_t first_index, AdamWGroups groups, AdamWHyper h, const float* d_scale,
                             float h_scale) {
    const float scale = d_scale ? *d_scale : h_scale;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t first = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t done = 0;
    if (VEC) {
        const size_t n4 = n / 4;
        for (size_t q = first; q < n4; q += stride) {
            float4 p = reinterpret_cast<const float4*>(master)[q];
            float4 g = reinterpret_cast<const float4*>(grads)[q];
            float4 m = reinterpret_cast<const float4*>(mom)[q];
            float4 v = reinterpret_cast<const float4*>(var)[q];
            size_t i = first_index + 4 * q;  // position in the parameter layout: decides the decay group
            adamw_element(p.x, g.x * scale, m.x, v.x, adamw_decay_of(groups, i + 0), h);
            adamw_element(p.y, g.y * scale, m.y, v.y, adamw_decay_of(groups, i + 1), h);
            adamw_element(p.z, g.z * scale, m.z, v.z, adamw_decay_of(groups, i + 2), h);
            adamw_element(p.w, g.w * scale, m.w, v.w, adamw_decay_of(groups, i + 3), h);
            reinterpret_cast<float4*>(master)[q] = p;
            reinterpret_cast<float4*>(mom)[q] = m;
            reinterpret_cast<float4*>(var)[q] = v;
            __nv_bfloat162 lo = __floats2bfloat162_rn(p.x, p.y), hi = __floats2bfloat162_rn(p.z, p.w);
            uint2 packed;
            packed.x = *reinterpret_cast<unsigned*>(&lo);
            packed.y = *reinterpret_cast<unsigned*>(&hi);
            reinterpret_cast<uint2*>(params)[q] = packed;
        }
        done = 4 * n4;
    }
    for (size_t i = done + first; i < n; i += stride) {
        float p = master[i], m = mom[i], v = var[i];
        adamw_element(p, grads[i] * scale, m, v, adamw_decay_of(groups, first_index + i), h);
        master[i] = p;
        mom[i] = m;
        var[i] = v;
        params[i] = __float2bfloat16_rn(p);
    }
}

// AdamW step t (1-based) on n elements of the flat buffers:
//   g = grads * s, s = *d_grad_scale (device scalar, e.g. the clip factor from global_norm) or grad_scale when
//   d_grad_scale == nullptr;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   master -= lr * (m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + wd_i * master),  wd_i = wd where groups say decay;
//   params[i] = bf16(master[i]) (round to nearest even).
// grads are only read (zero them for the next step separately). Elementwise: bit-identical run to run.
// first_index: where element 0 of these buffers sits in the parameter layout (a ZeRO-1 shard's offset), so the
// decay groups apply to the right elements.
inline void adamw_update(float* master, floatX* params, const float* grads, float* m, float* v, size_t n,
                         const AdamWGroups& groups, float lr, float beta1, float beta2, float eps, float wd, int t,
                         const float* d_grad_scale, float grad_scale, cudaStream_t stream, size_t first_index = 0) {
    if (n == 0) return;
    if (t < 1) llmc_die("adamw: step t must be >= 1 (got %d)", t);
    if (groups.count == 0 || groups.end[groups.count - 1] < first_index + n)
        llmc_die("adamw: parameter ranges cover %zu of %zu elements", groups.count ? groups.end[groups.count - 1] : 0,
                 first_index + n);
    AdamWHyper h;
    h.lr = lr, h.beta1 = beta1, h.beta2 = beta2, h.eps = eps, h.wd = wd;
    h.bc1 = (float)(1.0 - pow((double)beta1, t));
    h.bc2 = (float)(1.0 - pow((double)beta2, t));
    const int threads = 256;
    bool vec = (uintptr_t)master % 16 == 0 && (uintptr_t)grads % 16 == 0 && (uintptr_t)m % 16 == 0 &&
               (uintptr_t)v % 16 == 0 && (uintptr_t)params % 8 == 0;
    size_t work = vec ? n / 4 : n;
    size_t blocks = ceil_div(work ? work : 1, (size_t)threads);
    if (blocks > 65536) blocks = 65536;  // grid-stride beyond this: plenty of warps to hide latency
    if (vec)
        adamw_kernel<true><<<(int)blocks, threads, 0, stream>>>(master, params, grads, m, v, n, first_index, groups, h,
                                                                d_grad_scale, grad_scale);
    else
        adamw_kernel<false><<<(int)blocks, threads, 0, stream>>>(master, params, grads, m, v, n, first_index, groups, h,
                                                                 d_grad_scale, grad_scale);
    cudaCheckLaunch();
}
