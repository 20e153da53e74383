// llmc/matmul.cuh — the model's bias-free linear layers on cuBLASLt: bf16 inputs, fp32 accumulation
// (CUBLAS_COMPUTE_32F), bf16 activations out, fp32 weight gradients accumulated in place (beta = 1) so that
// micro-batch gradients add up in fp32 without a separate bf16 -> fp32 pass.
//
// Layout: row-major everywhere, weights W[OC, IC] (y = x W^T, as PyTorch Linear). cuBLASLt is column-major,
// so a row-major [R, C] matrix is handed over as a column-major [C, R] one and every product is computed
// transposed (out^T = W · x^T etc.); see the per-launcher comments for the exact mapping.
//
// Determinism: for one algorithm, one workspace and one card cuBLASLt returns bit-identical results run to
// run (its split-K reductions are ordered: INPLACE uses counters for sequentiality, the others reduce the
// workspace in a separate kernel). The heuristic's first choice is therefore queried ONCE per
// (shape, transposes, dtype, pointer alignment) and pinned in the context, so a training run never switches
// algorithm midway. Use one context per stream: the workspace is shared by every call.
#pragma once
#include <vector>
#include "cuda_common.cuh"

// One pinned cuBLASLt configuration: descriptors and the algorithm chosen for it.
struct MatmulPlan {
    int m, n, k, lda, ldb, ldd;
    bool transa, transb;
    cudaDataType_t dtype;        // type of C/D (A and B are always bf16)
    unsigned align_a, align_b, align_d;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, d;
    cublasLtMatmulAlgo_t algo;
};

struct MatmulContext {
    cublasLtHandle_t handle = nullptr;
    void* workspace = nullptr;
    size_t workspace_bytes = 0;
    std::vector<MatmulPlan> plans;
};

// 32 MiB is what NVIDIA recommends for Hopper; smaller workspaces exclude some split-K algorithms.
inline void matmul_init(MatmulContext& ctx, size_t workspace_bytes = (size_t)32 << 20) {
    cublasCheck(cublasLtCreate(&ctx.handle));
    ctx.workspace_bytes = workspace_bytes;
    cudaCheck(cudaMalloc(&ctx.workspace, workspace_bytes));
}

inline void matmul_free(MatmulContext& ctx) {
    for (MatmulPlan& p : ctx.plans) {
        cublasCheck(cublasLtMatrixLayoutDestroy(p.a));
        cublasCheck(cublasLtMatrixLayoutDestroy(p.b));
        cublasCheck(cublasLtMatrixLayoutDestroy(p.d));
        cublasCheck(cublasLtMatmulDescDestroy(p.op));
    }
    ctx.plans.clear();
    if (ctx.workspace) cudaCheck(cudaFree(ctx.workspace));
    if (ctx.handle) cublasCheck(cublasLtDestroy(ctx.handle));
    ctx.workspace = nullptr;
    ctx.handle = nullptr;
}

// Largest power of two (capped at 256, cuBLASLt's default assumption) dividing the address: algorithms that
// need more alignment than a pointer has must not be chosen for it.
inline unsigned matmul_alignment(const void* p) {
    uintptr_t a = (uintptr_t)p;
    unsigned al = 256;
    while (al > 1 && (a % al) != 0) al /= 2;
    return al;
}

