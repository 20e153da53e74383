// dev/test/test_torch_dump.cpp — the C++ half of the PyTorch cross-check (dev/test/test_torch_crosscheck.py).
//
//   build/test_torch_dump --dump FILE   runs the fp32 reference on a small model with the real 50304-row vocab,
//                                        for AR and MDM, and writes FILE: config, weights, the token batch, the MDM
//                                        masks and every dropout mask it used (as explicit 0/1 arrays, so Python
//                                        never reimplements Philox), and its outputs: logits, losses, every
//                                        gradient, the grad norm and the parameters after one optimizer_step.
//   build/test_torch_dump               self-checks the same run (masks match the model's batch, outputs are
//                                        finite and non-trivial, the file reads back) and prints N passed, M failed.
//
// File format: "LLMCDMP1", then records {u32 name length, name, u32 dtype (0 f32, 1 f64, 2 i32, 3 u8),
// u32 ndim, u64 dims[ndim], raw little-endian data}.
#include <cstdio>
#include <string>
#include <vector>
#include "dev/cpu/reference.h"
#include "dev/test/test.h"

enum DType : uint32_t { DT_F32 = 0, DT_F64 = 1, DT_I32 = 2, DT_U8 = 3 };
static const size_t dtype_size[4] = {4, 8, 4, 1};

struct DumpWriter {
    FILE* f;
    int records = 0;
    void put(const std::string& name, DType dt, std::vector<uint64_t> shape, const void* data) {
        size_t n = 1;
        for (uint64_t d : shape) n *= d;
        const uint32_t len = (uint32_t)name.size(), dtype = dt, ndim = (uint32_t)shape.size();
        fwrite_or_die(&len, 4, 1, f, "dump");
        fwrite_or_die(name.data(), 1, len, f, "dump");
        fwrite_or_die(&dtype, 4, 1, f, "dump");
        fwrite_or_die(&ndim, 4, 1, f, "dump");
        fwrite_or_die(shape.data(), 8, ndim, f, "dump");
        fwrite_or_die(data, dtype_size[dt], n, f, "dump");
        records++;
    }
};

// The cross-check's shape: small, but the real GPT-2 vocabulary, padding and mask id.
static ModelConfig crosscheck_config() {
    ModelConfig c;  // vocab_size, padded_vocab, mask_id: the real 50257 / 50304 / 50257
    c.d_model = 32;
    c.n_layer = 2;
    c.n_head = 2;
    c.head_dim = 16;
    c.ffn = swiglu_ffn_size(32);  // 64
    c.seq_len = 16;
    return c;
}

static const int BATCH = 2;
static const float LR = 1e-3f, BETA1 = 0.9f, BETA2 = 0.95f, ADAM_EPS = 1e-8f, WD = 0.1f, MDM_EPS = 1e-3f;
static const double CLIP = 1.0;
static const float HIDDEN_P = 0.1f, ATTN_P = 0.1f;

// Seed-style init, then livelier weights (std x5, gains 1 + N(0, 0.2^2)) so every path carries signal and a
// gain mistake cannot hide behind gains of exactly 1.
static void make_weights(ref::Model<float>& m) {
    m.init_weights(1337);
    size_t sizes[NUM_PARAM_TENSORS];
    param_sizes(m.cfg, sizes);
    for (int k = 0; k < NUM_PARAM_TENSORS; k++)
        for (size_t i = 0; i < sizes[k]; i++) {
            float& p = m.param(k)[i];
            if (param_has_decay(k)) p *= 5.0f;
            else p = (float)(1.0 + 0.2 * rng_normal(1337, RNG_GENERATE, 0, (uint32_t)k, 0, (uint32_t)i));
        }
}

struct ObjectiveRun {
    std::string name;
    bool causal;
    ref::StepKeys keys;
    std::vector<int> inputs, targets;
    std::vector<float> weight, p;  // p: MDM masking probability per row
    std::vector<uint8_t> mdm_mask, drop_emb, drop_attn, drop_mlp, drop_prob;
    std::vector<float> logits, row_loss, grads, params_after;
    double loss = 0, grad_norm = 0;
    int masked = 0;
};

