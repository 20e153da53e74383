// llmc/attention.cuh — scaled-dot-product attention over a fused qkv buffer, forward and backward, in the
// FlashAttention-2 manner (Dao 2023): tiles of K/V stream through shared memory, the softmax is computed online,
// no S x S matrix ever exists in memory, and the backward recomputes P from the saved log-sum-exp.
//
// Semantics = ref::attention_forward / ref::attention_backward (dev/cpu/layers.h):
//   qkv [B, S, 3*nh*hd] bf16 after RoPE ([Q | K | V] thirds, head h = columns h*hd .. h*hd+hd-1 of a third),
//   out [B, S, nh*hd] bf16, lse [B, nh, S] fp32 (natural log of sum_j exp(scale * q_i.k_j)), scale 1/sqrt(hd),
//   causal (key j visible to query i iff j <= i) or bidirectional (MDM), hd 64 or 128, any S >= 1.
//   Attention-probability dropout: P[b,h,i,j] is kept iff dropout_keep(p, seed, RNG_DROPOUT_PROB, step,
//   sample0 + b, layer, (h*S + i)*S + j) (uint32 index arithmetic), kept values scaled by 1/(1-p); the softmax
//   normalisation uses the undropped P. The backward regenerates the same mask from Philox (nothing stored).
//
// Two versions, both tested by dev/cuda/attention.cu against the CPU reference:
//   v1: plain fp32 CUDA-core kernels, one warp per query (or key) row: slow, obviously correct; the fallback.
//   v2: bf16 tensor cores (mma.sync m16n8k16, fp32 accumulate), each warp owns 16 query rows (forward, dQ) or
//       16 key rows (dK/dV); K/V (or Q/dO) tiles double-buffered in shared memory with cp.async.
// Backward = D_i = rowsum(dO_i * O_i) (a small kernel into the workspace), then a KV-outer pass that owns dK, dV
// and a Q-outer pass that owns dQ. No atomics anywhere: every output element is summed by one thread in a fixed
// order, so results are bit-identical run to run. dqkv is WRITTEN (every element of it is an attention
// gradient), unlike the CPU reference, which accumulates into a zeroed buffer.
// Softmax statistics, exponentials and all accumulators are fp32; only the operands of the tensor-core products
// (Q, K, V, dO as stored, and P, dS rounded to bf16) are bf16.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include "cuda_common.cuh"
#include "philox.h"

// Attention-probability dropout keys (mirrors ref::AttnDropout). p = 0: no dropout (eval).
struct AttnDropoutArgs {
    float p = 0.0f;
    uint32_t seed = 0, step = 0, sample0 = 0, layer = 0;
};

enum AttnVersion : int { ATTN_V1 = 1, ATTN_V2 = 2 };

// Bytes of device workspace attention_backward needs: D = rowsum(dO * O), fp32 [B, nh, S]. Forward needs none.
inline size_t attention_backward_workspace_bytes(int B, int S, int nh) {
    return (size_t)B * (size_t)nh * (size_t)S * sizeof(float);
}

// Why a call cannot run (nullptr if it can): the conditions the launchers enforce, as a testable message.
inline const char* attention_args_error(int B, int S, int nh, int hd, float p, int version) {
    if (B < 1 || S < 1 || nh < 1) return "attention: B, S and n_head must be >= 1";
    if (hd != 64 && hd != 128) return "attention: head dim must be 64 or 128";
    if (!(p >= 0.0f && p < 1.0f)) return "attention: dropout probability must be in [0, 1)";
    if (version != ATTN_V1 && version != ATTN_V2) return "attention: version must be 1 or 2";
    // Grid dims y = nh, z = B; row counters are int.
    if (B > 65535 || nh > 65535 || (uint64_t)B * (uint64_t)S * (uint64_t)nh > 0x7FFFFFFFull)
        return "attention: B * seq_len * n_head too large";
    return nullptr;
}

