// dev/cpu/model.h — the seed transformer composed from the reference layers (dev/cpu/layers.h): forward,
// backward, weight init, and the seed's AdamW step with global-norm clipping. The AR / MDM batch builders are
// shared with the CUDA trainers in llmc/objective.h.
//
// Forward (seed_spec §1): tokens -> tied embedding -> dropout -> L x [h += drop(Attn(RMSNorm1(h)));
// h += drop(MLP(RMSNorm2(h)))] -> RMSNorm_f -> logits over all Vp classes -> per-row weighted cross-entropy.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>
#include "dev/cpu/layers.h"
#include "llmc/config.h"
#include "llmc/mdm.h"
#include "llmc/objective.h"
#include "llmc/philox.h"
#include "llmc/utils.h"

namespace ref {

// Randomness keys of one forward. sample0 = global sample index of row b = 0 (row b uses sample0 + b).
// Dropout probabilities 0 = eval mode.
struct StepKeys {
    uint32_t seed;
    uint32_t step;
    uint32_t sample0;
    float hidden_dropout;
    float attn_dropout;
};

template <class T>
struct Model {
    ModelConfig cfg;
    std::vector<T> params, grads;  // one buffer each, layout of param_offsets (llmc/config.h)
    std::vector<T> row_loss;       // CE of each row from the last forward
    std::vector<T> logits;         // [B*S, Vp] after forward; backward overwrites it with dlogits

    explicit Model(const ModelConfig& c) : cfg(c) {
        validate_config(cfg);
        size_t total = param_offsets(cfg, off_);
        params.assign(total, (T)0);
        grads.assign(total, (T)0);
    }
    T* param(int tensor) { return params.data() + off_[tensor]; }
    T* grad(int tensor) { return grads.data() + off_[tensor]; }
    size_t offset(int tensor) const { return off_[tensor]; }
    void zero_grad() { std::fill(grads.begin(), grads.end(), (T)0); }

    // Element i of tensor k: N(0,1) draw (seed, RNG_INIT, step 0, sample k, sub 0, idx i) * std, rounded to bf16;
    // RMSNorm gains = 1.
    void init_weights(uint32_t seed) {
        size_t sizes[NUM_PARAM_TENSORS];
        param_sizes(cfg, sizes);
        for (int k = 0; k < NUM_PARAM_TENSORS; k++) {
            const double std = param_init_std(cfg, k);
            T* p = param(k);
            const bool gain = !param_has_decay(k);
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < sizes[k]; i++)
                p[i] = gain ? (T)1
                            : (T)round_to_bf16((float)(rng_normal(seed, RNG_INIT, 0, (uint32_t)k, 0, (uint32_t)i) * std));
        }
    }

