// llmc/classifier.cuh — fused softmax cross-entropy over the LM-head logits, plus the row gather/scatter the
// MDM trainer uses to run the LM head only on masked rows, and a deterministic weighted loss sum.
//
// Logits are bf16 [N, V] (the output of matmul_forward; the seed's logits are a bf16 matmul output cast to fp32,
// so bf16 storage loses nothing the seed keeps). All softmax / log-sum-exp / loss math is fp32. The gradient
// dlogits = weight[n] * (softmax - onehot) overwrites the logits in place (bf16), ready for the LM-head backward.
#pragma once
#include <cfloat>
#include "cuda_common.cuh"

constexpr int CLASSIFIER_THREADS = 512;

// Running (max, sum of exp(x - max)) pairs merge exactly like partial softmax denominators.
__device__ inline void softmax_merge(float& m, float& s, float m2, float s2) {
    float mn = fmaxf(m, m2);
    s = s * expf(m - mn) + s2 * expf(m2 - mn);
    m = mn;
}

// How a row is read: one bf16 at a time (any V), 16-byte vectors of 8 bf16 (V % 8 == 0, 16-byte aligned base),
// or vectors with the row also kept in shared memory so the gradient pass never reads DRAM again.
enum ClassifierMode { CLS_SCALAR = 0, CLS_VEC = 1, CLS_VEC_SMEM = 2 };

// One block per row. Pass 1 reads the row once, keeping an online (max, sum) per thread; the block merges them
// in a fixed tree (deterministic). Pass 2 re-reads the row (from shared memory in CLS_VEC_SMEM, else from
// global memory) and writes the gradient over it. Each 16-byte vector is handled by the same thread in both.
template <int MODE>
__global__ void __launch_bounds__(CLASSIFIER_THREADS)
    classifier_kernel(floatX* logits, float* losses, const int* targets, const float* weights,
                      float uniform_weight, int V, bool write_grad) {
    constexpr bool VEC = MODE != CLS_SCALAR, SMEM = MODE == CLS_VEC_SMEM;
    extern __shared__ uint4 srow[];  // [V / 8] in CLS_VEC_SMEM, unused otherwise
    __shared__ float sh_m[CLASSIFIER_THREADS / 32], sh_s[CLASSIFIER_THREADS / 32];
    const int n = blockIdx.x, tid = threadIdx.x;
    floatX* row = logits + (size_t)n * V;
    const int target = targets[n];
    const bool target_ok = target >= 0 && target < V;
    // Read before anyone writes the row: pass 2 only starts after the block-wide merge below.
    const float x_target = (tid == 0 && target_ok) ? __bfloat162float(row[target]) : 0.0f;

    float m = -FLT_MAX, s = 0.0f;  // -FLT_MAX rather than -inf: merging two empty partials stays finite
    if (VEC) {
        const uint4* rv = reinterpret_cast<const uint4*>(row);
        for (int i = tid; i < V / 8; i += CLASSIFIER_THREADS) {
            uint4 raw = rv[i];
            if (SMEM) srow[i] = raw;
            const __nv_bfloat162* h2 = reinterpret_cast<const __nv_bfloat162*>(&raw);
            float x[8];
#pragma unroll
            for (int j = 0; j < 4; j++) {
                float2 f = __bfloat1622float2(h2[j]);
                x[2 * j] = f.x;
                x[2 * j + 1] = f.y;
            }
            float vm = x[0];
#pragma unroll
            for (int j = 1; j < 8; j++) vm = fmaxf(vm, x[j]);
            float mn = fmaxf(m, vm), add = 0.0f;
#pragma unroll
            for (int j = 0; j < 8; j++) add += expf(x[j] - mn);
            s = s * expf(m - mn) + add;
            m = mn;
        }
    } else {
        for (int i = tid; i < V; i += CLASSIFIER_THREADS) softmax_merge(m, s, __bfloat162float(row[i]), 1.0f);
    }
    // Block merge: warp butterfly, then warp 0 merges the per-warp partials; lane 0's result is used by all.
    for (int off = 16; off > 0; off >>= 1)
        softmax_merge(m, s, __shfl_xor_sync(0xffffffffu, m, off), __shfl_xor_sync(0xffffffffu, s, off));
    if ((tid & 31) == 0) sh_m[tid / 32] = m, sh_s[tid / 32] = s;
    __syncthreads();
    if (tid < 32) {
        m = tid < CLASSIFIER_THREADS / 32 ? sh_m[tid] : -FLT_MAX;
        s = tid < CLASSIFIER_THREADS / 32 ? sh_s[tid] : 0.0f;
        for (int off = 16; off > 0; off >>= 1)
            softmax_merge(m, s, __shfl_xor_sync(0xffffffffu, m, off), __shfl_xor_sync(0xffffffffu, s, off));
        if (tid == 0) sh_m[0] = m, sh_s[0] = s;
    }
    __syncthreads();
    const float row_max = sh_m[0], row_sum = sh_s[0];
    if (tid == 0) losses[n] = target_ok ? row_max + logf(row_sum) - x_target : NAN;
    if (!write_grad) return;

    const float w = weights ? weights[n] : uniform_weight;
    const float scale = w / row_sum;  // dlogit = w * exp(x - max) / sum - w * [i == target]
    if (VEC) {
        uint4* rv = reinterpret_cast<uint4*>(row);
        for (int i = tid; i < V / 8; i += CLASSIFIER_THREADS) {
            uint4 raw = SMEM ? srow[i] : rv[i];  // smem: written by this same thread in pass 1
            __nv_bfloat162* h2 = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
            for (int j = 0; j < 4; j++) {
                float2 f = __bfloat1622float2(h2[j]);
                int c = 8 * i + 2 * j;
                float g0 = expf(f.x - row_max) * scale - (c == target ? w : 0.0f);
                float g1 = expf(f.y - row_max) * scale - (c + 1 == target ? w : 0.0f);
                h2[j] = __floats2bfloat162_rn(g0, g1);
            }
            rv[i] = raw;
        }
    } else {
        for (int i = tid; i < V; i += CLASSIFIER_THREADS) {
            float g = expf(__bfloat162float(row[i]) - row_max) * scale - (i == target ? w : 0.0f);
            row[i] = __float2bfloat16(g);
        }
    }
}

