// llmc/transformer.cuh — the seed transformer on one GPU, shared by train_gpt.cu (AR) and train_mdm.cu (MDM).
// The `causal` flag of forward() is the only architectural difference between the two objectives; everything
// an objective owns (inputs, targets, per-row weights, which rows reach the LM head) comes in from outside.
//
// Memory, llm.c style:
//   parameters   ONE fp32 master buffer and ONE bf16 copy in the layout of llmc/config.h param_offsets, ONE fp32
//                gradient buffer of the same layout (micro-batch gradients accumulate in it: matmul dW with
//                beta = 1, RMSNorm dw +=, embedding +=), AdamW moments m and v: 18 bytes per parameter.
//                Data parallel (llmc/data_parallel.cuh), ZeRO stage 1: the fp32 master and m, v hold only this
//                rank's shard of the layout; the bf16 copy and the gradients stay whole (6 + 12/W bytes/param).
//   activations  planned from a table (name, shape, dtype) for the largest micro-batch, carved out of ONE
//                allocation; print_plan() shows it with the memory per sequence and the largest micro-batch
//                that would fit.
// Precision (design.md §5): bf16 activations and weights for compute, fp32 statistics / softmax / loss, an fp32
// residual GRADIENT stream, fp32 gradient accumulation, fp32 AdamW on fp32 masters.
// Determinism: every kernel here sums in a fixed order (no float atomics), cuBLASLt algorithms are pinned per
// shape, so a run repeats bit for bit on the same card.
//
// One training step: zero_grad() and reset_loss(), then per micro-batch
//   forward(inputs, B, causal, keys)            embedding -> L blocks -> final RMSNorm (activations kept)
//   head(targets, weights, rows, M, scale, true) LM head + cross-entropy on M rows (all rows for AR, the masked
//                                                rows for MDM); adds scale * sum w*CE to the step loss and leaves
//                                                dlogits for the backward
//   backward()                                   gradients += d(loss)/d(params)
// then read_loss() and optimizer_step() (global norm, clip, AdamW, bf16 copy). save_checkpoint / set_state move
// the master weights and moments (llmc/checkpoint.h format; headers from llmc/train_loop.h).
// An LM head computed elsewhere (llmc/mdm.cuh's device-compacted MDM head) plugs in instead of head()/backward():
// it reads act.lnf, uses the head scratch (act.head_in, act.logits, act.row_loss: head_rows_capacity() rows),
// adds its dwte term to grads and writes d loss / d lnf into act.dln; then backward_trunk(act.dln).
#pragma once
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>
#include "adamw.cuh"        // adamw_update, adamw_groups_from_config: one AdamW launch over the flat buffer
#include "attention.cuh"    // attention_forward / attention_backward: flash-style, Philox probability dropout
#include "checkpoint.h"     // CheckpointHeader, checkpoint_save
#include "classifier.cuh"   // classifier_forward_backward, loss_reduce, gather_rows / scatter_rows
#include "config.h"         // ModelConfig, ParamTensor layout, param_offsets, param_init_std
#include "cuda_common.cuh"  // cudaCheck, floatX (bf16), bf16 host conversions
#include "data_parallel.cuh" // GpuDist: ranks and the NCCL reduce-scatter / all-gather of ZeRO-1 (no-ops alone)
#include "dist.h"           // ShardLayout: which slice of the flat parameter buffer each rank updates
#include "embedding.cuh"    // embedding_forward (+ dropout), EmbeddingBackwardPlan, embedding_backward
#include "global_norm.cuh"  // global_norm: deterministic L2 norm and the seed's clip factor, on the device
#include "matmul.cuh"       // MatmulContext, matmul_forward / matmul_backward (cuBLASLt, pinned algorithms)
#include "philox.h"         // rng_normal (weight init), RngPurpose keys of every dropout
#include "rmsnorm.cuh"      // fused residual + dropout + RMSNorm, rmsnorm_backward, dropout_backward_to_branch
#include "rope.cuh"         // RopeTable, rope_forward / rope_backward
#include "swiglu.cuh"       // swiglu_forward / swiglu_backward

// Randomness keys of one forward (mirrors ref::StepKeys): every dropout mask is a Philox function of
// (seed, purpose, step, sample0 + b, layer, position), so CPU, GPU and a resumed run draw identical masks.
// Dropout probabilities 0 = eval mode.
struct StepKeys {
    uint32_t seed = 0, step = 0, sample0 = 0;  // sample0: global sample index of row b = 0 (row b uses sample0 + b)
    float hidden_dropout = 0.0f, attn_dropout = 0.0f;
};

// Shapes the CUDA kernels cannot run, as one line naming the flag to change (empty string = fine).
inline std::string gpu_config_error(const ModelConfig& c) {
    char buf[256] = "";
    if (c.head_dim != 64 && c.head_dim != 128)
        snprintf(buf, sizeof buf, "--head-dim %d: the attention kernels support head dims 64 and 128", c.head_dim);
    else if (c.d_model % 8 != 0 || c.d_model > RMS_MAX_C)
        snprintf(buf, sizeof buf, "--d-model %d: the GPU kernels need a multiple of 8 up to %d", c.d_model, RMS_MAX_C);
    else if ((int64_t)c.padded_vocab * c.d_model >= ((int64_t)1 << 32))
        snprintf(buf, sizeof buf, "--d-model %d: the embedding exceeds 2^32 elements", c.d_model);
    return buf;
}

// Rows whose weight is non-zero (the MDM masked positions), with their targets and weights, in row order:
// the compacted lists head() takes to run the LM head on those rows only. Returns their count M.
// multiple > 1 pads M up to a multiple of it (at most N) with the first weight-0 rows, which add exactly zero to
// the loss and the gradients: the LM-head matmuls then see few distinct shapes, and matmul.cuh queries and pins
// one cuBLASLt algorithm per shape (the masked count changes every micro-batch).
inline int select_weighted_rows(const float* weight, const int* targets, int N, std::vector<int>& rows,
                                std::vector<int>& row_targets, std::vector<float>& row_weights, int multiple = 1) {
    int M = 0;
    for (int n = 0; n < N; n++) M += weight[n] != 0.0f;
    int pad = multiple > 1 ? (M + multiple - 1) / multiple * multiple - M : 0;
    if (pad > N - M) pad = N - M;
    rows.clear();
    row_targets.clear();
    row_weights.clear();
    for (int n = 0; n < N; n++) {
        bool take = weight[n] != 0.0f;
        if (!take && pad > 0) take = true, pad--;
        if (!take) continue;
        rows.push_back(n);
        row_targets.push_back(targets[n]);
        row_weights.push_back(weight[n]);
    }
    return (int)rows.size();
}