    // Forward of B sequences of cfg.seq_len tokens; returns sum_n weight[n]*CE[n]. Keeps the activations.
    double forward(const int* inputs, const int* targets, const T* weight, int B, bool causal, const StepKeys& k) {
        const int S = cfg.seq_len, N = B * S, C = cfg.d_model, A = cfg.attn_dim(), F = cfg.ffn, Vp = cfg.padded_vocab;
        const int nh = cfg.n_head, hd = cfg.head_dim;
        for (int n = 0; n < N; n++) {
            if (inputs[n] < 0 || inputs[n] >= Vp) llmc_die("input token %d at row %d outside the embedding", inputs[n], n);
            if (targets[n] < 0 || targets[n] >= Vp) llmc_die("target token %d at row %d outside the vocab", targets[n], n);
        }
        allocate(B);
        B_ = B;
        causal_ = causal;
        keys_ = k;
        inputs_.assign(inputs, inputs + N);
        targets_.assign(targets, targets + N);
        weight_.assign(weight, weight + N);
        const float hp = k.hidden_dropout;

        embedding_forward(res(0), inputs, param(P_WTE), N, C);
        dropout_forward(res(0), B, S, C, hp, k.seed, RNG_DROPOUT_EMB, k.step, k.sample0, 0);
        for (int l = 0; l < cfg.n_layer; l++) {
            Layer w = layer(l);
            T *x = res(2 * l), *mid = res(2 * l + 1), *y = res(2 * l + 2);
            rmsnorm_forward(at(ln1_, l, N * C), at(rstd1_, l, N), x, w.ln1, N, C, cfg.rms_eps);
            T* qkv = at(qkv_, l, (size_t)N * 3 * A);
            matmul_forward(qkv, at(ln1_, l, N * C), w.qkv, N, C, 3 * A);
            rope_forward(qkv, B, S, nh, hd, cfg.rope_theta);
            attention_forward(at(atty_, l, (size_t)N * A), at(lse_, l, (size_t)B * nh * S), qkv, B, S, nh, hd, causal,
                              AttnDropout{k.attn_dropout, k.seed, k.step, k.sample0, (uint32_t)l});
            matmul_forward(branch_.data(), at(atty_, l, (size_t)N * A), w.attproj, N, A, C);
            dropout_forward(branch_.data(), B, S, C, hp, k.seed, RNG_DROPOUT_ATTN, k.step, k.sample0, (uint32_t)l);
            for (size_t i = 0; i < (size_t)N * C; i++) mid[i] = x[i] + branch_[i];
            rmsnorm_forward(at(ln2_, l, N * C), at(rstd2_, l, N), mid, w.ln2, N, C, cfg.rms_eps);
            matmul_forward(at(fc_, l, (size_t)N * 2 * F), at(ln2_, l, N * C), w.fc, N, C, 2 * F);
            swiglu_forward(at(sw_, l, (size_t)N * F), at(fc_, l, (size_t)N * 2 * F), N, F);
            matmul_forward(branch_.data(), at(sw_, l, (size_t)N * F), w.fcproj, N, F, C);
            dropout_forward(branch_.data(), B, S, C, hp, k.seed, RNG_DROPOUT_MLP, k.step, k.sample0, (uint32_t)l);
            for (size_t i = 0; i < (size_t)N * C; i++) y[i] = mid[i] + branch_[i];
        }
        rmsnorm_forward(lnf_.data(), rstdf_.data(), res(2 * cfg.n_layer), param(P_LNF), N, C, cfg.rms_eps);
        matmul_forward(logits.data(), lnf_.data(), param(P_WTE), N, C, Vp);
        crossentropy_forward_backward((T*)nullptr, row_loss.data(), logits.data(), targets, weight, N, Vp);
        double loss = 0;
        for (int n = 0; n < N; n++) loss += (double)weight[n] * (double)row_loss[n];
        have_logits_ = true;
        return loss;
    }