// Dropout masks straight from dropout_keep with the keys of the spec (independent of the model's own calls).
static void draw_masks(ObjectiveRun& r, const ModelConfig& c) {
    const int B = BATCH, S = c.seq_len, C = c.d_model, L = c.n_layer, nh = c.n_head;
    const ref::StepKeys& k = r.keys;
    r.drop_emb.resize((size_t)B * S * C);
    r.drop_attn.resize((size_t)L * B * S * C);
    r.drop_mlp.resize((size_t)L * B * S * C);
    r.drop_prob.resize((size_t)L * B * nh * S * S);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < S * C; i++)
            r.drop_emb[(size_t)b * S * C + i] = dropout_keep(HIDDEN_P, k.seed, RNG_DROPOUT_EMB, k.step, k.sample0 + b, 0, i);
    for (int l = 0; l < L; l++)
        for (int b = 0; b < B; b++) {
            for (int i = 0; i < S * C; i++) {
                const size_t o = ((size_t)l * B + b) * S * C + i;
                r.drop_attn[o] = dropout_keep(HIDDEN_P, k.seed, RNG_DROPOUT_ATTN, k.step, k.sample0 + b, l, i);
                r.drop_mlp[o] = dropout_keep(HIDDEN_P, k.seed, RNG_DROPOUT_MLP, k.step, k.sample0 + b, l, i);
            }
            for (int i = 0; i < nh * S * S; i++)
                r.drop_prob[((size_t)l * B + b) * nh * S * S + i] =
                    dropout_keep(ATTN_P, k.seed, RNG_DROPOUT_PROB, k.step, k.sample0 + b, l, i);
        }
}

static void run_objective(ObjectiveRun& r, ref::Model<float>& m, const std::vector<float>& params0,
                          const std::vector<int>& y) {
    const ModelConfig& c = m.cfg;
    const int B = BATCH, S = c.seq_len, N = B * S;
    r.inputs.resize(N);
    r.targets.resize(N);
    r.weight.resize(N);
    r.p.assign(B, 0.0f);
    r.mdm_mask.assign(N, 0);
    if (r.causal) {
        make_ar_batch(r.inputs.data(), r.targets.data(), r.weight.data(), y.data(), B, S);
    } else {
        r.masked = make_mdm_batch(r.inputs.data(), r.targets.data(), r.weight.data(), y.data(), B, S, c.mask_id,
                                       MDM_EPS, r.keys.seed, r.keys.step, r.keys.sample0, r.p.data());
        for (int b = 0; b < B; b++)  // the mask as the spec defines it, drawn here independently of the helper
            for (int s = 0; s < S; s++)
                r.mdm_mask[b * S + s] = mdm_is_masked(r.keys.seed, RNG_MDM_MASK, r.keys.step, r.keys.sample0 + b, s, r.p[b]);
    }
    draw_masks(r, c);
    m.params = params0;
    m.zero_grad();
    r.loss = m.forward(r.inputs.data(), r.targets.data(), r.weight.data(), B, r.causal, r.keys);
    r.logits = m.logits;
    r.row_loss = m.row_loss;
    m.backward(1.0);
    r.grads = m.grads;
    std::vector<float> am, av;
    r.grad_norm = ref::optimizer_step(m, am, av, LR, BETA1, BETA2, ADAM_EPS, WD, CLIP, 1);
    r.params_after = m.params;
}

