// dev/cpu/eval_cpu.cpp — stand-alone evaluation of a checkpoint with the CPU reference model (seed_spec §4):
// validation loss (AR mean NLL and perplexity, or the MDM Monte-Carlo ELBO +- its standard error) on the first N
// shuffled validation sequences, and zero-shot multiple-choice accuracy on JSONL tasks (llmc/downstream.h).
//
//   ./build/eval_cpu --load ckpt/best.ckpt                           # validation on the bundled C4 sample
//   ./build/eval_cpu --load ckpt/best.ckpt --task dev/data/tasks/capitals.jsonl --task ...
#include <cinttypes>
#include <omp.h>
#include "dev/cpu/reference.h"  // ref::Model
#include "llmc/args.h"
#include "llmc/checkpoint.h"
#include "llmc/dataset.h"
#include "llmc/downstream.h"
#include "llmc/eval.h"
#include "llmc/sampler.h"
#include "llmc/tokenizer.h"

int main(int argc, char** argv) {
    std::string load, val_data, vocab = "dev/data/gpt2-vocab.json", merges = "dev/data/gpt2-merges.txt", task_help;
    std::string objective;
    int64_t eval_samples = 64, eval_seed = 1234;
    int mc_samples = -1, micro_batch = 8, threads = 0;
    double mdm_eps = 1e-3;
    bool stratified = false;
    ArgParser args("eval_cpu", "Evaluates a checkpoint: validation NLL / MC-ELBO on a dataset (default when no --task), "
                               "and multiple-choice accuracy on JSONL task files.");
    args.add_string("load", &load, "checkpoint to evaluate (required)");
    args.add_choice("objective", &objective, "ar|mdm", "refuse a checkpoint of the other objective (default: any)");
    args.add_string("val-data", &val_data, "validation dataset prefix (default dev/data/c4_val when no --task is given)");
    args.add_int("eval-samples", &eval_samples, "validation sequences: the first N of the shuffled validation set", 1);
    args.add_int("eval-seed", &eval_seed, "seed of the validation order and of the Monte-Carlo draws", 0, 0xffffffffLL);
    args.add_int("mc-samples", &mc_samples, "MDM: Monte-Carlo draws K (default 8 for validation, 32 for tasks)", INT32_MIN, 4096);
    args.add_flag("stratified", &stratified, "MDM validation: stratified t_k = (u + k/K) mod 1 (tasks always are)");
    args.add_float("mdm-eps", &mdm_eps, "MDM validation: minimum masking probability (tasks use 0, as the seed)", 0, 1);
    args.add_int("micro-batch", &micro_batch, "sequences per forward", 1, 1 << 20);
    args.add_string("task", &task_help, "multiple-choice task file (JSONL, dev/data/tasks/README.md); repeatable");
    args.add_string("vocab", &vocab, "GPT-2 vocab.json (tasks)");
    args.add_string("merges", &merges, "GPT-2 merges.txt (tasks)");
    args.add_int("threads", &threads, "OpenMP threads (0 = all cores)", 0, 1024);
    // --task may repeat, which ArgParser does not support: collect every occurrence first.
    std::vector<std::string> tasks;
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--task")) {
            if (i + 1 >= argc) llmc_die("flag --task needs a value");
            tasks.push_back(argv[++i]);
        } else if (!strncmp(argv[i], "--task=", 7)) {
            tasks.push_back(argv[i] + 7);
        } else {
            rest.push_back(argv[i]);
        }
    }
    args.parse((int)rest.size(), rest.data());
    if (threads > 0) omp_set_num_threads(threads);
    if (load.empty()) llmc_die("--load CHECKPOINT is required");
    if (mc_samples != -1 && mc_samples < 1) llmc_die("flag --mc-samples: K must be >= 1, got %d", mc_samples);
    const bool do_val = tasks.empty() || !val_data.empty();
    if (val_data.empty()) val_data = "dev/data/c4_val";

    CheckpointHeader h;
    std::vector<float> params;
    std::string err;
    if (!checkpoint_load(load.c_str(), &h, &params, nullptr, nullptr, &err)) llmc_die("%s", err.c_str());
    if (!objective.empty() && objective != objective_name(h.objective))
        llmc_die("checkpoint '%s' is an %s model, --objective is %s", load.c_str(), objective_name(h.objective),
                 objective.c_str());
    const ModelConfig cfg = checkpoint_config(h);
    if (cfg.vocab_size != GPT2_VOCAB)
        llmc_die("checkpoint '%s' has vocab_size %d, this program evaluates GPT-2 models (%d)", load.c_str(),
                 cfg.vocab_size, GPT2_VOCAB);
    validate_config(cfg);
    const bool mdm = h.objective == OBJ_MDM;
    const int S = cfg.seq_len;
    ref::Model<float> model(cfg);
    model.params = params;
    const ref::StepKeys keys{(uint32_t)eval_seed, 0, 0, 0.0f, 0.0f};  // dropout 0: eval mode
    printf("checkpoint %s: %s model, d_model %d, %d layers, S %d, step %" PRId64 "\n", load.c_str(),
           objective_name(h.objective), cfg.d_model, cfg.n_layer, S, h.step);

    if (do_val) {
        const int K = mdm ? (mc_samples > 0 ? mc_samples : 8) : 1;
        IndexedDataset ds;
        if (!ds.open(val_data, GPT2_VOCAB, &err)) llmc_die("%s", err.c_str());
        Sampler val;
        if (!build_validation_sampler(val, ds, S, eval_samples, (uint32_t)eval_seed, &err))
            llmc_die("validation data %s: %s", val_data.c_str(), err.c_str());
        LossStats st = run_validation(val, eval_samples, S, micro_batch, mdm, K, stratified, (float)mdm_eps,
                                      (uint32_t)eval_seed, cfg.mask_id,
                                      [&](const int* in, const int* tgt, const float* w, int rows, float* row_loss) {
                                          model.forward(in, tgt, w, rows, !mdm, keys);
                                          std::copy(model.row_loss.begin(), model.row_loss.begin() + (size_t)rows * S,
                                                    row_loss);
                                      });
        if (mdm)
            printf("val %s: %" PRId64 " sequences | ELBO %.4f +- %.4f nats/token (K=%d%s)\n", val_data.c_str(),
                   st.sequences(), st.mean(), st.mc_stderr(), K, stratified ? ", stratified" : "");
        else
            printf("val %s: %" PRId64 " sequences | NLL %.4f nats/token | ppl %.2f\n", val_data.c_str(), st.sequences(),
                   st.mean(), perplexity(st.mean()));
    }

    if (!tasks.empty()) {
        // Parse every task before the (slow) scoring, so a malformed file fails at once.
        std::vector<Task> parsed(tasks.size());
        for (size_t i = 0; i < tasks.size(); i++)
            if (!load_task(tasks[i].c_str(), parsed[i], &err)) llmc_die("%s", err.c_str());
        GPT2Tokenizer tok;
        tok.load(vocab.c_str(), merges.c_str());
        ScoreOptions o;
        o.seq_len = S;
        o.micro_batch = micro_batch;
        o.mdm = mdm;
        o.mc_samples = mc_samples > 0 ? mc_samples : 32;
        o.seed = (uint32_t)eval_seed;
        o.mask_id = cfg.mask_id;
        std::vector<int> safe_tgt;
        std::vector<float> zero_w;
        auto logp = [&](const int* in, const int* tgt, int rows, float* out) {
            const size_t N = (size_t)rows * S;
            safe_tgt.assign(tgt, tgt + N);
            for (int& t : safe_tgt) t = t < 0 ? 0 : t;
            zero_w.assign(N, 0.0f);
            model.forward(in, safe_tgt.data(), zero_w.data(), rows, !mdm, keys);
#pragma omp parallel for schedule(static)
            for (size_t n = 0; n < N; n++)
                if (tgt[n] >= 0) out[n] = restricted_logp(model.logits.data() + n * cfg.padded_vocab, GPT2_VOCAB, tgt[n]);
        };
        for (const Task& t : parsed) {
            std::vector<McExample> exs;
            if (!tokenize_task(t, tok, exs, &err)) llmc_die("%s", err.c_str());
            TaskScore ts = score_task(exs, o, logp);
            printf("task %s: %d examples | acc %.4f +- %.4f | acc_norm %.4f +- %.4f", t.path.c_str(), ts.n, ts.acc(),
                   ts.stderr_of(ts.acc()), ts.acc_norm(), ts.stderr_of(ts.acc_norm()));
            if (mdm) printf(" (MDM mc, K=%d stratified)", o.mc_samples);
            printf("\n");
            fflush(stdout);
        }
    }
    return 0;
}
