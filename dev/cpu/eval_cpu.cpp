// dev/cpu/eval_cpu.cpp — stand-alone evaluation of a checkpoint with the CPU reference model: validation NLL /
// MC-ELBO and multiple-choice tasks. The program is llmc/eval_main.h (shared with eval_gpu.cu); --help lists
// the flags.
//
//   ./build/eval_cpu --load ckpt/best.ckpt                           # validation on the bundled C4 sample
//   ./build/eval_cpu --load ckpt/best.ckpt --task dev/data/tasks/capitals.jsonl --task ...
#include "dev/cpu/cpu_backend.h"  // CpuBackend: ref::Model<float>
#include "llmc/eval_main.h"       // eval_main

int main(int argc, char** argv) {
    CpuBackend backend;
    return eval_main(argc, argv, "eval_cpu", backend);
}
