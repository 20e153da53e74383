// llmc/mdm.cuh — the masked-diffusion pieces on the GPU: input corruption (mask tokens, the compacted list of
// masked rows with their loss weights) and the LM head + loss run on the masked rows only.
//
// Corruption (mdm_corrupt): per sequence b of a micro-batch, p_b = (1-eps) t_b + eps and position s is masked
// iff u_{b,s} < p_b, with the same keyed Philox draws as the CPU (llmc/mdm.h, llmc/objective.h), so the masks
// are bit-identical to make_mdm_batch / make_mdm_eval_batch. Besides the full [B*S] inputs/targets/weights it
// writes the masked positions n = b*S + s in increasing order, compacted, with their targets and weights
// 1/(p_b*B*S): the LM head then multiplies only those rows (about half the batch on average), as the loss
// ignores every unmasked position. The compaction is a per-row count, then a per-row scan: no atomics, so the
// order and all outputs are deterministic.
//
// The compacted list is padded with zero-weight entries (row 0, target 0) up to a multiple of MDM_ROW_GRANULE
// rows: the masked count changes every micro-batch, and llmc/matmul.cuh pins one cuBLASLt plan per shape, so
// padding bounds the number of distinct head shapes (N / 64 instead of N). Zero weight makes a padded row
// contribute exactly nothing to the loss and to dwte, and scatter_rows only writes the real rows back.
//
// Seed options implemented here (both off by default, training only; the seed forces them off in evaluation):
//   --ar-ratio rho: with probability rho a sequence keeps its masked count K but moves the mask to its last K
//     positions (the seed's quirk: K = 0 selects the whole row, so all positions are masked). The coin is a
//     keyed draw with its own purpose, RNG_MDM_AR (llmc/philox.h): sample = global sequence index, step =
//     training step, sub 0, idx 0.
//   --low-noise-start: t <- t * low_noise_ratio while step < low_noise_iters (the 0-based step of the keys).
// The definitions of these options (MdmOptions, mdm_train_prob, mdm_suffix_row) are in llmc/mdm.h and their
// host batch builder is llmc/objective.h's make_mdm_batch, shared with the CPU trainer.
#pragma once
#include <cstdint>
#include <vector>
#include "classifier.cuh"   // classifier_forward_backward, loss_reduce, gather_rows, scatter_rows
#include "cuda_common.cuh"  // cudaCheck, floatX, ceil_div
#include "matmul.cuh"       // MatmulContext, matmul_forward, matmul_backward_dx/_dw
#include "mdm.h"            // mdm_time, mdm_mask_prob, mdm_eval_prob
#include "objective.h"      // make_mdm_batch / make_mdm_eval_batch: the host twins of these kernels

// ==== corruption kernels ===================================================================================

// Which draws a micro-batch uses. Training: t from RNG_MDM_T, masks from RNG_MDM_MASK, keyed by the training
// step; evaluation (MC-ELBO draw k of K): llmc/mdm.h mdm_eval_prob, masks from RNG_EVAL_MASK keyed by k.
// Row b is global sample / validation sequence sample0 + b.
struct MdmKeys {
    uint32_t seed = 0;
    bool eval = false;
    uint32_t step = 0;        // training: optimizer step (0-based); eval: the MC draw k
    int K = 1;                // eval: number of MC draws (stratified t)
    bool stratified = false;  // eval: t_k = (u + k/K) mod 1 instead of an independent t per draw
    uint32_t sample0 = 0;
    float eps = 1e-3f;
    int mask_id = 0;
    MdmOptions opt;           // training only
};

inline MdmKeys mdm_train_keys(uint32_t seed, uint32_t step, uint32_t sample0, float eps, int mask_id,
                              const MdmOptions& opt = MdmOptions()) {
    MdmKeys k;
    k.seed = seed, k.step = step, k.sample0 = sample0, k.eps = eps, k.mask_id = mask_id, k.opt = opt;
    return k;
}

inline MdmKeys mdm_eval_keys(uint32_t seed, int k, int K, bool stratified, uint32_t sample0, float eps, int mask_id) {
    MdmKeys m;
    m.seed = seed, m.eval = true, m.step = (uint32_t)k, m.K = K, m.stratified = stratified, m.sample0 = sample0;
    m.eps = eps, m.mask_id = mask_id;
    return m;
}

