// train_mdm.cu — the masked-diffusion (MDM) trainer on one GPU: the SAME network as train_gpt.cu with three
// changes (seed_spec §3): bidirectional attention; inputs corrupted per sequence with t ~ U[0,1),
// p = (1-eps)t + eps, each token replaced by the mask id 50257 with probability p; and the loss
// sum over masked positions of CE/p, divided by B*S — so the LM head runs on the masked rows only. Validation
// is the Monte-Carlo ELBO with K draws per sequence (mean +- standard error). dev/cpu/train_cpu.cpp
// --objective mdm is its CPU twin, with the same masks bit for bit.
//
//   make build/train_mdm && ./build/train_mdm            # "mini" model on the bundled C4 sample
//   ./build/train_mdm --model 425m --seq-len 2048 --batch 256 --micro-batch 8 --lr 2e-4 --min-lr 2e-5
//                     --train-data PREFIX --epochs 500   (the seed's MDM best on its 100M-token C4 subset)
#include "llmc/eval.h"           // run_validation, LossStats: the MC-ELBO with its standard error
#include "llmc/objective.h"      // make_mdm_batch: masks keyed by (seed, step, sample, position), weights 1/(p*B*S)
#include "llmc/train_gpu.cuh"    // GpuRun: flags, data, device, model, resume, optimizer step, logging, checkpoints

// LM-head row lists are padded to a multiple of this with weight-0 rows: the masked count changes every
// micro-batch, and the matmul pins one cuBLASLt algorithm per shape.
constexpr int HEAD_ROW_MULTIPLE = 128;

int main(int argc, char** argv) {
    GpuRun run;
    TrainConfig& tc = run.tc;
    set_one_gpu_defaults(tc);
    // Diffusion keeps improving on repeated data far longer than AR (the paper's point): twice train_gpt's passes.
    tc.epochs = 24;
    run.setup(argc, argv, OBJ_MDM, "train_mdm", "Trains the masked-diffusion transformer on one GPU (bf16 compute, "
                                                "fp32 master weights); defaults train the mini model on the bundled C4 sample.");
    Transformer& model = run.model;
    const int S = tc.seq_len, b = tc.micro_batch, N = b * S;

    // Validation: the MC-ELBO, K draws of (t, mask) per sequence keyed by (eval seed, draw, sequence) — the same
    // draws at every evaluation — with the head on masked rows only, dropout off.
    auto validate = [&]() {
        return run_validation(run.data.val, tc.eval_samples, S, b, /*mdm=*/true, tc.mc_samples, tc.stratified,
                              (float)tc.mdm_eps, (uint32_t)tc.eval_seed, tc.cfg.mask_id,
                              [&](const int* in, const int* tgt, const float* w, int rows, float* row_loss) {
                                  model.eval_row_loss(in, tgt, w, rows, /*causal=*/false, row_loss);
                              });
    };

    std::vector<int64_t> positions(b);
    std::vector<int> y((size_t)b * (S + 1)), inputs(N), targets(N), rows, row_targets;
    std::vector<float> weight(N), row_weights;
    while (run.running()) {
        run.begin_step();
        for (int micro = 0; micro < tc.grad_accum; micro++) {
            run.data.sampler.micro_batch_or_die(run.prog.consumed, tc.batch, b, 1, 0, micro, positions.data(), y.data());
            make_mdm_batch(inputs.data(), targets.data(), weight.data(), y.data(), b, S, tc.cfg.mask_id,
                           (float)tc.mdm_eps, (uint32_t)tc.seed, run.step_key(), (uint32_t)positions[0], nullptr,
                           tc.mdm_options());
            model.forward(inputs.data(), b, /*causal=*/false, run.keys(positions[0]));
            // Only masked positions count: the head multiplies just those rows (about half of them on average).
            const int M = select_weighted_rows(weight.data(), targets.data(), N, rows, row_targets, row_weights,
                                               HEAD_ROW_MULTIPLE);
            model.head(row_targets.data(), row_weights.data(), rows.data(), M, 1.0f / tc.grad_accum, /*grad=*/true);
            model.backward();
        }
        run.end_step(validate);
    }
    run.finish();
    return 0;
}