    // Backward of the last forward: grads += grad_scale * d(loss)/d(params).
    void backward(double grad_scale = 1.0) {
        if (!have_logits_) llmc_die("Model::backward called without a preceding forward");
        have_logits_ = false;
        const int B = B_, S = cfg.seq_len, N = B * S, C = cfg.d_model, A = cfg.attn_dim(), F = cfg.ffn;
        const int Vp = cfg.padded_vocab, nh = cfg.n_head, hd = cfg.head_dim;
        const StepKeys& k = keys_;
        const float hp = k.hidden_dropout;
        std::vector<T> w(N);
        for (int n = 0; n < N; n++) w[n] = (T)((double)weight_[n] * grad_scale);
        crossentropy_forward_backward(logits.data(), row_loss.data(), logits.data(), targets_.data(), w.data(), N, Vp);

        std::fill(dln_.begin(), dln_.end(), (T)0);
        matmul_backward(dln_.data(), grad(P_WTE), logits.data(), lnf_.data(), param(P_WTE), N, C, Vp);
        std::fill(dres_.begin(), dres_.end(), (T)0);
        rmsnorm_backward(dres_.data(), grad(P_LNF), dln_.data(), res(2 * cfg.n_layer), param(P_LNF), rstdf_.data(), N, C);
        for (int l = cfg.n_layer - 1; l >= 0; l--) {
            Layer w_ = layer(l), g = layer_grad(l);
            // MLP branch: dres holds dL/d(h after the layer); the residual passes it through unchanged.
            branch_ = dres_;
            dropout_forward(branch_.data(), B, S, C, hp, k.seed, RNG_DROPOUT_MLP, k.step, k.sample0, (uint32_t)l);
            std::fill(dsw_.begin(), dsw_.end(), (T)0);
            matmul_backward(dsw_.data(), g.fcproj, branch_.data(), at(sw_, l, (size_t)N * F), w_.fcproj, N, F, C);
            std::fill(dfc_.begin(), dfc_.end(), (T)0);
            swiglu_backward(dfc_.data(), dsw_.data(), at(fc_, l, (size_t)N * 2 * F), N, F);
            std::fill(dln_.begin(), dln_.end(), (T)0);
            matmul_backward(dln_.data(), g.fc, dfc_.data(), at(ln2_, l, N * C), w_.fc, N, C, 2 * F);
            rmsnorm_backward(dres_.data(), g.ln2, dln_.data(), res(2 * l + 1), w_.ln2, at(rstd2_, l, N), N, C);
            // Attention branch.
            branch_ = dres_;
            dropout_forward(branch_.data(), B, S, C, hp, k.seed, RNG_DROPOUT_ATTN, k.step, k.sample0, (uint32_t)l);
            std::fill(datty_.begin(), datty_.end(), (T)0);
            matmul_backward(datty_.data(), g.attproj, branch_.data(), at(atty_, l, (size_t)N * A), w_.attproj, N, A, C);
            std::fill(dqkv_.begin(), dqkv_.end(), (T)0);
            attention_backward(dqkv_.data(), datty_.data(), at(qkv_, l, (size_t)N * 3 * A), at(atty_, l, (size_t)N * A),
                               at(lse_, l, (size_t)B * nh * S), B, S, nh, hd, causal_,
                               AttnDropout{k.attn_dropout, k.seed, k.step, k.sample0, (uint32_t)l});
            rope_backward(dqkv_.data(), B, S, nh, hd, cfg.rope_theta);
            std::fill(dln_.begin(), dln_.end(), (T)0);
            matmul_backward(dln_.data(), g.qkv, dqkv_.data(), at(ln1_, l, N * C), w_.qkv, N, C, 3 * A);
            rmsnorm_backward(dres_.data(), g.ln1, dln_.data(), res(2 * l), w_.ln1, at(rstd1_, l, N), N, C);
        }
        dropout_forward(dres_.data(), B, S, C, hp, k.seed, RNG_DROPOUT_EMB, k.step, k.sample0, 0);
        embedding_backward(grad(P_WTE), dres_.data(), inputs_.data(), N, C);
    }

  private:
    struct Layer {
        T *ln1, *qkv, *attproj, *ln2, *fc, *fcproj;
    };
    size_t off_[NUM_PARAM_TENSORS];
    int B_ = 0, alloc_B_ = 0;
    bool causal_ = true, have_logits_ = false;
    StepKeys keys_{};
    std::vector<int> inputs_, targets_;
    std::vector<T> weight_;
    // Saved activations (per layer stacked), then backward scratch.
    std::vector<T> res_, ln1_, rstd1_, qkv_, atty_, lse_, ln2_, rstd2_, fc_, sw_, lnf_, rstdf_;
    std::vector<T> branch_, dres_, dln_, dqkv_, datty_, dfc_, dsw_;

    static T* at(std::vector<T>& v, int l, size_t per_layer) { return v.data() + (size_t)l * per_layer; }
    T* res(int i) { return res_.data() + (size_t)i * B_ * cfg.seq_len * cfg.d_model; }

