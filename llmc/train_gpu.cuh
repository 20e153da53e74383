// llmc/train_gpu.cuh — the part of a GPU training run that does not depend on the objective, so train_gpt.cu
// and train_mdm.cu contain only what differs: flags and data, the device and the model, resuming, the plan
// printout, and after each step the optimizer, progress line, JSONL record, validation and checkpoints. A
// trainer's loop is then: begin_step(); per micro-batch of this rank: micro_batch(), build the batch, forward,
// head, backward; end_step().
//
// Data parallel: started by mpirun / srun with W processes (llmc/data_parallel.cuh), each rank takes its slice of
// every global batch in the seed's sample order (the same samples, masks and dropout as one GPU: every draw is
// keyed by global sample index), ZeRO-1 shards the optimizer, validation batches are dealt round-robin to the
// ranks, and rank 0 prints, logs and writes checkpoints.
#pragma once
#include <chrono>                // steady_clock: step timing
#include <cinttypes>             // PRId64
#include <functional>            // std::function: the objective's validation pass
#include "cuda_common.cuh"       // cudaCheck, DevicePeaks
#include "data_parallel.cuh"     // GpuDist: ranks, device choice, NCCL collectives
#include "logger.h"              // JsonlLog, print_step, step_json
#include "train_config.h"        // TrainConfig: the shared flag vocabulary and run plan
#include "train_loop.h"          // TrainData, TrainProgress, eval/save cadence, report_eval, checkpoint headers
#include "transformer.cuh"       // Transformer: forward / head / backward / optimizer_step on the GPU

// One-GPU defaults of both trainers: the "mini" model (15.9M parameters) on 512-token sequences, 32 sequences per
// step, over the bundled 1.28M-token C4 sample, lr 1e-3 -> 1e-4, validation every 100 steps on 64 sequences.
inline void set_one_gpu_defaults(TrainConfig& tc) {
    tc.model = "mini";
    tc.seq_len = 512;
    tc.batch = 32;
    tc.micro_batch = 32;
    tc.lr = 1e-3;
    tc.min_lr = 1e-4;
    tc.eval_every = 100;
    tc.eval_samples = 64;
}

struct GpuRun {
    using Clock = std::chrono::steady_clock;
    TrainConfig tc;              // set a trainer's defaults here before setup()
    GpuDist dist;
    int accum = 1;               // micro-batches per rank per step: tc.grad_accum / world
    TrainData data;
    Transformer model;
    TrainProgress prog;
    JsonlLog log;
    DevicePeaks peaks{};
    Clock::time_point run_start, step_start;
    int64_t first_step = 0, last_step = 0;

    static double seconds_since(Clock::time_point t) {
        return std::chrono::duration<double>(Clock::now() - t).count();
    }

    // Parses the flags, loads the data (U unique tokens x E epochs; the fixed validation subset), checks the
    // shape against the kernels, allocates the model and initialises it (seed init or --resume), prints the plan.
    // extra_flags: a trainer's own flags (objective-specific), added after the shared ones.
    void setup(int argc, char** argv, uint32_t objective, const char* name, const char* description,
               const std::function<void(ArgParser&)>& extra_flags = nullptr) {
        double peak_tflops = 0;
        std::string dist_init = "auto";
        bool force_nccl = false;
        ArgParser args(name, description);
        tc.add_flags(args);
        if (extra_flags) extra_flags(args);
        args.add_float("peak-tflops", &peak_tflops, "bf16 peak TFLOP/s for MFU (0 = known cards by name, else n/a)", 0, 1e6);
        args.add_string("dist-init", &dist_init, "multi-GPU: how rank 0's NCCL id reaches the others: auto, mpi, "
                                                 "file:PATH (shared filesystem) or tcp:HOST:PORT (rank 0's host)");
        args.add_flag("nccl", &force_nccl, "use the NCCL data-parallel path even with one process (testing)");
        args.parse(argc, argv);
        dist.init(dist_init, force_nccl);
        if (!dist.root()) {  // rank 0 prints and logs for all
            if (!freopen("/dev/null", "w", stdout)) llmc_die("cannot silence stdout of rank %d", dist.rank());
            tc.log.clear();
        }
        load_train_data(tc, data, objective);  // resolves the plan: grad_accum, steps, schedule
        accum = tc.accum_per_rank(dist.world());
        const std::string shape_err = gpu_config_error(tc.cfg);  // shapes the CUDA kernels cannot run
        if (!shape_err.empty()) llmc_die("%s", shape_err.c_str());

        peaks = device_peaks();
        if (peak_tflops > 0) peaks.bf16_tflops = peak_tflops;
        model.init(tc.cfg, tc.micro_batch, &dist);
        if (tc.resume.empty()) {
            model.init_weights((uint32_t)tc.seed);
        } else {
            CheckpointHeader h;
            std::vector<float> params, m, v;
            std::string err;
            if (!checkpoint_load(tc.resume.c_str(), &h, &params, &m, &v, &err)) llmc_die("%s", err.c_str());
            prog = resume_progress(tc, h, data.sampler.fingerprint());
            model.set_state(params.data(), m.data(), v.data());
            printf("resumed    %s at step %" PRId64 " (%" PRId64 " samples consumed)\n", tc.resume.c_str(), prog.step,
                   prog.consumed);
        }
        if (dist.root()) make_ckpt_dir(tc);
        log.open(tc.log, prog.step > 0);
        log_config(log, tc, data, model.num_params, prog.step);
        printf("device     %s, %d SMs, bf16 peak %s TFLOP/s\n", peaks.name, peaks.sm_count,
               peaks.bf16_tflops > 0 ? std::to_string((int)peaks.bf16_tflops).c_str() : "unknown (MFU n/a; --peak-tflops)");
        if (dist.nccl)
            printf("ranks      %d data-parallel ranks (%s launch, NCCL %s, id by %s) x %d micro-batches of %d; "
                   "tok/s below counts all GPUs, MFU is per GPU\n", dist.world(), dist.place.launcher.c_str(),
                   dist.nccl_version().c_str(), dist.method.c_str(), accum, tc.micro_batch);
        tc.print_plan(stdout, model.num_params, data.sampler.tokens_per_epoch());
        model.print_plan(stdout);
        printf("validation %" PRId64 " sequences of the shuffled validation set\n", data.val_sequences);
        run_start = Clock::now();
        first_step = prog.step;
        last_step = run_last_step(tc);
    }

