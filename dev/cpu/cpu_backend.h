// dev/cpu/cpu_backend.h — the CPU reference model (ref::Model<float>, fp32) as the ModelBackend of
// llmc/model_backend.h: what eval_cpu and generate_cpu plug into llmc/eval_main.h and llmc/generate_main.h.
#pragma once
#include <algorithm>
#include <memory>
#include "dev/cpu/reference.h"  // ref::Model, ref::StepKeys
#include "llmc/model_backend.h" // ModelBackend

struct CpuBackend : ModelBackend {
    std::unique_ptr<ref::Model<float>> model;
    std::vector<int> zero_targets;
    std::vector<float> zero_weights;
    const ref::StepKeys eval_keys{0, 0, 0, 0.0f, 0.0f};  // dropout off

    const char* device() const override { return "the CPU reference model"; }

    // The reference allocates per forward, so any number of rows runs at once: max_rows is not needed.
    void load(const ModelConfig& cfg, const std::vector<float>& params, int /*max_rows*/) override {
        model = std::make_unique<ref::Model<float>>(cfg);
        model->params = params;
    }

    void row_loss(const int* inputs, const int* targets, const float* weights, int rows, bool causal,
                  float* out) override {
        model->forward(inputs, targets, weights, rows, causal, eval_keys);
        std::copy(model->row_loss.begin(), model->row_loss.begin() + (size_t)rows * model->cfg.seq_len, out);
    }

    void logits(const int* inputs, int rows, bool causal, const int* sel, int n_sel, float* out) override {
        const size_t N = (size_t)rows * model->cfg.seq_len, Vp = model->cfg.padded_vocab;
        // The forward also computes a loss: give it valid targets with weight 0.
        zero_targets.assign(N, 0);
        zero_weights.assign(N, 0.0f);
        model->forward(inputs, zero_targets.data(), zero_weights.data(), rows, causal, eval_keys);
        const float* all = model->logits.data();
        if (!sel) {
            std::copy(all, all + N * Vp, out);
            return;
        }
#pragma omp parallel for schedule(static)
        for (int j = 0; j < n_sel; j++) std::copy(all + (size_t)sel[j] * Vp, all + (size_t)(sel[j] + 1) * Vp, out + j * Vp);
    }
};