namespace attn {

// ---- index helpers shared by host and device (unit-tested on the CPU by dev/cuda/attention.cu) --------------
//
// mma.sync.m16n8k16 fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16", bf16), with g = lane>>2
// (groupID) and t = lane&3 (threadID_in_group); each 32-bit register holds two bf16, the lower column in the
// low half:
//   A (16x16, row-major), 4 regs: a[0] = (row g,   cols 2t, 2t+1)   a[1] = (row g+8, cols 2t, 2t+1)
//                                 a[2] = (row g,   cols 2t+8, 2t+9) a[3] = (row g+8, cols 2t+8, 2t+9)
//   B (16x8, k x n),       2 regs: b[0] = (k 2t, 2t+1; n g)          b[1] = (k 2t+8, 2t+9; n g)
//   C/D (16x8 fp32),     4 floats: c[0], c[1] = (row g, cols 2t, 2t+1); c[2], c[3] = (row g+8, cols 2t, 2t+1)
// ldmatrix.x4 loads four 8x8 b16 matrices; lanes 8m..8m+7 supply the row addresses of matrix m and register m
// of every lane receives (row g, cols 2t, 2t+1) of matrix m — or, with .trans, (rows 2t, 2t+1; col g).

// Row/column (within a fragment) of accumulator element e (0..3) held by `lane`.
LLMC_HD constexpr int frag_c_row(int lane, int e) { return (lane >> 2) + 8 * (e >> 1); }
LLMC_HD constexpr int frag_c_col(int lane, int e) { return 2 * (lane & 3) + (e & 1); }

// Address that `lane` supplies to ldmatrix.x4 to get the A fragment of a 16x16 row-major tile: matrices
// (rows 0-7, cols 0-7), (rows 8-15, cols 0-7), (rows 0-7, cols 8-15), (rows 8-15, cols 8-15) -> a[0..3].
// The same addresses with .trans give the B fragments of two adjacent n8 tiles of a k16 x n16 tile stored
// k-major (rows = k): (k 0-7, n 0-7) -> b[0] of n-tile 0, (k 8-15, n 0-7) -> b[1] of n-tile 0,
// (k 0-7, n 8-15) -> b[0] of n-tile 1, (k 8-15, n 8-15) -> b[1] of n-tile 1.
LLMC_HD constexpr int ldsm_a_row(int lane) { return (lane & 7) + 8 * ((lane >> 3) & 1); }
LLMC_HD constexpr int ldsm_a_col(int lane) { return 8 * (lane >> 4); }
// Address for the B fragments of two adjacent n8 tiles when B^T is stored row-major (rows = n, cols = k, as K
// is for S = Q K^T): matrices (n 0-7, k 0-7) -> b[0] of n-tile 0, (n 0-7, k 8-15) -> b[1] of n-tile 0,
// (n 8-15, k 0-7) -> b[0] of n-tile 1, (n 8-15, k 8-15) -> b[1] of n-tile 1.
LLMC_HD constexpr int ldsm_b_row(int lane) { return (lane & 7) + 8 * (lane >> 4); }
LLMC_HD constexpr int ldsm_b_col(int lane) { return 8 * ((lane >> 3) & 1); }
// An accumulator tile reused as the A operand of the next product (P in P V, dS in dS K): register r of the A
// fragment of k16-chunk kc comes from n8 tile 2*kc + a_src_tile(r), elements a_src_elem(r) and a_src_elem(r)+1.
LLMC_HD constexpr int a_src_tile(int r) { return r >> 1; }
LLMC_HD constexpr int a_src_elem(int r) { return 2 * (r & 1); }

// Philox draw index of attention-probability element (h, i, j): (h*S + i)*S + j in uint32 arithmetic, exactly the
// CPU reference's (uint32_t)(((size_t)h*S + i)*S) + j.
LLMC_HD inline uint32_t drop_index(int h, int S, int i, int j) {
    return ((uint32_t)h * (uint32_t)S + (uint32_t)i) * (uint32_t)S + (uint32_t)j;
}

// Keep bits of NBITS (16 or 32) consecutive draw indices base .. base+NBITS-1: bit c set iff
// dropout_keep(p, seed, RNG_DROPOUT_PROB, step, sample, layer, base + c). Each Philox call serves four indices
// (counter idx >> 2, lane idx & 3) as rng_u32 does, so NBITS/4 calls (+1 when base is not a multiple of 4).
template <int NBITS>
LLMC_HD inline uint32_t drop_bits(float p, uint32_t seed, uint32_t step, uint32_t sample, uint32_t layer,
                                  uint32_t base) {
    static_assert(NBITS == 16 || NBITS == 32, "drop_bits: 16 or 32 bits");
    constexpr int NG = NBITS / 4 + 1;
    const uint32_t g0 = base >> 2, shift = base & 3u;
    uint64_t w = 0;  // bit 4k+m: index 4*(g0+k)+m
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
    for (int k = 0; k < NG; k++) {
        if (k == NG - 1 && shift == 0) break;
        // (g0 + k) mod 2^30 is the counter of index (base + 4k + m - shift) mod 2^32, as in the reference.
        const Philox4 r = philox4x32_10(Philox4{{(g0 + (uint32_t)k) & 0x3FFFFFFFu, layer, sample, step}}, seed,
                                        RNG_DROPOUT_PROB);
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
        for (int m = 0; m < 4; m++) w |= (uint64_t)(u32_to_uniform(r.v[m]) >= p) << (4 * k + m);
    }
    const uint64_t mask = NBITS == 32 ? 0xFFFFFFFFull : 0xFFFFull;
    return (uint32_t)((w >> shift) & mask);
}

// Everything the kernels read, passed by value.
struct Params {
    floatX* out;          // forward output [B, S, nh*hd]
    float* lse;           // forward log-sum-exp [B, nh, S]
    const floatX* qkv;    // [B, S, 3*nh*hd]
    const floatX* dout;   // [B, S, nh*hd]
    const floatX* o;      // forward output, read by the backward
    const float* lse_in;  // saved log-sum-exp, read by the backward
    float* D;             // rowsum(dO * O) [B, nh, S] (workspace)
    floatX* dqkv;         // [B, S, 3*nh*hd]
    int B, S, nh;
    bool causal;
    float scale;          // 1/sqrt(hd)
    float scale_log2;     // scale * log2(e): scores enter exp2
    float p, keep_scale;  // dropout probability and 1/(1-p) (1 when p = 0)
    uint32_t seed, step, sample0, layer;
};

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr unsigned kFull = 0xFFFFFFFFu;

inline Params make_params(int B, int S, int nh, int hd, bool causal, const AttnDropoutArgs& d) {
    Params P;
    memset(&P, 0, sizeof P);
    P.B = B;
    P.S = S;
    P.nh = nh;
    P.causal = causal;
    P.scale = (float)(1.0 / sqrt((double)hd));  // as the reference: computed in double, rounded once
    P.scale_log2 = (float)(1.0 / sqrt((double)hd) * 1.4426950408889634);
    P.p = d.p;
    P.keep_scale = d.p > 0.0f ? (float)(1.0 / (1.0 - (double)d.p)) : 1.0f;  // host double, like the reference
    P.seed = d.seed;
    P.step = d.step;
    P.sample0 = d.sample0;
    P.layer = d.layer;
    return P;
}

// ---- small device primitives ----------------------------------------------------------------------------

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);  // commutative: every lane ends equal
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
    return v;
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// 16-byte global -> shared copy that bypasses registers; pred = false writes 16 zero bytes instead (src-size 0).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool pred) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(pred ? 16 : 0)
                 : "memory");
}
__device__ __forceinline__ void cp_async4(uint32_t dst, const void* src, bool pred) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(pred ? 4 : 0)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr)
                 : "memory");
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr)
                 : "memory");
}
// d += a * b on the tensor cores (bf16 inputs, fp32 accumulate).
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (low half) = lo
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}
// The A fragment of k16-chunk kc of a 16 x (8*NT) fp32 accumulator tile, rounded to bf16.
template <int NT>
__device__ __forceinline__ void acc_to_a(uint32_t (&a)[4], const float (&c)[NT][4], int kc) {
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int tl = 2 * kc + a_src_tile(r), e = a_src_elem(r);
        a[r] = pack_bf16x2(c[tl][e], c[tl][e + 1]);
    }
}
__device__ __forceinline__ void store_bf16x2(floatX* dst, float lo, float hi) {
    *reinterpret_cast<__nv_bfloat162*>(dst) = __floats2bfloat162_rn(lo, hi);
}

// Copies rows r0 .. r0+ROWS-1 (HD bf16 columns each, row stride ld elements) of a global matrix into shared
// memory (row stride HD+8: the 16-byte pad puts the 8 rows of an ldmatrix phase in 8 different bank groups);
// rows >= S are zero-filled, so padded keys/values contribute exact zeros to the products.
template <int HD, int ROWS, int NTHREADS>
__device__ __forceinline__ void load_rows_async(floatX* sm, const floatX* g, size_t ld, int r0, int S) {
    constexpr int CPR = HD / 8;  // 16-byte chunks per row
    static_assert((ROWS * CPR) % NTHREADS == 0, "tile copy must divide evenly among the threads");
#pragma unroll
    for (int it = 0; it < ROWS * CPR / NTHREADS; it++) {
        const int c = it * NTHREADS + (int)threadIdx.x;
        const int r = c / CPR, k = c % CPR, row = r0 + r;
        const bool ok = row < S;
        const floatX* src = g + (size_t)(ok ? row : 0) * ld + k * 8;
        cp_async16(smem_addr(sm + r * (HD + 8) + k * 8), src, ok);
    }
}
// Same for ROWS fp32 values of a [*, S] row (lse, D); entries >= S are zero.
template <int ROWS, int NTHREADS>
__device__ __forceinline__ void load_vec_async(float* sm, const float* g, int r0, int S) {
    for (int c = (int)threadIdx.x; c < ROWS; c += NTHREADS) {
        const bool ok = r0 + c < S;
        cp_async4(smem_addr(sm + c), g + (ok ? r0 + c : 0), ok);
    }
}

