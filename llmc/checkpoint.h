// llmc/checkpoint.h — the project's checkpoint file: a versioned fixed-size header (model shape, objective,
// step, data cursor, RNG seed, best validation so far) followed by fp32 master parameters and, optionally, the
// AdamW moments m and v, all in the single-buffer layout of llmc/config.h. A 64-bit checksum over the payload
// catches truncation and corruption. Files are written to "<path>.tmp" and renamed, so a crash mid-write
// leaves the previous checkpoint intact.
//
// RNG state: every draw is a pure function of (seed, purpose, step, sample, ...) (llmc/philox.h), so the seed
// and the step ARE the complete RNG state.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>
#include "config.h"
#include "utils.h"

constexpr char CKPT_MAGIC[8] = {'L', 'L', 'M', 'C', 'D', 'M', 'C', 'K'};
constexpr uint32_t CKPT_VERSION = 1;

enum Objective : uint32_t { OBJ_AR = 0, OBJ_MDM = 1 };
inline const char* objective_name(uint32_t o) { return o == OBJ_AR ? "ar" : o == OBJ_MDM ? "mdm" : "?"; }

struct CheckpointHeader {
    char magic[8];
    uint32_t version;
    uint32_t objective;            // Objective
    int32_t vocab_size, padded_vocab, mask_id, d_model, n_layer, n_head, head_dim, ffn, seq_len;
    float rope_theta, rms_eps;
    uint32_t seed;                 // the run's Philox seed (the whole RNG state together with step)
    uint32_t has_optimizer;        // 1: m and v follow the parameters
    uint32_t reserved0;            // explicit padding: the header has no implicit holes
    int64_t step;                  // optimizer steps completed
    int64_t consumed_samples;      // data cursor: training samples consumed
    uint64_t sampler_fingerprint;  // identifies the training-data order; resuming with other data is refused
    uint64_t num_params;
    double best_val_loss;          // best validation loss so far (AR NLL or MDM ELBO), +inf if none yet
    int64_t best_val_step;
    uint64_t payload_checksum;     // FNV-1a over every payload byte
    uint8_t reserved[64];
};
static_assert(sizeof(CheckpointHeader) == 192, "checkpoint header layout is part of the file format");

inline CheckpointHeader checkpoint_header(const ModelConfig& c, uint32_t objective) {
    CheckpointHeader h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CKPT_MAGIC, 8);
    h.version = CKPT_VERSION;
    h.objective = objective;
    h.vocab_size = c.vocab_size; h.padded_vocab = c.padded_vocab; h.mask_id = c.mask_id;
    h.d_model = c.d_model; h.n_layer = c.n_layer; h.n_head = c.n_head; h.head_dim = c.head_dim;
    h.ffn = c.ffn; h.seq_len = c.seq_len; h.rope_theta = c.rope_theta; h.rms_eps = c.rms_eps;
    h.num_params = num_parameters(c);
    h.best_val_loss = INFINITY;
    h.best_val_step = -1;
    return h;
}

inline ModelConfig checkpoint_config(const CheckpointHeader& h) {
    ModelConfig c;
    c.vocab_size = h.vocab_size; c.padded_vocab = h.padded_vocab; c.mask_id = h.mask_id;
    c.d_model = h.d_model; c.n_layer = h.n_layer; c.n_head = h.n_head; c.head_dim = h.head_dim;
    c.ffn = h.ffn; c.seq_len = h.seq_len; c.rope_theta = h.rope_theta; c.rms_eps = h.rms_eps;
    return c;
}

inline uint64_t fnv1a(const void* data, size_t n, uint64_t hash = 1469598103934665603ull) {
    const uint8_t* p = (const uint8_t*)data;
    for (size_t i = 0; i < n; i++) { hash ^= p[i]; hash *= 1099511628211ull; }
    return hash;
}

