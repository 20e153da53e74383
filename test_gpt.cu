// test_gpt.cu — the CUDA transformer (llmc/transformer.cuh) against the CPU reference (ref::Model<float>,
// dev/cpu/reference.h) on identical weights, a real batch of the bundled C4 data and identical dropout masks
// (hidden and attention dropout ON): loss, logits, per-row CE, every parameter gradient, the optimizer step, three
// training steps with gradient accumulation, the MDM objective (bidirectional attention, LM head on the masked
// rows only, equal to the all-rows head), the validation path, ZeRO-1 shards (ranks emulated in one process), the
// eval/generate backend's chunking, and bit-identical repeats.
// Usage: build/test_gpt [--quick] [--seed N] [--data PREFIX]   (run from the repository root)
//   --quick: half the batch, no training trajectory or repeats (for compute-sanitizer)
#include <algorithm>
#include <cinttypes>
#include <ctime>
#include <vector>
#include "dev/cpu/reference.h"   // ref::Model, ref::optimizer_step: the oracle
#include "dev/test/test.h"       // CHECK, rel_error, test_summary
#include "llmc/dataset.h"        // IndexedDataset
#include "llmc/objective.h"      // make_ar_batch, make_mdm_batch
#include "llmc/sampler.h"        // Sampler: the real batches
#include "llmc/gpu_backend.cuh"  // GpuBackend: eval_gpu / generate_gpu's model, in chunks
#include "llmc/transformer.cuh"  // Transformer: the code under test

// Tolerances on ||gpu - ref|| / ||ref|| (per tensor). The GPU keeps activations, weights, logits and activation
// gradients in bf16 (relative rounding <= 2^-9 per store), accumulating in fp32; the reference runs in fp32
// throughout. A CPU emulation of this exact dataflow with bf16 rounding at every GPU store (3 seeds, this shape)
// measured the "seen" values below; the tolerances leave 2.5-20x headroom for what the emulation leaves out
// (bf16 P and dS inside the attention kernels, fast-math exp), while an indexing, mask or wiring error — O(1) on
// the tensor it touches — still fails.
// Loss: seen <= 2.4e-5 (at init the loss is ~ln(50304) whatever the logits).
static const double TOL_LOSS = 5e-4;
// Per-row CE: seen <= 6.7e-5.
static const double TOL_ROW_LOSS = 1e-3;
// Logits: a two-layer bf16 forward, then one bf16 rounding of the output; seen 4.4e-3.
static const double TOL_LOGITS = 2e-2;
// Parameter gradients: the backward adds a bf16 rounding per activation gradient (dlogits, dqkv, ...) on top of
// the forward's; seen 2.4e-3 .. 7.9e-3 (RMSNorm gains and the MLP worst).
static const double TOL_GRAD = 2e-2;
// Gradient norm: a global sum of squares, dominated by the largest tensors; seen <= 1.1e-3.
static const double TOL_NORM = 1e-2;
// Optimizer on IDENTICAL inputs: fp32 (IEEE div/sqrt) vs fp64 AdamW arithmetic, float vs double clip factor: a
// few ulp of each update. Measured against the update's size ||p_ref - p_before||, so a wrong decay group
// (gains decayed: ~10% of the update; 2-D weights not decayed: ~0.2%), bias correction or clip factor fails.
static const double TOL_UPDATE = 1e-4;
static const double TOL_MOMENT = 1e-5;
// Grad norm on identical gradients: fp64 sums in a different order: ~1e-15.
static const double TOL_NORM_EXACT = 1e-9;
// Three training steps, each side on its own gradients: per-step losses as TOL_LOSS; parameters measured as
// ||p_gpu - p_ref|| / ||p_ref - p_init|| (error relative to how far training moved them). AdamW's first steps are
// close to lr * sign(g), so elements whose gradient is below the bf16 noise flip sign and move 2*lr the other way:
// seen 2.6e-3 .. 8.7e-2; a missing accumulation, a wrong lr or a skipped tensor gives >= 1.
static const double TOL_TRAJECTORY = 0.3;
// MDM: the LM head on the masked rows only vs all rows with weight 0 elsewhere: the same products summed over
// different row sets (cuBLASLt may pick other reduction orders), so only fp32 / bf16 last-bit differences.
static const double TOL_HEAD_ROWS = 1e-3;

