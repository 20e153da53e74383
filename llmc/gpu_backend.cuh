// llmc/gpu_backend.cuh — the GPU transformer (llmc/transformer.cuh: bf16 weights and activations, fp32 softmax) as
// the ModelBackend of llmc/model_backend.h: what eval_gpu.cu and generate_gpu.cu plug into llmc/eval_main.h and
// llmc/generate_main.h. Any project checkpoint loads (one format, CPU- or GPU-trained); its fp32 weights are
// rounded to the bf16 compute copy as in training.
#pragma once
#include <algorithm>
#include "model_backend.h"   // ModelBackend
#include "transformer.cuh"   // Transformer, gpu_config_error

struct GpuBackend : ModelBackend {
    Transformer model;
    bool loaded = false;
    std::vector<int> chunk_rows;

    ~GpuBackend() override {
        if (loaded) model.destroy();
    }

    const char* device() const override { return "the GPU"; }

    void load(const ModelConfig& cfg, const std::vector<float>& params, int max_rows) override {
        const std::string shape_err = gpu_config_error(cfg);  // shapes the CUDA kernels cannot run
        if (!shape_err.empty())
            llmc_die("the checkpoint's shape cannot run on the GPU kernels (%s); the CPU tool runs any shape",
                     shape_err.c_str());
        use_device_or_die(0, "the CPU tools eval_cpu / generate_cpu run the same program");
        model.init(cfg, max_rows, nullptr, "lower --micro-batch (eval_gpu) or --samples (generate_gpu)");
        model.set_master(params.data());
        loaded = true;
    }

    // Calls of more than the planned max_B sequences run in chunks of max_B sequences (both methods).
    void row_loss(const int* inputs, const int* targets, const float* weights, int rows, bool causal,
                  float* out) override {
        for (int r0 = 0; r0 < rows; r0 += model.max_B) {
            const size_t o = (size_t)r0 * model.cfg.seq_len;
            model.eval_row_loss(inputs + o, targets + o, weights ? weights + o : nullptr,
                                std::min(model.max_B, rows - r0), causal, out + o);
        }
    }

    void logits(const int* inputs, int rows, bool causal, const int* sel, int n_sel, float* out) override {
        const int S = model.cfg.seq_len;
        const size_t Vp = model.cfg.padded_vocab;
        int j = 0;  // next entry of sel
        for (int r0 = 0; r0 < rows; r0 += model.max_B) {
            const int b = std::min(model.max_B, rows - r0), lo = r0 * S, hi = lo + b * S;
            if (!sel) {
                model.eval_logits(inputs + lo, b, causal, nullptr, b * S, out + (size_t)lo * Vp);
                continue;
            }
            const int j0 = j;
            chunk_rows.clear();
            for (; j < n_sel && sel[j] < hi; j++) chunk_rows.push_back(sel[j] - lo);  // sel is increasing
            if (!chunk_rows.empty())
                model.eval_logits(inputs + lo, b, causal, chunk_rows.data(), (int)chunk_rows.size(), out + (size_t)j0 * Vp);
        }
        if (sel && j != n_sel) llmc_die("logits: position %d is outside the %d sequences", sel[j], rows);
    }
};