    Layer layer_at(std::vector<T>& buf, int l) {
        const size_t C = cfg.d_model, A = cfg.attn_dim(), F = cfg.ffn;
        T* b = buf.data();
        return Layer{b + off_[P_LN1] + l * C,         b + off_[P_QKV] + l * 3 * A * C, b + off_[P_ATTPROJ] + l * C * A,
                     b + off_[P_LN2] + l * C,         b + off_[P_FC] + l * 2 * F * C,  b + off_[P_FCPROJ] + l * C * F};
    }
    Layer layer(int l) { return layer_at(params, l); }
    Layer layer_grad(int l) { return layer_at(grads, l); }

    void allocate(int B) {
        if (B == alloc_B_) return;
        const size_t N = (size_t)B * cfg.seq_len, C = cfg.d_model, A = cfg.attn_dim(), F = cfg.ffn, L = cfg.n_layer;
        res_.assign((2 * L + 1) * N * C, 0);
        ln1_.assign(L * N * C, 0);
        rstd1_.assign(L * N, 0);
        qkv_.assign(L * N * 3 * A, 0);
        atty_.assign(L * N * A, 0);
        lse_.assign(L * N * cfg.n_head, 0);
        ln2_.assign(L * N * C, 0);
        rstd2_.assign(L * N, 0);
        fc_.assign(L * N * 2 * F, 0);
        sw_.assign(L * N * F, 0);
        lnf_.assign(N * C, 0);
        rstdf_.assign(N, 0);
        logits.assign(N * cfg.padded_vocab, 0);
        row_loss.assign(N, 0);
        branch_.assign(N * C, 0);
        dres_.assign(N * C, 0);
        dln_.assign(N * C, 0);
        dqkv_.assign(N * 3 * A, 0);
        datty_.assign(N * A, 0);
        dfc_.assign(N * 2 * F, 0);
        dsw_.assign(N * F, 0);
        alloc_B_ = B;
    }
};

// The seed's AdamW on elements [lo, lo+len) of the parameter buffer (g, m, v hold just that range): each piece
// takes the decay group of the tensor it lies in, so a data-parallel shard may cut across tensors.
template <class T>
void adamw_range(Model<T>& model, size_t lo, size_t len, const T* g, T* m, T* v, float lr, float beta1, float beta2,
                 float eps, float wd, int t) {
    size_t sizes[NUM_PARAM_TENSORS];
    param_sizes(model.cfg, sizes);
    for (int k = 0; k < NUM_PARAM_TENSORS; k++) {
        const size_t a = std::max(model.offset(k), lo), e = std::min(model.offset(k) + sizes[k], lo + len);
        if (a < e)
            adamw_update(model.params.data() + a, g + (a - lo), m + (a - lo), v + (a - lo), e - a, lr, beta1, beta2,
                         eps, param_has_decay(k) ? wd : 0.0f, t);
    }
}

// AdamW over the whole model with the seed's groups (decay only where param_has_decay), after global-norm
// clipping. The clip factor is applied to m.grads in place (as the seed does); returns the pre-clip norm.
template <class T>
double optimizer_step(Model<T>& m, std::vector<T>& adam_m, std::vector<T>& adam_v, float lr, float beta1,
                      float beta2, float eps, float wd, double max_norm, int t) {
    const size_t n = m.grads.size();
    if (adam_m.size() != n) adam_m.assign(n, (T)0);
    if (adam_v.size() != n) adam_v.assign(n, (T)0);
    const double norm = global_norm(m.grads.data(), n);
    const double c = clip_coefficient(norm, max_norm);
    if (c < 1.0)
        for (size_t i = 0; i < n; i++) m.grads[i] = (T)((double)m.grads[i] * c);
    adamw_range(m, 0, n, m.grads.data(), adam_m.data(), adam_v.data(), lr, beta1, beta2, eps, wd, t);
    return norm;
}

}  // namespace ref
