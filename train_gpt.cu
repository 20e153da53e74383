// train_gpt.cu — the autoregressive (AR) trainer on one or more GPUs: the seed's GPT (Llama-style, causal attention,
// next-token cross-entropy) trained on a Megatron dataset with U unique tokens x E epochs, the seed's AdamW and
// warmup + cosine schedule, periodic validation (mean NLL over a fixed validation subset) with best-so-far
// tracking and checkpoints. dev/cpu/train_cpu.cpp is its CPU twin. `diff train_gpt.cu train_mdm.cu` shows what
// masked diffusion changes: the attention mask, the input corruption and the loss (and the ELBO validation).
//
//   make build/train_gpt && ./build/train_gpt            # "mini" model on the bundled C4 sample
//   ./build/train_gpt --model 140m --seq-len 2048 --batch 256 --micro-batch 8 --lr 2e-4 --min-lr 2e-5
//                     --train-data PREFIX --epochs 50    (the seed's AR best on its 100M-token C4 subset)
//   mpirun -np 8 ./build/train_gpt --model 140m ...   same flags on 8 GPUs: each rank a slice of every global batch,
//                                                   ZeRO-1 optimizer shards, the same run as on one GPU
#include "llmc/eval.h"           // run_validation, LossStats: mean NLL over the fixed validation subset
#include "llmc/objective.h"      // make_ar_batch: inputs = y[:, :S], targets = y[:, 1:], weight 1/(B*S)
#include "llmc/train_gpu.cuh"    // GpuRun: flags, data, device, model, resume, optimizer step, logging, checkpoints

int main(int argc, char** argv) {
    GpuRun run;
    TrainConfig& tc = run.tc;
    set_one_gpu_defaults(tc);
    // Twelve passes over the same data give AR room to overfit (the paper's starting point), which the validation
    // NLL and best.ckpt tracking show.
    tc.epochs = 12;
    run.setup(argc, argv, OBJ_AR, "train_gpt", "Trains the autoregressive transformer on one GPU (bf16 compute, "
                                               "fp32 master weights); defaults train the mini model on the bundled C4 sample.");
    Transformer& model = run.model;
    const int S = tc.seq_len, b = tc.micro_batch, N = b * S;

    // Validation: mean next-token NLL over the fixed subset, dropout off (llmc/eval.h drives the batches).
    auto validate = [&]() {
        return run_validation(run.data.val, tc.eval_samples, S, b, /*mdm=*/false, 1, false, 0.0f,
                              (uint32_t)tc.eval_seed, tc.cfg.mask_id,
                              [&](const int* in, const int* tgt, const float*, int rows, float* row_loss) {
                                  model.eval_row_loss(in, tgt, nullptr, rows, /*causal=*/true, row_loss);
                              },
                              run.dist.rank(), run.dist.world());
    };

    std::vector<int64_t> positions(b);
    std::vector<int> y((size_t)b * (S + 1)), inputs(N), targets(N);
    std::vector<float> weight(N);
    while (run.running()) {
        run.begin_step();
        for (int micro = 0; micro < run.accum; micro++) {  // this rank's share of the global batch
            run.micro_batch(micro, positions.data(), y.data());
            make_ar_batch(inputs.data(), targets.data(), weight.data(), y.data(), b, S);
            model.forward(inputs.data(), b, /*causal=*/true, run.keys(positions[0]));
            // Every row is predicted; scale 1/grad_accum makes the step's loss the mean of the micro-batch losses.
            model.head(targets.data(), weight.data(), /*rows=*/nullptr, N, 1.0f / tc.grad_accum, /*grad=*/true);
            model.backward();
        }
        run.end_step(validate);
    }
    run.finish();
    return 0;
}
