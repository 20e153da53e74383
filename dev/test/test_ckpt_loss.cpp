// dev/test/test_ckpt_loss.cpp — the loss of a project checkpoint on a given token batch, computed by the CPU
// reference (dev/cpu/reference.h). The C++ half of dev/test/test_import_seed.py, which compares it with a
// PyTorch model built from the same (imported) weights.
//
//   build/test_ckpt_loss --ckpt FILE --batch FILE   prints "loss X" (sum_n weight[n] * CE[n], eval mode: no
//                                                   dropout; causal attention for AR checkpoints, bidirectional
//                                                   for MDM ones)
//   build/test_ckpt_loss                            self-check; prints N passed, M failed
//
// Batch file: "LLMCBAT1", int32 B, int32 S, int32 inputs[B*S], int32 targets[B*S], float32 weight[B*S]
// (little-endian). S may be shorter than the checkpoint's seq_len: RoPE positions are 0..S-1 either way.
#include <cstdio>
#include <string>
#include <vector>
#include "dev/cpu/reference.h"
#include "dev/test/test.h"
#include "llmc/checkpoint.h"

struct Batch {
    int B = 0, S = 0;
    std::vector<int> inputs, targets;
    std::vector<float> weight;
};

static bool read_batch(const char* path, Batch* b, std::string* err) {
    FILE* f = fopen(path, "rb");
    if (!f) { *err = std::string("cannot open batch '") + path + "'"; return false; }
    auto fail = [&](const std::string& what) { fclose(f); *err = std::string("batch '") + path + "': " + what; return false; };
    char magic[8];
    int32_t dims[2];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "LLMCBAT1", 8) != 0) return fail("bad magic (want LLMCBAT1)");
    if (fread(dims, 4, 2, f) != 2) return fail("truncated header");
    if (dims[0] <= 0 || dims[1] <= 1 || (int64_t)dims[0] * dims[1] > (1 << 24))
        return fail("bad shape B " + std::to_string(dims[0]) + " S " + std::to_string(dims[1]));
    b->B = dims[0];
    b->S = dims[1];
    const size_t N = (size_t)b->B * b->S;
    b->inputs.resize(N);
    b->targets.resize(N);
    b->weight.resize(N);
    if (fread(b->inputs.data(), 4, N, f) != N || fread(b->targets.data(), 4, N, f) != N ||
        fread(b->weight.data(), 4, N, f) != N)
        return fail("truncated payload");
    char extra;
    if (fread(&extra, 1, 1, f) == 1) return fail("trailing bytes after the payload");
    fclose(f);
    return true;
}

static void write_batch(const char* path, const Batch& b) {
    FILE* f = fopen_or_die(path, "wb");
    const int32_t dims[2] = {b.B, b.S};
    const size_t N = (size_t)b.B * b.S;
    fwrite_or_die("LLMCBAT1", 1, 8, f, path);
    fwrite_or_die(dims, 4, 2, f, path);
    fwrite_or_die(b.inputs.data(), 4, N, f, path);
    fwrite_or_die(b.targets.data(), 4, N, f, path);
    fwrite_or_die(b.weight.data(), 4, N, f, path);
    if (fclose(f) != 0) llmc_die("cannot write '%s'", path);
}

// Loads the checkpoint and the batch and returns the reference loss; false with *err on any problem.
static bool checkpoint_batch_loss(const char* ckpt, const char* batch_path, double* loss, std::string* err) {
    CheckpointHeader h;
    std::vector<float> params;
    if (!checkpoint_load(ckpt, &h, &params, nullptr, nullptr, err)) return false;
    Batch b;
    if (!read_batch(batch_path, &b, err)) return false;
    ModelConfig c = checkpoint_config(h);
    c.seq_len = b.S;  // the model has no length-dependent weights; the batch decides how many positions run
    for (size_t n = 0; n < b.inputs.size(); n++)
        if (b.inputs[n] < 0 || b.inputs[n] >= c.padded_vocab || b.targets[n] < 0 || b.targets[n] >= c.padded_vocab) {
            *err = std::string("batch '") + batch_path + "': token outside the " + std::to_string(c.padded_vocab) +
                   "-row embedding at position " + std::to_string(n);
            return false;
        }
    ref::Model<float> m(c);
    m.params = std::move(params);
    const ref::StepKeys eval_keys{0, 0, 0, 0.0f, 0.0f};
    *loss = m.forward(b.inputs.data(), b.targets.data(), b.weight.data(), b.B, h.objective == OBJ_AR, eval_keys);
    return true;
}