LLMC_HD inline float mdm_row_prob(const MdmKeys& k, uint32_t sample) {
    return k.eval ? mdm_eval_prob(k.seed, sample, (int)k.step, k.K, k.stratified, k.eps)
                  : mdm_train_prob(k.seed, k.step, sample, k.eps, k.opt);
}

LLMC_HD inline bool mdm_row_is_suffix(const MdmKeys& k, uint32_t sample) {
    return !k.eval && mdm_suffix_row(k.seed, k.step, sample, k.opt.ar_ratio);
}

constexpr int MDM_ROW_GRANULE = 64;  // compacted lists are padded to a multiple of this many rows
LLMC_HD inline int mdm_padded_rows(int count) { return ceil_div(count, MDM_ROW_GRANULE) * MDM_ROW_GRANULE; }

// Device buffers of one micro-batch of up to max_rows sequences of up to max_len tokens (mdm_batch_alloc).
struct MdmBatch {
    int max_rows = 0, max_len = 0, capacity = 0;  // capacity = mdm_padded_rows(max_rows * max_len)
    int* inputs = nullptr;     // [B*S] clean token, or mask_id where masked: the network's input
    int* targets = nullptr;    // [B*S] the clean tokens
    float* weight = nullptr;   // [B*S] 1/(p_b*B*S) where masked, else 0 (the all-rows form of the loss)
    float* p = nullptr;        // [B]   masking probability of each sequence
    int* rows = nullptr;       // [capacity] masked positions n = b*S + s, increasing; then padding (row 0)
    int* ctargets = nullptr;   // [capacity] targets of those rows; padding 0
    float* cweight = nullptr;  // [capacity] weights of those rows; padding 0
    int* row_start = nullptr;  // [B+1] index in the compacted list of sequence b's first masked row; [B] = count
    int* count = nullptr;      // [1] number of masked rows (before padding)
    int* row_info = nullptr;   // [2*max_rows] scratch: masked count and suffix flag of each sequence
};

inline void mdm_batch_alloc(MdmBatch& mb, int max_rows, int max_len) {
    if (max_rows < 1 || max_len < 1) llmc_die("mdm_batch_alloc: bad size %d x %d", max_rows, max_len);
    mb.max_rows = max_rows, mb.max_len = max_len;
    const size_t n = (size_t)max_rows * max_len;
    if (n + MDM_ROW_GRANULE > (size_t)INT32_MAX) llmc_die("mdm_batch_alloc: %zu tokens per micro-batch is too many", n);
    mb.capacity = mdm_padded_rows((int)n);
    cudaCheck(cudaMalloc(&mb.inputs, n * sizeof(int)));
    cudaCheck(cudaMalloc(&mb.targets, n * sizeof(int)));
    cudaCheck(cudaMalloc(&mb.weight, n * sizeof(float)));
    cudaCheck(cudaMalloc(&mb.p, (size_t)max_rows * sizeof(float)));
    cudaCheck(cudaMalloc(&mb.rows, (size_t)mb.capacity * sizeof(int)));
    cudaCheck(cudaMalloc(&mb.ctargets, (size_t)mb.capacity * sizeof(int)));
    cudaCheck(cudaMalloc(&mb.cweight, (size_t)mb.capacity * sizeof(float)));
    cudaCheck(cudaMalloc(&mb.row_start, ((size_t)max_rows + 1) * sizeof(int)));
    cudaCheck(cudaMalloc(&mb.count, sizeof(int)));
    cudaCheck(cudaMalloc(&mb.row_info, 2 * (size_t)max_rows * sizeof(int)));
}

inline void mdm_batch_free(MdmBatch& mb) {
    for (void* ptr : {(void*)mb.inputs, (void*)mb.targets, (void*)mb.weight, (void*)mb.p, (void*)mb.rows,
                      (void*)mb.ctargets, (void*)mb.cweight, (void*)mb.row_start, (void*)mb.count, (void*)mb.row_info})
        if (ptr) cudaCheck(cudaFree(ptr));
    mb = MdmBatch();
}

constexpr int MDM_THREADS = 256;  // 4 consecutive positions per thread (one Philox call): 1024 per pass