struct Setup {
    ModelConfig cfg;
    int B;
    uint32_t seed;
    float hidden_p = 0.1f, attn_p = 0.1f;
};

// ---- helpers ---------------------------------------------------------------------------------------------

static void check_rel(const std::string& what, double err, double tol, const char* why) {
    const bool ok = err <= tol;  // NaN fails
    printf("  %-40s %10.3e  %8.1e  %-4s  %s\n", what.c_str(), err, tol, ok ? "ok" : "FAIL", why);
    CHECK(ok, "%s: %.3e > %.1e", what.c_str(), err, tol);
}

static void check_true(const std::string& what, bool ok, const char* detail) {
    printf("  %-40s %10s  %8s  %-4s  %s\n", what.c_str(), "", "", ok ? "ok" : "FAIL", detail);
    CHECK(ok, "%s", what.c_str());
}

static std::vector<float> logits_to_float(const Transformer& m, int rows) {
    const size_t n = (size_t)rows * m.cfg.padded_vocab;
    std::vector<floatX> h(n);
    cudaCheck(cudaMemcpy(h.data(), m.act.logits, n * sizeof(floatX), cudaMemcpyDeviceToHost));
    std::vector<float> f(n);
    for (size_t i = 0; i < n; i++) f[i] = bf16_to_float_host(h[i]);
    return f;
}

static std::vector<float> grads_of(Transformer& m) {
    std::vector<float> g;
    m.download(g, m.grads);
    return g;
}

// Per-tensor relative error of two buffers in the parameter layout, one table row each.
static void check_tensors(const char* what, const Transformer& m, const float* gpu, const float* ref, double tol,
                          const char* why) {
    for (int k = 0; k < NUM_PARAM_TENSORS; k++)
        check_rel(std::string(what) + " " + param_name(k), rel_error(gpu + m.off[k], ref + m.off[k], m.sizes[k]), tol,
                  why);
}

static ref::StepKeys ref_keys(const StepKeys& k) {
    return ref::StepKeys{k.seed, k.step, k.sample0, k.hidden_dropout, k.attn_dropout};
}

// Micro-batch m (of b sequences) of the step that starts after `consumed` samples, as the trainers draw it.
struct Batch {
    std::vector<int> inputs, targets;
    std::vector<float> weight;
    uint32_t sample0 = 0;
};
static Batch draw(const Sampler& s, int64_t consumed, int G, int b, int m, int S) {
    std::vector<int64_t> pos(b);
    std::vector<int> y((size_t)b * (S + 1));
    s.micro_batch_or_die(consumed, G, b, 1, 0, m, pos.data(), y.data());
    Batch bt;
    bt.inputs.resize((size_t)b * S);
    bt.targets.resize((size_t)b * S);
    bt.weight.resize((size_t)b * S);
    make_ar_batch(bt.inputs.data(), bt.targets.data(), bt.weight.data(), y.data(), b, S);
    bt.sample0 = (uint32_t)pos[0];
    return bt;
}

// ---- stages ------------------------------------------------------------------------------------------------

static void check_init(Transformer& gpu, ref::Model<float>& cpu) {
    printf("init (seed init on the host, both sides)\n");
    std::vector<float> master;
    gpu.download(master, gpu.master);
    check_true("fp32 master == ref params (bits)",
               memcmp(master.data(), cpu.params.data(), master.size() * sizeof(float)) == 0,
               "same Philox draws, same bf16 rounding");
    std::vector<floatX> p(gpu.num_params);
    cudaCheck(cudaMemcpy(p.data(), gpu.params, p.size() * sizeof(floatX), cudaMemcpyDeviceToHost));
    size_t bad = 0;
    for (size_t i = 0; i < p.size(); i++) bad += bf16_to_float_host(p[i]) != master[i];
    check_true("bf16 copy == master (exact)", bad == 0, "init values are bf16-representable");
}

