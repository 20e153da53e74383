// dev/cpu/train_cpu.cpp — trains the CPU reference (dev/cpu/reference.h) on the bundled data, for either
// objective: the executable specification of what train_gpt.cu and train_mdm.cu do on a GPU, at a size a
// laptop can run. Same flags, schedule, data order, masks, checkpoints and logs as the CUDA trainers.
//
//   ./build/train_cpu                      # AR, tiny model, bundled C4 sample
//   ./build/train_cpu --objective mdm      # masked diffusion, same network, bidirectional
#include <chrono>       // steady_clock: step timing
#include <cinttypes>    // PRId64
#include <omp.h>        // omp_set_num_threads
#include <sys/stat.h>   // mkdir
#include "dev/cpu/reference.h"  // ref::Model (forward/backward), ref::optimizer_step
#include "llmc/checkpoint.h"    // checkpoint_save/load, CheckpointHeader
#include "llmc/dataset.h"       // IndexedDataset
#include "llmc/eval.h"          // LossStats: mean NLL / MC-ELBO with standard error
#include "llmc/logger.h"        // JsonlLog, StepStats, print_step
#include "llmc/objective.h"     // make_ar_batch / make_mdm_batch: where AR and MDM differ
#include "llmc/sampler.h"       // Sampler: U unique tokens x E epochs, shuffled samples of S+1 tokens
#include "llmc/train_config.h"  // TrainConfig: the shared flag vocabulary and run plan

using Clock = std::chrono::steady_clock;
static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Validation through the shared driver (llmc/eval.h): the CPU model as the forward, dropout off.
static LossStats evaluate(ref::Model<float>& model, const Sampler& val, const TrainConfig& tc) {
    const ref::StepKeys keys{(uint32_t)tc.eval_seed, 0, 0, 0.0f, 0.0f};
    const bool mdm = tc.objective == OBJ_MDM;
    return run_validation(val, tc.eval_samples, tc.seq_len, tc.micro_batch, mdm, tc.mc_samples, tc.stratified,
                          (float)tc.mdm_eps, (uint32_t)tc.eval_seed, tc.cfg.mask_id,
                          [&](const int* in, const int* tgt, const float* w, int rows, float* row_loss) {
                              model.forward(in, tgt, w, rows, !mdm, keys);
                              std::copy(model.row_loss.begin(), model.row_loss.begin() + (size_t)rows * tc.seq_len, row_loss);
                          });
}

static void save(const TrainConfig& tc, const ref::Model<float>& model, const std::vector<float>& m,
                 const std::vector<float>& v, const Sampler& sampler, int64_t step, int64_t consumed, double best,
                 int64_t best_step, const char* name) {
    CheckpointHeader h = checkpoint_header(tc.cfg, tc.objective);
    h.seed = (uint32_t)tc.seed;
    h.has_optimizer = 1;
    h.step = step;
    h.consumed_samples = consumed;
    h.sampler_fingerprint = sampler.fingerprint();
    h.best_val_loss = best;
    h.best_val_step = best_step;
    std::string path = tc.ckpt_dir + "/" + name;
    checkpoint_save(path.c_str(), h, model.params.data(), m.data(), v.data());
}