// For each of the N rows of logits[N, V] (bf16, row-major):
//   losses[n] = logsumexp(logits[n, :]) - logits[n, targets[n]]   (fp32; NaN if the target is outside [0, V))
//   if write_dlogits: logits[n, :] = w_n * (softmax(logits[n, :]) - onehot(targets[n]))   (IN PLACE, bf16)
// with w_n = weights[n] (device array) or, when weights == nullptr, uniform_weight for every row. Rows with
// w_n = 0 still get their loss (evaluation) and a zero gradient. The rows may be any compacted subset of the
// batch (MDM: only masked rows, see gather_rows); N = 0 is a no-op.
inline void classifier_forward_backward(floatX* logits, float* losses, const int* targets, const float* weights,
                                        float uniform_weight, int N, int V, bool write_dlogits,
                                        cudaStream_t stream) {
    if (N <= 0) return;
    const bool vec = V % 8 == 0 && ((uintptr_t)logits % 16) == 0;
    // Keeping the row in shared memory saves the second DRAM read of the gradient pass (the rows in flight
    // exceed L2); it needs V*2 bytes per block (100.6 KB at V = 50304: 2 blocks per H100 SM, 1 on A100).
    static int smem_configured = 0;
    const int smem = V * (int)sizeof(floatX);
    const int static_smem = 2 * (CLASSIFIER_THREADS / 32) * (int)sizeof(float);
    if (vec && write_dlogits && smem + static_smem <= device_smem_optin()) {
        if (smem > smem_configured) {
            cudaCheck(cudaFuncSetAttribute(classifier_kernel<CLS_VEC_SMEM>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
            smem_configured = smem;
        }
        classifier_kernel<CLS_VEC_SMEM><<<N, CLASSIFIER_THREADS, smem, stream>>>(logits, losses, targets, weights,
                                                                                 uniform_weight, V, true);
    } else if (vec) {
        classifier_kernel<CLS_VEC><<<N, CLASSIFIER_THREADS, 0, stream>>>(logits, losses, targets, weights,
                                                                         uniform_weight, V, write_dlogits);
    } else {
        classifier_kernel<CLS_SCALAR><<<N, CLASSIFIER_THREADS, 0, stream>>>(logits, losses, targets, weights,
                                                                            uniform_weight, V, write_dlogits);
    }
    cudaCheckLaunch();
}

// ---- deterministic loss sum ------------------------------------------------------------------------------
constexpr int LOSS_REDUCE_THREADS = 1024;

// One block: thread t sums rows t, t+1024, ... in fp64, then a fixed shared-memory tree; no atomics.
__global__ void __launch_bounds__(LOSS_REDUCE_THREADS)
    loss_reduce_kernel(double* out, const float* losses, const float* weights, float uniform_weight, int N,
                       bool accumulate) {
    __shared__ double sh[LOSS_REDUCE_THREADS];
    double acc = 0.0;
    for (int i = threadIdx.x; i < N; i += LOSS_REDUCE_THREADS)
        acc += (double)losses[i] * (double)(weights ? weights[i] : uniform_weight);
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int half = LOSS_REDUCE_THREADS / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half) sh[threadIdx.x] += sh[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[0] = (accumulate ? out[0] : 0.0) + sh[0];
}

// *out (device, fp64) = [*out +] sum_n losses[n] * w_n, w_n as in classifier_forward_backward. With
// accumulate = true the micro-batch losses of a step add up on the device, so the host reads one number per
// step (one sync) instead of one per micro-batch. Bit-identical run to run.
inline void loss_reduce(double* out, const float* losses, const float* weights, float uniform_weight, int N,
                        bool accumulate, cudaStream_t stream) {
    loss_reduce_kernel<<<1, LOSS_REDUCE_THREADS, 0, stream>>>(out, losses, weights, uniform_weight, N < 0 ? 0 : N,
                                                              accumulate);
    cudaCheckLaunch();
}

// ---- row compaction for the MDM LM head -------------------------------------------------------------------
// U is the copy unit: uint4 (8 bf16) when rows are 16-byte multiples, else one bf16.
template <class U>
__global__ void gather_rows_kernel(U* out, const U* in, const int* rows, int M, int units) {
    size_t total = (size_t)M * units, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        size_t j = i / units, c = i % units;
        out[i] = in[(size_t)rows[j] * units + c];
    }
}

template <class U>
__global__ void scatter_rows_kernel(U* full, const U* compact, const int* rows, int M, int units) {
    size_t total = (size_t)M * units, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        size_t j = i / units, c = i % units;
        full[(size_t)rows[j] * units + c] = compact[i];
    }
}