// Mask flags of positions pos0 .. pos0+3 (pos0 % 4 == 0) of one sequence: the four lanes of one Philox call,
// exactly llmc/mdm.h mdm_is_masked(seed, purpose, step, sample, pos, p) for each pos < S (false beyond S).
__device__ inline void mdm_iid_mask4(bool m[4], const MdmKeys& k, uint32_t sample, float p, int pos0, int S) {
    const uint32_t purpose = k.eval ? RNG_EVAL_MASK : RNG_MDM_MASK;
    const Philox4 r = philox4x32_10(Philox4{{(uint32_t)pos0 >> 2, 0u, sample, k.step}}, k.seed, purpose);
#pragma unroll
    for (int j = 0; j < 4; j++) m[j] = pos0 + j < S && u32_to_uniform(r.v[j]) < p;
}

// Exclusive prefix sum of v over the block (MDM_THREADS threads, all must call); *total gets the block sum.
// Ends with a barrier so the shared scratch can be reused by the next call.
__device__ inline int mdm_block_exclusive_scan(int v, int* total) {
    constexpr int NW = MDM_THREADS / 32;
    __shared__ int warp_sum[NW];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int x = v;  // inclusive scan within the warp
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
        const int y = __shfl_up_sync(0xffffffffu, x, off);
        if (lane >= off) x += y;
    }
    if (lane == 31) warp_sum[warp] = x;
    __syncthreads();
    if (warp == 0) {  // inclusive scan of the warp totals
        int s = lane < NW ? warp_sum[lane] : 0;
#pragma unroll
        for (int off = 1; off < 32; off <<= 1) {
            const int y = __shfl_up_sync(0xffffffffu, s, off);
            if (lane >= off) s += y;
        }
        if (lane < NW) warp_sum[lane] = s;
    }
    __syncthreads();
    const int before = (warp ? warp_sum[warp - 1] : 0) + x - v;
    *total = warp_sum[NW - 1];
    __syncthreads();
    return before;
}

// One block per sequence: p_b, the number of masked positions (after suffix masking) and the suffix flag.
__global__ void __launch_bounds__(MDM_THREADS) mdm_count_kernel(float* p_out, int* row_info, MdmKeys k, int S) {
    const int b = blockIdx.x;
    const uint32_t sample = k.sample0 + (uint32_t)b;
    const float p = mdm_row_prob(k, sample);  // every thread draws it: one Philox call, no broadcast needed
    int c = 0;
    for (int pos0 = 4 * (int)threadIdx.x; pos0 < S; pos0 += 4 * MDM_THREADS) {
        bool m[4];
        mdm_iid_mask4(m, k, sample, p, pos0, S);
        c += (int)m[0] + (int)m[1] + (int)m[2] + (int)m[3];
    }
    int K;
    mdm_block_exclusive_scan(c, &K);
    if (threadIdx.x == 0) {
        const bool suffix = mdm_row_is_suffix(k, sample);
        p_out[b] = p;
        row_info[2 * b] = suffix ? mdm_suffix_count(K, S) : K;
        row_info[2 * b + 1] = suffix;
    }
}

// One block per sequence: its offset in the compacted list (sum of the earlier rows' counts), then passes of
// 1024 positions: the mask again, a block scan of the per-thread counts, and the writes, in position order.
// The last block also writes row_start[B], the count and the zero-weight padding.
__global__ void __launch_bounds__(MDM_THREADS)
    mdm_write_kernel(MdmBatch mb, const int* y, int y_stride, MdmKeys k, int B, int S) {
    __shared__ int sh_offset;
    const int b = blockIdx.x, tid = threadIdx.x;
    const int masked_in_row = mb.row_info[2 * b];
    const bool suffix = mb.row_info[2 * b + 1] != 0;
    if (tid == 0) {
        int off = 0;
        for (int i = 0; i < b; i++) off += mb.row_info[2 * i];
        sh_offset = off;
        mb.row_start[b] = off;
        if (b == B - 1) {
            mb.row_start[B] = off + masked_in_row;
            *mb.count = off + masked_in_row;
        }
    }
    __syncthreads();
    const uint32_t sample = k.sample0 + (uint32_t)b;
    const float p = mb.p[b];
    const float w = (float)(1.0 / ((double)p * B * S));  // the host's expression, in IEEE double
    const int* yrow = y + (size_t)b * y_stride;
    const int first_suffix = S - masked_in_row;
    int next = sh_offset;  // compacted index of the next masked position of this row
    for (int base = 0; base < S; base += 4 * MDM_THREADS) {  // same trip count for every thread (block scan)
        const int pos0 = base + 4 * tid;
        bool m[4];
        if (suffix) {
#pragma unroll
            for (int j = 0; j < 4; j++) m[j] = pos0 + j < S && pos0 + j >= first_suffix;
        } else {
            mdm_iid_mask4(m, k, sample, p, pos0, S);
        }
        int pass_total;
        int j_out = next + mdm_block_exclusive_scan((int)m[0] + (int)m[1] + (int)m[2] + (int)m[3], &pass_total);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int pos = pos0 + j;
            if (pos >= S) break;
            const int n = b * S + pos, x = yrow[pos];
            mb.inputs[n] = m[j] ? k.mask_id : x;
            mb.targets[n] = x;
            mb.weight[n] = m[j] ? w : 0.0f;
            if (m[j]) {
                mb.rows[j_out] = n;
                mb.ctargets[j_out] = x;
                mb.cweight[j_out] = w;
                j_out++;
            }
        }
        next += pass_total;
    }
    if (b == B - 1)  // here next = the total count
        for (int j = next + tid; j < mdm_padded_rows(next); j += MDM_THREADS) {
            mb.rows[j] = 0;
            mb.ctargets[j] = 0;
            mb.cweight[j] = 0.0f;
        }
}