// The process alone: a GpuDist whose collectives are no-ops (tests, one-GPU runs).
inline GpuDist* single_process_dist() {
    static GpuDist alone;
    return &alone;
}

// fp32 master -> bf16 compute copy (round to nearest even, as adamw_update writes it).
__global__ void master_to_bf16_kernel(floatX* out, const float* in, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16_rn(in[i]);
}

// Device buffers of one micro-batch (sized for the largest, max_B sequences; N = max_B*S rows, H = N rounded up to
// a multiple of 128 for padded head-row lists). Per-layer tensors are stacked: layer l's slice starts at
// l * (max_B * S) rows, so a smaller batch uses the first rows of every slice.
struct Activations {
    // inputs of the step
    int* tokens;        // [N] input token ids
    int* targets;       // [H] head targets (first M used)
    float* weights;     // [H] head row weights (first M used)
    int* rows;          // [H] head row indices (first M used; MDM)
    int* emb_plan;      // embedding backward plan (token-sorted rows)
    // saved by the forward for the backward
    floatX* res;        // [2L+1, N, C] residual stream: embedding output, after each attention / MLP branch
    floatX* ln1;        // [L, N, C]  RMSNorm_1 outputs (inputs of the QKV projection)
    float* rstd1;       // [L, N]
    floatX* qkv;        // [L, N, 3A] after RoPE
    floatX* atty;       // [L, N, A]  attention outputs
    float* lse;         // [L, B, nh, S] attention log-sum-exp
    floatX* ln2;        // [L, N, C]  RMSNorm_2 outputs
    float* rstd2;       // [L, N]
    floatX* fc;         // [L, N, 2F] MLP up projection [gate | up]
    floatX* sw;         // [L, N, F]  SwiGLU outputs
    floatX* lnf;        // [N, C] final RMSNorm output (the head's input)
    float* rstdf;       // [N]
    // LM head
    floatX* head_in;    // [H, C] compacted head rows (MDM)
    floatX* logits;     // [H, Vp] logits, overwritten in place by dlogits
    float* row_loss;    // [H] CE of each head row
    double* loss;       // [1] step loss accumulated over micro-batches
    // scratch (forward branch output, backward gradients)
    floatX* branch;     // [N, C] attention / MLP branch output before dropout + residual add
    float* dres;        // [N, C] fp32 residual-stream gradient
    floatX* dbranch;    // [N, C] gradient entering a branch output (after its dropout)
    floatX* dln;        // [N, C] gradient of an RMSNorm output (first: of lnf, the head's input)
    floatX* dhead;      // [H, C] gradient of the compacted head rows
    floatX* dqkv;       // [N, 3A]
    floatX* datty;      // [N, A]
    floatX* dfc;        // [N, 2F]
    floatX* dsw;        // [N, F]
    float* attn_ws;     // attention backward workspace
    float* rms_scratch; // RMSNorm dw partials
    float* emb_scratch; // embedding backward partials of frequent tokens
};

struct Transformer {
    ModelConfig cfg;
    int max_B = 0;                     // largest micro-batch the activations are planned for
    cudaStream_t stream = nullptr;     // every kernel and copy of the model runs on this stream, in order
    MatmulContext mm;
    GlobalNorm gn;
    RopeTable rope;
    AdamWGroups groups;
    size_t num_params = 0, off[NUM_PARAM_TENSORS], sizes[NUM_PARAM_TENSORS];
    GpuDist* dist = nullptr;           // the data-parallel group (single_process_dist(): this process alone)
    ShardLayout zero;                  // ZeRO-1 shards of the flat layout: rank r updates [begin(r), end(r))
    size_t shard_lo = 0, shard_len = 0;  // this rank's slice
    float* master = nullptr;           // fp32 master weights of this rank's shard (all of them alone)
    floatX* params = nullptr;          // bf16 copy used by forward and backward: whole, zero.padded() elements
    float* grads = nullptr;            // fp32 gradients, accumulated over the micro-batches of a step: whole, padded
    float* adam_m = nullptr;           // AdamW moments of this rank's shard
    float* adam_v = nullptr;
    Activations act{};
    void* arena = nullptr;
    size_t arena_bytes = 0, free_before_activations = 0;

    // ---- setup ------------------------------------------------------------------------------------------