    bool running() const { return prog.step < last_step; }
    uint32_t step_key() const { return (uint32_t)prog.step; }  // 0-based: the key of this step's draws

    // This rank's micro-batch `micro` of the current step: its slice of the global batch in the seed's order.
    void micro_batch(int micro, int64_t* positions, int* tokens) const {
        data.sampler.micro_batch_or_die(prog.consumed, tc.batch, tc.micro_batch, dist.world(), dist.rank(), micro,
                                        positions, tokens);
    }

    // Validation results of every rank (each evaluated its round-robin share of the batches) summed into all:
    // each sequence's sums come from exactly one rank, so the totals equal a one-GPU evaluation bit for bit.
    LossStats gather(LossStats st) {
        st.sum_arrays([&](std::vector<double>& a) { dist.allreduce_sum_host(a.data(), a.size(), model.stream); });
        return st;
    }

    // Every draw of a micro-batch is keyed by (seed, step, global sample index): row r is sample0 + r.
    StepKeys keys(int64_t sample0) const {
        return StepKeys{(uint32_t)tc.seed, step_key(), (uint32_t)sample0, (float)tc.dropout, (float)tc.attn_dropout};
    }

    void begin_step() {
        step_start = Clock::now();
        model.zero_grad();
        model.reset_loss();
    }

    void save(const char* file) {
        model.save_checkpoint((tc.ckpt_dir + "/" + file).c_str(), progress_header(tc, prog, data.sampler.fingerprint()));
    }

    // After the micro-batches of a step: the seed's optimizer step at this step's lr, the progress line and
    // JSONL record, then validation (best.ckpt on a new best) and model.ckpt when due.
    void end_step(const std::function<LossStats()>& validate) {
        const uint32_t step = step_key();
        const double loss = model.read_loss();
        if (!std::isfinite(loss)) llmc_die("loss is %f at step %u (try a lower --lr)", loss, step + 1);
        const double lr = tc.schedule.lr_for_step(step + 1, tc.batch);
        const double norm = model.optimizer_step((float)lr, (float)tc.beta1, (float)tc.beta2, (float)tc.adam_eps,
                                                 (float)tc.weight_decay, tc.clip, (int)(step + 1));
        if (!std::isfinite(norm)) llmc_die("gradient norm is %f at step %u (try a lower --lr)", norm, step + 1);
        prog.step++;
        prog.consumed += tc.batch;
        StepStats st = step_stats(tc, prog, data.sampler.epoch_of(prog.consumed), loss, lr, norm,
                                  seconds_since(step_start), seconds_since(run_start), first_step,
                                  peaks.bf16_tflops * 1e12 * dist.world());  // MFU of the whole group
        if (!tc.quiet) print_step(st);
        log.write(step_json(st));
        if (eval_due(tc, prog.step)) {
            Clock::time_point t0 = Clock::now();
            LossStats vs = gather(validate());
            if (report_eval(tc, prog, vs, seconds_since(t0), log) && !tc.ckpt_dir.empty()) save("best.ckpt");
        }
        if (save_due(tc, prog.step)) save("model.ckpt");
    }

    void finish() {
        printf("done       %" PRId64 " steps in %s; best validation %s %.4f at step %" PRId64 "\n", prog.step,
               format_duration(seconds_since(run_start)).c_str(), tc.objective == OBJ_MDM ? "ELBO" : "NLL", prog.best,
               prog.best_step);
        model.destroy();
        dist.destroy();
    }
};