// One AR micro-batch on identical weights with dropout on: forward outputs, then every gradient.
static void check_ar_step(Transformer& gpu, ref::Model<float>& cpu, const Setup& su, const Batch& bt) {
    const int B = su.B, S = su.cfg.seq_len, N = B * S;
    printf("AR forward/backward, B=%d S=%d, hidden dropout %.2f, attention dropout %.2f\n", B, S, su.hidden_p,
           su.attn_p);
    const StepKeys keys{su.seed, 7, bt.sample0, su.hidden_p, su.attn_p};
    cpu.zero_grad();
    const double loss_ref = cpu.forward(bt.inputs.data(), bt.targets.data(), bt.weight.data(), B, true, ref_keys(keys));
    const std::vector<float> logits_ref = cpu.logits, row_ref = cpu.row_loss;
    cpu.backward(1.0);

    gpu.zero_grad();
    gpu.reset_loss();
    gpu.forward(bt.inputs.data(), B, true, keys);
    gpu.head(bt.targets.data(), bt.weight.data(), nullptr, N, 1.0f, false);
    const double loss_fwd = gpu.read_loss();
    std::vector<float> logits = logits_to_float(gpu, N), rows(N);
    gpu.read_row_loss(rows.data(), N);
    gpu.reset_loss();
    gpu.head(bt.targets.data(), bt.weight.data(), nullptr, N, 1.0f, true);
    gpu.backward();
    const double loss = gpu.read_loss();
    printf("  loss gpu %.6f ref %.6f\n", loss, loss_ref);
    check_rel("AR loss", fabs(loss - loss_ref) / fabs(loss_ref), TOL_LOSS, "bf16 activations vs fp32");
    check_true("loss with and without grad (bits)", loss == loss_fwd, "same head, same data");
    check_rel("AR logits (all rows)", rel_error(logits.data(), logits_ref.data(), logits.size()), TOL_LOGITS,
              "bf16 forward + bf16 logits");
    check_rel("AR per-row CE", rel_error(rows.data(), row_ref.data(), N), TOL_ROW_LOSS, "bf16 logits");
    std::vector<float> g = grads_of(gpu);
    check_tensors("AR grad", gpu, g.data(), cpu.grads.data(), TOL_GRAD, "bf16 activation gradients, fp32 accum");

    // The validation path: dropout off, per-row CE of every position.
    const StepKeys eval_keys{};
    cpu.forward(bt.inputs.data(), bt.targets.data(), bt.weight.data(), B, true, ref_keys(eval_keys));
    std::vector<float> ev(N);
    gpu.eval_row_loss(bt.inputs.data(), bt.targets.data(), nullptr, B, true, ev.data());
    check_rel("eval per-row CE (dropout off)", rel_error(ev.data(), cpu.row_loss.data(), N), TOL_ROW_LOSS,
              "bf16 logits");
}

// The optimizer on identical inputs: the reference's gradients uploaded into the GPU buffer, same weights and
// moments; one step with clipping active, one without.
static void check_optimizer(Transformer& gpu, ref::Model<float>& cpu) {
    printf("optimizer on identical gradients (global norm, clip, AdamW with the seed's groups)\n");
    std::vector<float> m_ref(cpu.params.size(), 0.0f), v_ref(cpu.params.size(), 0.0f);
    gpu.set_master(cpu.params.data());
    gpu.reset_optimizer();
    const float lr = 1e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
    for (int t = 1; t <= 2; t++) {
        const double norm0 = ref::global_norm(cpu.grads.data(), cpu.grads.size());
        const double max_norm = t == 1 ? 0.5 * norm0 : 10.0 * norm0;  // step 1 clips (factor ~0.5), step 2 does not
        cudaCheck(cudaMemcpy(gpu.grads, cpu.grads.data(), gpu.num_params * sizeof(float), cudaMemcpyHostToDevice));
        const std::vector<float> before = cpu.params;
        const double norm_ref = ref::optimizer_step(cpu, m_ref, v_ref, lr, b1, b2, eps, wd, max_norm, t);
        const double norm = gpu.optimizer_step(lr, b1, b2, eps, wd, max_norm, t);
        char name[64];
        snprintf(name, sizeof name, "step %d%s grad norm", t, t == 1 ? " (clipped)" : "");
        check_rel(name, fabs(norm - norm_ref) / norm_ref, TOL_NORM_EXACT, "fp64 sums, other order");
        std::vector<float> p, m, v;
        gpu.download(p, gpu.master);
        gpu.download(m, gpu.adam_m);
        gpu.download(v, gpu.adam_v);
        std::vector<float> upd_gpu(p.size()), upd_ref(p.size());
        for (size_t i = 0; i < p.size(); i++) upd_gpu[i] = p[i] - before[i], upd_ref[i] = cpu.params[i] - before[i];
        for (int k = 0; k < NUM_PARAM_TENSORS; k++) {
            snprintf(name, sizeof name, "step %d update %s", t, param_name(k));
            check_rel(name, rel_error(upd_gpu.data() + gpu.off[k], upd_ref.data() + gpu.off[k], gpu.sizes[k]),
                      TOL_UPDATE, "fp32 vs fp64 AdamW");
        }
        snprintf(name, sizeof name, "step %d AdamW m", t);
        check_rel(name, rel_error(m.data(), m_ref.data(), m.size()), TOL_MOMENT, "fp32 vs fp64");
        snprintf(name, sizeof name, "step %d AdamW v", t);
        check_rel(name, rel_error(v.data(), v_ref.data(), v.size()), TOL_MOMENT, "fp32 vs fp64");
        std::vector<floatX> pb(gpu.num_params);
        cudaCheck(cudaMemcpy(pb.data(), gpu.params, pb.size() * sizeof(floatX), cudaMemcpyDeviceToHost));
        size_t bad = 0;
        for (size_t i = 0; i < pb.size(); i++) {
            const floatX want = float_to_bf16_host(p[i]);
            bad += memcmp(&pb[i], &want, sizeof(floatX)) != 0;
        }
        snprintf(name, sizeof name, "step %d bf16 copy == bf16(master)", t);
        check_true(name, bad == 0, "round to nearest even");
    }
}

