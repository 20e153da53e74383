// dev/cpu/train_cpu.cpp — trains the CPU reference (dev/cpu/reference.h) on the bundled data, for either
// objective: the executable specification of what train_gpt.cu and train_mdm.cu do on a GPU, at a size a
// laptop can run. Same flags, schedule, data order, masks, checkpoints and logs as the CUDA trainers.
//
//   ./build/train_cpu                      # AR, tiny model, bundled C4 sample
//   ./build/train_cpu --objective mdm      # masked diffusion, same network, bidirectional
//
// Data parallel: the same source built with -DLLMC_MPI is build/train_cpu_mpi; `mpirun -np W` runs W ranks, each
// on its slice of every global batch, with ZeRO stage 1 (AdamW moments sharded, llmc/dist.h). Global batch =
// micro-batch x accumulation x W, so W ranks train the same model as one rank with W x the micro-batch.
#include <chrono>       // steady_clock: step timing
#include <cinttypes>    // PRId64
#include <omp.h>        // omp_set_num_threads
#include "dev/cpu/reference.h"  // ref::Model (forward/backward), ref::adamw_range, ref::clip_coefficient
#include "llmc/checkpoint.h"    // checkpoint_save/load, CheckpointHeader
#include "llmc/dataset.h"       // IndexedDataset
#include "llmc/dist.h"          // Dist: ranks and deterministic collectives (MPI or one process), ShardLayout
#include "llmc/eval.h"          // LossStats: mean NLL / MC-ELBO with standard error
#include "llmc/logger.h"        // JsonlLog, StepStats, print_step
#include "llmc/objective.h"     // make_ar_batch / make_mdm_batch: where AR and MDM differ
#include "llmc/sampler.h"       // Sampler: U unique tokens x E epochs, shuffled samples of S+1 tokens
#include "llmc/train_config.h"  // TrainConfig: the shared flag vocabulary and run plan
#include "llmc/train_loop.h"    // TrainProgress, eval/save cadence, report_eval, step_stats, checkpoint headers

using Clock = std::chrono::steady_clock;
static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Validation through the shared driver (llmc/eval.h): the CPU model as the forward, dropout off. Each rank takes
// its round-robin share of the batches; the per-sequence sums, summed over ranks, are the one-rank result exactly.
static LossStats evaluate(Dist& dist, ref::Model<float>& model, const Sampler& val, const TrainConfig& tc) {
    const ref::StepKeys keys{(uint32_t)tc.eval_seed, 0, 0, 0.0f, 0.0f};
    const bool mdm = tc.objective == OBJ_MDM;
    LossStats st = run_validation(val, tc.eval_samples, tc.seq_len, tc.micro_batch, mdm, tc.mc_samples, tc.stratified,
                          (float)tc.mdm_eps, (uint32_t)tc.eval_seed, tc.cfg.mask_id,
                          [&](const int* in, const int* tgt, const float* w, int rows, float* row_loss) {
                              model.forward(in, tgt, w, rows, !mdm, keys);
                              std::copy(model.row_loss.begin(), model.row_loss.begin() + (size_t)rows * tc.seq_len, row_loss);
                          },
                          dist.rank(), dist.world());
    st.sum_arrays([&](std::vector<double>& a) { dist.allreduce_sum(a.data(), a.size()); });
    return st;
}

// The full state whatever the sharding: every rank gathers the moment shards (a collective), rank 0 writes the
// same file a one-rank run writes, so a run saved on W ranks resumes on any number.
static void save(Dist& dist, const ShardLayout& L, const TrainConfig& tc, const TrainProgress& prog,
                 const ref::Model<float>& model, const std::vector<float>& m_shard, const std::vector<float>& v_shard,
                 uint64_t fingerprint, const char* name) {
    std::vector<float> m(L.padded()), v(L.padded());
    dist.allgather(m_shard.data(), m.data(), L);
    dist.allgather(v_shard.data(), v.data(), L);
    if (!dist.root()) return;
    const std::string path = tc.ckpt_dir + "/" + name;
    checkpoint_save(path.c_str(), progress_header(tc, prog, fingerprint), model.params.data(), m.data(), v.data());
}