// D[m, n] (column-major, ld ldd) = op(A)[m, k] · op(B)[k, n] + beta · D, A and B bf16, fp32 compute.
// A is stored [m, k] (or [k, m] when transa), B [k, n] (or [n, k] when transb), all column-major.
inline void matmul_cublaslt(MatmulContext& ctx, void* D, cudaDataType_t dtype, const floatX* A, bool transa,
                            const floatX* B, bool transb, int m, int n, int k, int lda, int ldb, int ldd,
                            float beta, cudaStream_t stream) {
    if (!ctx.handle) llmc_die("matmul: MatmulContext used before matmul_init");
    if (m <= 0 || n <= 0) return;  // empty output (e.g. an MDM micro-batch with no masked token)
    if (k <= 0) {                  // empty sum: D = beta * D, only beta 0 or 1 occur
        if (beta == 0.0f) {
            size_t esz = dtype == CUDA_R_32F ? 4 : 2;
            cudaCheck(cudaMemset2DAsync(D, (size_t)ldd * esz, 0, (size_t)m * esz, n, stream));
        }
        return;
    }
    unsigned al_a = matmul_alignment(A), al_b = matmul_alignment(B), al_d = matmul_alignment(D);
    MatmulPlan* plan = nullptr;
    for (MatmulPlan& p : ctx.plans)
        if (p.m == m && p.n == n && p.k == k && p.lda == lda && p.ldb == ldb && p.ldd == ldd && p.transa == transa &&
            p.transb == transb && p.dtype == dtype && p.align_a == al_a && p.align_b == al_b && p.align_d == al_d) {
            plan = &p;
            break;
        }
    if (!plan) {
        MatmulPlan p{};
        p.m = m, p.n = n, p.k = k, p.lda = lda, p.ldb = ldb, p.ldd = ldd;
        p.transa = transa, p.transb = transb, p.dtype = dtype;
        p.align_a = al_a, p.align_b = al_b, p.align_d = al_d;
        cublasCheck(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        cublasOperation_t ta = transa ? CUBLAS_OP_T : CUBLAS_OP_N, tb = transb ? CUBLAS_OP_T : CUBLAS_OP_N;
        cublasCheck(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
        cublasCheck(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
        cublasCheck(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, transa ? k : m, transa ? m : k, lda));
        cublasCheck(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, transb ? n : k, transb ? k : n, ldb));
        cublasCheck(cublasLtMatrixLayoutCreate(&p.d, dtype, m, n, ldd));
        cublasLtMatmulPreference_t pref;
        cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                         &ctx.workspace_bytes, sizeof ctx.workspace_bytes));
        uint32_t als[4] = {al_a, al_b, al_d, al_d};  // C and D are the same buffer
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &als[0], 4));
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &als[1], 4));
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &als[2], 4));
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &als[3], 4));
        cublasLtMatmulHeuristicResult_t res{};
        int found = 0;
        cublasCheck(cublasLtMatmulAlgoGetHeuristic(ctx.handle, p.op, p.a, p.b, p.d, p.d, pref, 1, &res, &found));
        cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
        if (found == 0 || res.state != CUBLAS_STATUS_SUCCESS)
            llmc_die("matmul: cuBLASLt has no algorithm for m=%d n=%d k=%d (lda %d ldb %d ldd %d, align %u/%u/%u)", m,
                     n, k, lda, ldb, ldd, al_a, al_b, al_d);
        p.algo = res.algo;
        ctx.plans.push_back(p);
        plan = &ctx.plans.back();
    }
    const float alpha = 1.0f;
    cublasCheck(cublasLtMatmul(ctx.handle, plan->op, &alpha, A, plan->a, B, plan->b, &beta, D, plan->d, D, plan->d,
                               &plan->algo, ctx.workspace, ctx.workspace_bytes, stream));
}

// out[N, OC] = x[N, IC] · W[OC, IC]^T, bf16 out (overwritten). Also the tied LM head: logits = h · wte^T with
// OC = padded vocab. Column-major view: out^T[OC, N] = W(as [IC, OC])^T · x^T[IC, N].
inline void matmul_forward(MatmulContext& ctx, floatX* out, const floatX* x, const floatX* W, int N, int IC, int OC,
                           cudaStream_t stream) {
    matmul_cublaslt(ctx, out, CUDA_R_16BF, W, true, x, false, OC, N, IC, IC, IC, OC, 0.0f, stream);
}

// Same product with fp32 output (e.g. logits for evaluation code that wants them unrounded).
inline void matmul_forward_f32(MatmulContext& ctx, float* out, const floatX* x, const floatX* W, int N, int IC,
                               int OC, cudaStream_t stream) {
    matmul_cublaslt(ctx, out, CUDA_R_32F, W, true, x, false, OC, N, IC, IC, IC, OC, 0.0f, stream);
}

// dx[N, IC] = dout[N, OC] · W[OC, IC], bf16, OVERWRITTEN (not accumulated).
// Column-major view: dx^T[IC, N] = W(as [IC, OC]) · dout^T[OC, N].
inline void matmul_backward_dx(MatmulContext& ctx, floatX* dx, const floatX* dout, const floatX* W, int N, int IC,
                               int OC, cudaStream_t stream) {
    matmul_cublaslt(ctx, dx, CUDA_R_16BF, W, false, dout, false, IC, N, OC, IC, OC, IC, 0.0f, stream);
}

// dW[OC, IC] += dout[N, OC]^T · x[N, IC], fp32, ACCUMULATED in place (beta = 1): gradients of all
// micro-batches sum in fp32. Column-major view: dW^T[IC, OC] += x^T[IC, N] · dout(as [OC, N])^T.
inline void matmul_backward_dw(MatmulContext& ctx, float* dW, const floatX* dout, const floatX* x, int N, int IC,
                               int OC, cudaStream_t stream) {
    matmul_cublaslt(ctx, dW, CUDA_R_32F, x, false, dout, true, IC, OC, N, IC, OC, IC, 1.0f, stream);
}

// Both gradients of a linear layer; dx may be nullptr when the input needs no gradient.
inline void matmul_backward(MatmulContext& ctx, floatX* dx, float* dW, const floatX* dout, const floatX* x,
                            const floatX* W, int N, int IC, int OC, cudaStream_t stream) {
    if (dx) matmul_backward_dx(ctx, dx, dout, W, N, IC, OC, stream);
    matmul_backward_dw(ctx, dW, dout, x, N, IC, OC, stream);
}