    // Allocates parameters, optimizer state and the activations of micro-batches of up to max_batch sequences
    // of cfg.seq_len tokens; with a data-parallel group d, only this rank's ZeRO-1 shard of the fp32 master and
    // moments. Dies with one line if the shape is unsupported or the memory does not fit.
    // memory_hint: what the program's user can lower when the activations do not fit (its own flags).
    void init(const ModelConfig& c, int max_batch, GpuDist* d = nullptr,
              const char* memory_hint = "lower --micro-batch or --seq-len") {
        validate_config(c);
        std::string err = gpu_config_error(c);
        if (!err.empty()) llmc_die("%s", err.c_str());
        if (max_batch < 1) llmc_die("micro-batch must be >= 1");
        if ((int64_t)max_batch * c.seq_len > kMaxRows)
            llmc_die("--micro-batch %d x --seq-len %d rows is too many for one forward (at most %d)", max_batch,
                     c.seq_len, kMaxRows);
        cfg = c;
        max_B = max_batch;
        cudaCheck(cudaStreamCreate(&stream));
        matmul_init(mm);
        global_norm_init(gn);
        rope = rope_table_create(cfg.seq_len, cfg.head_dim, cfg.rope_theta);
        groups = adamw_groups_from_config(cfg);
        num_params = param_offsets(cfg, off);
        param_sizes(cfg, sizes);
        dist = d ? d : single_process_dist();
        zero = ShardLayout(num_params, dist->world(), kShardAlign);
        shard_lo = zero.begin(dist->rank());
        shard_len = zero.end(dist->rank()) - shard_lo;
        cudaCheck(cudaMalloc(&master, zero.shard * sizeof(float)));
        cudaCheck(cudaMalloc(&params, zero.padded() * sizeof(floatX)));
        cudaCheck(cudaMalloc(&grads, zero.padded() * sizeof(float)));
        cudaCheck(cudaMalloc(&adam_m, zero.shard * sizeof(float)));
        cudaCheck(cudaMalloc(&adam_v, zero.shard * sizeof(float)));
        cudaCheck(cudaMemset(params, 0, zero.padded() * sizeof(floatX)));  // the padding is gathered, never used
        cudaCheck(cudaMemset(master, 0, zero.shard * sizeof(float)));
        cudaCheck(cudaMemset(grads, 0, zero.padded() * sizeof(float)));
        reset_optimizer();

        size_t total;
        cudaCheck(cudaMemGetInfo(&free_before_activations, &total));
        arena_bytes = plan_bytes(max_B);
        if (arena_bytes + kReserveBytes > free_before_activations)
            llmc_die("%d sequences per forward need %.2f GiB of activations but only %.2f GiB are free (at most "
                     "about %d fit; %s)", max_B, arena_bytes / 1073741824.0, free_before_activations / 1073741824.0,
                     max_micro_batch(), memory_hint);
        cudaCheck(cudaMalloc(&arena, arena_bytes));
        char* p = (char*)arena;
        for (const ActEntry& e : activation_table(max_B)) {
            *e.ptr = p;
            p += align_up(e.count * e.esize);
        }
    }

    void destroy() {
        cudaCheck(cudaStreamSynchronize(stream));
        for (void* q : {(void*)master, (void*)params, (void*)grads, (void*)adam_m, (void*)adam_v, arena})
            cudaCheck(cudaFree(q));
        rope_table_free(rope);
        global_norm_free(gn);
        matmul_free(mm);
        cudaCheck(cudaStreamDestroy(stream));
        master = grads = adam_m = adam_v = nullptr;
        params = nullptr;
        arena = nullptr;
    }