// Corrupts B sequences of S clean tokens: y (device ints) row b at y + b*y_stride (y_stride = S+1 for the
// sampler's samples of S+1 tokens, whose last token MDM ignores, or S). Fills every output of mb for this
// micro-batch (see MdmBatch); weights use this B and S (a short last validation batch uses its own B, as
// make_mdm_eval_batch does). Equal bit for bit to make_mdm_batch (training, with the same MdmOptions) and
// make_mdm_eval_batch (evaluation). Asynchronous; two kernel launches.
inline void mdm_corrupt(const MdmBatch& mb, const int* y, int y_stride, int B, int S, const MdmKeys& keys,
                        cudaStream_t stream) {
    if (B < 0 || B > mb.max_rows || S < 1 || S > mb.max_len || y_stride < S)
        llmc_die("mdm_corrupt: %d x %d tokens (stride %d) do not fit a batch of %d x %d", B, S, y_stride, mb.max_rows,
                 mb.max_len);
    if (keys.mask_id < 0 || !(keys.eps >= 0.0f && keys.eps <= 1.0f) || (keys.eval && (keys.K < 1 || (int)keys.step >= keys.K)))
        llmc_die("mdm_corrupt: bad keys (mask_id %d, eps %g, draw %u of %d)", keys.mask_id, keys.eps, keys.step, keys.K);
    if (B == 0) {
        cudaCheck(cudaMemsetAsync(mb.count, 0, sizeof(int), stream));
        cudaCheck(cudaMemsetAsync(mb.row_start, 0, sizeof(int), stream));
        return;
    }
    mdm_count_kernel<<<B, MDM_THREADS, 0, stream>>>(mb.p, mb.row_info, keys, S);
    cudaCheckLaunch();
    mdm_write_kernel<<<B, MDM_THREADS, 0, stream>>>(mb, y, y_stride, keys, B, S);
    cudaCheckLaunch();
}

// The masked count of the last mdm_corrupt on `stream` (synchronises the stream): the one host read per
// micro-batch that sizes the LM head.
inline int mdm_read_count(const MdmBatch& mb, cudaStream_t stream) {
    int c = 0;
    cudaCheck(cudaMemcpyAsync(&c, mb.count, sizeof(int), cudaMemcpyDeviceToHost, stream));
    cudaCheck(cudaStreamSynchronize(stream));
    return c;
}

__global__ void mdm_scale_kernel(float* w, int n, float scale) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) w[i] = w[i] * scale;
}

// cweight of the first n compacted rows *= scale (e.g. 1/grad_accum, so accumulated micro-batches give the mean
// loss), the same float product the host path's Transformer::head() forms.
inline void mdm_scale_weights(const MdmBatch& mb, int n, float scale, cudaStream_t stream) {
    if (n <= 0 || scale == 1.0f) return;
    mdm_scale_kernel<<<ceil_div(n, 256), 256, 0, stream>>>(mb.cweight, n, scale);
    cudaCheckLaunch();
}

// ==== LM head + loss on the masked rows ====================================================================

// Scratch sizes of the head for micro-batches of up to N tokens: mdm_padded_rows(N) rows of C (hc) and of
// Vp (logits) bf16, and as many fp32 losses.
inline size_t mdm_head_rows(int N) { return (size_t)mdm_padded_rows(N); }

