// llmc/model_backend.h — what the evaluation and generation programs (llmc/eval_main.h, llmc/generate_main.h)
// need from a model, so that one program serves both the CPU reference (dev/cpu/cpu_backend.h: eval_cpu,
// generate_cpu) and the GPU transformer (llmc/gpu_backend.cuh: eval_gpu, generate_gpu). Every call runs the model
// in evaluation mode (dropout off) on `rows` sequences of cfg.seq_len = S tokens; position n = b*S + p.
#pragma once
#include <string>
#include <vector>
#include "checkpoint.h"  // checkpoint_load, checkpoint_config, CheckpointHeader
#include "config.h"      // ModelConfig

struct ModelBackend {
    virtual ~ModelBackend() = default;
    // Where the model runs, for --help texts ("the CPU reference model", "the GPU").
    virtual const char* device() const = 0;
    // Builds the model of shape cfg from fp32 parameters (checkpoint layout), sized for forwards of max_rows
    // sequences (a backend splits larger calls). Dies with one line if it cannot run the shape.
    virtual void load(const ModelConfig& cfg, const std::vector<float>& params, int max_rows) = 0;
    // Cross-entropy of every position against targets into row_loss[rows*S]; positions whose weight is 0 may get 0
    // instead (they never count).
    virtual void row_loss(const int* inputs, const int* targets, const float* weights, int rows, bool causal,
                          float* row_loss) = 0;
    // fp32 logits [n_sel, Vp] of positions sel[0..n_sel) (strictly increasing, within [0, rows*S)) into out;
    // sel == nullptr: every position in order (n_sel = rows*S).
    virtual void logits(const int* inputs, int rows, bool causal, const int* sel, int n_sel, float* out) = 0;
};

// A checkpoint's model for evaluation or sampling: header, shape and fp32 parameters (no optimizer state).
struct LoadedCheckpoint {
    CheckpointHeader h;
    ModelConfig cfg;
    std::vector<float> params;
    bool mdm = false;
};

// Any checkpoint of this project (CPU- or GPU-trained: one format); dies with one line on a missing, truncated or
// corrupt file.
inline LoadedCheckpoint load_checkpoint_or_die(const std::string& path) {
    LoadedCheckpoint c;
    std::string err;
    if (!checkpoint_load(path.c_str(), &c.h, &c.params, nullptr, nullptr, &err)) llmc_die("%s", err.c_str());
    c.cfg = checkpoint_config(c.h);
    c.mdm = c.h.objective == OBJ_MDM;
    return c;
}