// Three optimizer steps of 2 micro-batches of B/2 sequences (gradient accumulation), each side on its own
// gradients. Returns the GPU's per-step losses and norms and its final master weights (for the repeat check).
struct Trajectory {
    std::vector<double> loss, norm;
    std::vector<float> master;
};
static Trajectory train_steps(Transformer& gpu, ref::Model<float>* cpu, const Setup& su, const Sampler& sampler) {
    const int G = su.B, b = su.B / 2, S = su.cfg.seq_len, steps = 3;
    const float lr = 1e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
    const double clip = 1.0;
    gpu.init_weights(su.seed);
    gpu.reset_optimizer();
    std::vector<float> m_ref, v_ref, init;
    if (cpu) {
        printf("AR training: %d steps x 2 micro-batches of %d (accumulated), lr %g, clip %g\n", steps, b, lr, clip);
        cpu->init_weights(su.seed);
        init = cpu->params;
    }
    Trajectory tr;
    std::vector<double> loss_ref, norm_ref;
    for (int t = 1; t <= steps; t++) {
        gpu.zero_grad();
        gpu.reset_loss();
        if (cpu) cpu->zero_grad();
        double lref = 0;
        for (int m = 0; m < 2; m++) {
            Batch bt = draw(sampler, (int64_t)(t - 1) * G, G, b, m, S);
            const StepKeys keys{su.seed, (uint32_t)(t - 1), bt.sample0, su.hidden_p, su.attn_p};
            gpu.forward(bt.inputs.data(), b, true, keys);
            gpu.head(bt.targets.data(), bt.weight.data(), nullptr, b * S, 0.5f, true);
            gpu.backward();
            if (cpu) {
                lref += cpu->forward(bt.inputs.data(), bt.targets.data(), bt.weight.data(), b, true, ref_keys(keys)) / 2;
                cpu->backward(0.5);
            }
        }
        tr.loss.push_back(gpu.read_loss());
        if (cpu && t == 1) {
            std::vector<float> g = grads_of(gpu);
            check_tensors("step 1 accumulated grad", gpu, g.data(), cpu->grads.data(), TOL_GRAD,
                          "2 micro-batches, bf16");
        }
        tr.norm.push_back(gpu.optimizer_step(lr, b1, b2, eps, wd, clip, t));
        if (cpu) {
            loss_ref.push_back(lref);
            norm_ref.push_back(ref::optimizer_step(*cpu, m_ref, v_ref, lr, b1, b2, eps, wd, clip, t));
        }
    }
    gpu.download(tr.master, gpu.master);
    if (!cpu) return tr;
    char name[64];
    for (int t = 0; t < steps; t++) {
        printf("  step %d: loss gpu %.6f ref %.6f | norm gpu %.5f ref %.5f\n", t + 1, tr.loss[t], loss_ref[t],
               tr.norm[t], norm_ref[t]);
        snprintf(name, sizeof name, "step %d loss", t + 1);
        check_rel(name, fabs(tr.loss[t] - loss_ref[t]) / loss_ref[t], TOL_LOSS, "bf16 vs fp32 training");
        snprintf(name, sizeof name, "step %d grad norm", t + 1);
        check_rel(name, fabs(tr.norm[t] - norm_ref[t]) / norm_ref[t], TOL_NORM, "bf16 gradients");
    }
    for (int k = 0; k < NUM_PARAM_TENSORS; k++) {
        double num = 0, den = 0;
        for (size_t i = gpu.off[k]; i < gpu.off[k] + gpu.sizes[k]; i++) {
            const double d = (double)tr.master[i] - cpu->params[i], u = (double)cpu->params[i] - init[i];
            num += d * d;
            den += u * u;
        }
        snprintf(name, sizeof name, "after 3 steps %s", param_name(k));
        check_rel(name, den > 0 ? sqrt(num / den) : INFINITY, TOL_TRAJECTORY, "|gpu-ref| / |ref-init|");
    }
    return tr;
}

