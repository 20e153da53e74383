// train_gpt.cu — the autoregressive (AR) trainer on one GPU: the seed's GPT (Llama-style, causal attention,
// next-token cross-entropy) trained on a Megatron dataset with U unique tokens x E epochs, the seed's AdamW and
// warmup + cosine schedule, periodic validation (mean NLL over a fixed validation subset) with best-so-far
// tracking and checkpoints. dev/cpu/train_cpu.cpp is its CPU twin; train_mdm.cu differs from it in the attention
// mask, the input corruption and the loss only.
//
//   make build/train_gpt && ./build/train_gpt            # "mini" model on the bundled C4 sample, 936 steps
//   ./build/train_gpt --model 140m --seq-len 2048 --batch 256 --micro-batch 8 --lr 2e-4 --min-lr 2e-5
//                     --train-data PREFIX --unique-tokens 100000000 --epochs 50   (the seed's AR best @ 100M)
#include <chrono>                // steady_clock: step timing
#include <cinttypes>             // PRId64
#include "llmc/checkpoint.h"     // checkpoint_load
#include "llmc/eval.h"           // run_validation, LossStats: mean NLL over the fixed validation subset
#include "llmc/logger.h"         // JsonlLog, print_step, step_json
#include "llmc/objective.h"      // make_ar_batch: inputs = y[:, :S], targets = y[:, 1:], weight 1/(B*S)
#include "llmc/train_config.h"   // TrainConfig: the shared flag vocabulary and run plan
#include "llmc/train_loop.h"     // TrainData, TrainProgress, eval/save cadence, report_eval, step_stats, headers
#include "llmc/transformer.cuh"  // Transformer: forward / head / backward / optimizer_step on the GPU