// ZeRO stage 1 step: reduce-scatter the gradients (this rank gets the rank-ordered sum of its shard), the global
// norm from every shard's sum of squares, the seed's clipped AdamW on this rank's shard of the parameters and
// moments, then all-gather the parameters. On one rank it is exactly ref::optimizer_step. Returns the pre-clip norm.
static double zero1_step(Dist& dist, const ShardLayout& L, ref::Model<float>& model, std::vector<float>& m,
                         std::vector<float>& v, const TrainConfig& tc, float lr, int t) {
    const size_t lo = L.begin(dist.rank()), len = L.end(dist.rank()) - lo;
    std::vector<float> full(L.padded(), 0.0f), g(L.shard);
    std::copy(model.grads.begin(), model.grads.end(), full.begin());
    dist.reduce_scatter(full.data(), g.data(), L);
    double ss = 0;
    for (size_t i = 0; i < len; i++) ss += (double)g[i] * (double)g[i];
    const double norm = sqrt(dist.allreduce_sum(ss));
    const double c = ref::clip_coefficient(norm, tc.clip > 0 ? tc.clip : INFINITY);
    if (c < 1.0)
        for (size_t i = 0; i < len; i++) g[i] = (float)((double)g[i] * c);
    ref::adamw_range(model, lo, len, g.data(), m.data(), v.data(), lr, (float)tc.beta1, (float)tc.beta2,
                     (float)tc.adam_eps, (float)tc.weight_decay, t);
    std::copy(model.params.begin() + lo, model.params.begin() + lo + len, g.begin());  // g: now my parameter shard
    dist.allgather(g.data(), full.data(), L);
    std::copy(full.begin(), full.begin() + model.params.size(), model.params.begin());
    return norm;
}

