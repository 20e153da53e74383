// llmc/generate_main.h — the program behind build/generate_cpu (dev/cpu/generate_cpu.cpp) and build/generate_gpu
// (generate_gpu.cu): text generation from a checkpoint. The checkpoint's objective picks the sampler
// (llmc/generate.h): AR decodes left to right, MDM unmasks iteratively (--temperature 0 with the default
// --steps/--block is the seed's greedy generator: one token per step, most confident first). Only the model
// (llmc/model_backend.h) differs between the two programs: same flags, same output format.
//
//   ./build/generate_gpu --load ckpt/model.ckpt --prompt "The weather" --length 16
//   ./build/generate_cpu --load mdm.ckpt --length 32 --steps 8 --block 16 --remasking random --temperature 1
#pragma once
#include <algorithm>             // std::min
#include <omp.h>                 // omp_set_num_threads: --threads
#include "args.h"                // ArgParser
#include "generate.h"            // generate_ar / generate_mdm, GenConfig, gen_validate
#include "model_backend.h"       // ModelBackend, load_checkpoint_or_die
#include "tokenizer.h"           // GPT2Tokenizer

// Samples the backend runs in one forward (it splits more): bounds the GPU activation memory at any --samples.
constexpr int GENERATE_ROWS_PER_FORWARD = 8;

// Runs the program with `backend` as the model; returns the exit status (bad input exits with one error line).
inline int generate_main(int argc, char** argv, const char* name, ModelBackend& backend) {
    std::string load, prompt, remasking = "low_confidence", objective = "auto";
    std::string vocab = "dev/data/gpt2-vocab.json", merges = "dev/data/gpt2-merges.txt";
    int length = 16, steps = 0, top_k = 0, block = 0, samples = 1, seed = 0, threads = 0;
    double temperature = 1.0;
    bool print_ids = false;
    const std::string description = std::string("Generates text from a checkpoint (AR or masked diffusion, as the "
                                                "checkpoint says) on ") + backend.device() + " and prints it decoded.";
    ArgParser args(name, description.c_str());
    args.add_string("load", &load, "checkpoint to generate from (required)");
    args.add_string("prompt", &prompt, "text the completion continues (empty: AR starts from <|endoftext|>)");
    args.add_int("length", &length, "tokens to generate", 1);
    args.add_float("temperature", &temperature, "sampling temperature (0 = greedy argmax)", 0, 1e6);
    args.add_int("top-k", &top_k, "AR: sample among the k most likely tokens (0 = all)", 0);
    args.add_int("steps", &steps, "MDM: denoising steps (0 = --length, one token per step)", 0);
    args.add_int("block", &block, "MDM: semi-autoregressive block size (0 = --length, one block)", 0);
    args.add_choice("remasking", &remasking, "low_confidence|random", "MDM: which predictions are kept each step");
    args.add_choice("objective", &objective, "auto|ar|mdm", "require a checkpoint of this objective");
    args.add_int("seed", &seed, "sampling seed", 0);
    args.add_int("samples", &samples, "independent samples to draw", 1, 4096);
    args.add_flag("print-ids", &print_ids, "after each sample's text, a line '--- ids B: ID ...' of its generated tokens");
    args.add_string("vocab", &vocab, "GPT-2 vocab.json");
    args.add_string("merges", &merges, "GPT-2 merges.txt");
    args.add_int("threads", &threads, "OpenMP threads (0 = all cores)", 0, 1024);
    args.parse(argc, argv);
    if (load.empty()) llmc_die("--load CKPT is required");
    if (threads > 0) omp_set_num_threads(threads);

    const LoadedCheckpoint ck = load_checkpoint_or_die(load);
    const CheckpointHeader& h = ck.h;
    const ModelConfig& cfg = ck.cfg;
    const bool mdm = ck.mdm;
    if (objective != "auto" && objective != objective_name(h.objective))
        llmc_die("checkpoint '%s' is an %s model, --objective asks for %s", load.c_str(), objective_name(h.objective),
                 objective.c_str());
    if (!mdm && (steps != 0 || block != 0))
        llmc_die("--steps and --block apply to MDM checkpoints; '%s' is an AR model", load.c_str());
    if (mdm && top_k != 0) llmc_die("--top-k applies to AR checkpoints; '%s' is an MDM model", load.c_str());

    GPT2Tokenizer tok;
    std::string err;
    if (!tok.try_load(vocab.c_str(), merges.c_str(), &err)) llmc_die("%s", err.c_str());
    if (cfg.vocab_size != tok.vocab_size())
        llmc_die("checkpoint '%s' has vocab_size %d, the tokenizer has %d", load.c_str(), cfg.vocab_size,
                 tok.vocab_size());
    std::vector<int> ids;
    if (!tok.encode(prompt.data(), prompt.size(), ids, &err)) llmc_die("--prompt: %s", err.c_str());
    const bool eod_start = !mdm && ids.empty();  // the seed's convention for an empty AR context
    if (eod_start) ids.push_back(tok.eod_id());

    GenConfig g;
    g.seq_len = cfg.seq_len; g.padded_vocab = cfg.padded_vocab; g.vocab = cfg.vocab_size; g.mask_id = cfg.mask_id;
    g.length = length; g.temperature = temperature; g.top_k = top_k; g.steps = steps; g.block = block;
    g.random_remasking = remasking == "random"; g.seed = (uint32_t)seed;
    err = gen_validate(g, (int)ids.size(), mdm);
    if (!err.empty()) llmc_die("%s", err.c_str());

    backend.load(cfg, ck.params, std::min(samples, GENERATE_ROWS_PER_FORWARD));
    std::vector<int> sel;
    LogitsFn fn = [&](const int* tokens, int B, int S, int lo, int hi, float* logits) {
        sel.clear();
        for (int b = 0; b < B; b++)
            for (int p = lo; p < hi; p++) sel.push_back(b * S + p);  // increasing, as the backends require
        backend.logits(tokens, B, !mdm, sel.data(), (int)sel.size(), logits);
    };
    const std::vector<int> out = mdm ? generate_mdm(fn, g, ids, samples) : generate_ar(fn, g, ids, samples);

    printf("model      %s checkpoint '%s' (step %lld, d_model %d, %d layers, context %d)\n", objective_name(h.objective),
           load.c_str(), (long long)h.step, cfg.d_model, cfg.n_layer, cfg.seq_len);
    if (mdm)
        printf("sampler    mdm: %d tokens, %d steps, block %d, %s remasking, temperature %g, seed %d\n", length,
               steps ? steps : length, block ? block : length, remasking.c_str(), temperature, seed);
    else
        printf("sampler    ar: %d tokens, temperature %g, top-k %d, seed %d\n", length, temperature, top_k, seed);
    const std::string head = tok.decode_utf8(ids.data() + (eod_start ? 1 : 0), ids.size() - (eod_start ? 1 : 0));
    for (int b = 0; b < samples; b++) {
        const int* gen = out.data() + (size_t)b * length;
        printf("--- sample %d\n%s%s\n", b, head.c_str(), tok.decode_utf8(gen, length).c_str());
        if (print_ids) {
            printf("--- ids %d:", b);
            for (int i = 0; i < length; i++) printf(" %d", gen[i]);
            printf("\n");
        }
    }
    return 0;
}