// Self-check: a tiny model saved as AR and as MDM checkpoints gives, through the files, exactly the loss of the
// in-memory model with the matching attention; bad inputs give one error naming the problem.
static int self_check() {
    ModelConfig c = model_preset("tiny", 8);
    const int B = 2, S = c.seq_len, N = B * S;
    ref::Model<float> m(c);
    m.init_weights(99);
    Batch b;
    b.B = B;
    b.S = S;
    b.inputs.resize(N);
    b.targets.resize(N);
    b.weight.assign(N, 1.0f / N);
    for (int n = 0; n < N; n++) {
        b.inputs[n] = (int)(rng_u32(7, RNG_GENERATE, 0, 0, 0, (uint32_t)n) % c.vocab_size);
        b.targets[n] = (int)(rng_u32(7, RNG_GENERATE, 0, 1, 0, (uint32_t)n) % c.vocab_size);
    }
    b.inputs[3] = c.mask_id;
    char dir[] = "/tmp/test_ckpt_loss_XXXXXX";
    if (!mkdtemp(dir)) llmc_die("cannot create a temporary directory");
    const std::string ar = std::string(dir) + "/ar.bin", mdm = std::string(dir) + "/mdm.bin",
                      bp = std::string(dir) + "/batch.bin", bad = std::string(dir) + "/bad.bin";
    checkpoint_save(ar.c_str(), checkpoint_header(c, OBJ_AR), m.params.data(), nullptr, nullptr);
    checkpoint_save(mdm.c_str(), checkpoint_header(c, OBJ_MDM), m.params.data(), nullptr, nullptr);
    write_batch(bp.c_str(), b);

    const ref::StepKeys k{0, 0, 0, 0.0f, 0.0f};
    const double want_ar = m.forward(b.inputs.data(), b.targets.data(), b.weight.data(), B, true, k);
    const double want_mdm = m.forward(b.inputs.data(), b.targets.data(), b.weight.data(), B, false, k);
    double got_ar = 0, got_mdm = 0;
    std::string err;
    CHECK(checkpoint_batch_loss(ar.c_str(), bp.c_str(), &got_ar, &err), "AR: %s", err.c_str());
    CHECK(checkpoint_batch_loss(mdm.c_str(), bp.c_str(), &got_mdm, &err), "MDM: %s", err.c_str());
    CHECK(got_ar == want_ar, "AR loss through files %.9g, in memory %.9g", got_ar, want_ar);
    CHECK(got_mdm == want_mdm, "MDM loss through files %.9g, in memory %.9g", got_mdm, want_mdm);
    CHECK(std::fabs(got_ar - got_mdm) > 1e-6, "causal and bidirectional losses agree (%.9g): mask ignored", got_ar);
    CHECK(std::isfinite(got_ar) && got_ar > 5 && got_ar < 20, "AR loss %.6f not near ln(50304)", got_ar);

    // Rejections: each names the file and the problem.
    double dummy;
    write_batch(bad.c_str(), b);
    if (truncate(bad.c_str(), 16 + 12 * (off_t)N - 4) != 0) llmc_die("cannot truncate '%s'", bad.c_str());
    CHECK(!checkpoint_batch_loss(ar.c_str(), bad.c_str(), &dummy, &err) && err.find("truncated") != std::string::npos,
          "truncated batch: '%s'", err.c_str());
    Batch oob = b;
    oob.targets[5] = c.padded_vocab;
    write_batch(bad.c_str(), oob);
    CHECK(!checkpoint_batch_loss(ar.c_str(), bad.c_str(), &dummy, &err) && err.find("position 5") != std::string::npos,
          "token out of range: '%s'", err.c_str());
    CHECK(!checkpoint_batch_loss((std::string(dir) + "/none.bin").c_str(), bp.c_str(), &dummy, &err) &&
              err.find("none.bin") != std::string::npos,
          "missing checkpoint: '%s'", err.c_str());
    CHECK(!checkpoint_batch_loss(bp.c_str(), bp.c_str(), &dummy, &err) && err.find("bad magic") != std::string::npos,
          "a batch file given as checkpoint: '%s'", err.c_str());
    for (const std::string& p : {ar, mdm, bp, bad}) unlink(p.c_str());
    rmdir(dir);
    printf("tiny model: AR loss %.6f, MDM loss %.6f\n", got_ar, got_mdm);
    return test_summary();
}

int main(int argc, char** argv) {
    if (argc == 1) return self_check();
    const char *ckpt = nullptr, *batch = nullptr;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--ckpt") == 0) ckpt = argv[i + 1];
        else if (strcmp(argv[i], "--batch") == 0) batch = argv[i + 1];
        else llmc_die("unknown flag '%s' (usage: %s [--ckpt FILE --batch FILE])", argv[i], argv[0]);
    }
    if (!ckpt || !batch || argc != 5) llmc_die("usage: %s [--ckpt FILE --batch FILE]", argv[0]);
    double loss;
    std::string err;
    if (!checkpoint_batch_loss(ckpt, batch, &loss, &err)) llmc_die("%s", err.c_str());
    printf("loss %.10e\n", loss);
    return 0;
}