    // Seed init on the host, exactly as ref::Model::init_weights: element i of tensor k is
    // rng_normal(seed, RNG_INIT, 0, k, 0, i) * param_init_std(cfg, k) rounded to bf16; RMSNorm gains are 1. So the
    // CPU reference and the GPU start from bit-identical weights.
    void init_weights(uint32_t seed) {
        std::vector<float> h(num_params);
        for (int k = 0; k < NUM_PARAM_TENSORS; k++) {
            const double sd = param_init_std(cfg, k);
            const bool gain = !param_has_decay(k);
            float* p = h.data() + off[k];
            const int64_t n = (int64_t)sizes[k];
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < n; i++)
                p[i] = gain ? 1.0f
                            : bf16_to_float_host(float_to_bf16_host(
                                  (float)(rng_normal(seed, RNG_INIT, 0, (uint32_t)k, 0, (uint32_t)i) * sd)));
        }
        set_master(h.data());
    }

    // Uploads all fp32 master weights (host, num_params): the whole bf16 copy, and this rank's shard of the
    // masters. The gradient buffer (whole, fp32) stages the upload and is zero afterwards.
    void set_master(const float* host) {
        cudaCheck(cudaMemcpyAsync(grads, host, num_params * sizeof(float), cudaMemcpyHostToDevice, stream));
        master_to_bf16_kernel<<<(unsigned)std::min<size_t>(ceil_div(num_params, (size_t)256), 65536), 256, 0, stream>>>(
            params, grads, num_params);
        cudaCheckLaunch();
        cudaCheck(cudaMemcpyAsync(master, grads + shard_lo, shard_len * sizeof(float), cudaMemcpyDeviceToDevice, stream));
        cudaCheck(cudaMemsetAsync(grads, 0, zero.padded() * sizeof(float), stream));
        cudaCheck(cudaStreamSynchronize(stream));  // the host buffer may go away after return
    }

    void reset_optimizer() {
        cudaCheck(cudaMemset(adam_m, 0, zero.shard * sizeof(float)));
        cudaCheck(cudaMemset(adam_v, 0, zero.shard * sizeof(float)));
    }

    // ---- activation plan ----------------------------------------------------------------------------------

    struct ActEntry {
        const char* name;
        std::string shape;
        size_t count, esize;
        const char* dtype;
        void** ptr;
        const char* role;
    };

    // The activation table for micro-batches of B sequences: every device buffer of a step, in arena order.
    std::vector<ActEntry> activation_table(int B) {
        const size_t S = cfg.seq_len, N = (size_t)B * S, C = cfg.d_model, A = cfg.attn_dim(), F = cfg.ffn;
        const size_t L = cfg.n_layer, nh = cfg.n_head, Vp = cfg.padded_vocab, H = head_rows_capacity(B);
        auto dims = [](std::initializer_list<size_t> d) {
            std::string s;
            for (size_t x : d) s += (s.empty() ? "" : " x ") + std::to_string(x);
            return s;
        };
        const size_t fb = sizeof(float), hb = sizeof(floatX), ib = sizeof(int);
        Activations& a = act;
        return {
            {"tokens", dims({N}), N, ib, "int32", (void**)&a.tokens, "input"},
            {"targets", dims({H}), H, ib, "int32", (void**)&a.targets, "input"},
            {"weights", dims({H}), H, fb, "fp32", (void**)&a.weights, "input"},
            {"head rows", dims({H}), H, ib, "int32", (void**)&a.rows, "input"},
            {"embedding plan", dims({embedding_plan_capacity_ints((int)N)}), embedding_plan_capacity_ints((int)N), ib, "int32", (void**)&a.emb_plan, "input"},
            {"residual", dims({2 * L + 1, N, C}), (2 * L + 1) * N * C, hb, "bf16", (void**)&a.res, "saved"},
            {"ln1", dims({L, N, C}), L * N * C, hb, "bf16", (void**)&a.ln1, "saved"},
            {"rstd1", dims({L, N}), L * N, fb, "fp32", (void**)&a.rstd1, "saved"},
            {"qkv", dims({L, N, 3 * A}), L * N * 3 * A, hb, "bf16", (void**)&a.qkv, "saved"},
            {"attention out", dims({L, N, A}), L * N * A, hb, "bf16", (void**)&a.atty, "saved"},
            {"attention lse", dims({L, (size_t)B, nh, S}), L * N * nh, fb, "fp32", (void**)&a.lse, "saved"},
            {"ln2", dims({L, N, C}), L * N * C, hb, "bf16", (void**)&a.ln2, "saved"},
            {"rstd2", dims({L, N}), L * N, fb, "fp32", (void**)&a.rstd2, "saved"},
            {"fc (gate|up)", dims({L, N, 2 * F}), L * N * 2 * F, hb, "bf16", (void**)&a.fc, "saved"},
            {"swiglu", dims({L, N, F}), L * N * F, hb, "bf16", (void**)&a.sw, "saved"},
            {"lnf", dims({N, C}), N * C, hb, "bf16", (void**)&a.lnf, "saved"},
            {"rstdf", dims({N}), N, fb, "fp32", (void**)&a.rstdf, "saved"},
            {"head rows in", dims({H, C}), H * C, hb, "bf16", (void**)&a.head_in, "head"},
            {"logits/dlogits", dims({H, Vp}), H * Vp, hb, "bf16", (void**)&a.logits, "head"},
            {"row loss", dims({H}), H, fb, "fp32", (void**)&a.row_loss, "head"},
            {"loss", dims({1}), 1, sizeof(double), "fp64", (void**)&a.loss, "head"},
            {"branch", dims({N, C}), N * C, hb, "bf16", (void**)&a.branch, "scratch"},
            {"dres (fp32)", dims({N, C}), N * C, fb, "fp32", (void**)&a.dres, "scratch"},
            {"dbranch", dims({N, C}), N * C, hb, "bf16", (void**)&a.dbranch, "scratch"},
            {"dln", dims({N, C}), N * C, hb, "bf16", (void**)&a.dln, "scratch"},
            {"dhead", dims({H, C}), H * C, hb, "bf16", (void**)&a.dhead, "scratch"},
            {"dqkv", dims({N, 3 * A}), N * 3 * A, hb, "bf16", (void**)&a.dqkv, "scratch"},
            {"dattention", dims({N, A}), N * A, hb, "bf16", (void**)&a.datty, "scratch"},
            {"dfc", dims({N, 2 * F}), N * 2 * F, hb, "bf16", (void**)&a.dfc, "scratch"},
            {"dswiglu", dims({N, F}), N * F, hb, "bf16", (void**)&a.dsw, "scratch"},
            {"attention ws", dims({(size_t)B, nh, S}), attention_backward_workspace_bytes(B, (int)S, (int)nh) / fb, fb, "fp32", (void**)&a.attn_ws, "scratch"},
            {"rmsnorm dw", dims({rmsnorm_backward_scratch_floats((int)N, (int)C)}),
             rmsnorm_backward_scratch_floats((int)N, (int)C), fb, "fp32", (void**)&a.rms_scratch, "scratch"},
            {"embedding dw", dims({embedding_backward_scratch_floats((int)N, (int)C)}),
             embedding_backward_scratch_floats((int)N, (int)C), fb, "fp32", (void**)&a.emb_scratch, "scratch"},
        };
    }

    static constexpr int kHeadRowMultiple = 128;             // masked-row counts padded to this (select_weighted_rows)
    static constexpr size_t kShardAlign = 64;                // ZeRO-1 shards start on 256-byte (fp32) boundaries
    static constexpr int kMaxRows = 1 << 26;                 // row counts and plan indices are int
    static constexpr size_t kAlign = 256;                  // every buffer starts 256-byte aligned (16-byte vectors, cuBLASLt)
    static constexpr size_t kReserveBytes = (size_t)512 << 20;  // left free for cuBLASLt, the CUDA runtime, fragmentation
    static size_t align_up(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

    // Rows the head scratch holds for micro-batches of B sequences: B*S rounded up to kHeadRowMultiple, so padded
    // row lists (select_weighted_rows, llmc/mdm.cuh) fit.
    size_t head_rows_capacity(int B) const {
        const size_t N = (size_t)B * cfg.seq_len;
        return (N + kHeadRowMultiple - 1) / kHeadRowMultiple * kHeadRowMultiple;
    }

    size_t plan_bytes(int B) {
        size_t total = 0;
        for (const ActEntry& e : activation_table(B)) total += align_up(e.count * e.esize);
        return total;
    }

    // Largest micro-batch whose activations fit in the memory that was free before they were allocated.
    int max_micro_batch() {
        const size_t budget = free_before_activations > kReserveBytes ? free_before_activations - kReserveBytes : 0;
        if (plan_bytes(1) > budget) return 0;
        const int cap = kMaxRows / cfg.seq_len;
        int lo = 1, hi = 2;
        while (hi <= cap && plan_bytes(hi) <= budget) lo = hi, hi *= 2;
        if (hi > cap) hi = cap + 1;
        while (hi - lo > 1) {
            int mid = lo + (hi - lo) / 2;
            if (plan_bytes(mid) <= budget) lo = mid; else hi = mid;
        }
        return lo;
    }

    void print_plan(FILE* f) {
        const double MiB = 1048576.0;
        if (dist->world() == 1)
            fprintf(f, "parameters %zu (%.2fM): fp32 master + bf16 copy + fp32 grad + AdamW m, v = %.1f MiB\n",
                    num_params, num_params / 1e6, num_params * 18.0 / MiB);
        else
            fprintf(f, "parameters %zu (%.2fM): bf16 copy + fp32 grad %.1f MiB + ZeRO-1 shard of %zu fp32 master, m, v "
                       "%.1f MiB (rank %d of %d)\n", num_params, num_params / 1e6, zero.padded() * 6.0 / MiB, zero.shard,
                    zero.shard * 12.0 / MiB, dist->rank(), dist->world());
        fprintf(f, "activations for micro-batch %d x %d tokens (one arena):\n", max_B, cfg.seq_len);
        fprintf(f, "  %-16s %-26s %-6s %-8s %10s\n", "tensor", "shape", "dtype", "role", "MiB");
        for (const ActEntry& e : activation_table(max_B))
            fprintf(f, "  %-16s %-26s %-6s %-8s %10.1f\n", e.name, e.shape.c_str(), e.dtype, e.role,
                    align_up(e.count * e.esize) / MiB);
        fprintf(f, "  %-16s %-26s %-6s %-8s %10.1f  (%.1f MiB per sequence)\n", "total", "", "", "", arena_bytes / MiB,
                arena_bytes / MiB / max_B);
        fprintf(f, "memory     %.1f GiB free before activations: largest micro-batch that fits about %d at S = %d\n",
                free_before_activations / 1073741824.0, max_micro_batch(), cfg.seq_len);
    }

    // ---- forward ------------------------------------------------------------------------------------------

    // Forward of B sequences (token ids inputs[B*S], B <= max_B) up to the final RMSNorm, keeping what the
    // backward needs. causal: AR (key j visible to query i iff j <= i); false: MDM (bidirectional).
    // inputs_on_device: the ids are already in device memory (e.g. llmc/mdm.cuh's corrupted inputs); they are then
    // trusted here and range-checked when backward() reads them back to plan the embedding gradient.
    void forward(const int* inputs, int B, bool causal, const StepKeys& keys, bool inputs_on_device = false) {
        if (B < 1 || B > max_B)
            llmc_die("forward: %d sequences, but the activations are planned for 1..%d (--micro-batch)", B, max_B);
        const int S = cfg.seq_len, N = B * S, C = cfg.d_model, A = cfg.attn_dim(), F = cfg.ffn, L = cfg.n_layer;
        const int nh = cfg.n_head, hd = cfg.head_dim;
        B_ = B;
        causal_ = causal;
        keys_ = keys;
        head_grad_ = false;
        have_forward_ = true;
        if (inputs_on_device) {
            inputs_.clear();  // read back by backward(), after its kernels are queued
            cudaCheck(cudaMemcpyAsync(act.tokens, inputs, (size_t)N * sizeof(int), cudaMemcpyDeviceToDevice, stream));
        } else {
            for (int n = 0; n < N; n++)
                if (inputs[n] < 0 || inputs[n] >= cfg.padded_vocab)
                    llmc_die("input token %d at row %d is outside the embedding (%d rows)", inputs[n], n,
                             cfg.padded_vocab);
            inputs_.assign(inputs, inputs + N);  // the backward sorts them for the embedding gradient
            // A copy from pageable host memory returns once the data is staged (CUDA "API synchronization
            // behavior"), so host buffers may be reused at once.
            cudaCheck(cudaMemcpyAsync(act.tokens, inputs, (size_t)N * sizeof(int), cudaMemcpyHostToDevice, stream));
        }

        embedding_forward(res(0), act.tokens, params + off[P_WTE], B, S, C, hidden_drop(RNG_DROPOUT_EMB, 0), stream);
        rmsnorm_forward(ln1(0), rstd1(0), res(0), layer(params, 0).ln1, N, C, cfg.rms_eps, stream);
        for (int l = 0; l < L; l++) {
            Layer<floatX> w = layer(params, l);
            // Attention branch: ln1 -> QKV -> RoPE -> attention -> output projection; dropout + residual add are
            // fused into the next RMSNorm.
            matmul_forward(mm, qkv(l), ln1(l), w.qkv, N, C, 3 * A, stream);
            rope_forward(qkv(l), rope, B, S, nh, hd, stream);
            attention_forward(atty(l), lse(l), qkv(l), B, S, nh, hd, causal, attn_drop(l), stream);
            matmul_forward(mm, act.branch, atty(l), w.attproj, N, A, C, stream);
            fused_residual_rmsnorm_forward(res(2 * l + 1), ln2(l), rstd2(l), res(2 * l), act.branch, w.ln2, B, S, C,
                                           cfg.rms_eps, hidden_drop(RNG_DROPOUT_ATTN, l), stream);
            // MLP branch: ln2 -> [gate | up] -> SwiGLU -> down projection; its residual add is fused with the next
            // layer's RMSNorm_1, or with the final RMSNorm after the last layer.
            matmul_forward(mm, fc(l), ln2(l), w.fc, N, C, 2 * F, stream);
            swiglu_forward(sw(l), fc(l), N, F, stream);
            matmul_forward(mm, act.branch, sw(l), w.fcproj, N, F, C, stream);
            const bool last = l == L - 1;
            fused_residual_rmsnorm_forward(res(2 * l + 2), last ? act.lnf : ln1(l + 1), last ? act.rstdf : rstd1(l + 1),
                                           res(2 * l + 1), act.branch,
                                           last ? params + off[P_LNF] : layer(params, l + 1).ln1, B, S, C, cfg.rms_eps,
                                           hidden_drop(RNG_DROPOUT_MLP, l), stream);
        }
    }

    // ---- LM head + loss -------------------------------------------------------------------------------------

    // Tied LM head and cross-entropy over M rows of the last forward's final hidden state. rows: HOST list of M
    // strictly increasing row indices in [0, B*S) (MDM: the masked positions; M may be 0), or nullptr for rows
    // 0..M-1 in order (AR: M = B*S, all rows, no gather). Rows outside the set get an exactly zero gradient.
    // targets[M], weights[M]: HOST, per head row (weights nullptr = 1 for every row). Adds
    // scale * sum_j weights[j] * CE_j to the loss accumulator (see reset_loss / read_loss) and keeps CE_j in
    // act.row_loss. grad = true also leaves dlogits = scale * weights[j] * (softmax - onehot) for backward():
    // with scale = 1/grad_accum the accumulated loss and gradients are those of the mean micro-batch loss.
    void head(const int* targets, const float* weights, const int* rows, int M, float scale, bool grad) {
        if (!have_forward_) llmc_die("head: call forward first");
        const int N = B_ * cfg.seq_len, C = cfg.d_model, Vp = cfg.padded_vocab;
        if (M < 0 || M > N) llmc_die("head: %d rows requested of a %d-row batch", M, N);
        for (int j = 0; j < M; j++) {
            if (targets[j] < 0 || targets[j] >= Vp)
                llmc_die("target token %d at head row %d is outside the vocabulary (%d classes)", targets[j], j, Vp);
            if (rows && (rows[j] < 0 || rows[j] >= N || (j > 0 && rows[j] <= rows[j - 1])))
                llmc_die("head: row list must be strictly increasing within [0, %d) (entry %d is %d)", N, j, rows[j]);
        }
        if (M > 0) cudaCheck(cudaMemcpyAsync(act.targets, targets, (size_t)M * sizeof(int), cudaMemcpyHostToDevice, stream));
        const float* d_weights = nullptr;
        if (weights && M > 0) {
            std::vector<float> w(weights, weights + M);
            for (float& x : w) x *= scale;
            cudaCheck(cudaMemcpyAsync(act.weights, w.data(), (size_t)M * sizeof(float), cudaMemcpyHostToDevice, stream));
            d_weights = act.weights;
        }
        const floatX* in = act.lnf;
        if (rows) {
            if (M > 0) cudaCheck(cudaMemcpyAsync(act.rows, rows, (size_t)M * sizeof(int), cudaMemcpyHostToDevice, stream));
            gather_rows(act.head_in, act.lnf, act.rows, M, C, stream);
            in = act.head_in;
        }
        matmul_forward(mm, act.logits, in, params + off[P_WTE], M, C, Vp, stream);
        classifier_forward_backward(act.logits, act.row_loss, act.targets, d_weights, scale, M, Vp, grad, stream);
        loss_reduce(act.loss, act.row_loss, d_weights, scale, M, /*accumulate=*/true, stream);
        head_M_ = M;
        head_compact_ = rows != nullptr;
        head_grad_ = grad;
    }

    void reset_loss() { cudaCheck(cudaMemsetAsync(act.loss, 0, sizeof(double), stream)); }
    // Waits for the stream and returns the loss accumulated by head() since reset_loss(), summed over the
    // data-parallel ranks (each scaled its micro-batches by 1/global accumulation): the step's loss. Once per step.
    double read_loss() {
        dist->allreduce_sum(act.loss, 1, stream);
        double h;
        cudaCheck(cudaMemcpyAsync(&h, act.loss, sizeof h, cudaMemcpyDeviceToHost, stream));
        cudaCheck(cudaStreamSynchronize(stream));
        return h;
    }
    // Per-row CE of the last head() call (M values, head-row order).
    void read_row_loss(float* out, int M) {
        if (M > 0) cudaCheck(cudaMemcpyAsync(out, act.row_loss, (size_t)M * sizeof(float), cudaMemcpyDeviceToHost, stream));
        cudaCheck(cudaStreamSynchronize(stream));
    }

    // Validation forward (dropout off): CE of every row of B sequences into row_loss[B*S] (host). weights (host,
    // optional): rows with weight 0 get CE 0 and (but for shape padding) skip the LM head — the MDM ELBO never
    // counts them, and the head is the most expensive layer; nullptr computes every row (AR).
    void eval_row_loss(const int* inputs, const int* targets, const float* weights, int B, bool causal, float* row_loss) {
        const int N = B * cfg.seq_len;
        forward(inputs, B, causal, StepKeys{});
        if (!weights) {
            head(targets, nullptr, nullptr, N, 1.0f, false);
            read_row_loss(row_loss, N);
            return;
        }
        std::vector<int> rows, t;
        std::vector<float> w;
        const int M = select_weighted_rows(weights, targets, N, rows, t, w, kHeadRowMultiple);
        std::vector<float> compact(M);
        head(t.data(), nullptr, M > 0 ? rows.data() : nullptr, M, 1.0f, false);  // M = 0: an empty head
        read_row_loss(compact.data(), M);
        for (int n = 0; n < N; n++) row_loss[n] = 0.0f;
        for (int j = 0; j < M; j++) row_loss[rows[j]] = w[j] != 0.0f ? compact[j] : 0.0f;
    }

    // ---- evaluation logits (eval_gpu, generate_gpu: llmc/gpu_backend.cuh) ------------------------------------

    // Forward of B sequences (dropout off), then the LM head on M of their rows and their logits [M, Vp] into out
    // (host, as fp32: the bf16 values of the head's matmul, as the seed casts its bf16 logits to fp32). rows: HOST list, strictly increasing within [0, B*S), or nullptr for all M = B*S rows in order.
    // head(grad = false) leaves its bf16 logits intact (classifier.cuh writes dlogits only when asked); its loss
    // against target 0 is not used.
    void eval_logits(const int* inputs, int B, bool causal, const int* rows, int M, float* out) {
        const int N = B * cfg.seq_len;
        const size_t Vp = cfg.padded_vocab;
        if (!rows && M != N) llmc_die("eval_logits: without a row list M must be all %d rows (got %d)", N, M);
        if (M == 0) return;
        std::vector<int> head_rows, head_targets, keep;  // keep: head rows whose logits were asked for
        std::vector<float> asked;
        if (rows) {
            // The asked rows as weight-1 rows, padded like eval_row_loss's (few head shapes for matmul.cuh's pins).
            std::vector<float> want(N, 0.0f);
            for (int j = 0; j < M; j++) {
                if (rows[j] < 0 || rows[j] >= N || (j > 0 && rows[j] <= rows[j - 1]))
                    llmc_die("eval_logits: row list must be strictly increasing within [0, %d) (entry %d is %d)", N, j,
                             rows[j]);
                want[rows[j]] = 1.0f;
            }
            const std::vector<int> zeros(N, 0);
            select_weighted_rows(want.data(), zeros.data(), N, head_rows, head_targets, asked, kHeadRowMultiple);
            for (int i = 0; i < (int)asked.size(); i++)
                if (asked[i] != 0.0f) keep.push_back(i);
        } else {
            head_targets.assign(N, 0);
            keep.resize(N);
            for (int i = 0; i < N; i++) keep[i] = i;
        }
        const int H = (int)head_targets.size();
        forward(inputs, B, causal, StepKeys{});
        head(head_targets.data(), nullptr, rows ? head_rows.data() : nullptr, H, 1.0f, false);
        std::vector<floatX> h((size_t)H * Vp);
        cudaCheck(cudaMemcpyAsync(h.data(), act.logits, h.size() * sizeof(floatX), cudaMemcpyDeviceToHost, stream));
        cudaCheck(cudaStreamSynchronize(stream));
#pragma omp parallel for schedule(static)
        for (int j = 0; j < M; j++) {
            const floatX* src = h.data() + (size_t)keep[j] * Vp;
            float* dst = out + (size_t)j * Vp;
            for (size_t v = 0; v < Vp; v++) dst[v] = bf16_to_float_host(src[v]);
        }
    }

    // ---- backward ------------------------------------------------------------------------------------------

    void zero_grad() { cudaCheck(cudaMemsetAsync(grads, 0, zero.padded() * sizeof(float), stream)); }

    // Backward of the last forward + head(grad = true): grads += d(loss)/d(params), loss as weighted by head().
    void backward() {
        if (!head_grad_) llmc_die("backward: call head(..., grad = true) after forward first");
        head_grad_ = false;
        const int N = B_ * cfg.seq_len, C = cfg.d_model, Vp = cfg.padded_vocab, M = head_M_;
        const floatX* wte = params + off[P_WTE];
        float* dwte = grads + off[P_WTE];

        // LM head: dwte += dlogits^T h; dh = dlogits wte, scattered back to full rows when only some rows went
        // through the head (the others get an exactly zero gradient).
        if (head_compact_) {
            matmul_backward(mm, act.dhead, dwte, act.logits, act.head_in, wte, M, C, Vp, stream);
            scatter_rows(act.dln, act.dhead, act.rows, M, N, C, stream);
        } else {
            matmul_backward(mm, act.dln, dwte, act.logits, act.lnf, wte, M, C, Vp, stream);
            if (M < N)
                cudaCheck(cudaMemsetAsync(act.dln + (size_t)M * C, 0, (size_t)(N - M) * C * sizeof(floatX), stream));
        }
        backward_trunk(act.dln);
    }

    // Backward of the last forward from dlnf [B*S, C] (bf16, device) = d loss / d(final RMSNorm output), the LM
    // head's input gradient: grads += everything but the head's own dwte term (the head adds that). dlnf may be
    // act.dln. Used by backward() and by LM heads computed outside this struct.
    void backward_trunk(const floatX* dlnf) {
        if (!have_forward_) llmc_die("backward: call forward first");
        have_forward_ = false;
        const int B = B_, S = cfg.seq_len, N = B * S, C = cfg.d_model, A = cfg.attn_dim(), F = cfg.ffn, L = cfg.n_layer;
        const int nh = cfg.n_head, hd = cfg.head_dim, Vp = cfg.padded_vocab;
        float* dwte = grads + off[P_WTE];
        cudaCheck(cudaMemsetAsync(act.dres, 0, (size_t)N * C * sizeof(float), stream));
        rmsnorm_backward(act.dres, grads + off[P_LNF], act.rms_scratch, dlnf, res(2 * L), params + off[P_LNF],
                         act.rstdf, N, C, stream);
        // dres now holds dL/d(residual after the last layer); each block adds its branches' input gradients to it
        // through its RMSNorm backwards, the residual connection passing it through unchanged.
        for (int l = L - 1; l >= 0; l--) {
            Layer<floatX> w = layer(params, l);
            Layer<float> g = layer(grads, l);
            // MLP branch.
            dropout_backward_to_branch(act.dbranch, act.dres, B, S, C, hidden_drop(RNG_DROPOUT_MLP, l), stream);
            matmul_backward(mm, act.dsw, g.fcproj, act.dbranch, sw(l), w.fcproj, N, F, C, stream);
            swiglu_backward(act.dfc, act.dsw, fc(l), N, F, stream);
            matmul_backward(mm, act.dln, g.fc, act.dfc, ln2(l), w.fc, N, C, 2 * F, stream);
            rmsnorm_backward(act.dres, g.ln2, act.rms_scratch, act.dln, res(2 * l + 1), w.ln2, rstd2(l), N, C, stream);
            // Attention branch.
            dropout_backward_to_branch(act.dbranch, act.dres, B, S, C, hidden_drop(RNG_DROPOUT_ATTN, l), stream);
            matmul_backward(mm, act.datty, g.attproj, act.dbranch, atty(l), w.attproj, N, A, C, stream);
            attention_backward(act.dqkv, act.attn_ws, act.datty, qkv(l), atty(l), lse(l), B, S, nh, hd, causal_,
                               attn_drop(l), stream);
            rope_backward(act.dqkv, rope, B, S, nh, hd, stream);
            matmul_backward(mm, act.dln, g.qkv, act.dqkv, ln1(l), w.qkv, N, C, 3 * A, stream);
            rmsnorm_backward(act.dres, g.ln1, act.rms_scratch, act.dln, res(2 * l), w.ln1, rstd1(l), N, C, stream);
        }
        // Embedding (tied with the head): rows sorted by token on the host, so the sum has no atomics. Device-side
        // inputs are read back now, while the GPU works through the kernels queued above.
        if (inputs_.empty()) {
            inputs_.resize(N);
            cudaCheck(cudaMemcpyAsync(inputs_.data(), act.tokens, (size_t)N * sizeof(int), cudaMemcpyDeviceToHost, stream));
            cudaCheck(cudaStreamSynchronize(stream));
        }
        emb_plan_.build_or_die(inputs_.data(), N, Vp);
        embedding_plan_upload(act.emb_plan, emb_plan_, stream);
        embedding_backward(dwte, act.emb_scratch, act.emb_plan, emb_plan_, act.dres, B, S, C,
                           hidden_drop(RNG_DROPOUT_EMB, 0), stream);
    }

    // ---- optimizer ---------------------------------------------------------------------------------------------

    // The seed's step (ref::optimizer_step): global L2 norm of the gradients, clip factor max_norm/(norm+1e-6) when
    // below 1 (max_norm <= 0: off), AdamW with weight decay on 2-D weights only, new bf16 copy. t is 1-based.
    // Data parallel, ZeRO-1: reduce-scatter the gradients (rank r gets the sum of its shard), the global norm from
    // every shard's sum of squares, AdamW on this rank's shard, all-gather the bf16 copy. Alone, the collectives
    // are no-ops and this is the one-GPU step. Returns the pre-clip norm (waits for the stream).
    double optimizer_step(float lr, float beta1, float beta2, float eps, float weight_decay, double max_norm, int t) {
        float* g = grads + (size_t)dist->rank() * zero.shard;  // where reduce-scatter leaves this rank's shard
        dist->reduce_scatter(grads, zero.shard, stream);
        global_norm_sumsq(gn, g, shard_len, stream);
        dist->allreduce_sum(gn.sumsq, 1, stream);
        global_norm_finish(gn, max_norm, stream);
        adamw_update(master, params + shard_lo, g, adam_m, adam_v, shard_len, groups, lr, beta1, beta2, eps,
                     weight_decay, t, gn.clip, 1.0f, stream, shard_lo);
        dist->allgather(params, zero.shard, stream);
        return global_norm_read(gn, stream);
    }

    // ---- checkpoints ----------------------------------------------------------------------------------------------

    // num_params floats at device address d (one process: master, adam_m, adam_v are whole) to the host.
    void download(std::vector<float>& out, const float* d) {
        out.resize(num_params);
        cudaCheck(cudaMemcpyAsync(out.data(), d, num_params * sizeof(float), cudaMemcpyDeviceToHost, stream));
        cudaCheck(cudaStreamSynchronize(stream));
    }

    // The whole buffer of which every rank holds its shard (master, adam_m or adam_v) into out (host): each rank
    // places its shard in the gradient buffer (free between steps) and all-gather fills in the others. Every rank
    // must call it; each gets the whole buffer.
    void gather_whole(std::vector<float>& out, const float* shard) {
        cudaCheck(cudaMemcpyAsync(grads + (size_t)dist->rank() * zero.shard, shard, shard_len * sizeof(float),
                                  cudaMemcpyDeviceToDevice, stream));
        dist->allgather(grads, zero.shard, stream);
        download(out, grads);
    }

    // Writes fp32 master weights and AdamW moments under header h (llmc/train_loop.h progress_header: shape,
    // objective, step, data cursor, best loss) with llmc/checkpoint.h: atomic, checksummed. The full state whatever
    // the sharding, so a run saved on W GPUs resumes on any number: a collective (every rank calls it), rank 0
    // writes. Leaves the gradients zero.
    void save_checkpoint(const char* path, const CheckpointHeader& h) {
        if (h.num_params != num_params || !h.has_optimizer)
            llmc_die("save_checkpoint: header for %" PRIu64 " parameters (optimizer %u), model has %zu",
                     (uint64_t)h.num_params, h.has_optimizer, num_params);
        std::vector<float> hp, hm, hv;
        gather_whole(hp, master);
        gather_whole(hm, adam_m);
        gather_whole(hv, adam_v);
        zero_grad();
        if (dist->root()) checkpoint_save(path, h, hp.data(), hm.data(), hv.data());
    }

    // Restores fp32 master weights (and the bf16 copy) and the AdamW moments (nullptr: zero) from host buffers of
    // num_params floats, e.g. a checkpoint_load'ed file whose header the caller has checked (resume_progress);
    // this rank keeps its shard.
    void set_state(const float* master_host, const float* m_host, const float* v_host) {
        set_master(master_host);
        reset_optimizer();
        const size_t bytes = shard_len * sizeof(float);
        if (m_host) cudaCheck(cudaMemcpy(adam_m, m_host + shard_lo, bytes, cudaMemcpyHostToDevice));
        if (v_host) cudaCheck(cudaMemcpy(adam_v, v_host + shard_lo, bytes, cudaMemcpyHostToDevice));
    }

    // ---- views -----------------------------------------------------------------------------------------------

    template <class T>
    struct Layer {
        T *ln1, *qkv, *attproj, *ln2, *fc, *fcproj;
    };
    // Layer l's tensors inside a buffer of the parameter layout (the bf16 weights or the fp32 gradients).
    template <class T>
    Layer<T> layer(T* base, int l) const {
        const size_t C = cfg.d_model, A = cfg.attn_dim(), F = cfg.ffn;
        return Layer<T>{base + off[P_LN1] + l * C,         base + off[P_QKV] + l * 3 * A * C,
                        base + off[P_ATTPROJ] + l * C * A, base + off[P_LN2] + l * C,
                        base + off[P_FC] + l * 2 * F * C,  base + off[P_FCPROJ] + l * C * F};
    }

    size_t rows_max() const { return (size_t)max_B * cfg.seq_len; }
    floatX* res(int i) { return act.res + (size_t)i * rows_max() * cfg.d_model; }
    floatX* ln1(int l) { return act.ln1 + (size_t)l * rows_max() * cfg.d_model; }
    float* rstd1(int l) { return act.rstd1 + (size_t)l * rows_max(); }
    floatX* qkv(int l) { return act.qkv + (size_t)l * rows_max() * cfg.qkv_dim(); }
    floatX* atty(int l) { return act.atty + (size_t)l * rows_max() * cfg.attn_dim(); }
    float* lse(int l) { return act.lse + (size_t)l * rows_max() * cfg.n_head; }
    floatX* ln2(int l) { return act.ln2 + (size_t)l * rows_max() * cfg.d_model; }
    float* rstd2(int l) { return act.rstd2 + (size_t)l * rows_max(); }
    floatX* fc(int l) { return act.fc + (size_t)l * rows_max() * 2 * cfg.ffn; }
    floatX* sw(int l) { return act.sw + (size_t)l * rows_max() * cfg.ffn; }

  private:
    int B_ = 0, head_M_ = 0;
    bool causal_ = true, head_compact_ = false, head_grad_ = false, have_forward_ = false;
    StepKeys keys_{};
    std::vector<int> inputs_;
    EmbeddingBackwardPlan emb_plan_;

    // Hidden dropout of the embedding (sub 0) or of layer l's attention / MLP branch (sub = l).
    HiddenDropout hidden_drop(uint32_t purpose, int sub) const {
        return HiddenDropout{keys_.hidden_dropout, keys_.seed, purpose, keys_.step, keys_.sample0, (uint32_t)sub};
    }
    AttnDropoutArgs attn_drop(int l) const {
        AttnDropoutArgs d;
        d.p = keys_.attn_dropout;
        d.seed = keys_.seed;
        d.step = keys_.step;
        d.sample0 = keys_.sample0;
        d.layer = (uint32_t)l;
        return d;
    }
};
