// llmc/global_norm.cuh — deterministic global L2 norm of the fp32 gradient buffer and the seed's clip factor,
// both left on the device so the optimizer can consume the factor without a host round trip.
//
// Determinism: a FIXED grid (GNORM_BLOCKS blocks, independent of the card and of n) strides over the buffer;
// each thread sums squares in fp64, each block reduces in a fixed tree to one fp64 partial, and a single block
// reduces the partials in a fixed tree. No atomics, so two runs give the same bits on any card.
#pragma once
#include "cuda_common.cuh"

constexpr int GNORM_THREADS = 512;
constexpr int GNORM_BLOCKS = 1024;  // also the thread count of the final stage

// Sum of a block's values in a fixed order: warp shuffles (down), then warp 0 over the per-warp sums.
template <int THREADS>
__device__ inline double block_sum_fixed(double x) {
    __shared__ double sh[THREADS / 32];
    for (int off = 16; off > 0; off >>= 1) x += __shfl_down_sync(0xffffffffu, x, off);
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    if (lane == 0) sh[warp] = x;
    __syncthreads();
    x = 0.0;
    if (warp == 0) {
        x = lane < THREADS / 32 ? sh[lane] : 0.0;
        for (int off = 16; off > 0; off >>= 1) x += __shfl_down_sync(0xffffffffu, x, off);
    }
    return x;  // valid in thread 0
}

template <bool VEC>
__global__ void __launch_bounds__(GNORM_THREADS) global_norm_partials_kernel(double* partials, const float* g, size_t n) {
    const size_t stride = (size_t)GNORM_BLOCKS * GNORM_THREADS;
    const size_t first = (size_t)blockIdx.x * GNORM_THREADS + threadIdx.x;
    double acc = 0.0;
    size_t done = 0;
    if (VEC) {
        const size_t n4 = n / 4;
        for (size_t q = first; q < n4; q += stride) {
            float4 x = reinterpret_cast<const float4*>(g)[q];
            acc += (double)x.x * x.x + (double)x.y * x.y + (double)x.z * x.z + (double)x.w * x.w;
        }
        done = 4 * n4;
    }
    for (size_t i = done + first; i < n; i += stride) acc += (double)g[i] * g[i];
    acc = block_sum_fixed<GNORM_THREADS>(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// The sum of the partials in a fixed tree: the squared norm of this process's gradient (shard).
__global__ void __launch_bounds__(GNORM_BLOCKS) global_norm_sum_kernel(double* sumsq_out, const double* partials) {
    double s = block_sum_fixed<GNORM_BLOCKS>(partials[threadIdx.x]);
    if (threadIdx.x == 0) sumsq_out[0] = s;
}

// norm = sqrt(sumsq); clip = max_norm / (norm + 1e-6) if that is < 1, else 1 (max_norm <= 0: 1).
__global__ void global_norm_finish_kernel(double* norm_out, float* clip_out, const double* sumsq, double max_norm) {
    double norm = sqrt(sumsq[0]);
    norm_out[0] = norm;
    double c = 1.0;
    if (max_norm > 0) {
        c = max_norm / (norm + 1e-6);
        if (!(c < 1.0)) c = 1.0;  // NaN norm gives factor 1: the caller checks the norm for finiteness
    }
    clip_out[0] = (float)c;
}

// Device buffers of one norm computation: the per-block partials and the two results.
struct GlobalNorm {
    double* partials = nullptr;  // [GNORM_BLOCKS]
    double* sumsq = nullptr;     // device scalar: sum of squares (data parallel: summed over ranks before finish)
    double* norm = nullptr;      // device scalar: ||g||_2
    float* clip = nullptr;       // device scalar: factor to multiply the gradient by (<= 1)
};

inline void global_norm_init(GlobalNorm& gn) {
    cudaCheck(cudaMalloc(&gn.partials, GNORM_BLOCKS * sizeof(double)));
    cudaCheck(cudaMalloc(&gn.sumsq, sizeof(double)));
    cudaCheck(cudaMalloc(&gn.norm, sizeof(double)));
    cudaCheck(cudaMalloc(&gn.clip, sizeof(float)));
}

inline void global_norm_free(GlobalNorm& gn) {
    cudaCheck(cudaFree(gn.partials));
    cudaCheck(cudaFree(gn.sumsq));
    cudaCheck(cudaFree(gn.norm));
    cudaCheck(cudaFree(gn.clip));
    gn = GlobalNorm{};
}

// Asynchronous: *gn.sumsq = sum of g[0..n)^2 (fp64). Under ZeRO-1 each rank does this on its gradient shard and
// the ranks all-reduce gn.sumsq before global_norm_finish.
inline void global_norm_sumsq(GlobalNorm& gn, const float* g, size_t n, cudaStream_t stream) {
    if (!gn.partials) llmc_die("global_norm: GlobalNorm used before global_norm_init");
    if ((uintptr_t)g % 16 == 0)
        global_norm_partials_kernel<true><<<GNORM_BLOCKS, GNORM_THREADS, 0, stream>>>(gn.partials, g, n);
    else
        global_norm_partials_kernel<false><<<GNORM_BLOCKS, GNORM_THREADS, 0, stream>>>(gn.partials, g, n);
    cudaCheckLaunch();
    global_norm_sum_kernel<<<1, GNORM_BLOCKS, 0, stream>>>(gn.sumsq, gn.partials);
    cudaCheckLaunch();
}

// Asynchronous: *gn.norm = sqrt(*gn.sumsq) and *gn.clip = the seed's clip factor for max_norm
// (ref::clip_coefficient, as float). Pass gn.clip as adamw_update's d_grad_scale: no host sync.
inline void global_norm_finish(GlobalNorm& gn, double max_norm, cudaStream_t stream) {
    global_norm_finish_kernel<<<1, 1, 0, stream>>>(gn.norm, gn.clip, gn.sumsq, max_norm);
    cudaCheckLaunch();
}

// Both steps for one process: the L2 norm of g[0..n) and its clip factor.
inline void global_norm(GlobalNorm& gn, const float* g, size_t n, double max_norm, cudaStream_t stream) {
    global_norm_sumsq(gn, g, n, stream);
    global_norm_finish(gn, max_norm, stream);
}

// Synchronous convenience: waits for the stream and returns the norm computed by the last global_norm().
inline double global_norm_read(const GlobalNorm& gn, cudaStream_t stream) {
    double norm;
    cudaCheck(cudaMemcpyAsync(&norm, gn.norm, sizeof norm, cudaMemcpyDeviceToHost, stream));
    cudaCheck(cudaStreamSynchronize(stream));
    return norm;
}
