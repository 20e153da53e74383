// llmc/embedding.cuh — token embedding forward (fused with the embedding dropout) and a deterministic
// backward into the fp32 embedding gradient without float atomics.
//
// Backward strategy: the tokens of a batch are known on the host, so the host sorts the rows by token id once
// per batch (a stable counting sort, EmbeddingBackwardPlan) and uploads the plan. Each token's rows are cut
// into segments of at most EMB_SEG rows; a block sums one segment in row order. A token with one segment adds
// its sum straight into dwte; a frequent token (the MDM mask token is ~half the batch) writes per-segment
// partials to scratch that a second kernel adds in segment order. The result depends only on the tokens.
#pragma once
#include <string>
#include <vector>
#include "cuda_common.cuh"
#include "rmsnorm.cuh"  // HiddenDropout and the 8/4-element mask and bf16 helpers

constexpr int EMB_SEG = 64;  // rows per backward block: bounds the serial work of the most frequent token

// ---- forward ----------------------------------------------------------------------------------------------

__global__ void embedding_forward_kernel(floatX* out, const int* tokens, const floatX* wte, int N, int S, int C,
                                         HiddenDropout drop, float drop_scale) {
    int chunks = C / 8;
    size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)N * chunks) return;
    int n = (int)(t / chunks), c = (int)(t % chunks) * 8;
    float v[8];
    load_bf16x8(v, wte + (size_t)tokens[n] * C + c);
    if (drop.p > 0.0f) {
        bool keep[8];
        hidden_dropout_keep8(keep, drop, drop.sample0 + (uint32_t)(n / S), (uint32_t)(n % S) * (uint32_t)C + c);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = keep[i] ? v[i] * drop_scale : 0.0f;
    }
    store_bf16x8(out + (size_t)n * C + c, v);
}

// out[n, :] = dropout(wte[tokens[n], :]) for the N = B*S rows of a micro-batch (bf16). The embedding dropout
// uses drop = {p, seed, RNG_DROPOUT_EMB, step, sample0, sub 0}; p = 0 is a plain gather.
// Precondition: 0 <= tokens[n] < rows of wte (EmbeddingBackwardPlan::build checks it on the host). C % 8 == 0.
inline void embedding_forward(floatX* out, const int* tokens, const floatX* wte, int B, int S, int C,
                              const HiddenDropout& drop, cudaStream_t stream) {
    if (C <= 0 || C % 8 != 0) llmc_die("embedding_forward: C = %d must be a positive multiple of 8", C);
    size_t total = (size_t)B * S * (C / 8);
    if (total == 0) return;
    embedding_forward_kernel<<<(unsigned)ceil_div(total, (size_t)256), 256, 0, stream>>>(
        out, tokens, wte, B * S, S, C, drop, hidden_dropout_scale(drop));
    cudaCheckLaunch();
}

// ---- backward plan (host) ---------------------------------------------------------------------------------

// packed = [segments: 4 ints each (row_begin, row_end, token, slot)]   slot -1: add into dwte directly
//          [multi tokens: 3 ints each (token, slot_begin, slot_end)]   partial sums to add in slot order
//          [rows: N ints, row indices sorted by (token, row)]
struct EmbeddingBackwardPlan {
    int N = 0, num_segs = 0, num_multi = 0, num_slots = 0;
    std::vector<int> packed;
    int multi_offset() const { return 4 * num_segs; }
    int rows_offset() const { return 4 * num_segs + 3 * num_multi; }

    // Builds the plan for tokens[N]; returns "" or a one-line description of the first bad token id.
    std::string build(const int* tokens, int n_rows, int Vp) {
        N = n_rows;
        std::vector<int> start((size_t)Vp + 1, 0);
        for (int n = 0; n < N; n++) {
            int t = tokens[n];
            if (t < 0 || t >= Vp) {
                char buf[160];
                snprintf(buf, sizeof buf, "token id %d at row %d is outside the embedding (%d rows)", t, n, Vp);
                return buf;
            }
            start[(size_t)t + 1]++;
        }
        for (int v = 0; v < Vp; v++) start[v + 1] += start[v];
        std::vector<int> rows(N), fill(start.begin(), start.end() - 1);
        for (int n = 0; n < N; n++) rows[fill[tokens[n]]++] = n;  // stable: rows of a token stay in order
        std::vector<int> segs, multi;
        num_slots = 0;
        for (int v = 0; v < Vp; v++) {
            int b = start[v], e = start[v + 1];
            if (b == e) continue;
            if (e - b <= EMB_SEG) {
                segs.insert(segs.end(), {b, e, v, -1});
                continue;
            }
            int nseg = ceil_div(e - b, EMB_SEG);
            multi.insert(multi.end(), {v, num_slots, num_slots + nseg});
            for (int j = 0; j < nseg; j++)
                segs.insert(segs.end(), {b + j * EMB_SEG, std::min(e, b + (j + 1) * EMB_SEG), v, num_slots + j});
            num_slots += nseg;
        }
        num_segs = (int)segs.size() / 4;
        num_multi = (int)multi.size() / 3;
        packed = segs;
        packed.insert(packed.end(), multi.begin(), multi.end());
        packed.insert(packed.end(), rows.begin(), rows.end());
        return "";
    }
    void build_or_die(const int* tokens, int n_rows, int Vp) {
        std::string err = build(tokens, n_rows, Vp);
        if (!err.empty()) llmc_die("%s", err.c_str());
    }
};

