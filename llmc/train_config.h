// llmc/train_config.h — the flag vocabulary every trainer shares (design.md §8) and the run plan derived from
// it: model shape, data subset (U unique tokens x E epochs), batch and accumulation, steps, LR schedule.
// train_cpu, train_gpt and train_mdm all parse their flags here, so one flag means one thing everywhere.
#pragma once
#include <cinttypes>
#include <cstdio>
#include <string>
#include "args.h"
#include "checkpoint.h"
#include "config.h"
#include "mdm.h"
#include "sampler.h"
#include "schedule.h"

struct TrainConfig {
    // model
    std::string model = "tiny";
    int d_model = 0, n_layer = 0, n_head = 0, head_dim = 0, ffn = 0;  // 0 = the preset's value
    int seq_len = 2048;
    // data
    std::string train_data = "dev/data/c4_train", val_data = "dev/data/c4_val";
    int64_t unique_tokens = 0;  // U, 0 = the whole training file
    std::string subset = "exact";
    double epochs = 1.0;
    int64_t steps = 0;          // 0 = from U x epochs
    // batch
    int batch = 256, micro_batch = 8;
    // optimizer and schedule (seed_spec §2.1-2.2)
    double lr = 2e-4, min_lr = 2e-5, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8, clip = 1.0;
    int64_t warmup_samples = -1;  // -1 = train_samples / 100 as the seed
    // regularisation
    double dropout = 0.1, attn_dropout = 0.1;
    // MDM
    double mdm_eps = 1e-3;
    double ar_ratio = 0.0, low_noise_ratio = 0.5;
    bool low_noise_start = false;
    int64_t low_noise_iter = 1000;
    // evaluation
    int64_t eval_every = 100, eval_samples = 64, eval_seed = 1234;
    int mc_samples = 8;
    bool stratified = false;
    // run
    int64_t seed = 1234, save_every = 0, stop_at = 0;
    std::string ckpt_dir, resume, log;
    bool quiet = false;

    // Derived by resolve().
    ModelConfig cfg;
    uint32_t objective = OBJ_AR;
    int grad_accum = 1;
    int64_t train_samples = 0, total_steps = 0;
    LrSchedule schedule;