static void write_dump(FILE* f, const ref::Model<float>& m, const std::vector<float>& params0, const std::vector<int>& y,
                       const std::vector<ObjectiveRun>& runs, int* nrecords) {
    const ModelConfig& c = m.cfg;
    const uint64_t B = BATCH, S = c.seq_len, C = c.d_model, L = c.n_layer, nh = c.n_head, N = B * S;
    fwrite_or_die("LLMCDMP1", 1, 8, f, "dump");
    DumpWriter w{f};
    const int32_t icfg[10] = {c.vocab_size, c.padded_vocab, c.mask_id, c.d_model, c.n_layer,
                              c.n_head,     c.head_dim,     c.ffn,     c.seq_len, BATCH};
    const double fcfg[11] = {c.rope_theta, c.rms_eps, HIDDEN_P, ATTN_P, LR, BETA1, BETA2, ADAM_EPS, WD, CLIP, MDM_EPS};
    w.put("config_int", DT_I32, {10}, icfg);  // vocab, padded vocab, mask id, h, L, heads, head dim, ffn, S, B
    w.put("config_float", DT_F64, {11}, fcfg);  // theta, rms eps, hidden p, attn p, lr, beta1, beta2, eps, wd, clip, mdm eps
    size_t sizes[NUM_PARAM_TENSORS], off[NUM_PARAM_TENSORS];
    param_sizes(c, sizes);
    param_offsets(c, off);
    auto put_params = [&](const std::string& prefix, const std::vector<float>& buf) {
        for (int k = 0; k < NUM_PARAM_TENSORS; k++)
            w.put(prefix + param_name(k), DT_F32, {sizes[k]}, buf.data() + off[k]);  // Python reshapes by name
    };
    put_params("param/", params0);
    w.put("y", DT_I32, {B, S + 1}, y.data());
    for (const ObjectiveRun& r : runs) {
        const std::string p = r.name + "/";
        w.put(p + "mdm_mask", DT_U8, {B, S}, r.mdm_mask.data());
        w.put(p + "mdm_p", DT_F32, {B}, r.p.data());
        w.put(p + "drop_emb", DT_U8, {B, S, C}, r.drop_emb.data());
        w.put(p + "drop_attn", DT_U8, {L, B, S, C}, r.drop_attn.data());
        w.put(p + "drop_mlp", DT_U8, {L, B, S, C}, r.drop_mlp.data());
        w.put(p + "drop_prob", DT_U8, {L, B, nh, S, S}, r.drop_prob.data());
        w.put(p + "logits", DT_F32, {N, (uint64_t)c.padded_vocab}, r.logits.data());
        w.put(p + "row_loss", DT_F32, {N}, r.row_loss.data());
        w.put(p + "loss", DT_F64, {1}, &r.loss);
        w.put(p + "grad_norm", DT_F64, {1}, &r.grad_norm);
        put_params(p + "grad/", r.grads);
        put_params(p + "param_after/", r.params_after);
    }
    *nrecords = w.records;
}

// Reads the records back and checks names and sizes (the self-check's view of the format Python parses).
static int read_back(FILE* f, size_t* total_bytes) {
    char magic[8];
    fread_or_die(magic, 1, 8, f, "dump");
    if (memcmp(magic, "LLMCDMP1", 8) != 0) return -1;
    int n = 0;
    *total_bytes = 8;
    uint32_t len;
    while (fread(&len, 4, 1, f) == 1) {
        std::string name(len, ' ');
        uint32_t dt, ndim;
        fread_or_die(&name[0], 1, len, f, "dump");
        fread_or_die(&dt, 4, 1, f, "dump");
        fread_or_die(&ndim, 4, 1, f, "dump");
        if (dt > 3 || ndim > 8) return -1;
        std::vector<uint64_t> dims(ndim);
        fread_or_die(dims.data(), 8, ndim, f, "dump");
        size_t cnt = 1;
        for (uint64_t d : dims) cnt *= d;
        std::vector<char> data(cnt * dtype_size[dt]);
        fread_or_die(data.data(), 1, data.size(), f, "dump");
        *total_bytes += 12 + len + 8 * ndim + data.size();
        n++;
    }
    return n;
}

static bool all_finite(const std::vector<float>& v) {
    for (float x : v)
        if (!std::isfinite(x)) return false;
    return true;
}

