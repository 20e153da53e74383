// llmc/config.h — model shape, the seed's model-size table, the parameter-buffer layout shared by the CPU
// reference and the CUDA trainers, parameter counts and FLOPs per token.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include "utils.h"

constexpr int GPT2_VOCAB = 50257;     // tokenizer vocabulary V
constexpr int PADDED_VOCAB = 50304;   // V rounded up to a multiple of 128 (Megatron's padding)
constexpr int EOD_ID = 50256;         // <|endoftext|>, appended to every document
constexpr int MASK_ID = 50257;        // MDM mask token: the first padding row of the tied embedding

struct ModelConfig {
    int vocab_size = GPT2_VOCAB;       // real classes (softmax for downstream scoring is restricted to these)
    int padded_vocab = PADDED_VOCAB;   // rows of the tied embedding = classes of the training softmax
    int mask_id = MASK_ID;
    int d_model = 0;                   // h
    int n_layer = 0;                   // L
    int n_head = 0;                    // n
    int head_dim = 0;                  // kv-channels; attention inner dim is n_head*head_dim (may differ from h)
    int ffn = 0;                       // SwiGLU hidden F
    int seq_len = 2048;                // S (sequence length fed to the model)
    float rope_theta = 10000.0f;
    float rms_eps = 1e-5f;

    int attn_dim() const { return n_head * head_dim; }
    int qkv_dim() const { return 3 * n_head * head_dim; }
};

// The seed's FFN rule under --swiglu: floor((4h*2/3)/64)*64, which is exactly floor(h/24)*64 in integers.
inline int swiglu_ffn_size(int d_model) { return (d_model / 24) * 64; }

// The seed's size table (utils/model_params.sh, the Chinchilla Table A9 shapes used by Muennighoff et al.'s
// datablations): name, d_model, ffw_size (unused by the model, kept for reference), kv_size, n_heads, n_layers.
struct SizePreset {
    const char* name;
    int d_model, ffw_size, kv_size, n_heads, n_layers;
};

// Rows below 44M in the seed's table (7M..35M) could not be retrieved from a primary source, so they are not
// listed; the project's own small shapes ("tiny", "mini") are for tests and one-GPU experiments.
inline const SizePreset* size_presets(int* count) {
    static const SizePreset table[] = {
        {"tiny", 64, 256, 16, 4, 2},      // project preset: CPU reference runs and tests
        {"mini", 256, 1024, 64, 4, 4},    // project preset: quick CPU/GPU smoke runs
        {"44m", 512, 2048, 64, 8, 8},
        {"57m", 576, 2304, 64, 9, 9},
        {"74m", 640, 2560, 64, 10, 10},
        {"90m", 640, 2560, 64, 10, 13},
        {"106m", 640, 2560, 64, 10, 16},
        {"117m", 768, 3072, 64, 12, 12},
        {"140m", 768, 3072, 64, 12, 15},
        {"163m", 768, 3072, 64, 12, 18},
        {"175m", 896, 3584, 64, 14, 14},
        {"196m", 896, 3584, 64, 14, 16},
        {"217m", 896, 3584, 64, 14, 18},
        {"251m", 1024, 4096, 64, 16, 16},
        {"278m", 1024, 4096, 64, 16, 18},
        {"306m", 1024, 4096, 64, 16, 20},
        {"425m", 1280, 5120, 128, 10, 18},
        {"489m", 1280, 5120, 128, 10, 21},
        {"509m", 1408, 5632, 128, 11, 18},
        {"552m", 1280, 5120, 128, 10, 24},
        {"587m", 1408, 5632, 128, 11, 21},
        {"632m", 1536, 6144, 128, 12, 19},
        {"664m", 1408, 5632, 128, 11, 24},
        {"724m", 1536, 6144, 128, 12, 22},
        {"816m", 1536, 6144, 128, 12, 25},
        {"893m", 1792, 7168, 128, 14, 20},
        {"1018m", 1792, 7168, 128, 14, 23},
        {"1143m", 1792, 7168, 128, 14, 26},
        {"1266m", 2048, 8192, 128, 16, 22},
        {"1424m", 2176, 8704, 128, 17, 22},
        {"1429m", 2048, 8192, 128, 16, 25},
        {"1593m", 2048, 8192, 128, 16, 28},
        {"1609m", 2176, 8704, 128, 17, 25},
        {"1731m", 2304, 9216, 128, 18, 24},
        {"1794m", 2176, 8704, 128, 17, 28},
        {"2007m", 2304, 9216, 128, 18, 28},
        {"2283m", 2304, 9216, 128, 18, 32},
        {"2298m", 2560, 10240, 128, 20, 26},
    };
    *count = (int)(sizeof table / sizeof table[0]);
    return table;
}

// Shape of a named preset at sequence length seq_len; dies naming the preset if it is unknown.
inline ModelConfig model_preset(const char* name, int seq_len) {
    int n;
    const SizePreset* t = size_presets(&n);
    for (int i = 0; i < n; i++) {
        if (strcmp(t[i].name, name) != 0) continue;
        ModelConfig c;
        c.d_model = t[i].d_model;
        c.n_layer = t[i].n_layers;
        c.n_head = t[i].n_heads;
        c.head_dim = t[i].kv_size;
        c.ffn = swiglu_ffn_size(t[i].d_model);
        c.seq_len = seq_len;
        return c;
    }
    std::string names;
    for (int i = 0; i < n; i++) names += std::string(i ? ", " : "") + t[i].name;
    llmc_die("unknown model preset '%s' (known: %s)", name, names.c_str());
}