// Device buffer sizes that hold the plan / scratch of any batch of N rows (allocate once).
// Segments <= N; multi tokens have > EMB_SEG rows each, and use ceil(rows/EMB_SEG) <= 2*rows/EMB_SEG slots.
inline size_t embedding_plan_capacity_ints(int N) { return 5 * (size_t)N + 3 * ((size_t)N / EMB_SEG + 1); }
inline size_t embedding_backward_scratch_floats(int N, int C) { return (2 * (size_t)N / EMB_SEG + 1) * C; }

// Copies plan.packed into d_plan (embedding_plan_capacity_ints(N) ints).
inline void embedding_plan_upload(int* d_plan, const EmbeddingBackwardPlan& plan, cudaStream_t stream) {
    cudaCheck(cudaMemcpyAsync(d_plan, plan.packed.data(), plan.packed.size() * sizeof(int), cudaMemcpyHostToDevice,
                              stream));
}

// ---- backward (device) ------------------------------------------------------------------------------------

__global__ void embedding_backward_segments_kernel(float* dwte, float* scratch, const int* plan, int rows_offset,
                                                   const float* dout, int S, int C, HiddenDropout drop,
                                                   float drop_scale) {
    const int* seg = plan + 4 * (size_t)blockIdx.x;
    int rb = seg[0], re = seg[1], tok = seg[2], slot = seg[3];
    const int* rows = plan + rows_offset;
    for (int c = threadIdx.x * 4; c < C; c += blockDim.x * 4) {
        // A single-segment token starts from dwte itself, so it sums in the same order as the CPU reference.
        float4 acc = slot < 0 ? *reinterpret_cast<const float4*>(dwte + (size_t)tok * C + c) : make_float4(0, 0, 0, 0);
#pragma unroll 8
        for (int i = rb; i < re; i++) {  // unrolled so several rows' loads are in flight at once
            int n = rows[i];
            float4 v = *reinterpret_cast<const float4*>(dout + (size_t)n * C + c);
            if (drop.p > 0.0f) {
                bool keep[4];
                hidden_dropout_keep4(keep, drop, drop.sample0 + (uint32_t)(n / S), (uint32_t)(n % S) * (uint32_t)C + c);
                v.x = keep[0] ? v.x * drop_scale : 0.0f;
                v.y = keep[1] ? v.y * drop_scale : 0.0f;
                v.z = keep[2] ? v.z * drop_scale : 0.0f;
                v.w = keep[3] ? v.w * drop_scale : 0.0f;
            }
            acc.x += v.x;
            acc.y += v.y;
            acc.z += v.z;
            acc.w += v.w;
        }
        float* dst = slot < 0 ? dwte + (size_t)tok * C + c : scratch + (size_t)slot * C + c;
        *reinterpret_cast<float4*>(dst) = acc;
    }
}

// Block (m, y): split token m, channels [y*blockDim.x*4, (y+1)*blockDim.x*4), so a very frequent token's
// partials are summed by many blocks.
__global__ void embedding_backward_reduce_kernel(float* dwte, const float* scratch, const int* multi, int C) {
    const int* m = multi + 3 * (size_t)blockIdx.x;
    int tok = m[0], sb = m[1], se = m[2];
    int c = (blockIdx.y * blockDim.x + threadIdx.x) * 4;
    if (c < C) {
        float4* d = reinterpret_cast<float4*>(dwte + (size_t)tok * C + c);
        float4 acc = *d;
#pragma unroll 8
        for (int s = sb; s < se; s++) {
            float4 v = *reinterpret_cast<const float4*>(scratch + (size_t)s * C + c);
            acc.x += v.x;
            acc.y += v.y;
            acc.z += v.z;
            acc.w += v.w;
        }
        *d = acc;
    }
}

// dwte[tokens[n], :] += mask_n * dout[n, :] / (1-p) (fp32, deterministic). dout is the fp32 residual gradient
// [B*S, C] arriving at the embedding output; drop must equal the forward's embedding dropout (p = 0: none).
// d_plan: the uploaded `plan` of this batch's tokens; scratch: embedding_backward_scratch_floats(B*S, C) floats.
inline void embedding_backward(float* dwte, float* scratch, const int* d_plan, const EmbeddingBackwardPlan& plan,
                               const float* dout, int B, int S, int C, const HiddenDropout& drop,
                               cudaStream_t stream) {
    if (C <= 0 || C % 8 != 0) llmc_die("embedding_backward: C = %d must be a positive multiple of 8", C);
    if (plan.N != B * S) llmc_die("embedding_backward: plan built for %d rows, batch has %d", plan.N, B * S);
    if (plan.num_segs == 0) return;
    int threads = std::min(256, ceil_div(C / 4, 32) * 32);
    embedding_backward_segments_kernel<<<plan.num_segs, threads, 0, stream>>>(
        dwte, scratch, d_plan, plan.rows_offset(), dout, S, C, drop, hidden_dropout_scale(drop));
    cudaCheckLaunch();
    if (plan.num_multi > 0) {
        dim3 grid(plan.num_multi, ceil_div(C / 4, 64));
        embedding_backward_reduce_kernel<<<grid, 64, 0, stream>>>(dwte, scratch, d_plan + plan.multi_offset(), C);
        cudaCheckLaunch();
    }
}