int main(int argc, char** argv) {
    const char* dump_path = nullptr;
    if (argc == 3 && strcmp(argv[1], "--dump") == 0) dump_path = argv[2];
    else if (argc != 1) llmc_die("usage: %s [--dump FILE]", argv[0]);

    const ModelConfig c = crosscheck_config();
    const int B = BATCH, S = c.seq_len, N = B * S;
    ref::Model<float> m(c);
    make_weights(m);
    const std::vector<float> params0 = m.params;
    std::vector<int> y((size_t)B * (S + 1));
    for (size_t i = 0; i < y.size(); i++) y[i] = (int)(rng_u32(2024, RNG_GENERATE, 0, 0, 0, (uint32_t)i) % c.vocab_size);
    y[5] = EOD_ID;  // the end-of-text token is an ordinary input and target

    std::vector<ObjectiveRun> runs(2);
    runs[0].name = "ar";
    runs[0].causal = true;
    runs[0].keys = ref::StepKeys{4242, 17, 96, HIDDEN_P, ATTN_P};
    runs[1].name = "mdm";
    runs[1].causal = false;
    runs[1].keys = ref::StepKeys{4242, 18, 96, HIDDEN_P, ATTN_P};
    for (ObjectiveRun& r : runs) run_objective(r, m, params0, y);

    if (dump_path) {
        FILE* f = fopen_or_die(dump_path, "wb");
        int n;
        write_dump(f, m, params0, y, runs, &n);
        if (fclose(f) != 0) llmc_die("cannot write '%s'", dump_path);
        printf("wrote %s: %d records; AR loss %.6f grad norm %.4f; MDM loss %.6f grad norm %.4f (%d masked)\n",
               dump_path, n, runs[0].loss, runs[0].grad_norm, runs[1].loss, runs[1].grad_norm, runs[1].masked);
        return 0;
    }

    // Self-check.
    for (const ObjectiveRun& r : runs) {
        const char* nm = r.name.c_str();
        CHECK(std::isfinite(r.loss) && r.loss > 0, "%s: loss %f", nm, r.loss);
        CHECK(all_finite(r.logits) && all_finite(r.grads) && all_finite(r.params_after), "%s: non-finite outputs", nm);
        CHECK(r.grad_norm > 0 && std::isfinite(r.grad_norm), "%s: grad norm %f", nm, r.grad_norm);
        size_t sizes[NUM_PARAM_TENSORS];
        param_sizes(c, sizes);
        for (int k = 0; k < NUM_PARAM_TENSORS; k++) {
            const size_t o = m.offset(k);
            double g = ref::global_norm(r.grads.data() + o, sizes[k]);
            int moved = 0;
            for (size_t i = 0; i < sizes[k]; i++) moved += r.params_after[o + i] != params0[o + i];
            CHECK(g > 0, "%s: gradient of %s is zero", nm, param_name(k));
            CHECK(moved > 0, "%s: optimizer_step left %s unchanged", nm, param_name(k));
        }
        int dropped = 0, total = 0;
        for (const auto* v : {&r.drop_emb, &r.drop_attn, &r.drop_mlp, &r.drop_prob})
            for (uint8_t x : *v) {
                dropped += !x;
                total++;
            }
        CHECK(dropped > 0.05 * total && dropped < 0.15 * total, "%s: %d of %d dropped", nm, dropped, total);
    }
    const ObjectiveRun& md = runs[1];
    int agree = 0, masked = 0;
    for (int n = 0; n < N; n++) {
        masked += md.mdm_mask[n];
        agree += (md.inputs[n] == c.mask_id) == (bool)md.mdm_mask[n];
    }
    CHECK(agree == N && masked == md.masked, "MDM batch helper and the spec's mask disagree (%d of %d agree)", agree, N);
    CHECK(masked > 0 && masked < N, "MDM: %d of %d masked: the cross-check needs both kinds", masked, N);
    // Deterministic: the same run again gives bit-identical outputs.
    ObjectiveRun again = runs[0];
    run_objective(again, m, params0, y);
    CHECK(again.loss == runs[0].loss && again.grads == runs[0].grads && again.params_after == runs[0].params_after,
          "rerun differs");
    // The file reads back record by record.
    FILE* f = tmpfile();
    if (!f) llmc_die("cannot create a temporary file");
    int written = 0;
    write_dump(f, m, params0, y, runs, &written);
    const long size = ftell(f);
    rewind(f);
    size_t parsed = 0;
    const int read = read_back(f, &parsed);
    fclose(f);
    CHECK(read == written && (long)parsed == size, "dump read back %d of %d records, %zu of %ld bytes", read, written,
          parsed, size);
    printf("AR loss %.6f (grad norm %.4f), MDM loss %.6f (grad norm %.4f, %d of %d masked)\n", runs[0].loss,
           runs[0].grad_norm, runs[1].loss, runs[1].grad_norm, masked, N);
    return test_summary();
}
