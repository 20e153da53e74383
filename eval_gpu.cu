// eval_gpu.cu — stand-alone evaluation of a checkpoint on the GPU: validation NLL / MC-ELBO and multiple-choice
// tasks, with the flags and output of build/eval_cpu (the program is llmc/eval_main.h; the model is
// llmc/gpu_backend.cuh). scripts/compare_eval.sh checks its numbers against eval_cpu within bf16 tolerances.
//
//   ./build/eval_gpu --load ckpt/best.ckpt                           # validation on the bundled C4 sample
//   ./build/eval_gpu --load ckpt/best.ckpt --task dev/data/tasks/capitals.jsonl --task ...
#include "llmc/eval_main.h"      // eval_main
#include "llmc/gpu_backend.cuh"  // GpuBackend: the Transformer of llmc/transformer.cuh

int main(int argc, char** argv) {
    GpuBackend backend;
    return eval_main(argc, argv, "eval_gpu", backend);
}
