// dev/cpu/generate_cpu.cpp — text generation from a checkpoint with the CPU reference model: AR left to right,
// MDM by iterative unmasking. The program is llmc/generate_main.h (shared with generate_gpu.cu); --help lists
// the flags.
//
//   ./build/generate_cpu --load ckpt/model.ckpt --prompt "The weather" --length 16
//   ./build/generate_cpu --load mdm.ckpt --length 32 --steps 8 --block 16 --remasking random --temperature 1
#include "dev/cpu/cpu_backend.h"  // CpuBackend: ref::Model<float>
#include "llmc/generate_main.h"   // generate_main

int main(int argc, char** argv) {
    CpuBackend backend;
    return generate_main(argc, argv, "generate_cpu", backend);
}
