// llmc/train_loop.h — the bookkeeping every trainer's loop shares, so train_cpu, train_gpt and train_mdm differ
// only in how they compute a step: when to validate and checkpoint, the best-so-far tracking (AR overfits under
// repetition and the paper compares best losses), and the eval line + JSONL record.
#pragma once
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <sys/stat.h>
#include "checkpoint.h"
#include "dataset.h"
#include "eval.h"
#include "logger.h"
#include "sampler.h"
#include "train_config.h"

// Where a run stands: exactly what a checkpoint must hold to continue it.
struct TrainProgress {
    int64_t step = 0;             // optimizer steps done
    int64_t consumed = 0;         // training samples consumed (the data cursor)
    double best = INFINITY;       // best validation loss so far
    int64_t best_step = -1;
};

// The step this run stops at: the planned end, or --stop-at (a checkpoint, then --resume continues the plan).
inline int64_t run_last_step(const TrainConfig& tc) {
    return tc.stop_at > 0 && tc.stop_at < tc.total_steps ? tc.stop_at : tc.total_steps;
}

// Validate every --eval-every steps and at the end of the planned run.
inline bool eval_due(const TrainConfig& tc, int64_t step) {
    return (tc.eval_every > 0 && step % tc.eval_every == 0) || step == tc.total_steps;
}

// Checkpoint model.ckpt at the last step of this run, every --save-every steps, or (by default) at evaluations.
inline bool save_due(const TrainConfig& tc, int64_t step) {
    if (tc.ckpt_dir.empty()) return false;
    if (step == run_last_step(tc)) return true;
    if (tc.save_every > 0) return step % tc.save_every == 0;
    return tc.eval_every > 0 && step % tc.eval_every == 0;
}

// Records a validation result: updates best-so-far, prints the eval line, writes the JSONL record. Returns true
// when this is a new best (the caller then writes best.ckpt).
inline bool report_eval(const TrainConfig& tc, TrainProgress& prog, const LossStats& st, double seconds,
                        JsonlLog& log) {
    const double loss = st.mean(), se = st.mc_stderr();
    const bool improved = loss < prog.best;
    if (improved) { prog.best = loss; prog.best_step = prog.step; }
    if (tc.objective == OBJ_MDM)
        printf("eval  step %6" PRId64 " | val ELBO %.4f +- %.4f nats/token (K=%d%s) | best %.4f @ %" PRId64 " | %.1fs\n",
               prog.step, loss, se, tc.mc_samples, tc.stratified ? ", stratified" : "", prog.best, prog.best_step,
               seconds);
    else
        printf("eval  step %6" PRId64 " | val NLL %.4f (ppl %.1f) | best %.4f @ %" PRId64 " | %.1fs\n", prog.step, loss,
               perplexity(loss), prog.best, prog.best_step, seconds);
    fflush(stdout);
    log.write(JsonLine().str("kind", "eval").integer("step", prog.step).num("val_loss", loss).num("val_stderr", se)
                  .integer("mc_samples", tc.objective == OBJ_MDM ? tc.mc_samples : 1).num("best_val_loss", prog.best)
                  .integer("best_step", prog.best_step).integer("sequences", st.sequences()));
    return improved;
}

// Fills the progress record of the step just finished. peak_flops <= 0: MFU unknown.
inline StepStats step_stats(const TrainConfig& tc, const TrainProgress& prog, double epoch, double loss, double lr,
                            double grad_norm, double seconds, double run_seconds, int64_t first_step,
                            double peak_flops) {
    StepStats st;
    st.step = prog.step;
    st.total_steps = tc.total_steps;
    st.epoch = epoch;
    st.loss = loss;
    st.lr = lr;
    st.grad_norm = grad_norm;
    st.ms = 1000 * seconds;
    st.tok_per_s = (double)tc.batch * tc.seq_len / seconds;
    st.mfu = peak_flops > 0 ? st.tok_per_s * flops_per_token_with_attention(tc.cfg) / peak_flops : -1;
    st.eta_s = run_seconds / (double)(prog.step - first_step) * (double)(tc.total_steps - prog.step);
    return st;
}

// The header of a checkpoint of this run at this point.
inline CheckpointHeader progress_header(const TrainConfig& tc, const TrainProgress& prog, uint64_t fingerprint) {
    CheckpointHeader h = checkpoint_header(tc.cfg, tc.objective);
    h.seed = (uint32_t)tc.seed;
    h.has_optimizer = 1;
    h.step = prog.step;
    h.consumed_samples = prog.consumed;
    h.sampler_fingerprint = fingerprint;
    h.best_val_loss = prog.best;
    h.best_val_step = prog.best_step;
    return h;
}