int main(int argc, char** argv) {
    TrainConfig tc;
    // CPU-sized defaults: a tiny model on short sequences (the seed's sizes are for GPUs).
    tc.model = "tiny";
    tc.seq_len = 64;
    tc.batch = 16;
    tc.micro_batch = 16;
    tc.lr = 3e-3;
    tc.min_lr = 3e-4;
    tc.steps = 100;
    tc.eval_every = 25;
    tc.eval_samples = 32;
    std::string objective = "ar";
    int threads = 0;
    ArgParser args("train_cpu", "Trains the CPU reference transformer (AR or masked diffusion) on a Megatron "
                                "dataset; defaults train a tiny model on the bundled C4 sample.");
    args.add_choice("objective", &objective, "ar|mdm", "autoregressive or masked diffusion");
    tc.add_flags(args);
    args.add_int("threads", &threads, "OpenMP threads (0 = all cores)", 0, 1024);
    args.parse(argc, argv);
    if (threads > 0) omp_set_num_threads(threads);
    const uint32_t obj = objective == "mdm" ? OBJ_MDM : OBJ_AR;

    IndexedDataset train_ds, val_ds;
    train_ds.open_or_die(tc.train_data);
    val_ds.open_or_die(tc.val_data);
    tc.model_config();  // fail on a bad shape before building the data index
    Sampler sampler;
    tc.build_train_sampler(sampler, train_ds);
    tc.resolve(sampler.tokens_per_epoch(), obj);
    Sampler val;
    std::string err;
    if (!build_validation_sampler(val, val_ds, tc.seq_len, tc.eval_samples, (uint32_t)tc.eval_seed, &err))
        llmc_die("validation data %s: %s", tc.val_data.c_str(), err.c_str());

    ref::Model<float> model(tc.cfg);
    model.init_weights((uint32_t)tc.seed);
    std::vector<float> adam_m(model.params.size(), 0.0f), adam_v(model.params.size(), 0.0f);
    int64_t step = 0, consumed = 0, best_step = -1;
    double best = INFINITY;
    if (!tc.resume.empty()) {
        CheckpointHeader h;
        std::vector<float> params;
        if (!checkpoint_load(tc.resume.c_str(), &h, &params, &adam_m, &adam_v, &err)) llmc_die("%s", err.c_str());
        checkpoint_require_match(h, tc.cfg, obj, tc.resume.c_str());
        if (!h.has_optimizer) llmc_die("checkpoint '%s' has no optimizer state to resume from", tc.resume.c_str());
        if (h.sampler_fingerprint != sampler.fingerprint())
            llmc_die("checkpoint '%s' was trained on another data order (data, --unique-tokens, --epochs, --steps, "
                     "--batch, --seq-len or --seed differ)", tc.resume.c_str());
        if (h.seed != (uint32_t)tc.seed) llmc_die("checkpoint '%s' has seed %u, --seed is %" PRId64, tc.resume.c_str(), h.seed, tc.seed);
        model.params = params;
        step = h.step;
        consumed = h.consumed_samples;
        best = h.best_val_loss;
        best_step = h.best_val_step;
        printf("resumed    %s at step %" PRId64 " (%" PRId64 " samples consumed)\n", tc.resume.c_str(), step, consumed);
    }
    if (!tc.ckpt_dir.empty() && mkdir(tc.ckpt_dir.c_str(), 0755) != 0 && errno != EEXIST)
        llmc_die("cannot create --ckpt-dir '%s' (%s)", tc.ckpt_dir.c_str(), strerror(errno));
    JsonlLog log;
    log.open(tc.log, step > 0);
    tc.print_plan(stdout, model.params.size(), sampler.tokens_per_epoch());
    printf("threads    %d OpenMP threads; validation %" PRId64 " sequences%s\n", omp_get_max_threads(),
           val.size() < tc.eval_samples ? val.size() : tc.eval_samples,
           obj == OBJ_MDM ? (tc.stratified ? ", stratified MC-ELBO" : ", MC-ELBO") : "");

    const int S = tc.seq_len, b = tc.micro_batch;
    std::vector<int64_t> positions(b);
    std::vector<int> y((size_t)b * (S + 1)), inputs((size_t)b * S), targets((size_t)b * S);
    std::vector<float> weight((size_t)b * S);
    auto run_eval = [&](int64_t at_step) {
        Clock::time_point t0 = Clock::now();
        LossStats st = evaluate(model, val, tc);
        double loss = st.mean(), se = st.mc_stderr();
        bool improved = loss < best;
        if (improved) { best = loss; best_step = at_step; }
        if (obj == OBJ_MDM)
            printf("eval  step %6" PRId64 " | val ELBO %.4f +- %.4f nats/token (K=%d%s) | best %.4f @ %" PRId64 " | %.1fs\n",
                   at_step, loss, se, tc.mc_samples, tc.stratified ? ", stratified" : "", best, best_step, seconds_since(t0));
        else
            printf("eval  step %6" PRId64 " | val NLL %.4f (ppl %.1f) | best %.4f @ %" PRId64 " | %.1fs\n", at_step, loss,
                   perplexity(loss), best, best_step, seconds_since(t0));
        log.write(JsonLine().str("kind", "eval").integer("step", at_step).num("val_loss", loss).num("val_stderr", se)
                      .integer("mc_samples", obj == OBJ_MDM ? tc.mc_samples : 1).num("best_val_loss", best)
                      .integer("best_step", best_step).integer("sequences", st.sequences()));
        if (improved && !tc.ckpt_dir.empty())
            save(tc, model, adam_m, adam_v, sampler, at_step, consumed, best, best_step, "best.ckpt");
    };

    Clock::time_point run_start = Clock::now();
    const int64_t first_step = step;
    const int64_t last_step = tc.stop_at > 0 && tc.stop_at < tc.total_steps ? tc.stop_at : tc.total_steps;
    while (step < last_step) {
        Clock::time_point t0 = Clock::now();
        model.zero_grad();
        double loss = 0;
        for (int micro = 0; micro < tc.grad_accum; micro++) {
            sampler.micro_batch_or_die(consumed, tc.batch, b, 1, 0, micro, positions.data(), y.data());
            // Every draw of this micro-batch is keyed by (seed, step, global sample index): row r uses sample0 + r.
            const uint32_t sample0 = (uint32_t)positions[0];
            if (obj == OBJ_MDM)
                make_mdm_batch(inputs.data(), targets.data(), weight.data(), y.data(), b, S, tc.cfg.mask_id,
                                    (float)tc.mdm_eps, (uint32_t)tc.seed, (uint32_t)step, sample0, nullptr, tc.mdm_options());
            else
                make_ar_batch(inputs.data(), targets.data(), weight.data(), y.data(), b, S);
            const ref::StepKeys keys{(uint32_t)tc.seed, (uint32_t)step, sample0, (float)tc.dropout, (float)tc.attn_dropout};
            loss += model.forward(inputs.data(), targets.data(), weight.data(), b, obj == OBJ_AR, keys) / tc.grad_accum;
            model.backward(1.0 / tc.grad_accum);  // the gradient of the mean of the micro-batch losses
        }
        if (!std::isfinite(loss)) llmc_die("loss is %f at step %" PRId64 " (try a lower --lr)", loss, step + 1);
        const double lr = tc.schedule.lr_for_step(step + 1, tc.batch);
        const double norm = ref::optimizer_step(model, adam_m, adam_v, (float)lr, (float)tc.beta1, (float)tc.beta2,
                                                (float)tc.adam_eps, (float)tc.weight_decay,
                                                tc.clip > 0 ? tc.clip : INFINITY, (int)(step + 1));
        step++;
        consumed += tc.batch;
        StepStats st;
        st.step = step;
        st.total_steps = tc.total_steps;
        st.epoch = sampler.epoch_of(consumed);
        st.loss = loss;
        st.lr = lr;
        st.grad_norm = norm;
        st.ms = 1000 * seconds_since(t0);
        st.tok_per_s = (double)tc.batch * S / (st.ms / 1000);
        st.eta_s = seconds_since(run_start) / (double)(step - first_step) * (double)(tc.total_steps - step);
        if (!tc.quiet) print_step(st);
        log.write(step_json(st));
        const bool last = step == last_step;
        if ((tc.eval_every > 0 && step % tc.eval_every == 0) || step == tc.total_steps) run_eval(step);
        if (!tc.ckpt_dir.empty() && (last || (tc.save_every > 0 && step % tc.save_every == 0) ||
                                     (tc.save_every == 0 && tc.eval_every > 0 && step % tc.eval_every == 0)))
            save(tc, model, adam_m, adam_v, sampler, step, consumed, best, best_step, "model.ckpt");
    }
    printf("done       %" PRId64 " steps in %s; best validation loss %.4f at step %" PRId64 "\n", step,
           format_duration(seconds_since(run_start)).c_str(), best, best_step);
    return 0;
}