using Clock = std::chrono::steady_clock;
static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int main(int argc, char** argv) {
    TrainConfig tc;
    // One-GPU defaults: the "mini" model (15.9M parameters) on 512-token sequences, 32 sequences per step, 12 epochs
    // over the bundled 1.28M-token C4 sample: 936 steps, 1.6e15 FLOPs in all, so about a minute on an H100 even at
    // a few percent MFU. Twelve passes over the same data give AR room to overfit (the paper's starting point),
    // which the validation NLL and best.ckpt tracking show.
    tc.model = "mini";
    tc.seq_len = 512;
    tc.batch = 32;
    tc.micro_batch = 32;
    tc.epochs = 12;
    tc.lr = 1e-3;
    tc.min_lr = 1e-4;
    tc.eval_every = 100;
    tc.eval_samples = 64;
    double peak_tflops = 0;
    ArgParser args("train_gpt", "Trains the autoregressive transformer on one GPU (bf16, fp32 master weights); "
                                "defaults train the mini model on the bundled C4 sample.");
    tc.add_flags(args);
    args.add_float("peak-tflops", &peak_tflops, "bf16 peak TFLOP/s for MFU (0 = known cards by name, else n/a)", 0, 1e6);
    args.parse(argc, argv);

    // Data: the training sampler fixes U and the order of every sample of the run; the validation set is the
    // first --eval-samples sequences of the shuffled validation data.
    TrainData data;
    load_train_data(tc, data, OBJ_AR);
    const Sampler& sampler = data.sampler;
    const std::string shape_err = gpu_config_error(tc.cfg);  // shapes the CUDA kernels cannot run
    if (!shape_err.empty()) llmc_die("%s", shape_err.c_str());

    // Device and model: parameters, optimizer state and the activation arena for one micro-batch.
    int device_count = 0;
    if (cudaGetDeviceCount(&device_count) != cudaSuccess || device_count == 0)
        llmc_die("no CUDA device found (train_cpu runs the same training on the CPU)");
    cudaCheck(cudaSetDevice(0));
    DevicePeaks peaks = device_peaks();
    if (peak_tflops > 0) peaks.bf16_tflops = peak_tflops;
    Transformer model;
    model.init(tc.cfg, tc.micro_batch);
    TrainProgress prog;
    if (tc.resume.empty()) {
        model.init_weights((uint32_t)tc.seed);
    } else {
        CheckpointHeader h;
        std::vector<float> params, m, v;
        std::string err;
        if (!checkpoint_load(tc.resume.c_str(), &h, &params, &m, &v, &err)) llmc_die("%s", err.c_str());
        prog = resume_progress(tc, h, sampler.fingerprint());
        model.set_state(params.data(), m.data(), v.data());
        printf("resumed    %s at step %" PRId64 " (%" PRId64 " samples consumed)\n", tc.resume.c_str(), prog.step,
               prog.consumed);
    }
    make_ckpt_dir(tc);
    JsonlLog log;
    log.open(tc.log, prog.step > 0);
    printf("device     %s, %d SMs, bf16 peak %s TFLOP/s\n", peaks.name, peaks.sm_count,
           peaks.bf16_tflops > 0 ? std::to_string((int)peaks.bf16_tflops).c_str() : "unknown (MFU n/a; --peak-tflops)");
    tc.print_plan(stdout, model.num_params, sampler.tokens_per_epoch());
    model.print_plan(stdout);
    printf("validation %" PRId64 " sequences of the shuffled validation set\n", data.val_sequences);

    const int S = tc.seq_len, b = tc.micro_batch, N = b * S;
    auto save = [&](const char* name) {
        model.save_checkpoint((tc.ckpt_dir + "/" + name).c_str(), progress_header(tc, prog, sampler.fingerprint()));
    };
    // Validation: mean next-token NLL over the fixed subset, dropout off (llmc/eval.h drives the batches).
    auto run_eval = [&]() {
        Clock::time_point t0 = Clock::now();
        LossStats st = run_validation(data.val, tc.eval_samples, S, b, /*mdm=*/false, 1, false, 0.0f,
                                      (uint32_t)tc.eval_seed, tc.cfg.mask_id,
                                      [&](const int* in, const int* tgt, const float*, int rows, float* row_loss) {
                                          model.eval_row_loss(in, tgt, nullptr, rows, /*causal=*/true, row_loss);
                                      });
        if (report_eval(tc, prog, st, seconds_since(t0), log) && !tc.ckpt_dir.empty()) save("best.ckpt");
    };

    std::vector<int64_t> positions(b);
    std::vector<int> y((size_t)b * (S + 1)), inputs(N), targets(N);
    std::vector<float> weight(N);
    Clock::time_point run_start = Clock::now();
    const int64_t first_step = prog.step, last_step = run_last_step(tc);
    while (prog.step < last_step) {
        Clock::time_point t0 = Clock::now();
        const uint32_t step = (uint32_t)prog.step;  // 0-based: the key of this step's draws
        model.zero_grad();
        model.reset_loss();
        for (int micro = 0; micro < tc.grad_accum; micro++) {
            sampler.micro_batch_or_die(prog.consumed, tc.batch, b, 1, 0, micro, positions.data(), y.data());
            make_ar_batch(inputs.data(), targets.data(), weight.data(), y.data(), b, S);
            // Every draw of this micro-batch is keyed by (seed, step, global sample index): row r uses sample0 + r.
            const StepKeys keys{(uint32_t)tc.seed, step, (uint32_t)positions[0], (float)tc.dropout,
                                (float)tc.attn_dropout};
            model.forward(inputs.data(), b, /*causal=*/true, keys);
            // scale 1/grad_accum: the step's loss and gradient are those of the mean of the micro-batch losses.
            model.head(targets.data(), weight.data(), nullptr, N, 1.0f / tc.grad_accum, /*grad=*/true);
            model.backward();
        }
        const double loss = model.read_loss();
        if (!std::isfinite(loss)) llmc_die("loss is %f at step %u (try a lower --lr)", loss, step + 1);
        const double lr = tc.schedule.lr_for_step(step + 1, tc.batch);
        const double norm = model.optimizer_step((float)lr, (float)tc.beta1, (float)tc.beta2, (float)tc.adam_eps,
                                                 (float)tc.weight_decay, tc.clip, (int)(step + 1));
        if (!std::isfinite(norm)) llmc_die("gradient norm is %f at step %u (try a lower --lr)", norm, step + 1);
        prog.step++;
        prog.consumed += tc.batch;
        StepStats st = step_stats(tc, prog, sampler.epoch_of(prog.consumed), loss, lr, norm, seconds_since(t0),
                                  seconds_since(run_start), first_step, peaks.bf16_tflops * 1e12);
        if (!tc.quiet) print_step(st);
        log.write(step_json(st));
        if (eval_due(tc, prog.step)) run_eval();
        if (save_due(tc, prog.step)) save("model.ckpt");
    }
    printf("done       %" PRId64 " steps in %s; best validation NLL %.4f at step %" PRId64 "\n", prog.step,
           format_duration(seconds_since(run_start)).c_str(), prog.best, prog.best_step);
    model.destroy();
    return 0;
}