// Dropout keep bits of a warp's 16-row x 64-key tile, distributed to match the accumulator layout: lo[hf] holds
// row g's keys kv0 + 32*hf + (0..31), hi[hf] row g+8's. Lane 2r+hf draws the 32 bits of (row r, half hf) —
// 8 or 9 Philox calls — and the words are then exchanged with shuffles.
__device__ __forceinline__ void row_tile_keep_bits(const Params& P, int b, int h, int row0, int kv0,
                                                   uint32_t (&lo)[2], uint32_t (&hi)[2]) {
    const int lane = threadIdx.x & 31;
    const uint32_t base = drop_index(h, P.S, row0 + (lane >> 1), kv0 + 32 * (lane & 1));
    const uint32_t bits = drop_bits<32>(P.p, P.seed, P.step, P.sample0 + (uint32_t)b, P.layer, base);
    const int g = lane >> 2;
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        lo[hf] = __shfl_sync(kFull, bits, 2 * g + hf);
        hi[hf] = __shfl_sync(kFull, bits, 2 * (g + 8) + hf);
    }
}
// Keep bit of accumulator element (n8 tile nt, element e) of a 16 x 64 tile, from row_tile_keep_bits' words.
LLMC_HD inline bool row_tile_keep(const uint32_t (&lo)[2], const uint32_t (&hi)[2], int nt, int e, int lane) {
    const uint32_t w = (e >> 1) ? hi[nt >> 2] : lo[nt >> 2];
    return (w >> (8 * (nt & 3) + frag_c_col(lane, e))) & 1u;
}

// =============================================================================================================
// v2: tensor-core kernels
// =============================================================================================================

constexpr int kBN = 64;  // keys per tile in the forward and dQ kernels

template <int HD, int W>
constexpr int fwd_v2_smem() { return (16 * W + 4 * kBN) * (HD + 8) * 2; }  // Q + 2 x (K, V)