// Training head of one micro-batch, on the M = *mb.count masked rows (padded to mdm_padded_rows(M)):
//   logits = h[rows] · wte^T; CE per row (fp32); *loss = [*loss +] sum_j cweight_j CE_j  (fp64, deterministic)
//     = sum over masked tokens of CE/p ÷ (B*S), the seed's MDM loss;
//   dwte [Vp, C] += dlogits^T · h[rows]  (fp32, accumulated: the tied embedding's head gradient);
//   dh [N, C] = d loss / d h: dlogits · wte on the masked rows, exactly 0 elsewhere (overwritten, bf16).
// h [N, C] is the final-norm output; wte [Vp, C] the tied embedding (its mask-token row is an ordinary class).
// Scratch: hc [mdm_head_rows(N), C] bf16 (gathered rows, then their gradient), logits [mdm_head_rows(N), Vp]
// bf16 (overwritten by dlogits), losses [mdm_head_rows(N)] fp32 (per compacted row: CE, 0-weight padding).
inline void mdm_head_forward_backward(MatmulContext& ctx, floatX* dh, float* dwte, double* loss, bool accumulate_loss,
                                      const floatX* h, const floatX* wte, const MdmBatch& mb, int M, int N, int C,
                                      int Vp, floatX* hc, floatX* logits, float* losses, cudaStream_t stream) {
    if (M < 0 || M > N || mdm_padded_rows(M) > mb.capacity) llmc_die("mdm_head: %d masked rows of %d", M, N);
    const int Mp = mdm_padded_rows(M);
    gather_rows(hc, h, mb.rows, Mp, C, stream);
    matmul_forward(ctx, logits, hc, wte, Mp, C, Vp, stream);
    classifier_forward_backward(logits, losses, mb.ctargets, mb.cweight, 0.0f, Mp, Vp, true, stream);
    loss_reduce(loss, losses, mb.cweight, 0.0f, Mp, accumulate_loss, stream);
    matmul_backward_dw(ctx, dwte, logits, hc, Mp, C, Vp, stream);  // before hc is overwritten by its gradient
    matmul_backward_dx(ctx, hc, logits, wte, Mp, C, Vp, stream);
    scatter_rows(dh, hc, mb.rows, M, N, C, stream);  // the real rows only: padding rows are not distinct
}

// One block per sequence: seq_loss[b] = sum over b's masked rows of losses * cweight, in fp64, fixed order.
__global__ void __launch_bounds__(MDM_THREADS)
    mdm_sequence_loss_kernel(double* seq_loss, const float* losses, const float* cweight, const int* row_start) {
    __shared__ double sh[MDM_THREADS];
    const int b = blockIdx.x;
    double acc = 0.0;
    for (int j = row_start[b] + (int)threadIdx.x; j < row_start[b + 1]; j += MDM_THREADS)
        acc += (double)losses[j] * (double)cweight[j];
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int half = MDM_THREADS / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half) sh[threadIdx.x] += sh[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) seq_loss[b] = sh[0];
}

// Evaluation head (no gradient): seq_loss[b] (device fp64, [B]) = sum over sequence b's masked tokens of
// CE/p ÷ (B*S); times B it is the per-token ELBO estimate of that sequence (llmc/eval.h LossStats::set).
// Scratch as in mdm_head_forward_backward.
inline void mdm_head_eval(MatmulContext& ctx, double* seq_loss, const floatX* h, const floatX* wte,
                          const MdmBatch& mb, int M, int B, int N, int C, int Vp, floatX* hc, floatX* logits,
                          float* losses, cudaStream_t stream) {
    if (M < 0 || M > N || mdm_padded_rows(M) > mb.capacity) llmc_die("mdm_head_eval: %d masked rows of %d", M, N);
    if (B <= 0) return;
    const int Mp = mdm_padded_rows(M);
    gather_rows(hc, h, mb.rows, Mp, C, stream);
    matmul_forward(ctx, logits, hc, wte, Mp, C, Vp, stream);
    classifier_forward_backward(logits, losses, mb.ctargets, mb.cweight, 0.0f, Mp, Vp, false, stream);
    mdm_sequence_loss_kernel<<<B, MDM_THREADS, 0, stream>>>(seq_loss, losses, mb.cweight, mb.row_start);
    cudaCheckLaunch();
}