// MDM: bidirectional attention, masked inputs, the LM head on the masked rows only. Returns the GPU gradients.
static std::vector<float> check_mdm(Transformer& gpu, ref::Model<float>* cpu, const Setup& su, const Sampler& sampler) {
    const int B = su.B, S = su.cfg.seq_len, N = B * S;
    std::vector<int64_t> pos(B);
    std::vector<int> y((size_t)B * (S + 1)), inputs(N), targets(N);
    std::vector<float> weight(N);
    sampler.micro_batch_or_die(0, B, B, 1, 0, 0, pos.data(), y.data());
    const uint32_t step = 3, sample0 = (uint32_t)pos[0];
    const int masked = make_mdm_batch(inputs.data(), targets.data(), weight.data(), y.data(), B, S, su.cfg.mask_id,
                                      1e-3f, su.seed, step, sample0);
    const StepKeys keys{su.seed, step, sample0, su.hidden_p, su.attn_p};
    gpu.init_weights(su.seed);
    std::vector<int> rows, rt;
    std::vector<float> rw;
    const int M = select_weighted_rows(weight.data(), targets.data(), N, rows, rt, rw);
    gpu.zero_grad();
    gpu.reset_loss();
    gpu.forward(inputs.data(), B, /*causal=*/false, keys);
    gpu.head(rt.data(), rw.data(), rows.data(), M, 1.0f, true);
    gpu.backward();
    const double loss = gpu.read_loss();
    std::vector<float> crow(M);
    gpu.read_row_loss(crow.data(), M);
    std::vector<float> g = grads_of(gpu);
    if (!cpu) return g;

    printf("MDM forward/backward (bidirectional, %d of %d rows masked, LM head on masked rows only)\n", masked, N);
    check_true("batch has masked and unmasked rows", M == masked && M > 0 && M < N, "make_mdm_batch");
    cpu->init_weights(su.seed);
    cpu->zero_grad();
    const double loss_ref = cpu->forward(inputs.data(), targets.data(), weight.data(), B, false, ref_keys(keys));
    std::vector<float> crow_ref(M);
    for (int j = 0; j < M; j++) crow_ref[j] = cpu->row_loss[rows[j]];
    cpu->backward(1.0);
    printf("  loss gpu %.6f ref %.6f\n", loss, loss_ref);
    check_rel("MDM loss", fabs(loss - loss_ref) / fabs(loss_ref), TOL_LOSS, "bf16 activations vs fp32");
    check_rel("MDM per-row CE (masked rows)", rel_error(crow.data(), crow_ref.data(), M), TOL_ROW_LOSS, "bf16 logits");
    check_tensors("MDM grad", gpu, g.data(), cpu->grads.data(), TOL_GRAD, "bf16 activation gradients, fp32 accum");

    // The same objective with the head over ALL rows (weight 0 on unmasked ones) must give the same result.
    gpu.zero_grad();
    gpu.reset_loss();
    gpu.forward(inputs.data(), B, false, keys);
    gpu.head(targets.data(), weight.data(), nullptr, N, 1.0f, true);
    gpu.backward();
    const double loss_all = gpu.read_loss();
    std::vector<float> g_all = grads_of(gpu);
    check_rel("MDM loss: masked-rows head vs all rows", fabs(loss_all - loss) / fabs(loss), TOL_HEAD_ROWS,
              "same sum, other order");
    check_tensors("masked-rows vs all-rows grad", gpu, g.data(), g_all.data(), TOL_HEAD_ROWS, "same math");

    // Token ids handed over in device memory (as llmc/mdm.cuh's corruption produces them): the same computation.
    int* d_inputs;
    cudaCheck(cudaMalloc(&d_inputs, (size_t)N * sizeof(int)));
    cudaCheck(cudaMemcpy(d_inputs, inputs.data(), (size_t)N * sizeof(int), cudaMemcpyHostToDevice));
    gpu.zero_grad();
    gpu.reset_loss();
    gpu.forward(d_inputs, B, false, keys, /*inputs_on_device=*/true);
    gpu.head(rt.data(), rw.data(), rows.data(), M, 1.0f, true);
    gpu.backward();
    const double loss_dev = gpu.read_loss();
    std::vector<float> g_dev = grads_of(gpu);
    cudaCheck(cudaFree(d_inputs));
    check_true("device-side inputs: loss, grads (bits)",
               loss_dev == loss && memcmp(g_dev.data(), g.data(), g.size() * sizeof(float)) == 0, "same kernels");

    // Masked rows padded with weight-0 rows to a multiple of 128 (fewer matmul shapes): again the same.
    std::vector<int> prows, pt;
    std::vector<float> pw;
    const int Mp = select_weighted_rows(weight.data(), targets.data(), N, prows, pt, pw, 128);
    check_true("padded row count", Mp >= M && (Mp % 128 == 0 || Mp == N), "multiple of 128 or all rows");
    gpu.zero_grad();
    gpu.reset_loss();
    gpu.forward(inputs.data(), B, false, keys);
    gpu.head(pt.data(), pw.data(), prows.data(), Mp, 1.0f, true);
    gpu.backward();
    const double loss_pad = gpu.read_loss();
    std::vector<float> g_pad = grads_of(gpu);
    check_rel("MDM loss: masked vs padded rows", fabs(loss_pad - loss) / fabs(loss), TOL_HEAD_ROWS, "same sum");
    check_tensors("masked vs padded-rows grad", gpu, g.data(), g_pad.data(), TOL_HEAD_ROWS, "same math");

    // Validation path with weights: CE on the masked rows, 0 elsewhere (never counted by the ELBO).
    const StepKeys eval_keys{};
    cpu->forward(inputs.data(), targets.data(), weight.data(), B, false, ref_keys(eval_keys));
    std::vector<float> ev(N), ev_ref(N, 0.0f);
    gpu.eval_row_loss(inputs.data(), targets.data(), weight.data(), B, false, ev.data());
    bool zeros = true;
    for (int n = 0; n < N; n++) {
        if (weight[n] != 0.0f) ev_ref[n] = cpu->row_loss[n];
        else zeros = zeros && ev[n] == 0.0f;
    }
    check_rel("MDM eval per-row CE (masked rows)", rel_error(ev.data(), ev_ref.data(), N), TOL_ROW_LOSS, "bf16 logits");
    check_true("MDM eval: unmasked rows get 0", zeros, "skipped by the head");
    return g;
}