// Forward. Block = W warps = 16*W query rows of one (b, h); warp w owns rows q0 + 16w .. +15. K/V tiles of 64
// keys are double-buffered: the copy of tile it+1 is in flight while tile it is multiplied.
template <int HD, int W, bool DROP>
__global__ void __launch_bounds__(W * 32) fwd_v2_kernel(const Params P) {
    constexpr int BM = 16 * W, BN = kBN, LD = HD + 8, NT = 32 * W;
    constexpr int KD = HD / 16;  // k16 chunks of the head dim (S = Q K^T)
    constexpr int NS = BN / 8;   // n8 score tiles per warp
    constexpr int ND = HD / 8;   // n8 output tiles per warp
    extern __shared__ __align__(16) unsigned char attn_smem[];
    floatX* sQ = reinterpret_cast<floatX*>(attn_smem);
    floatX* sK = sQ + BM * LD;      // [2][BN][LD]
    floatX* sV = sK + 2 * BN * LD;  // [2][BN][LD]

    const int S = P.S, C = P.nh * HD;
    const int h = blockIdx.y, b = blockIdx.z;
    // Causal: the last query tiles have the most keys; start them first so the tail of the grid is short.
    const int mt = P.causal ? (int)(gridDim.x - 1 - blockIdx.x) : (int)blockIdx.x;
    const int q0 = mt * BM;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const size_t ld = 3 * (size_t)C;
    const floatX* gQ = P.qkv + (size_t)b * S * ld + h * HD;
    const floatX* gK = gQ + C;
    const floatX* gV = gQ + 2 * C;
    const int kv_end = P.causal ? min(S, q0 + BM) : S;
    const int n_tiles = (kv_end + BN - 1) / BN;

    load_rows_async<HD, BM, NT>(sQ, gQ, ld, q0, S);
    load_rows_async<HD, BN, NT>(sK, gK, ld, 0, S);
    load_rows_async<HD, BN, NT>(sV, gV, ld, 0, S);
    cp_async_commit();

    const int wrow0 = q0 + 16 * warp;  // first query row of this warp
    uint32_t qf[KD][4];
    float o[ND][4];
#pragma unroll
    for (int dt = 0; dt < ND; dt++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[dt][e] = 0.0f;
    float m_run[2] = {-INFINITY, -INFINITY};  // running max of rows g and g+8 (log2 domain)
    float l_run[2] = {0.0f, 0.0f};            // this thread's partial row sums of exp2(s - m_run)

    for (int it = 0; it < n_tiles; it++) {
        const int kv0 = it * BN;
        if (it + 1 < n_tiles) {
            const int nb = (it + 1) & 1;
            load_rows_async<HD, BN, NT>(sK + nb * BN * LD, gK, ld, kv0 + BN, S);
            load_rows_async<HD, BN, NT>(sV + nb * BN * LD, gV, ld, kv0 + BN, S);
            cp_async_commit();
            cp_async_wait<1>();  // everything but the newest group (tile it+1) has landed
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        if (it == 0) {
#pragma unroll
            for (int kk = 0; kk < KD; kk++)
                ldsm_x4(qf[kk], smem_addr(sQ + (16 * warp + ldsm_a_row(lane)) * LD + 16 * kk + ldsm_a_col(lane)));
        }
        const floatX* k_s = sK + (it & 1) * BN * LD;
        const floatX* v_s = sV + (it & 1) * BN * LD;

        // S = Q K^T for the warp's 16 rows x 64 keys.
        float s[NS][4];
#pragma unroll
        for (int nt = 0; nt < NS; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[nt][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
#pragma unroll
            for (int np = 0; np < NS / 2; np++) {
                uint32_t kb[4];
                ldsm_x4(kb, smem_addr(k_s + (16 * np + ldsm_b_row(lane)) * LD + 16 * kk + ldsm_b_col(lane)));
                mma_bf16(s[2 * np], qf[kk], kb[0], kb[1]);
                mma_bf16(s[2 * np + 1], qf[kk], kb[2], kb[3]);
            }
        }

        // Mask (causal, ragged tail) and move to the log2 domain; row maxima over the quad of lanes of a row.
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int nt = 0; nt < NS; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int i = wrow0 + frag_c_row(lane, e), j = kv0 + 8 * nt + frag_c_col(lane, e);
                const bool valid = j < S && (!P.causal || j <= i);
                s[nt][e] = valid ? s[nt][e] * P.scale_log2 : -INFINITY;
                mx[e >> 1] = fmaxf(mx[e >> 1], s[nt][e]);
            }
        float mu[2], alpha[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(kFull, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(kFull, mx[r], 2));
            const float m_new = fmaxf(m_run[r], mx[r]);
            mu[r] = m_new == -INFINITY ? 0.0f : m_new;  // a row with nothing visible yet: avoid (-inf) - (-inf)
            alpha[r] = exp2f(m_run[r] - mu[r]);          // rescales the old sum and output (0 on the first tile)
            m_run[r] = m_new;
            l_run[r] *= alpha[r];
        }
        uint32_t keep_lo[2] = {0, 0}, keep_hi[2] = {0, 0};
        if constexpr (DROP) row_tile_keep_bits(P, b, h, wrow0, kv0, keep_lo, keep_hi);
#pragma unroll
        for (int nt = 0; nt < NS; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float pe = exp2f(s[nt][e] - mu[e >> 1]);  // masked: exp2(-inf) = 0
                l_run[e >> 1] += pe;                      // normalisation uses the undropped P
                if constexpr (DROP) {
                    if (!row_tile_keep(keep_lo, keep_hi, nt, e, lane)) pe = 0.0f;
                }
                s[nt][e] = pe;
            }
#pragma unroll
        for (int dt = 0; dt < ND; dt++) {
            o[dt][0] *= alpha[0];
            o[dt][1] *= alpha[0];
            o[dt][2] *= alpha[1];
            o[dt][3] *= alpha[1];
        }
        // O += P V: P (bf16) straight from the accumulators; V fragments by transposing ldmatrix.
#pragma unroll
        for (int kc = 0; kc < BN / 16; kc++) {
            uint32_t pa[4];
            acc_to_a<NS>(pa, s, kc);
#pragma unroll
            for (int dp = 0; dp < HD / 16; dp++) {
                uint32_t vb[4];
                ldsm_x4_trans(vb, smem_addr(v_s + (16 * kc + ldsm_a_row(lane)) * LD + 16 * dp + ldsm_a_col(lane)));
                mma_bf16(o[2 * dp], pa, vb[0], vb[1]);
                mma_bf16(o[2 * dp + 1], pa, vb[2], vb[3]);
            }
        }
        __syncthreads();  // all warps are done with buffer it&1 before iteration it+1 refills it
    }

    const int bh = b * P.nh + h;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float l = l_run[r];
        l += __shfl_xor_sync(kFull, l, 1);
        l += __shfl_xor_sync(kFull, l, 2);
        const int i = wrow0 + (lane >> 2) + 8 * r;
        if (i < S) {
            const float f = P.keep_scale / l;  // l >= exp2(0) = 1: the row max contributes exactly 1
            floatX* dst = P.out + ((size_t)b * S + i) * C + h * HD + 2 * (lane & 3);
#pragma unroll
            for (int dt = 0; dt < ND; dt++) store_bf16x2(dst + 8 * dt, o[dt][2 * r] * f, o[dt][2 * r + 1] * f);
            if ((lane & 3) == 0) P.lse[(size_t)bh * S + i] = (m_run[r] + log2f(l)) * kLn2;
        }
    }
}

// D[b,h,i] = sum_d dO[b,i,h,d] * O[b,i,h,d] in fp32: one warp per (b, i, h), fixed summation order.
template <int HD>
__global__ void __launch_bounds__(256) dot_do_o_kernel(const Params P) {
    const int row = blockIdx.x * 8 + (threadIdx.x >> 5);  // rows ordered (b, i, h) like out's memory
    const int lane = threadIdx.x & 31;
    if (row >= P.B * P.S * P.nh) return;
    const int h = row % P.nh, bi = row / P.nh, b = bi / P.S, i = bi % P.S;
    const __nv_bfloat162* dO = reinterpret_cast<const __nv_bfloat162*>(P.dout + (size_t)row * HD);
    const __nv_bfloat162* O = reinterpret_cast<const __nv_bfloat162*>(P.o + (size_t)row * HD);
    float acc = 0.0f;
#pragma unroll
    for (int c = 0; c < HD / 64; c++) {
        const float2 a = __bfloat1622float2(dO[lane + 32 * c]), o = __bfloat1622float2(O[lane + 32 * c]);
        acc += a.x * o.x + a.y * o.y;
    }
    acc = warp_sum(acc);
    if (lane == 0) P.D[((size_t)b * P.nh + h) * P.S + i] = acc;
}

template <int HD, int W>
constexpr int dq_v2_smem() { return (2 * 16 * W + 4 * kBN) * (HD + 8) * 2; }  // Q, dO + 2 x (K, V)

// dQ pass (Q-outer). Block = 16*W query rows; per 64-key tile: S = Q K^T, dP = dO V^T, P = exp2(S' - lse'),
// dS = P * (dP * keep/(1-p) - D), dQ += dS K. dQ is owned by its warp, so no cross-block reduction.
template <int HD, int W, bool DROP>
__global__ void __launch_bounds__(W * 32) dq_v2_kernel(const Params P) {
    constexpr int BM = 16 * W, BN = kBN, LD = HD + 8, NT = 32 * W;
    constexpr int KD = HD / 16, NS = BN / 8, ND = HD / 8;
    extern __shared__ __align__(16) unsigned char attn_smem[];
    floatX* sQ = reinterpret_cast<floatX*>(attn_smem);
    floatX* sdO = sQ + BM * LD;
    floatX* sK = sdO + BM * LD;     // [2][BN][LD]
    floatX* sV = sK + 2 * BN * LD;  // [2][BN][LD]

    const int S = P.S, C = P.nh * HD;
    const int h = blockIdx.y, b = blockIdx.z, bh = b * P.nh + h;
    const int mt = P.causal ? (int)(gridDim.x - 1 - blockIdx.x) : (int)blockIdx.x;
    const int q0 = mt * BM;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const size_t ld = 3 * (size_t)C;
    const floatX* gQ = P.qkv + (size_t)b * S * ld + h * HD;
    const floatX* gK = gQ + C;
    const floatX* gV = gQ + 2 * C;
    const floatX* gdO = P.dout + (size_t)b * S * C + h * HD;
    const int kv_end = P.causal ? min(S, q0 + BM) : S;
    const int n_tiles = (kv_end + BN - 1) / BN;

    load_rows_async<HD, BM, NT>(sQ, gQ, ld, q0, S);
    load_rows_async<HD, BM, NT>(sdO, gdO, (size_t)C, q0, S);
    load_rows_async<HD, BN, NT>(sK, gK, ld, 0, S);
    load_rows_async<HD, BN, NT>(sV, gV, ld, 0, S);
    cp_async_commit();

    const int wrow0 = q0 + 16 * warp;
    float lse2[2], Dr[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int i = wrow0 + (lane >> 2) + 8 * r;
        lse2[r] = i < S ? P.lse_in[(size_t)bh * S + i] * kLog2e : 0.0f;
        Dr[r] = i < S ? P.D[(size_t)bh * S + i] : 0.0f;
    }
    float dq[ND][4];
#pragma unroll
    for (int dt = 0; dt < ND; dt++)
#pragma unroll
        for (int e = 0; e < 4; e++) dq[dt][e] = 0.0f;

    for (int it = 0; it < n_tiles; it++) {
        const int kv0 = it * BN;
        if (it + 1 < n_tiles) {
            const int nb = (it + 1) & 1;
            load_rows_async<HD, BN, NT>(sK + nb * BN * LD, gK, ld, kv0 + BN, S);
            load_rows_async<HD, BN, NT>(sV + nb * BN * LD, gV, ld, kv0 + BN, S);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const floatX* k_s = sK + (it & 1) * BN * LD;
        const floatX* v_s = sV + (it & 1) * BN * LD;

        float s[NS][4], dp[NS][4];
#pragma unroll
        for (int nt = 0; nt < NS; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[nt][e] = dp[nt][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            uint32_t qa[4], oa[4];
            const int aoff = (16 * warp + ldsm_a_row(lane)) * LD + 16 * kk + ldsm_a_col(lane);
            ldsm_x4(qa, smem_addr(sQ + aoff));
            ldsm_x4(oa, smem_addr(sdO + aoff));
#pragma unroll
            for (int np = 0; np < NS / 2; np++) {
                const int boff = (16 * np + ldsm_b_row(lane)) * LD + 16 * kk + ldsm_b_col(lane);
                uint32_t kb[4], vb[4];
                ldsm_x4(kb, smem_addr(k_s + boff));
                mma_bf16(s[2 * np], qa, kb[0], kb[1]);
                mma_bf16(s[2 * np + 1], qa, kb[2], kb[3]);
                ldsm_x4(vb, smem_addr(v_s + boff));
                mma_bf16(dp[2 * np], oa, vb[0], vb[1]);
                mma_bf16(dp[2 * np + 1], oa, vb[2], vb[3]);
            }
        }
        uint32_t keep_lo[2] = {0, 0}, keep_hi[2] = {0, 0};
        if constexpr (DROP) row_tile_keep_bits(P, b, h, wrow0, kv0, keep_lo, keep_hi);
#pragma unroll
        for (int nt = 0; nt < NS; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int i = wrow0 + frag_c_row(lane, e), j = kv0 + 8 * nt + frag_c_col(lane, e);
                const bool valid = i < S && j < S && (!P.causal || j <= i);
                const float pe = valid ? exp2f(s[nt][e] * P.scale_log2 - lse2[e >> 1]) : 0.0f;
                float dpv = dp[nt][e];
                if constexpr (DROP) dpv = row_tile_keep(keep_lo, keep_hi, nt, e, lane) ? dpv * P.keep_scale : 0.0f;
                s[nt][e] = pe * (dpv - Dr[e >> 1]);  // dS (without the score scale, applied at the end)
            }
        // dQ += dS K: K fragments (k = key, n = head dim) by transposing ldmatrix.
#pragma unroll
        for (int kc = 0; kc < BN / 16; kc++) {
            uint32_t sa[4];
            acc_to_a<NS>(sa, s, kc);
#pragma unroll
            for (int dp2 = 0; dp2 < HD / 16; dp2++) {
                uint32_t kb[4];
                ldsm_x4_trans(kb, smem_addr(k_s + (16 * kc + ldsm_a_row(lane)) * LD + 16 * dp2 + ldsm_a_col(lane)));
                mma_bf16(dq[2 * dp2], sa, kb[0], kb[1]);
                mma_bf16(dq[2 * dp2 + 1], sa, kb[2], kb[3]);
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int i = wrow0 + (lane >> 2) + 8 * r;
        if (i < S) {
            floatX* dst = P.dqkv + ((size_t)b * S + i) * ld + h * HD + 2 * (lane & 3);
#pragma unroll
            for (int dt = 0; dt < ND; dt++)
                store_bf16x2(dst + 8 * dt, dq[dt][2 * r] * P.scale, dq[dt][2 * r + 1] * P.scale);
        }
    }
}

template <int HD, int W, int BMQ>
constexpr int dkdv_v2_smem() { return (2 * 16 * W + 4 * BMQ) * (HD + 8) * 2 + 4 * BMQ * 4; }

// dK/dV pass (KV-outer). Block = 16*W keys; warp w owns keys k0 + 16w .. +15 and walks over query tiles of BMQ
// rows (double-buffered Q, dO, lse, D). Works on transposed scores: S^T = K Q^T, dP^T = V dO^T, then
// dV += (P^T * keep/(1-p)) dO and dK += dS^T Q, with the queries as the reduction (k) dimension.
template <int HD, int W, int BMQ, bool DROP>
__global__ void __launch_bounds__(W * 32) dkdv_v2_kernel(const Params P) {
    constexpr int BN = 16 * W, LD = HD + 8, NT = 32 * W;
    constexpr int KD = HD / 16, NQ = BMQ / 8, ND = HD / 8, NQW = BMQ / 32;
    static_assert(BMQ % 32 == 0, "a lane draws the dropout bits of one query per 32");
    extern __shared__ __align__(16) unsigned char attn_smem[];
    floatX* sK = reinterpret_cast<floatX*>(attn_smem);
    floatX* sV = sK + BN * LD;
    floatX* sQ = sV + BN * LD;          // [2][BMQ][LD]
    floatX* sdO = sQ + 2 * BMQ * LD;    // [2][BMQ][LD]
    float* sL = reinterpret_cast<float*>(sdO + 2 * BMQ * LD);  // [2][BMQ]
    float* sD = sL + 2 * BMQ;                                  // [2][BMQ]

    const int S = P.S, C = P.nh * HD;
    const int h = blockIdx.y, b = blockIdx.z, bh = b * P.nh + h;
    const int k0 = blockIdx.x * BN;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const size_t ld = 3 * (size_t)C;
    const floatX* gQ = P.qkv + (size_t)b * S * ld + h * HD;
    const floatX* gK = gQ + C;
    const floatX* gV = gQ + 2 * C;
    const floatX* gdO = P.dout + (size_t)b * S * C + h * HD;
    const float* gL = P.lse_in + (size_t)bh * S;
    const float* gD = P.D + (size_t)bh * S;
    const int qt_first = P.causal ? k0 / BMQ : 0;  // causal: queries i >= j >= k0 only
    const int qt_end = (S + BMQ - 1) / BMQ;

    load_rows_async<HD, BN, NT>(sK, gK, ld, k0, S);
    load_rows_async<HD, BN, NT>(sV, gV, ld, k0, S);
    load_rows_async<HD, BMQ, NT>(sQ, gQ, ld, qt_first * BMQ, S);
    load_rows_async<HD, BMQ, NT>(sdO, gdO, (size_t)C, qt_first * BMQ, S);
    load_vec_async<BMQ, NT>(sL, gL, qt_first * BMQ, S);
    load_vec_async<BMQ, NT>(sD, gD, qt_first * BMQ, S);
    cp_async_commit();

    const int wkey0 = k0 + 16 * warp;  // first key of this warp
    float dk[ND][4], dv[ND][4];
#pragma unroll
    for (int dt = 0; dt < ND; dt++)
#pragma unroll
        for (int e = 0; e < 4; e++) dk[dt][e] = dv[dt][e] = 0.0f;

    for (int qt = qt_first; qt < qt_end; qt++) {
        const int buf = (qt - qt_first) & 1, qs = qt * BMQ;
        if (qt + 1 < qt_end) {
            const int nb = buf ^ 1;
            load_rows_async<HD, BMQ, NT>(sQ + nb * BMQ * LD, gQ, ld, qs + BMQ, S);
            load_rows_async<HD, BMQ, NT>(sdO + nb * BMQ * LD, gdO, (size_t)C, qs + BMQ, S);
            load_vec_async<BMQ, NT>(sL + nb * BMQ, gL, qs + BMQ, S);
            load_vec_async<BMQ, NT>(sD + nb * BMQ, gD, qs + BMQ, S);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const floatX* q_s = sQ + buf * BMQ * LD;
        const floatX* o_s = sdO + buf * BMQ * LD;
        const float* l_s = sL + buf * BMQ;
        const float* d_s = sD + buf * BMQ;

        // S^T = K Q^T and dP^T = V dO^T for the warp's 16 keys x BMQ queries.
        float st[NQ][4], dpt[NQ][4];
#pragma unroll
        for (int nt = 0; nt < NQ; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) st[nt][e] = dpt[nt][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            uint32_t ka[4], va[4];
            const int aoff = (16 * warp + ldsm_a_row(lane)) * LD + 16 * kk + ldsm_a_col(lane);
            ldsm_x4(ka, smem_addr(sK + aoff));
            ldsm_x4(va, smem_addr(sV + aoff));
#pragma unroll
            for (int np = 0; np < NQ / 2; np++) {
                const int boff = (16 * np + ldsm_b_row(lane)) * LD + 16 * kk + ldsm_b_col(lane);
                uint32_t qb[4], ob[4];
                ldsm_x4(qb, smem_addr(q_s + boff));
                mma_bf16(st[2 * np], ka, qb[0], qb[1]);
                mma_bf16(st[2 * np + 1], ka, qb[2], qb[3]);
                ldsm_x4(ob, smem_addr(o_s + boff));
                mma_bf16(dpt[2 * np], va, ob[0], ob[1]);
                mma_bf16(dpt[2 * np + 1], va, ob[2], ob[3]);
            }
        }
        // Dropout bits: lane l draws the 16 keys of query qs + 32w + l; element (key row, query col c) reads
        // bit (key - wkey0) of lane (c & 31)'s word c >> 5.
        uint32_t words[NQW];
        if constexpr (DROP) {
#pragma unroll
            for (int w = 0; w < NQW; w++)
                words[w] = drop_bits<16>(P.p, P.seed, P.step, P.sample0 + (uint32_t)b, P.layer,
                                         drop_index(h, S, qs + 32 * w + lane, wkey0));
        }
#pragma unroll
        for (int nt = 0; nt < NQ; nt++)
#pragma unroll
            for (int ec = 0; ec < 2; ec++) {
                const int c = 8 * nt + frag_c_col(lane, ec);  // local query column
                const int i = qs + c;
                const float lse2 = l_s[c] * kLog2e, Dc = d_s[c];
                uint32_t kw = 0xFFFFFFFFu;
                if constexpr (DROP) kw = __shfl_sync(kFull, words[nt >> 2], c & 31);
#pragma unroll
                for (int er = 0; er < 2; er++) {
                    const int e = ec + 2 * er;
                    const int jr = frag_c_row(lane, e);  // key row within the warp's 16
                    const int j = wkey0 + jr;
                    const bool valid = i < S && j < S && (!P.causal || j <= i);
                    const float pe = valid ? exp2f(st[nt][e] * P.scale_log2 - lse2) : 0.0f;
                    float z = pe, dpv = dpt[nt][e];
                    if constexpr (DROP) {
                        const bool keep = (kw >> jr) & 1u;
                        z = keep ? pe * P.keep_scale : 0.0f;
                        dpv = keep ? dpv * P.keep_scale : 0.0f;
                    }
                    st[nt][e] = z;                     // dropped, rescaled P^T: multiplies dO into dV
                    dpt[nt][e] = pe * (dpv - Dc);      // dS^T: multiplies Q into dK
                }
            }
        // dV += Z^T dO and dK += dS^T Q: B fragments (k = query, n = head dim) by transposing ldmatrix.
#pragma unroll
        for (int kc = 0; kc < BMQ / 16; kc++) {
            uint32_t za[4], sa[4];
            acc_to_a<NQ>(za, st, kc);
            acc_to_a<NQ>(sa, dpt, kc);
#pragma unroll
            for (int dp2 = 0; dp2 < HD / 16; dp2++) {
                const int toff = (16 * kc + ldsm_a_row(lane)) * LD + 16 * dp2 + ldsm_a_col(lane);
                uint32_t ob[4], qb[4];
                ldsm_x4_trans(ob, smem_addr(o_s + toff));
                mma_bf16(dv[2 * dp2], za, ob[0], ob[1]);
                mma_bf16(dv[2 * dp2 + 1], za, ob[2], ob[3]);
                ldsm_x4_trans(qb, smem_addr(q_s + toff));
                mma_bf16(dk[2 * dp2], sa, qb[0], qb[1]);
                mma_bf16(dk[2 * dp2 + 1], sa, qb[2], qb[3]);
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int j = wkey0 + (lane >> 2) + 8 * r;
        if (j < S) {
            floatX* dK = P.dqkv + ((size_t)b * S + j) * ld + C + h * HD + 2 * (lane & 3);
            floatX* dV = dK + C;
#pragma unroll
            for (int dt = 0; dt < ND; dt++) {
                store_bf16x2(dK + 8 * dt, dk[dt][2 * r] * P.scale, dk[dt][2 * r + 1] * P.scale);
                store_bf16x2(dV + 8 * dt, dv[dt][2 * r], dv[dt][2 * r + 1]);
            }
        }
    }
}

// =============================================================================================================
// v1: fp32 CUDA-core kernels (reference-like; one warp per row, lane per key/query of a 32-wide tile)
// =============================================================================================================

constexpr int kV1Warps = 8;

// Forward: block = 8 warps x 2 query rows; K/V tiles of 32 keys in shared memory (fp32). Lane l scores key
// kv0 + l by a plain dot product, the online softmax runs per tile, and each lane owns output dims l + 32c.
template <int HD, bool DROP>
__global__ void __launch_bounds__(kV1Warps * 32) fwd_v1_kernel(const Params P) {
    constexpr int R = 2, BQ = kV1Warps * R, BK = 32, NC = HD / 32;
    __shared__ float sQ[BQ][HD];
    __shared__ float sK[BK][HD + 1];  // +1: lane l reads row l, so consecutive lanes hit consecutive banks
    __shared__ float sV[BK][HD + 1];
    const int S = P.S, C = P.nh * HD;
    const int h = blockIdx.y, b = blockIdx.z, q0 = blockIdx.x * BQ;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const size_t ld = 3 * (size_t)C;
    const floatX* gQ = P.qkv + (size_t)b * S * ld + h * HD;
    for (int x = threadIdx.x; x < BQ * HD; x += blockDim.x) {
        const int r = x / HD, d = x % HD;
        sQ[r][d] = q0 + r < S ? __bfloat162float(gQ[(size_t)(q0 + r) * ld + d]) : 0.0f;
    }
    float m[R], l[R], o[R][NC];
#pragma unroll
    for (int r = 0; r < R; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < NC; c++) o[r][c] = 0.0f;
    }
    const int kv_end = P.causal ? min(S, q0 + BQ) : S;
    for (int kv0 = 0; kv0 < kv_end; kv0 += BK) {
        __syncthreads();  // previous tile fully used (and sQ written)
        for (int x = threadIdx.x; x < BK * HD; x += blockDim.x) {
            const int r = x / HD, d = x % HD, j = kv0 + r;
            sK[r][d] = j < S ? __bfloat162float(gQ[(size_t)j * ld + C + d]) : 0.0f;
            sV[r][d] = j < S ? __bfloat162float(gQ[(size_t)j * ld + 2 * C + d]) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < R; r++) {
            const int lr = warp * R + r, i = q0 + lr, j = kv0 + lane;
            float sc = 0.0f;
            for (int d = 0; d < HD; d++) sc += sQ[lr][d] * sK[lane][d];
            const bool valid = i < S && j < S && (!P.causal || j <= i);
            const float x = valid ? sc * P.scale : -INFINITY;
            const float m_new = fmaxf(m[r], warp_max(x));
            const float mu = m_new == -INFINITY ? 0.0f : m_new;
            float pe = valid ? expf(x - mu) : 0.0f;
            const float corr = expf(m[r] - mu);
            l[r] = l[r] * corr + warp_sum(pe);
            m[r] = m_new;
            if (DROP && valid &&
                !dropout_keep(P.p, P.seed, RNG_DROPOUT_PROB, P.step, P.sample0 + (uint32_t)b, P.layer,
                              drop_index(h, S, i, j)))
                pe = 0.0f;
#pragma unroll
            for (int c = 0; c < NC; c++) o[r][c] *= corr;
            for (int jj = 0; jj < BK; jj++) {
                const float pj = __shfl_sync(kFull, pe, jj);
#pragma unroll
                for (int c = 0; c < NC; c++) o[r][c] += pj * sV[jj][lane + 32 * c];
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int i = q0 + warp * R + r;
        if (i < S) {
            const float f = P.keep_scale / l[r];
#pragma unroll
            for (int c = 0; c < NC; c++)
                P.out[((size_t)b * S + i) * C + h * HD + lane + 32 * c] = __float2bfloat16(o[r][c] * f);
            if (lane == 0) P.lse[((size_t)b * P.nh + h) * S + i] = m[r] + logf(l[r]);
        }
    }
}

// dQ: block = 8 warps x 1 query row; per 32-key tile lane l computes P, dP and dS of key kv0 + l.
template <int HD, bool DROP>
__global__ void __launch_bounds__(kV1Warps * 32) dq_v1_kernel(const Params P) {
    constexpr int BQ = kV1Warps, BK = 32, NC = HD / 32;
    __shared__ float sQ[BQ][HD], sdO[BQ][HD];
    __shared__ float sK[BK][HD + 1], sV[BK][HD + 1];
    const int S = P.S, C = P.nh * HD;
    const int h = blockIdx.y, b = blockIdx.z, q0 = blockIdx.x * BQ, bh = b * P.nh + h;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const size_t ld = 3 * (size_t)C;
    const floatX* gQ = P.qkv + (size_t)b * S * ld + h * HD;
    const floatX* gdO = P.dout + (size_t)b * S * C + h * HD;
    for (int x = threadIdx.x; x < BQ * HD; x += blockDim.x) {
        const int r = x / HD, d = x % HD, i = q0 + r;
        sQ[r][d] = i < S ? __bfloat162float(gQ[(size_t)i * ld + d]) : 0.0f;
        sdO[r][d] = i < S ? __bfloat162float(gdO[(size_t)i * C + d]) : 0.0f;
    }
    const int i = q0 + warp;
    const float lse_i = i < S ? P.lse_in[(size_t)bh * S + i] : 0.0f;
    const float D_i = i < S ? P.D[(size_t)bh * S + i] : 0.0f;
    float dq[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) dq[c] = 0.0f;
    const int kv_end = P.causal ? min(S, q0 + BQ) : S;
    for (int kv0 = 0; kv0 < kv_end; kv0 += BK) {
        __syncthreads();
        for (int x = threadIdx.x; x < BK * HD; x += blockDim.x) {
            const int r = x / HD, d = x % HD, j = kv0 + r;
            sK[r][d] = j < S ? __bfloat162float(gQ[(size_t)j * ld + C + d]) : 0.0f;
            sV[r][d] = j < S ? __bfloat162float(gQ[(size_t)j * ld + 2 * C + d]) : 0.0f;
        }
        __syncthreads();
        const int j = kv0 + lane;
        float sc = 0.0f, dp = 0.0f;
        for (int d = 0; d < HD; d++) {
            sc += sQ[warp][d] * sK[lane][d];
            dp += sdO[warp][d] * sV[lane][d];
        }
        const bool valid = i < S && j < S && (!P.causal || j <= i);
        const float pe = valid ? expf(sc * P.scale - lse_i) : 0.0f;
        if (DROP)
            dp = valid && dropout_keep(P.p, P.seed, RNG_DROPOUT_PROB, P.step, P.sample0 + (uint32_t)b, P.layer,
                                       drop_index(h, S, i, j))
                     ? dp * P.keep_scale
                     : 0.0f;
        const float ds = pe * (dp - D_i);
        for (int jj = 0; jj < BK; jj++) {
            const float dsj = __shfl_sync(kFull, ds, jj);
#pragma unroll
            for (int c = 0; c < NC; c++) dq[c] += dsj * sK[jj][lane + 32 * c];
        }
    }
    if (i < S) {
#pragma unroll
        for (int c = 0; c < NC; c++)
            P.dqkv[((size_t)b * S + i) * ld + h * HD + lane + 32 * c] = __float2bfloat16(dq[c] * P.scale);
    }
}

// dK, dV: block = 8 warps x 1 key row; per 32-query tile lane l handles query qs + l.
template <int HD, bool DROP>
__global__ void __launch_bounds__(kV1Warps * 32) dkdv_v1_kernel(const Params P) {
    constexpr int BKR = kV1Warps, BQ = 32, NC = HD / 32;
    __shared__ float sK[BKR][HD], sV[BKR][HD];
    __shared__ float sQ[BQ][HD + 1], sdO[BQ][HD + 1];
    __shared__ float sL[BQ], sD[BQ];
    const int S = P.S, C = P.nh * HD;
    const int h = blockIdx.y, b = blockIdx.z, k0 = blockIdx.x * BKR, bh = b * P.nh + h;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const size_t ld = 3 * (size_t)C;
    const floatX* gQ = P.qkv + (size_t)b * S * ld + h * HD;
    const floatX* gdO = P.dout + (size_t)b * S * C + h * HD;
    for (int x = threadIdx.x; x < BKR * HD; x += blockDim.x) {
        const int r = x / HD, d = x % HD, j = k0 + r;
        sK[r][d] = j < S ? __bfloat162float(gQ[(size_t)j * ld + C + d]) : 0.0f;
        sV[r][d] = j < S ? __bfloat162float(gQ[(size_t)j * ld + 2 * C + d]) : 0.0f;
    }
    const int j = k0 + warp;
    float dk[NC], dv[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) dk[c] = dv[c] = 0.0f;
    for (int qs = P.causal ? (k0 / BQ) * BQ : 0; qs < S; qs += BQ) {
        __syncthreads();
        for (int x = threadIdx.x; x < BQ * HD; x += blockDim.x) {
            const int r = x / HD, d = x % HD, i = qs + r;
            sQ[r][d] = i < S ? __bfloat162float(gQ[(size_t)i * ld + d]) : 0.0f;
            sdO[r][d] = i < S ? __bfloat162float(gdO[(size_t)i * C + d]) : 0.0f;
        }
        if (threadIdx.x < BQ) {
            const int i = qs + threadIdx.x;
            sL[threadIdx.x] = i < S ? P.lse_in[(size_t)bh * S + i] : 0.0f;
            sD[threadIdx.x] = i < S ? P.D[(size_t)bh * S + i] : 0.0f;
        }
        __syncthreads();
        const int i = qs + lane;
        float sc = 0.0f, dp = 0.0f;
        for (int d = 0; d < HD; d++) {
            sc += sK[warp][d] * sQ[lane][d];
            dp += sV[warp][d] * sdO[lane][d];
        }
        const bool valid = i < S && j < S && (!P.causal || j <= i);
        const float pe = valid ? expf(sc * P.scale - sL[lane]) : 0.0f;
        float z = pe;
        if (DROP) {
            const bool keep = valid && dropout_keep(P.p, P.seed, RNG_DROPOUT_PROB, P.step, P.sample0 + (uint32_t)b,
                                                    P.layer, drop_index(h, S, i, j));
            z = keep ? pe * P.keep_scale : 0.0f;
            dp = keep ? dp * P.keep_scale : 0.0f;
        }
        const float ds = pe * (dp - sD[lane]);
        for (int ii = 0; ii < BQ; ii++) {
            const float zi = __shfl_sync(kFull, z, ii), di = __shfl_sync(kFull, ds, ii);
#pragma unroll
            for (int c = 0; c < NC; c++) {
                dv[c] += zi * sdO[ii][lane + 32 * c];
                dk[c] += di * sQ[ii][lane + 32 * c];
            }
        }
    }
    if (j < S) {
#pragma unroll
        for (int c = 0; c < NC; c++) {
            P.dqkv[((size_t)b * S + j) * ld + C + h * HD + lane + 32 * c] = __float2bfloat16(dk[c] * P.scale);
            P.dqkv[((size_t)b * S + j) * ld + 2 * C + h * HD + lane + 32 * c] = __float2bfloat16(dv[c]);
        }
    }
}

// ---- launch helpers ---------------------------------------------------------------------------------------

template <class Kernel>
inline void launch_smem(Kernel kernel, dim3 grid, int threads, int smem, cudaStream_t stream, const Params& P) {
    if (smem > device_smem_optin())  // head_dim 128 needs ~102 KB: more than consumer GPUs give one block
        llmc_die("attention at this head size needs %d KB of shared memory per block; this GPU allows %d KB "
                 "(head_dim 64 models run here; head_dim 128 ones need an A100/H100-class GPU)", smem / 1024,
                 device_smem_optin() / 1024);
    if (smem > 48 * 1024)
        cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    kernel<<<grid, threads, smem, stream>>>(P);
    cudaCheckLaunch();
}

// Tile configurations (W = warps per block). Exposed so the test can sweep them.
template <int HD, int W>
inline void fwd_v2_launch(const Params& P, cudaStream_t stream) {
    const dim3 grid(ceil_div(P.S, 16 * W), P.nh, P.B);
    if (P.p > 0.0f) launch_smem(fwd_v2_kernel<HD, W, true>, grid, 32 * W, fwd_v2_smem<HD, W>(), stream, P);
    else launch_smem(fwd_v2_kernel<HD, W, false>, grid, 32 * W, fwd_v2_smem<HD, W>(), stream, P);
}
template <int HD, int W, int BMQ>
inline void bwd_v2_launch(const Params& P, cudaStream_t stream) {
    const dim3 grid_kv(ceil_div(P.S, 16 * W), P.nh, P.B), grid_q(ceil_div(P.S, 16 * W), P.nh, P.B);
    const int skv = dkdv_v2_smem<HD, W, BMQ>(), sq = dq_v2_smem<HD, W>();
    if (P.p > 0.0f) {
        launch_smem(dkdv_v2_kernel<HD, W, BMQ, true>, grid_kv, 32 * W, skv, stream, P);
        launch_smem(dq_v2_kernel<HD, W, true>, grid_q, 32 * W, sq, stream, P);
    } else {
        launch_smem(dkdv_v2_kernel<HD, W, BMQ, false>, grid_kv, 32 * W, skv, stream, P);
        launch_smem(dq_v2_kernel<HD, W, false>, grid_q, 32 * W, sq, stream, P);
    }
}
// Default configurations: 4 warps (64 rows) everywhere; dK/dV walks 64-query tiles at hd 64 and 32-query
// tiles at hd 128 (dK and dV accumulators already take 128 registers per thread there).
constexpr int kFwdWarps = 4, kBwdWarps = 4;

template <int HD>
inline void fwd_v1_launch(const Params& P, cudaStream_t stream) {
    const dim3 grid(ceil_div(P.S, kV1Warps * 2), P.nh, P.B);
    if (P.p > 0.0f) fwd_v1_kernel<HD, true><<<grid, kV1Warps * 32, 0, stream>>>(P);
    else fwd_v1_kernel<HD, false><<<grid, kV1Warps * 32, 0, stream>>>(P);
    cudaCheckLaunch();
}
template <int HD>
inline void bwd_v1_launch(const Params& P, cudaStream_t stream) {
    const dim3 grid(ceil_div(P.S, kV1Warps), P.nh, P.B);
    if (P.p > 0.0f) {
        dkdv_v1_kernel<HD, true><<<grid, kV1Warps * 32, 0, stream>>>(P);
        cudaCheckLaunch();
        dq_v1_kernel<HD, true><<<grid, kV1Warps * 32, 0, stream>>>(P);
    } else {
        dkdv_v1_kernel<HD, false><<<grid, kV1Warps * 32, 0, stream>>>(P);
        cudaCheckLaunch();
        dq_v1_kernel<HD, false><<<grid, kV1Warps * 32, 0, stream>>>(P);
    }
    cudaCheckLaunch();
}

inline void check_args(int B, int S, int nh, int hd, float p, int version, const void* a, const void* b) {
    if (const char* err = attention_args_error(B, S, nh, hd, p, version)) llmc_die("%s", err);
    // cp.async moves 16-byte chunks: rows of qkv / dout must start 16-byte aligned (hd is a multiple of 8).
    if (version == ATTN_V2 && (((uintptr_t)a | (uintptr_t)b) & 15u))
        llmc_die("attention: qkv and dout must be 16-byte aligned for version 2");
}

}  // namespace attn

// ---- public launchers ---------------------------------------------------------------------------------------

// out [B,S,nh*hd] bf16 and lse [B,nh,S] fp32 from qkv [B,S,3*nh*hd] bf16. Every element of out and lse is
// written. version: ATTN_V2 (tensor cores, default) or ATTN_V1 (fp32 CUDA cores).
inline void attention_forward(floatX* out, float* lse, const floatX* qkv, int B, int S, int nh, int hd, bool causal,
                              const AttnDropoutArgs& drop, cudaStream_t stream, int version = ATTN_V2) {
    attn::check_args(B, S, nh, hd, drop.p, version, qkv, qkv);
    attn::Params P = attn::make_params(B, S, nh, hd, causal, drop);
    P.out = out;
    P.lse = lse;
    P.qkv = qkv;
    if (version == ATTN_V1) {
        if (hd == 64) attn::fwd_v1_launch<64>(P, stream);
        else attn::fwd_v1_launch<128>(P, stream);
    } else {
        if (hd == 64) attn::fwd_v2_launch<64, attn::kFwdWarps>(P, stream);
        else attn::fwd_v2_launch<128, attn::kFwdWarps>(P, stream);
    }
}

// dqkv [B,S,3*nh*hd] bf16 (WRITTEN, not accumulated: every element is set) from dout [B,S,nh*hd], the forward's
// inputs qkv, output out and lse, with the same causal flag and dropout keys as the forward.
// workspace: attention_backward_workspace_bytes(B, S, nh) bytes of device memory (D = rowsum(dO * O)).
inline void attention_backward(floatX* dqkv, float* workspace, const floatX* dout, const floatX* qkv,
                               const floatX* out, const float* lse, int B, int S, int nh, int hd, bool causal,
                               const AttnDropoutArgs& drop, cudaStream_t stream, int version = ATTN_V2) {
    attn::check_args(B, S, nh, hd, drop.p, version, qkv, dout);
    attn::Params P = attn::make_params(B, S, nh, hd, causal, drop);
    P.dqkv = dqkv;
    P.dout = dout;
    P.qkv = qkv;
    P.o = out;
    P.lse_in = lse;
    P.D = workspace;
    const int rows = B * S * nh;
    if (hd == 64) attn::dot_do_o_kernel<64><<<ceil_div(rows, 8), 256, 0, stream>>>(P);
    else attn::dot_do_o_kernel<128><<<ceil_div(rows, 8), 256, 0, stream>>>(P);
    cudaCheckLaunch();
    if (version == ATTN_V1) {
        if (hd == 64) attn::bwd_v1_launch<64>(P, stream);
        else attn::bwd_v1_launch<128>(P, stream);
    } else {
        if (hd == 64) attn::bwd_v2_launch<64, attn::kBwdWarps, 64>(P, stream);
        else attn::bwd_v2_launch<128, attn::kBwdWarps, 32>(P, stream);
    }
}
