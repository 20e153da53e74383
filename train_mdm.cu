// train_mdm.cu — the masked-diffusion (MDM) trainer on one or more GPUs: the SAME network as train_gpt.cu with three
// changes (seed_spec §3): bidirectional attention; inputs corrupted per sequence with t ~ U[0,1),
// p = (1-eps)t + eps, each token replaced by the mask id 50257 with probability p; and the loss
// sum over masked positions of CE/p, divided by B*S — so the LM head runs on the masked rows only. Validation
// is the Monte-Carlo ELBO with K draws per sequence (mean +- standard error). dev/cpu/train_cpu.cpp
// --objective mdm is its CPU twin, with the same masks bit for bit.
//
//   make build/train_mdm && ./build/train_mdm            # "mini" model on the bundled C4 sample
//   ./build/train_mdm --model 425m --seq-len 2048 --batch 256 --micro-batch 8 --lr 2e-4 --min-lr 2e-5
//                     --train-data PREFIX --epochs 500   (the seed's MDM best on its 100M-token C4 subset)
//   mpirun -np 8 ./build/train_mdm --model 425m ...   same flags on 8 GPUs: each rank a slice of every global batch,
//                                                   ZeRO-1 optimizer shards, the same run as on one GPU
#include "llmc/eval.h"           // run_validation, LossStats: the MC-ELBO with its standard error
#include "llmc/mdm.cuh"          // mdm_corrupt, mdm_head_forward_backward: corruption and masked-rows head on the GPU
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
    std::string corruption = "gpu";
    run.setup(argc, argv, OBJ_MDM, "train_mdm", "Trains the masked-diffusion transformer on one GPU (bf16 compute, "
                                                "fp32 master weights); defaults train the mini model on the bundled C4 sample.",
              [&](ArgParser& a) {
                  a.add_choice("corruption", &corruption, "gpu|host", "where the masks are drawn: the GPU kernel "
                               "(llmc/mdm.cuh) or the host builder (llmc/objective.h); the same masks bit for bit");
              });
    Transformer& model = run.model;
    const int S = tc.seq_len, b = tc.micro_batch, N = b * S;

    // Validation: the MC-ELBO, K draws of (t, mask) per sequence keyed by (eval seed, draw, sequence) — the same
    // draws at every evaluation — with the head on masked rows only, dropout off.
    auto validate = [&]() {
        return run_validation(run.data.val, tc.eval_samples, S, b, /*mdm=*/true, tc.mc_samples, tc.stratified,
                              (float)tc.mdm_eps, (uint32_t)tc.eval_seed, tc.cfg.mask_id,
                              [&](const int* in, const int* tgt, const float* w, int rows, float* row_loss) {
                                  model.eval_row_loss(in, tgt, w, rows, /*causal=*/false, row_loss);
                              },
                              run.dist.rank(), run.dist.world());
    };

    std::vector<int64_t> positions(b);
    std::vector<int> y((size_t)b * (S + 1)), inputs(N), targets(N), rows, row_targets;
    std::vector<float> weight(N), row_weights;
    MdmBatch mb;  // GPU corruption: masked inputs, and the compacted masked rows with targets and weights 1/(p*B*S)
    int* d_y = nullptr;
    if (corruption == "gpu") {
        mdm_batch_alloc(mb, b, S);
        cudaCheck(cudaMalloc(&d_y, y.size() * sizeof(int)));
    }
    while (run.running()) {
        run.begin_step();
        for (int micro = 0; micro < run.accum; micro++) {  // this rank's share of the global batch
            run.micro_batch(micro, positions.data(), y.data());
            if (corruption == "gpu") {
                // Masks drawn on the device, keyed like the host builder; the LM head multiplies only the masked
                // rows (about half of them on average), listed by the kernel, so nothing returns to the host but
                // their count.
                cudaCheck(cudaMemcpyAsync(d_y, y.data(), y.size() * sizeof(int), cudaMemcpyHostToDevice, model.stream));
                mdm_corrupt(mb, d_y, S + 1, b, S,
                            mdm_train_keys((uint32_t)tc.seed, run.step_key(), (uint32_t)positions[0], (float)tc.mdm_eps,
                                           tc.cfg.mask_id, tc.mdm_options()),
                            model.stream);
                model.forward(mb.inputs, b, /*causal=*/false, run.keys(positions[0]), /*inputs_on_device=*/true);
                const int M = mdm_read_count(mb, model.stream);
                mdm_scale_weights(mb, mdm_padded_rows(M), 1.0f / tc.grad_accum, model.stream);
                const size_t wte = model.off[P_WTE];
                mdm_head_forward_backward(model.mm, model.act.dln, model.grads + wte, model.act.loss, true,
                                          model.act.lnf, model.params + wte, mb, M, N, tc.cfg.d_model,
                                          tc.cfg.padded_vocab, model.act.head_in, model.act.logits,
                                          model.act.row_loss, model.stream);
                model.backward_trunk(model.act.dln);
            } else {
                make_mdm_batch(inputs.data(), targets.data(), weight.data(), y.data(), b, S, tc.cfg.mask_id,
                               (float)tc.mdm_eps, (uint32_t)tc.seed, run.step_key(), (uint32_t)positions[0], nullptr,
                               tc.mdm_options());
                model.forward(inputs.data(), b, /*causal=*/false, run.keys(positions[0]));
                const int M = select_weighted_rows(weight.data(), targets.data(), N, rows, row_targets, row_weights,
                                                   HEAD_ROW_MULTIPLE);
                model.head(row_targets.data(), row_weights.data(), rows.data(), M, 1.0f / tc.grad_accum, /*grad=*/true);
                model.backward();
            }
        }
        run.end_step(validate);
    }
    if (d_y) {
        mdm_batch_free(mb);
        cudaCheck(cudaFree(d_y));
    }
    run.finish();
    return 0;
}