// Writes header + params (+ m, v when h.has_optimizer) atomically. Dies with a clear message on I/O errors.
inline void checkpoint_save(const char* path, CheckpointHeader h, const float* params, const float* m,
                            const float* v) {
    size_t n = h.num_params, bytes = n * sizeof(float);
    uint64_t sum = fnv1a(params, bytes);
    if (h.has_optimizer) { sum = fnv1a(m, bytes, sum); sum = fnv1a(v, bytes, sum); }
    h.payload_checksum = sum;
    std::string tmp = std::string(path) + ".tmp";
    FILE* f = fopen_or_die(tmp.c_str(), "wb");
    fwrite_or_die(&h, sizeof h, 1, f, tmp.c_str());
    fwrite_or_die(params, sizeof(float), n, f, tmp.c_str());
    if (h.has_optimizer) {
        fwrite_or_die(m, sizeof(float), n, f, tmp.c_str());
        fwrite_or_die(v, sizeof(float), n, f, tmp.c_str());
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) llmc_die("%s: flush failed (%s)", tmp.c_str(), strerror(errno));
    fclose(f);
    if (rename(tmp.c_str(), path) != 0) llmc_die("cannot rename '%s' to '%s' (%s)", tmp.c_str(), path, strerror(errno));
}

// Reads a checkpoint; m and v are filled only if the file has them and the pointers are non-null.
// Returns false with *err naming the problem (missing file, bad magic/version, truncation, checksum).
inline bool checkpoint_load(const char* path, CheckpointHeader* h, std::vector<float>* params,
                            std::vector<float>* m, std::vector<float>* v, std::string* err) {
    FILE* f = fopen(path, "rb");
    if (!f) { *err = std::string("cannot open checkpoint '") + path + "' (" + strerror(errno) + ")"; return false; }
    auto fail = [&](const std::string& what) { fclose(f); *err = std::string("checkpoint '") + path + "': " + what; return false; };
    if (fread(h, sizeof *h, 1, f) != 1) return fail("truncated header");
    if (memcmp(h->magic, CKPT_MAGIC, 8) != 0) return fail("not a checkpoint of this project (bad magic)");
    if (h->version != CKPT_VERSION) return fail("unsupported version " + std::to_string(h->version));
    if (h->objective > OBJ_MDM) return fail("unknown objective " + std::to_string(h->objective));
    ModelConfig c = checkpoint_config(*h);
    if (c.d_model <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.head_dim <= 0 || c.ffn <= 0 || c.padded_vocab <= 0 ||
        h->num_params != num_parameters(c))
        return fail("header shape does not match its parameter count (corrupt header)");
    size_t n = h->num_params;
    std::vector<float> p(n), mm, vv;
    if (fread(p.data(), sizeof(float), n, f) != n) return fail("truncated parameters");
    uint64_t sum = fnv1a(p.data(), n * sizeof(float));
    if (h->has_optimizer) {
        mm.resize(n); vv.resize(n);
        if (fread(mm.data(), sizeof(float), n, f) != n || fread(vv.data(), sizeof(float), n, f) != n)
            return fail("truncated optimizer state");
        sum = fnv1a(vv.data(), n * sizeof(float), fnv1a(mm.data(), n * sizeof(float), sum));
    }
    char extra;
    if (fread(&extra, 1, 1, f) == 1) return fail("trailing bytes after the payload");
    if (sum != h->payload_checksum) return fail("checksum mismatch (corrupt payload)");
    fclose(f);
    *params = std::move(p);
    if (m && h->has_optimizer) *m = std::move(mm);
    if (v && h->has_optimizer) *v = std::move(vv);
    return true;
}

// Dies unless the checkpoint holds a model of exactly this shape and objective, naming the first difference.
inline void checkpoint_require_match(const CheckpointHeader& h, const ModelConfig& c, uint32_t objective,
                                     const char* path) {
    if (h.objective != objective)
        llmc_die("checkpoint '%s' is an %s model, this program trains %s", path, objective_name(h.objective),
                 objective_name(objective));
    ModelConfig k = checkpoint_config(h);
    struct { const char* name; long a, b; } fields[] = {
        {"d_model", k.d_model, c.d_model}, {"n_layer", k.n_layer, c.n_layer}, {"n_head", k.n_head, c.n_head},
        {"head_dim", k.head_dim, c.head_dim}, {"ffn", k.ffn, c.ffn}, {"padded_vocab", k.padded_vocab, c.padded_vocab},
        {"vocab_size", k.vocab_size, c.vocab_size}, {"mask_id", k.mask_id, c.mask_id}, {"seq_len", k.seq_len, c.seq_len},
    };
    for (auto& fl : fields)
        if (fl.a != fl.b) llmc_die("checkpoint '%s' has %s %ld, the requested model has %ld", path, fl.name, fl.a, fl.b);
}
