// llmc/swiglu.cuh — SwiGLU activation of the MLP: in [N, 2F] = [gate | up] (bf16, the up-projection output),
// out [N, F] = silu(gate) * up; backward writes din [N, 2F]. Arithmetic in fp32, storage bf16.
#pragma once
#include "cuda_common.cuh"
#include "rmsnorm.cuh"  // load_bf16x8 / store_bf16x8

// Logistic sigmoid in fp32. Under --use_fast_math expf becomes __expf (a few ulp, exact limits: exp(+large)
// = inf gives 0), far below the bf16 rounding of the results.
__device__ inline float swiglu_sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }

// One thread handles V consecutive features f0..f0+V-1 of one row (V = 8: 16-byte accesses, needs F % 8 == 0).
template <int V>
__global__ void swiglu_forward_kernel(floatX* out, const floatX* in, int N, int F) {
    int per = F / V;
    size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)N * per) return;
    int n = (int)(t / per), f0 = (int)(t % per) * V;
    const floatX* row = in + (size_t)n * 2 * F;
    float g[V], u[V], o[V];
    if constexpr (V == 8) {
        load_bf16x8(g, row + f0);
        load_bf16x8(u, row + F + f0);
    } else {
        for (int i = 0; i < V; i++) {
            g[i] = __bfloat162float(row[f0 + i]);
            u[i] = __bfloat162float(row[F + f0 + i]);
        }
    }
#pragma unroll
    for (int i = 0; i < V; i++) o[i] = g[i] * swiglu_sigmoid(g[i]) * u[i];
    floatX* orow = out + (size_t)n * F;
    if constexpr (V == 8) {
        store_bf16x8(orow + f0, o);
    } else {
        for (int i = 0; i < V; i++) orow[f0 + i] = __float2bfloat16_rn(o[i]);
    }
}

// d gate = dout * up * sig * (1 + g (1 - sig)), d up = dout * g * sig (sig = sigmoid(gate)).
template <int V>
__global__ void swiglu_backward_kernel(floatX* din, const floatX* dout, const floatX* in, int N, int F) {
    int per = F / V;
    size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)N * per) return;
    int n = (int)(t / per), f0 = (int)(t % per) * V;
    const floatX* row = in + (size_t)n * 2 * F;
    const floatX* drow = dout + (size_t)n * F;
    floatX* dirow = din + (size_t)n * 2 * F;
    float g[V], u[V], d[V], dg[V], du[V];
    if constexpr (V == 8) {
        load_bf16x8(g, row + f0);
        load_bf16x8(u, row + F + f0);
        load_bf16x8(d, drow + f0);
    } else {
        for (int i = 0; i < V; i++) {
            g[i] = __bfloat162float(row[f0 + i]);
            u[i] = __bfloat162float(row[F + f0 + i]);
            d[i] = __bfloat162float(drow[f0 + i]);
        }
    }
#pragma unroll
    for (int i = 0; i < V; i++) {
        float sig = swiglu_sigmoid(g[i]);
        dg[i] = d[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
        du[i] = d[i] * g[i] * sig;
    }
    if constexpr (V == 8) {
        store_bf16x8(dirow + f0, dg);
        store_bf16x8(dirow + F + f0, du);
    } else {
        for (int i = 0; i < V; i++) {
            dirow[f0 + i] = __float2bfloat16_rn(dg[i]);
            dirow[F + f0 + i] = __float2bfloat16_rn(du[i]);
        }
    }
}

// out [N, F] = silu(in[:, :F]) * in[:, F:]  (bf16, written).
inline void swiglu_forward(floatX* out, const floatX* in, int N, int F, cudaStream_t stream) {
    if (N <= 0 || F <= 0) return;
    if (F % 8 == 0) {
        swiglu_forward_kernel<8><<<(unsigned)ceil_div((size_t)N * (F / 8), (size_t)256), 256, 0, stream>>>(out, in, N, F);
    } else {
        swiglu_forward_kernel<1><<<(unsigned)ceil_div((size_t)N * F, (size_t)256), 256, 0, stream>>>(out, in, N, F);
    }
    cudaCheckLaunch();
}

// din [N, 2F] = d(out)/d(in) applied to dout [N, F] (bf16, WRITTEN, not accumulated: din is a fresh activation
// gradient that feeds the up-projection's matmul backward). in is the forward input. din may alias in (each
// thread reads its gate/up elements before writing the same two positions), not dout.
inline void swiglu_backward(floatX* din, const floatX* dout, const floatX* in, int N, int F, cudaStream_t stream) {
    if (N <= 0 || F <= 0) return;
    if (F % 8 == 0) {
        swiglu_backward_kernel<8><<<(unsigned)ceil_div((size_t)N * (F / 8), (size_t)256), 256, 0, stream>>>(din, dout,
                                                                                                        in, N, F);
    } else {
        swiglu_backward_kernel<1><<<(unsigned)ceil_div((size_t)N * F, (size_t)256), 256, 0, stream>>>(din, dout, in,
                                                                                                    N, F);
    }
    cudaCheckLaunch();
}