    void add_flags(ArgParser& p) {
        p.add_string("model", &model, "model preset from the seed's size table (e.g. 140m, 425m) or tiny/mini");
        p.add_int("d-model", &d_model, "override hidden size h (0 = preset)", 0, 65536);
        p.add_int("n-layer", &n_layer, "override layers L (0 = preset)", 0, 1024);
        p.add_int("n-head", &n_head, "override heads n (0 = preset)", 0, 1024);
        p.add_int("head-dim", &head_dim, "override head dim / kv-channels (0 = preset)", 0, 1024);
        p.add_int("ffn", &ffn, "override SwiGLU hidden F (0 = floor(h/24)*64, the seed's rule)", 0, 1 << 20);
        p.add_int("seq-len", &seq_len, "sequence length S", 2, 1 << 16);
        p.add_string("train-data", &train_data, "training dataset prefix (PREFIX.bin/.idx, Megatron mmap format)");
        p.add_string("val-data", &val_data, "validation dataset prefix");
        p.add_int("unique-tokens", &unique_tokens, "U: unique training tokens taken from the start (0 = all)", 0);
        p.add_choice("subset", &subset, "exact|docs", "U exactly (last document cut) or whole documents (>= U)");
        p.add_float("epochs", &epochs, "E: passes over the U unique tokens; sets the run length only when --steps is 0", 1e-6, 1e9);
        p.add_int("steps", &steps, "optimizer steps (0 = floor(U*E/S) / batch)", 0);
        p.add_int("batch", &batch, "global batch in sequences per optimizer step", 1, 1 << 24);
        p.add_int("micro-batch", &micro_batch, "sequences per forward/backward (gradient accumulation fills the batch)", 1, 1 << 20);
        p.add_float("lr", &lr, "peak learning rate", 0, 10);
        p.add_float("min-lr", &min_lr, "final learning rate of the cosine", 0, 10);
        p.add_int("warmup-samples", &warmup_samples, "linear warmup length in samples (-1 = 1% of training samples)", -1);
        p.add_float("weight-decay", &weight_decay, "AdamW decoupled weight decay on 2-D weights", 0, 10);
        p.add_float("beta1", &beta1, "AdamW beta1", 0, 0.999999);
        p.add_float("beta2", &beta2, "AdamW beta2", 0, 0.999999);
        p.add_float("adam-eps", &adam_eps, "AdamW epsilon", 0, 1);
        p.add_float("clip", &clip, "global gradient-norm clip (0 = off)", 0, 1e9);
        p.add_float("dropout", &dropout, "hidden dropout: embedding and both residual branches", 0, 0.99);
        p.add_float("attn-dropout", &attn_dropout, "attention-probability dropout", 0, 0.99);
        // eps > 0: at t = 0 a masked token would otherwise weigh 1/p = inf
        p.add_float("mdm-eps", &mdm_eps, "MDM: minimum masking probability, p = (1-eps) t + eps", 1e-6, 1);
        p.add_float("ar-ratio", &ar_ratio, "MDM: probability of suffix masking per training sequence (seed option)", 0, 1);
        p.add_flag("low-noise-start", &low_noise_start, "MDM: scale t by --low-noise-ratio for the first --low-noise-iter steps");
        p.add_int("low-noise-iter", &low_noise_iter, "MDM: steps of the low-noise start", 0, 0xffffffffLL);
        p.add_float("low-noise-ratio", &low_noise_ratio, "MDM: factor on t during the low-noise start", 0, 1);
        p.add_int("eval-every", &eval_every, "validate every N steps (0 = only at the end)", 0);
        p.add_int("eval-samples", &eval_samples, "validation sequences: the first N of the shuffled validation set", 1);
        p.add_int("mc-samples", &mc_samples, "MDM: Monte-Carlo draws K per validation sequence for the ELBO", 1, 4096);
        p.add_flag("stratified", &stratified, "MDM: stratified t_k = (u + k/K) mod 1 instead of independent t");
        p.add_int("eval-seed", &eval_seed, "seed of the validation order and ELBO draws", 0, 0xffffffffLL);
        p.add_int("seed", &seed, "seed of init, data order, dropout and masks", 0, 0xffffffffLL);
        p.add_string("ckpt-dir", &ckpt_dir, "directory for model.ckpt (latest) and best.ckpt (empty = no checkpoints)");
        p.add_int("save-every", &save_every, "checkpoint every N steps (0 = at evaluations and the end)", 0);
        p.add_int("stop-at", &stop_at, "stop (with a checkpoint) after step N of the planned run; resume later (0 = run to the end)", 0);
        p.add_string("resume", &resume, "checkpoint to resume from (model, optimizer, step, data cursor)");
        p.add_string("log", &log, "JSONL log file (empty = none)");
        p.add_flag("quiet", &quiet, "no per-step progress lines");
    }

    // Model shape from the preset and overrides; dies naming the first invalid value.
    ModelConfig model_config() const {
        ModelConfig c = model_preset(model.c_str(), seq_len);
        if (d_model) { c.d_model = d_model; c.ffn = swiglu_ffn_size(d_model); }
        if (n_layer) c.n_layer = n_layer;
        if (n_head) c.n_head = n_head;
        if (head_dim) c.head_dim = head_dim;
        if (ffn) c.ffn = ffn;
        validate_config(c);
        return c;
    }

    // Derives the plan once the training set's token count T (after the U subset) is known.
    void resolve(int64_t tokens_per_epoch, uint32_t obj) {  // (not const: clamps micro_batch to batch)
        objective = obj;
        cfg = model_config();
        if (micro_batch > batch) micro_batch = batch;  // a batch smaller than the default micro-batch is one micro-batch
        if (batch % micro_batch != 0)
            llmc_die("--batch %d is not a multiple of --micro-batch %d", batch, micro_batch);
        grad_accum = batch / micro_batch;
        if (steps > 0) {
            total_steps = steps;
            train_samples = steps * (int64_t)batch;
        } else {
            train_samples = samples_for_epochs(tokens_per_epoch, epochs, seq_len);  // the seed's TRAIN_SAMPLES
            total_steps = train_samples / batch;  // the seed drops a partial last batch
            if (total_steps < 1)
                llmc_die("%" PRId64 " tokens x %g epochs give %" PRId64 " samples of %d tokens: less than one batch of %d"
                         " (raise --epochs or lower --batch)", tokens_per_epoch, epochs, train_samples, seq_len, batch);
        }
        if (min_lr > lr) llmc_die("--min-lr %g is above --lr %g", min_lr, lr);
        schedule = seed_schedule(lr, min_lr, train_samples);
        if (warmup_samples >= 0) schedule.warmup_samples = warmup_samples;
        if (schedule.warmup_samples > schedule.decay_samples)
            llmc_die("--warmup-samples %" PRId64 " exceeds the %" PRId64 " training samples", warmup_samples, train_samples);
    }

