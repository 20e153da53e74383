// llmc/eval_main.h — the program behind build/eval_cpu (dev/cpu/eval_cpu.cpp) and build/eval_gpu (eval_gpu.cu):
// stand-alone evaluation of a checkpoint (seed_spec §4): validation loss (AR mean NLL and perplexity, or the MDM
// Monte-Carlo ELBO +- its standard error) on the first N shuffled validation sequences, and zero-shot
// multiple-choice accuracy on JSONL tasks (llmc/downstream.h). Only the model (llmc/model_backend.h) differs
// between the two programs: same flags, same output.
//
//   ./build/eval_gpu --load ckpt/best.ckpt                           # validation on the bundled C4 sample
//   ./build/eval_cpu --load ckpt/best.ckpt --task dev/data/tasks/capitals.jsonl --task ...
#pragma once
#include <cinttypes>             // PRId64
#include <omp.h>                 // omp_set_num_threads: --threads
#include "args.h"                // ArgParser, take_repeated_flag: --task repeats
#include "dataset.h"             // IndexedDataset: the validation set
#include "downstream.h"          // load_task, tokenize_task, score_task, restricted_logp
#include "eval.h"                // run_validation, LossStats, perplexity
#include "model_backend.h"       // ModelBackend, load_checkpoint_or_die
#include "sampler.h"             // build_validation_sampler
#include "tokenizer.h"           // GPT2Tokenizer (tasks)

// Runs the program with `backend` as the model; returns the exit status (bad input exits with one error line).
inline int eval_main(int argc, char** argv, const char* name, ModelBackend& backend) {
    std::string load, val_data, vocab = "dev/data/gpt2-vocab.json", merges = "dev/data/gpt2-merges.txt", task_help;
    std::string objective, scores_out;
    int64_t eval_samples = 64, eval_seed = 1234;
    int mc_samples = -1, micro_batch = 8, threads = 0;
    double mdm_eps = 1e-3;
    bool stratified = false;
    const std::string description = std::string("Evaluates a checkpoint on ") + backend.device() +
                                    ": validation NLL / MC-ELBO on a dataset (default when no --task), and "
                                    "multiple-choice accuracy on JSONL task files.";
    ArgParser args(name, description.c_str());
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
    args.add_string("scores-out", &scores_out, "also write every task choice's score to this file, one line "
                                               "'TASK<tab>EXAMPLE<tab>CHOICE<tab>SCORE' (to compare evaluators)");
    args.add_string("vocab", &vocab, "GPT-2 vocab.json (tasks)");
    args.add_string("merges", &merges, "GPT-2 merges.txt (tasks)");
    args.add_int("threads", &threads, "OpenMP threads (0 = all cores)", 0, 1024);
    std::vector<std::string> tasks;
    std::vector<char*> rest = take_repeated_flag(argc, argv, "task", tasks);
    args.parse((int)rest.size(), rest.data());
    if (threads > 0) omp_set_num_threads(threads);
    if (load.empty()) llmc_die("--load CHECKPOINT is required");
    if (mc_samples != -1 && mc_samples < 1) llmc_die("flag --mc-samples: K must be >= 1, got %d", mc_samples);
    const bool do_val = tasks.empty() || !val_data.empty();
    if (val_data.empty()) val_data = "dev/data/c4_val";

    const LoadedCheckpoint ck = load_checkpoint_or_die(load);
    const CheckpointHeader& h = ck.h;
    const ModelConfig& cfg = ck.cfg;
    if (!objective.empty() && objective != objective_name(h.objective))
        llmc_die("checkpoint '%s' is an %s model, --objective is %s", load.c_str(), objective_name(h.objective),
                 objective.c_str());
    if (cfg.vocab_size != GPT2_VOCAB)
        llmc_die("checkpoint '%s' has vocab_size %d, this program evaluates GPT-2 models (%d)", load.c_str(),
                 cfg.vocab_size, GPT2_VOCAB);
    validate_config(cfg);
    const bool mdm = ck.mdm;
    const int S = cfg.seq_len;
    const size_t Vp = (size_t)cfg.padded_vocab;
    backend.load(cfg, ck.params, micro_batch);
    printf("checkpoint %s: %s model, d_model %d, %d layers, S %d, step %" PRId64 "\n", load.c_str(),
           objective_name(h.objective), cfg.d_model, cfg.n_layer, S, h.step);

    if (do_val) {
        const int K = mdm ? (mc_samples > 0 ? mc_samples : 8) : 1;
        IndexedDataset ds;
        std::string err;
        if (!ds.open(val_data, GPT2_VOCAB, &err)) llmc_die("%s", err.c_str());
        Sampler val;
        if (!build_validation_sampler(val, ds, S, eval_samples, (uint32_t)eval_seed, &err))
            llmc_die("validation data %s: %s", val_data.c_str(), err.c_str());
        LossStats st = run_validation(val, eval_samples, S, micro_batch, mdm, K, stratified, (float)mdm_eps,
                                      (uint32_t)eval_seed, cfg.mask_id,
                                      [&](const int* in, const int* tgt, const float* w, int rows, float* row_loss) {
                                          backend.row_loss(in, tgt, w, rows, !mdm, row_loss);
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
        std::string err;
        for (size_t i = 0; i < tasks.size(); i++)
            if (!load_task(tasks[i].c_str(), parsed[i], &err)) llmc_die("%s", err.c_str());
        GPT2Tokenizer tok;
        tok.load(vocab.c_str(), merges.c_str());
        FILE* scores = scores_out.empty() ? nullptr : fopen_or_die(scores_out.c_str(), "w");
        ScoreOptions o;
        o.seq_len = S;
        o.micro_batch = micro_batch;
        o.mdm = mdm;
        o.mc_samples = mc_samples > 0 ? mc_samples : 32;
        o.seed = (uint32_t)eval_seed;
        o.mask_id = cfg.mask_id;
        // Only the positions that score a token (target >= 0) need logits: the backend returns just those rows.
        std::vector<int> sel;
        std::vector<float> logits;
        auto logp = [&](const int* in, const int* tgt, int rows, float* out) {
            sel.clear();
            for (int n = 0; n < rows * S; n++)
                if (tgt[n] >= 0) sel.push_back(n);
            if (sel.empty()) return;  // an MDM draw that masked no continuation token scores nothing
            logits.resize(sel.size() * Vp);
            backend.logits(in, rows, !mdm, sel.data(), (int)sel.size(), logits.data());
#pragma omp parallel for schedule(static)
            for (size_t j = 0; j < sel.size(); j++)
                out[sel[j]] = restricted_logp(logits.data() + j * Vp, GPT2_VOCAB, tgt[sel[j]]);
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
            for (size_t i = 0; scores && i < ts.scores.size(); i++)
                for (size_t c = 0; c < ts.scores[i].size(); c++)
                    fprintf(scores, "%s\t%zu\t%zu\t%.9g\n", t.path.c_str(), i, c, ts.scores[i][c]);
        }
        if (scores && fclose(scores) != 0) llmc_die("cannot write '%s'", scores_out.c_str());
    }
    return 0;
}