inline bool rows_vectorizable(const void* a, const void* b, int C) {
    return C % 8 == 0 && (uintptr_t)a % 16 == 0 && (uintptr_t)b % 16 == 0;
}

inline int rows_grid(size_t units_total) {
    size_t blocks = ceil_div(units_total, (size_t)256);
    return (int)(blocks < 65536 ? (blocks ? blocks : 1) : 65536);
}

// out[j, :] = in[rows[j], :] for j < M; in is [N, C], out [M, C] (bf16). rows: device ints in [0, N).
inline void gather_rows(floatX* out, const floatX* in, const int* rows, int M, int C, cudaStream_t stream) {
    if (M <= 0 || C <= 0) return;
    if (rows_vectorizable(out, in, C))
        gather_rows_kernel<uint4><<<rows_grid((size_t)M * C / 8), 256, 0, stream>>>(
            reinterpret_cast<uint4*>(out), reinterpret_cast<const uint4*>(in), rows, M, C / 8);
    else
        gather_rows_kernel<floatX><<<rows_grid((size_t)M * C), 256, 0, stream>>>(out, in, rows, M, C);
    cudaCheckLaunch();
}

// Backward of gather_rows: full[N, C] = 0 except full[rows[j], :] = compact[j, :]. rows must be DISTINCT
// (a compaction list), so every output element has one writer and the result is deterministic.
inline void scatter_rows(floatX* full, const floatX* compact, const int* rows, int M, int N, int C,
                         cudaStream_t stream) {
    if (N <= 0 || C <= 0) return;
    cudaCheck(cudaMemsetAsync(full, 0, (size_t)N * C * sizeof(floatX), stream));
    if (M <= 0) return;
    if (rows_vectorizable(full, compact, C))
        scatter_rows_kernel<uint4><<<rows_grid((size_t)M * C / 8), 256, 0, stream>>>(
            reinterpret_cast<uint4*>(full), reinterpret_cast<const uint4*>(compact), rows, M, C / 8);
    else
        scatter_rows_kernel<floatX><<<rows_grid((size_t)M * C), 256, 0, stream>>>(full, compact, rows, M, C);
    cudaCheckLaunch();
}