// Checks a shape before anything is allocated; dies with the offending field.
inline void validate_config(const ModelConfig& c) {
    if (c.d_model <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.head_dim <= 0 || c.ffn <= 0 || c.seq_len <= 1)
        llmc_die("model shape must be positive (d_model %d, n_layer %d, n_head %d, head_dim %d, ffn %d, seq_len %d)",
                 c.d_model, c.n_layer, c.n_head, c.head_dim, c.ffn, c.seq_len);
    if (c.head_dim % 2) llmc_die("head_dim %d must be even (RoPE rotates half-split pairs)", c.head_dim);
    if (c.vocab_size <= 0 || c.padded_vocab < c.vocab_size)
        llmc_die("padded_vocab %d must be >= vocab_size %d", c.padded_vocab, c.vocab_size);
    if (c.mask_id < 0 || c.mask_id >= c.padded_vocab) llmc_die("mask_id %d outside the embedding", c.mask_id);
}

// ---------------------------------------------------------------------------------------------------------
// Parameter layout: every tensor of all layers contiguous, in this order, in ONE buffer (and the gradients in
// a second buffer of identical layout), so zeroing, the global norm, all-reduce and AdamW are single passes.
// Weights are stored [out_features, in_features] (y = x W^T), as Megatron/PyTorch Linear do.
enum ParamTensor {
    P_WTE,      // [Vp, h]          tied token embedding / LM head
    P_LN1,      // [L, h]           pre-attention RMSNorm gain
    P_QKV,      // [L, 3*n*d, h]    fused projection, output = [Q | K | V] contiguous thirds, head-major
    P_ATTPROJ,  // [L, h, n*d]      attention output projection (residual branch)
    P_LN2,      // [L, h]           pre-MLP RMSNorm gain
    P_FC,       // [L, 2F, h]       SwiGLU up projection, output = [gate | up]
    P_FCPROJ,   // [L, h, F]        MLP down projection (residual branch)
    P_LNF,      // [h]              final RMSNorm gain
    NUM_PARAM_TENSORS
};

inline const char* param_name(int i) {
    static const char* names[NUM_PARAM_TENSORS] = {"wte", "ln1_w", "qkv_w", "attproj_w",
                                                   "ln2_w", "fc_w", "fcproj_w", "lnf_w"};
    return names[i];
}

inline void param_sizes(const ModelConfig& c, size_t sizes[NUM_PARAM_TENSORS]) {
    size_t h = c.d_model, L = c.n_layer, a = c.attn_dim(), F = c.ffn;
    sizes[P_WTE] = (size_t)c.padded_vocab * h;
    sizes[P_LN1] = L * h;
    sizes[P_QKV] = L * 3 * a * h;
    sizes[P_ATTPROJ] = L * h * a;
    sizes[P_LN2] = L * h;
    sizes[P_FC] = L * 2 * F * h;
    sizes[P_FCPROJ] = L * h * F;
    sizes[P_LNF] = h;
}

// Offsets of each tensor in the single parameter buffer; returns the total element count.
inline size_t param_offsets(const ModelConfig& c, size_t offsets[NUM_PARAM_TENSORS]) {
    size_t sizes[NUM_PARAM_TENSORS], total = 0;
    param_sizes(c, sizes);
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) { offsets[i] = total; total += sizes[i]; }
    return total;
}

inline size_t num_parameters(const ModelConfig& c) {
    size_t off[NUM_PARAM_TENSORS];
    return param_offsets(c, off);
}

// Seed parameter groups: weight decay on 2-D weights (the tied embedding included), none on 1-D RMSNorm gains.
inline bool param_has_decay(int i) { return !(i == P_LN1 || i == P_LN2 || i == P_LNF); }

// Seed init: N(0, 0.02) for embedding, QKV and MLP-up; N(0, 0.02/sqrt(2L)) for the two residual-branch output
// projections; RMSNorm gains = 1 (returned as std 0: "not random").
inline double param_init_std(const ModelConfig& c, int i) {
    if (!param_has_decay(i)) return 0.0;
    if (i == P_ATTPROJ || i == P_FCPROJ) return 0.02 / sqrt(2.0 * c.n_layer);
    return 0.02;
}

// The seed's parameter-count formula (scripts, TRAIN.md): N = 4Lh^2 + 3LhF + 6Lh + 50257h. Used for naming and
// the seed's compute accounting C = 6*N*D.
inline double seed_param_count(const ModelConfig& c) {
    double h = c.d_model, L = c.n_layer, F = c.ffn;
    return 4 * L * h * h + 3 * L * h * F + 6 * L * h + (double)GPT2_VOCAB * h;
}

inline size_t non_embedding_parameters(const ModelConfig& c) {
    return num_parameters(c) - (size_t)c.padded_vocab * c.d_model;
}

// FLOPs per trained token, seed convention: 6N with the seed's N (no attention term).
inline double flops_per_token_seed(const ModelConfig& c) { return 6.0 * seed_param_count(c); }

// FLOPs per trained token counting attention (PaLM/MFU convention, also the PyTorch peer's): 6*(actual
// parameters) + 12*L*S*n*d. The attention term counts the full S x S score matrix even when causal.
inline double flops_per_token_with_attention(const ModelConfig& c) {
    return 6.0 * (double)num_parameters(c) + 12.0 * c.n_layer * (double)c.seq_len * c.attn_dim();
}