// ZeRO-1 with W ranks, emulated in one process (one GPU cannot hold two NCCL ranks): rank r is a Transformer whose
// GpuDist says (r, W) without a communicator, so its collectives are no-ops, and its gradient buffer is given what
// reduce-scatter would leave in it (the whole summed gradient: rank r reads its shard at r * shard). Clipping is
// off (the norm's all-reduce is a no-op here). AdamW is elementwise, so every rank's shard of the master weights,
// moments and bf16 copy must equal the one-process step bit for bit; the shards' norms must add up to the whole
// norm. A wrong shard offset or length (set_master, set_state, optimizer_step, gather_whole) moves or cuts a shard
// or changes its decay group. W = 5 pads the layout (a short last shard); with W = 32 one shard holds the embedding's
// tail and the first layer's head, the next cuts inside the layers, so shards mix decayed weights and RMSNorm gains.
static void check_zero_shards(const ModelConfig& cfg, const std::vector<float>& P, const std::vector<float>& G,
                              int W) {
    const size_t n = P.size();
    std::vector<float> M(n), V(n);
    for (size_t i = 0; i < n; i++) M[i] = 0.1f * G[i], V[i] = G[i] * G[i];  // non-zero moments: set_state's offsets
    const float lr = 1e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
    const int t = 2;
    auto download = [](const auto* d, size_t count) {
        std::vector<std::remove_const_t<std::remove_pointer_t<decltype(d)>>> h(count);
        cudaCheck(cudaMemcpy(h.data(), d, count * sizeof(h[0]), cudaMemcpyDeviceToHost));
        return h;
    };
    auto same = [](const auto& a, const auto* b, size_t count) {
        return memcmp(a.data(), b, count * sizeof(a[0])) == 0;
    };
    Transformer whole;
    whole.init(cfg, 1);
    whole.set_state(P.data(), M.data(), V.data());
    cudaCheck(cudaMemcpy(whole.grads, G.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    const double norm_whole = whole.optimizer_step(lr, b1, b2, eps, wd, 0.0, t);
    const auto wp = download(whole.master, n), wm = download(whole.adam_m, n), wv = download(whole.adam_v, n);
    const auto wb = download(whole.params, n);
    whole.destroy();
    double sumsq = 0;
    size_t covered = 0;
    int bad_place = 0, bad_state = 0, bad_step = 0, bad_gather = 0;
    for (int r = 0; r < W; r++) {
        GpuDist d;
        d.place.rank = r;
        d.place.world = W;
        Transformer s;
        s.init(cfg, 1, &d);
        const size_t lo = s.shard_lo, len = s.shard_len;
        bad_place += !(lo == covered && lo == (size_t)r * s.zero.shard && len > 0 && len <= s.zero.shard);
        covered = lo + len;
        s.set_state(P.data(), M.data(), V.data());
        bad_state += !(same(download(s.master, len), P.data() + lo, len) &&
                       same(download(s.adam_m, len), M.data() + lo, len) &&
                       same(download(s.adam_v, len), V.data() + lo, len));
        cudaCheck(cudaMemcpy(s.grads, G.data(), n * sizeof(float), cudaMemcpyHostToDevice));
        const double norm = s.optimizer_step(lr, b1, b2, eps, wd, 0.0, t);
        sumsq += norm * norm;
        bad_step += !(same(download(s.master, len), wp.data() + lo, len) &&
                      same(download(s.adam_m, len), wm.data() + lo, len) &&
                      same(download(s.adam_v, len), wv.data() + lo, len) &&
                      same(download(s.params + lo, len), wb.data() + lo, len));
        std::vector<float> g;  // gather_whole with a no-op all-gather: this rank's shard lands at r * shard
        s.gather_whole(g, s.master);
        bad_gather += memcmp(g.data() + lo, wp.data() + lo, len * sizeof(float)) != 0;
        s.destroy();
    }
    char name[80], detail[80];
    auto title = [&](const char* what) { snprintf(name, sizeof name, "ZeRO-1 %d ranks: %s", W, what); return name; };
    // check ok WHAT DETAIL...: one summary row, its detail ending in how many ranks were off
    auto check = [&](bool ok, const char* what, const char* why, int off) {
        snprintf(detail, sizeof detail, "%s; %d ranks off", why, off);
        check_true(title(what), ok, detail);
    };
    char tiles[48];
    snprintf(tiles, sizeof tiles, "each at r * shard; %zu of %zu covered", covered, n);
    check(bad_place == 0 && covered == n, "shards tile the layout", tiles, bad_place);
    check(bad_state == 0, "set_state slices (bits)", "master, m, v", bad_state);
    check(bad_step == 0, "step == one GPU (bits)", "master, m, v, bf16; AdamW is elementwise", bad_step);
    check(bad_gather == 0, "gather_whole places (bits)", "the checkpoint's source", bad_gather);
    check_rel(title("shard norms add up"), fabs(sqrt(sumsq) - norm_whole) / norm_whole, TOL_NORM_EXACT,
              "fp64 sums, other order");
}

// GpuBackend (eval_gpu, generate_gpu) splits calls of more than its planned sequences into chunks: with room for
// one sequence, the logits of scattered positions (one sequence with none selected) and every row's CE, against
// the CPU reference with dropout off.
static void check_backend_chunks(ref::Model<float>& cpu, const Setup& su, const Batch& bt) {
    const int B = su.B, S = su.cfg.seq_len, N = B * S;
    const size_t Vp = su.cfg.padded_vocab;
    printf("GPU backend in chunks of one sequence, B=%d\n", B);
    GpuBackend be;
    be.load(su.cfg, cpu.params, 1);
    cpu.forward(bt.inputs.data(), bt.targets.data(), bt.weight.data(), B, true, ref_keys(StepKeys{}));
    std::vector<int> sel = {0, S - 1, S + 5};  // sequences 0 and 1, then (B = 4) none of 2, two of 3
    if (B >= 4) sel.insert(sel.end(), {3 * S + 7, 4 * S - 1});
    std::vector<float> out(sel.size() * Vp), want(sel.size() * Vp);
    be.logits(bt.inputs.data(), B, true, sel.data(), (int)sel.size(), out.data());
    for (size_t j = 0; j < sel.size(); j++)
        std::copy_n(cpu.logits.begin() + (size_t)sel[j] * Vp, Vp, want.begin() + j * Vp);
    check_rel("chunked logits of selected rows", rel_error(out.data(), want.data(), out.size()), TOL_LOGITS,
              "bf16 forward + bf16 logits");
    std::vector<float> rows(N);
    be.row_loss(bt.inputs.data(), bt.targets.data(), nullptr, B, true, rows.data());
    check_rel("chunked per-row CE", rel_error(rows.data(), cpu.row_loss.data(), N), TOL_ROW_LOSS, "bf16 logits");
}

int main(int argc, char** argv) {
    bool quick = false;
    uint32_t seed = (uint32_t)time(nullptr);
    std::string data = "dev/data/c4_train";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = (uint32_t)strtoul(argv[++i], nullptr, 10);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else llmc_die("unknown argument '%s' (use --quick, --seed N, --data PREFIX)", argv[i]);
    }
    // h 64 with 2 heads of 64: the attention inner dim (128) differs from h, which exercises every shape
    // parameter separately; the vocabulary is the real padded 50304.
    Setup su;
    su.cfg.d_model = 64;
    su.cfg.n_layer = 2;
    su.cfg.n_head = 2;
    su.cfg.head_dim = 64;
    su.cfg.ffn = swiglu_ffn_size(64);
    su.cfg.seq_len = 64;
    su.B = quick ? 2 : 4;
    su.seed = seed;
    printf("test_gpt: seed %u%s; model h %d, L %d, heads %d x %d, ffn %d, S %d, vocab %d; B %d\n", seed,
           quick ? " (quick)" : "", su.cfg.d_model, su.cfg.n_layer, su.cfg.n_head, su.cfg.head_dim, su.cfg.ffn,
           su.cfg.seq_len, su.cfg.padded_vocab, su.B);
    printf("  %-40s %10s  %8s  %-4s  %s\n", "check", "rel err", "tol", "", "why the tolerance");

    IndexedDataset ds;
    ds.open_or_die(data);
    SamplerConfig sc;
    sc.seq_len = su.cfg.seq_len;
    sc.num_samples = 64;
    sc.seed = seed;
    Sampler sampler;
    sampler.build_or_die(ds, sc);

    cudaCheck(cudaSetDevice(0));
    Transformer gpu;
    gpu.init(su.cfg, su.B);
    ref::Model<float> cpu(su.cfg);
    gpu.init_weights(seed);
    cpu.init_weights(seed);

    check_init(gpu, cpu);
    check_ar_step(gpu, cpu, su, draw(sampler, 0, su.B, su.B, 0, su.cfg.seq_len));
    check_optimizer(gpu, cpu);
    std::vector<float> g_mdm = check_mdm(gpu, &cpu, su, sampler);
    printf("ZeRO-1 shards, ranks emulated in one process, against the one-GPU step\n");
    for (int W : {5, 32}) {
        if (quick && W > 5) continue;
        check_zero_shards(su.cfg, cpu.params, cpu.grads, W);
    }
    check_backend_chunks(cpu, su, draw(sampler, 0, su.B, su.B, 0, su.cfg.seq_len));
    if (!quick) {
        Trajectory first = train_steps(gpu, &cpu, su, sampler);
        printf("determinism (everything again on the GPU)\n");
        Trajectory again = train_steps(gpu, nullptr, su, sampler);
        check_true("3 AR steps: losses, norms (bits)", first.loss == again.loss && first.norm == again.norm,
                   "no float atomics, pinned matmul algorithms");
        check_true("3 AR steps: master weights (bits)",
                   memcmp(first.master.data(), again.master.data(), first.master.size() * sizeof(float)) == 0, "");
        std::vector<float> g2 = check_mdm(gpu, nullptr, su, sampler);
        check_true("MDM gradients (bits)", memcmp(g_mdm.data(), g2.data(), g2.size() * sizeof(float)) == 0, "");
    }
    gpu.destroy();
    return test_summary();
}