    // Micro-batches each of `world` data-parallel ranks runs per optimizer step (the global batch is
    // micro_batch x accum x world). Only meaningful after resolve(), which derives grad_accum: dies if called before.
    int accum_per_rank(int world) const {
        if (total_steps < 1) llmc_die("internal: accum_per_rank() before resolve() (grad_accum not derived yet)");
        if (grad_accum % world != 0) {
            int fit = 0;  // the largest micro-batch <= the current one that gives each rank whole micro-batches
            for (int m = micro_batch; m >= 1 && batch % world == 0 && !fit; m--)
                if ((batch / world) % m == 0) fit = m;
            llmc_die("--batch %d is not a multiple of --micro-batch %d x %d ranks%s", batch, micro_batch, world,
                     fit ? (" (try --micro-batch " + std::to_string(fit) + ")").c_str() : "");
        }
        return grad_accum / world;
    }

    // The seed's optional MDM corruption variants (llmc/mdm.h), off by default.
    MdmOptions mdm_options() const {
        MdmOptions o;
        o.ar_ratio = (float)ar_ratio;
        o.low_noise = low_noise_start;
        o.low_noise_iters = (uint32_t)low_noise_iter;
        o.low_noise_ratio = (float)low_noise_ratio;
        return o;
    }

    // The training sampler's configuration; build it first, then resolve() with its tokens_per_epoch().
    SamplerConfig sampler_config() const {
        SamplerConfig s;
        s.unique_tokens = unique_tokens;
        s.subset = subset == "docs" ? SUBSET_WHOLE_DOCS : SUBSET_EXACT;
        s.seq_len = seq_len;
        s.num_samples = steps > 0 ? steps * (int64_t)batch : 0;  // else floor(T*epochs/S), as resolve() computes
        s.epochs = epochs;
        s.seed = (uint32_t)seed;
        return s;
    }

    // Builds the training sampler (the data order of the whole run); dies naming the flags that produced it.
    void build_train_sampler(Sampler& sampler, const IndexedDataset& ds) const {
        std::string err;
        if (!sampler.build(ds, sampler_config(), &err))
            llmc_die("training data %s (--unique-tokens %" PRId64 ", --epochs %g, --steps %" PRId64 ", --seq-len %d): %s",
                     train_data.c_str(), unique_tokens, epochs, steps, seq_len, err.c_str());
    }

    void print_plan(FILE* f, size_t num_params, int64_t tokens_per_epoch) const {
        fprintf(f, "model      %s: h %d, L %d, heads %d x %d, ffn %d, S %d, vocab %d (padded %d): %.2fM parameters "
                   "(seed formula %.2fM)\n", model.c_str(), cfg.d_model, cfg.n_layer, cfg.n_head, cfg.head_dim, cfg.ffn,
                cfg.seq_len, cfg.vocab_size, cfg.padded_vocab, num_params / 1e6, seed_param_count(cfg) / 1e6);
        fprintf(f, "objective  %s%s\n", objective_name(objective),
                objective == OBJ_MDM ? " (bidirectional, p = (1-eps)t + eps, loss = sum masked CE/p / (B*S))"
                                     : " (causal, next-token CE)");
        fprintf(f, "data       %s: U = %" PRId64 " unique tokens, %g epochs -> %" PRId64 " samples of %d+1 tokens\n",
                train_data.c_str(), tokens_per_epoch, (double)train_samples * seq_len / tokens_per_epoch,
                train_samples, seq_len);
        fprintf(f, "batch      %d sequences = %d micro-batches of %d; %" PRId64 " steps\n", batch, grad_accum,
                micro_batch, total_steps);
        fprintf(f, "optimizer  AdamW lr %g -> %g cosine, warmup %" PRId64 " samples, betas (%g, %g), eps %g, wd %g, "
                   "clip %g; dropout %g / attention %g\n", lr, min_lr, schedule.warmup_samples, beta1, beta2, adam_eps,
                weight_decay, clip, dropout, attn_dropout);
        fprintf(f, "compute    %.3g FLOPs (6ND, seed convention), %.3g with attention\n",
                flops_per_token_seed(cfg) * (double)train_samples * seq_len,
                flops_per_token_with_attention(cfg) * (double)train_samples * seq_len);
    }
};