// Checks that a checkpoint continues THIS run (objective, shape, seed, data order) and returns its progress.
inline TrainProgress resume_progress(const TrainConfig& tc, const CheckpointHeader& h, uint64_t fingerprint) {
    checkpoint_require_match(h, tc.cfg, tc.objective, tc.resume.c_str());
    if (!h.has_optimizer) llmc_die("checkpoint '%s' has no optimizer state to resume from", tc.resume.c_str());
    if (h.sampler_fingerprint != fingerprint)
        llmc_die("checkpoint '%s' was trained on another data order (data, --unique-tokens, --epochs, --steps, "
                 "--batch, --seq-len or --seed differ)", tc.resume.c_str());
    if (h.seed != (uint32_t)tc.seed)
        llmc_die("checkpoint '%s' has seed %u, --seed is %" PRId64, tc.resume.c_str(), h.seed, tc.seed);
    TrainProgress p;
    p.step = h.step;
    p.consumed = h.consumed_samples;
    p.best = h.best_val_loss;
    p.best_step = h.best_val_step;
    return p;
}

// The data of a run: training and validation files, the training sampler (U unique tokens x E epochs, the order of
// every sample of the run) and the fixed validation subset. load_train_data also resolves the run plan.
struct TrainData {
    IndexedDataset train_ds, val_ds;
    Sampler sampler, val;
    int64_t val_sequences = 0;  // validation sequences actually used (the file may hold fewer than asked)
};

inline void load_train_data(TrainConfig& tc, TrainData& d, uint32_t objective) {
    d.train_ds.open_or_die(tc.train_data);
    d.val_ds.open_or_die(tc.val_data);
    tc.model_config();  // fail on a bad shape before building the data index
    tc.build_train_sampler(d.sampler, d.train_ds);
    tc.resolve(d.sampler.tokens_per_epoch(), objective);
    std::string err;
    if (!build_validation_sampler(d.val, d.val_ds, tc.seq_len, tc.eval_samples, (uint32_t)tc.eval_seed, &err))
        llmc_die("validation data %s: %s", tc.val_data.c_str(), err.c_str());
    d.val_sequences = d.val.size() < tc.eval_samples ? d.val.size() : tc.eval_samples;
}

// The run's configuration as the first JSONL record (and again after each resume), so a log alone says what
// was trained and how it was validated: objective, shape, parameters (actual and the seed's formula), U, epochs,
// batch, schedule, seed, data, validation set and ELBO draws.
inline void log_config(JsonlLog& log, const TrainConfig& tc, const TrainData& d, size_t num_params, int64_t step) {
    log.write(JsonLine().str("kind", "config").integer("step", step).str("objective", objective_name(tc.objective))
                  .str("model", tc.model).integer("d_model", tc.cfg.d_model).integer("n_layer", tc.cfg.n_layer)
                  .integer("n_head", tc.cfg.n_head).integer("head_dim", tc.cfg.head_dim).integer("ffn", tc.cfg.ffn)
                  .integer("seq_len", tc.seq_len).integer("params", (int64_t)num_params)
                  .num("params_seed_formula", seed_param_count(tc.cfg)).integer("unique_tokens", d.sampler.tokens_per_epoch())
                  .num("epochs", (double)tc.train_samples * tc.seq_len / (double)d.sampler.tokens_per_epoch())
                  .integer("train_samples", tc.train_samples).integer("total_steps", tc.total_steps)
                  .integer("batch", tc.batch).integer("micro_batch", tc.micro_batch).num("lr", tc.lr).num("min_lr", tc.min_lr)
                  .integer("warmup_samples", tc.schedule.warmup_samples).num("weight_decay", tc.weight_decay)
                  .num("dropout", tc.dropout).num("attn_dropout", tc.attn_dropout).num("mdm_eps", tc.mdm_eps)
                  .integer("seed", tc.seed).str("train_data", tc.train_data).str("val_data", tc.val_data)
                  .integer("eval_samples", tc.eval_samples).integer("eval_seed", tc.eval_seed)
                  .integer("mc_samples", tc.mc_samples).integer("stratified", tc.stratified ? 1 : 0)
                  .num("flops_per_token_seed", flops_per_token_seed(tc.cfg))
                  .num("flops_per_token_attention", flops_per_token_with_attention(tc.cfg)));
}

// Creates --ckpt-dir if needed (one error line if impossible).
inline void make_ckpt_dir(const TrainConfig& tc) {
    if (!tc.ckpt_dir.empty() && mkdir(tc.ckpt_dir.c_str(), 0755) != 0 && errno != EEXIST)
        llmc_die("cannot create --ckpt-dir '%s' (%s)", tc.ckpt_dir.c_str(), strerror(errno));
}