int main(int argc, char** argv) {
    Dist dist(&argc, &argv);
    if (!dist.root() && !freopen("/dev/null", "w", stdout)) llmc_die("cannot silence stdout of rank %d", dist.rank());
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
    if (!dist.root()) tc.log.clear();  // rank 0 prints and logs for all

    TrainData data;
    load_train_data(tc, data, obj);
    const Sampler& sampler = data.sampler;
    std::string err;

    const int W = dist.world(), rank = dist.rank();
    const int accum = tc.accum_per_rank(W);  // micro-batches per rank per step

    ref::Model<float> model(tc.cfg);
    model.init_weights((uint32_t)tc.seed);
    const ShardLayout L(model.params.size(), W);
    std::vector<float> adam_m(L.shard, 0.0f), adam_v(L.shard, 0.0f);  // this rank's shard of the moments
    TrainProgress prog;
    if (!tc.resume.empty()) {
        CheckpointHeader h;
        std::vector<float> params, m, v;
        if (!checkpoint_load(tc.resume.c_str(), &h, &params, &m, &v, &err)) llmc_die("%s", err.c_str());
        prog = resume_progress(tc, h, sampler.fingerprint());
        model.params = params;
        std::copy(m.begin() + L.begin(rank), m.begin() + L.end(rank), adam_m.begin());
        std::copy(v.begin() + L.begin(rank), v.begin() + L.end(rank), adam_v.begin());
        printf("resumed    %s at step %" PRId64 " (%" PRId64 " samples consumed)\n", tc.resume.c_str(), prog.step,
               prog.consumed);
    }
    make_ckpt_dir(tc);
    JsonlLog log;
    log.open(tc.log, prog.step > 0);
    log_config(log, tc, data, model.params.size(), prog.step);
    tc.print_plan(stdout, model.params.size(), sampler.tokens_per_epoch());
    printf("threads    %d OpenMP threads; validation %" PRId64 " sequences%s\n", omp_get_max_threads(),
           data.val_sequences,
           obj == OBJ_MDM ? (tc.stratified ? ", stratified MC-ELBO" : ", MC-ELBO") : "");
    if (W > 1)
        printf("ranks      %d data-parallel ranks x %d micro-batches of %d; ZeRO-1 shards of %zu parameters\n", W,
               accum, tc.micro_batch, L.shard);

    const int S = tc.seq_len, b = tc.micro_batch;
    std::vector<int64_t> positions(b);
    std::vector<int> y((size_t)b * (S + 1)), inputs((size_t)b * S), targets((size_t)b * S);
    std::vector<float> weight((size_t)b * S);
    auto run_eval = [&]() {  // every rank gets the same statistics, so the same best-so-far decision
        Clock::time_point t0 = Clock::now();
        LossStats st = evaluate(dist, model, data.val, tc);
        const bool improved = report_eval(tc, prog, st, seconds_since(t0), log);
        if (improved && !tc.ckpt_dir.empty()) save(dist, L, tc, prog, model, adam_m, adam_v, sampler.fingerprint(), "best.ckpt");
    };

    Clock::time_point run_start = Clock::now();
    const int64_t first_step = prog.step, last_step = run_last_step(tc);
    while (prog.step < last_step) {
        Clock::time_point t0 = Clock::now();
        const uint32_t step = (uint32_t)prog.step;  // 0-based: the key of this step's draws
        model.zero_grad();
        double loss = 0;
        for (int micro = 0; micro < accum; micro++) {
            sampler.micro_batch_or_die(prog.consumed, tc.batch, b, W, rank, micro, positions.data(), y.data());
            // Every draw of this micro-batch is keyed by (seed, step, global sample index): row r uses sample0 + r.
            const uint32_t sample0 = (uint32_t)positions[0];
            if (obj == OBJ_MDM)
                make_mdm_batch(inputs.data(), targets.data(), weight.data(), y.data(), b, S, tc.cfg.mask_id,
                               (float)tc.mdm_eps, (uint32_t)tc.seed, step, sample0, nullptr, tc.mdm_options());
            else
                make_ar_batch(inputs.data(), targets.data(), weight.data(), y.data(), b, S);
            const ref::StepKeys keys{(uint32_t)tc.seed, step, sample0, (float)tc.dropout, (float)tc.attn_dropout};
            // The mean over all W x accum micro-batches: summed over ranks, loss and gradient are the 1-rank ones.
            loss += model.forward(inputs.data(), targets.data(), weight.data(), b, obj == OBJ_AR, keys) / (accum * W);
            model.backward(1.0 / (accum * W));
        }
        loss = dist.allreduce_sum(loss);
        if (!std::isfinite(loss)) llmc_die("loss is %f at step %u (try a lower --lr)", loss, step + 1);
        const double lr = tc.schedule.lr_for_step(step + 1, tc.batch);
        const double norm = zero1_step(dist, L, model, adam_m, adam_v, tc, (float)lr, (int)(step + 1));
        prog.step++;
        prog.consumed += tc.batch;
        StepStats st = step_stats(tc, prog, sampler.epoch_of(prog.consumed), loss, lr, norm, seconds_since(t0),
                                  seconds_since(run_start), first_step, /*peak_flops=*/0);
        if (!tc.quiet) print_step(st);
        log.write(step_json(st));
        if (eval_due(tc, prog.step)) run_eval();
        if (save_due(tc, prog.step)) save(dist, L, tc, prog, model, adam_m, adam_v, sampler.fingerprint(), "model.ckpt");
    }
    printf("done       %" PRId64 " steps in %s; best validation loss %.4f at step %" PRId64 "\n", prog.step,
           format_duration(seconds_since(run_start)).c_str(), prog.best, prog.best_step);
    return 0;
}
