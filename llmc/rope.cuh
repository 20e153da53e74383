// llmc/rope.cuh — rotary position embedding (theta, half-split "rotate-half" layout over the full head dim),
// in place on the Q and K thirds of qkv [B, S, 3*nh*hd] (bf16), forward and backward.
//
// The cos/sin come from a table computed once on the host, in double from the fp32 angle, exactly as the CPU
// reference does: inv_freq_j = 1/powf(theta, 2j/hd) and angle = (float)s * inv_freq_j in fp32. Computing them
// on the device instead would be wrong under --use_fast_math, which turns sinf/cosf into __sinf/__cosf whose
// error grows with the argument (angles reach 2047 rad), and powf into an approximation.
#pragma once
#include <cmath>
#include <vector>
#include "cuda_common.cuh"
#include "rmsnorm.cuh"  // load_bf16x8 / store_bf16x8

// Device table of (cos, sin) for positions 0..S-1 and pairs j = 0..hd/2-1: entry [s*hd/2 + j].
struct RopeTable {
    float2* d = nullptr;
    int S = 0, hd = 0;
};

inline void rope_table_host(std::vector<float2>& t, int S, int hd, float theta) {
    int half = hd / 2;
    t.resize((size_t)S * half);
    for (int j = 0; j < half; j++) {
        float inv_freq = 1.0f / powf(theta, (float)(2 * j) / (float)hd);
        for (int s = 0; s < S; s++) {
            double a = (double)((float)s * inv_freq);
            t[(size_t)s * half + j] = make_float2((float)cos(a), (float)sin(a));
        }
    }
}

// Builds and uploads the table for sequences of up to S positions (once per run; free with rope_table_free).
inline RopeTable rope_table_create(int S, int hd, float theta) {
    if (S <= 0 || hd <= 0 || hd % 2) llmc_die("rope table: S = %d must be positive and hd = %d positive and even", S, hd);
    std::vector<float2> h;
    rope_table_host(h, S, hd, theta);
    RopeTable t;
    t.S = S;
    t.hd = hd;
    cudaCheck(cudaMalloc(&t.d, h.size() * sizeof(float2)));
    cudaCheck(cudaMemcpy(t.d, h.data(), h.size() * sizeof(float2), cudaMemcpyHostToDevice));
    return t;
}
inline void rope_table_free(RopeTable& t) {
    if (t.d) cudaCheck(cudaFree(t.d));
    t = RopeTable{};
}

// One thread rotates V pairs (j0..j0+V-1 with their partners j+hd/2) of one head of Q or K in one row.
// V = 8 uses 16-byte accesses (needs hd % 16 == 0); V = 1 serves any even hd.
// sign = +1: lo' = lo*c - hi*s, hi' = hi*c + lo*s (forward); sign = -1 rotates back (backward = transpose).
template <int V>
__global__ void rope_kernel(floatX* qkv, const float2* table, int N, int S, int nh, int hd, float sign) {
    int half = hd / 2, per = half / V;
    size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)N * 2 * nh * per) return;
    int j0 = (int)(t % per) * V;
    size_t rest = t / per;
    int hq = (int)(rest % (2 * nh));  // 0..nh-1: Q heads, nh..2nh-1: K heads (the K third follows the Q third)
    int n = (int)(rest / (2 * nh));
    floatX* v = qkv + (size_t)n * 3 * nh * hd + (size_t)hq * hd;
    const float2* cs = table + (size_t)(n % S) * half + j0;
    float lo[V], hi[V];
    if constexpr (V == 8) {
        load_bf16x8(lo, v + j0);
        load_bf16x8(hi, v + half + j0);
    } else {
        for (int i = 0; i < V; i++) {
            lo[i] = __bfloat162float(v[j0 + i]);
            hi[i] = __bfloat162float(v[half + j0 + i]);
        }
    }
#pragma unroll
    for (int i = 0; i < V; i++) {
        float2 a = cs[i];
        float c = a.x, s = sign * a.y;
        float l = lo[i], h = hi[i];
        lo[i] = l * c - h * s;
        hi[i] = h * c + l * s;
    }
    if constexpr (V == 8) {
        store_bf16x8(v + j0, lo);
        store_bf16x8(v + half + j0, hi);
    } else {
        for (int i = 0; i < V; i++) {
            v[j0 + i] = __float2bfloat16_rn(lo[i]);
            v[half + j0 + i] = __float2bfloat16_rn(hi[i]);
        }
    }
}

inline void rope_launch(floatX* qkv, const RopeTable& table, int B, int S, int nh, int hd, float sign,
                        cudaStream_t stream) {
    if (hd != table.hd || S > table.S)
        llmc_die("rope: table built for hd %d and %d positions, called with hd %d and %d positions", table.hd,
                 table.S, hd, S);
    size_t pairs = (size_t)B * S * 2 * nh * (hd / 2);
    if (pairs == 0) return;
    if (hd % 16 == 0) {
        rope_kernel<8><<<(unsigned)ceil_div(pairs / 8, (size_t)256), 256, 0, stream>>>(qkv, table.d, B * S, S, nh, hd,
                                                                                        sign);
    } else {
        rope_kernel<1><<<(unsigned)ceil_div(pairs, (size_t)256), 256, 0, stream>>>(qkv, table.d, B * S, S, nh, hd,
                                                                                    sign);
    }
    cudaCheckLaunch();
}

// In place on qkv [B, S, 3*nh*hd]: rotates Q and K of row (b, s) by the angles of position s; V untouched.
inline void rope_forward(floatX* qkv, const RopeTable& table, int B, int S, int nh, int hd, cudaStream_t stream) {
    rope_launch(qkv, table, B, S, nh, hd, +1.0f, stream);
}
// In place on the gradient dqkv: rotation by the negative angles (the inverse of the forward's rotation).
inline void rope_backward(floatX* dqkv, const RopeTable& table, int B, int S, int nh, int hd, cudaStream_t stream) {
    rope_launch(dqkv, table, B, S, nh, hd, -1.0f, stream);
}
