// generate_gpu.cu — text generation from a checkpoint on the GPU (AR left to right, MDM by iterative unmasking),
// with the flags and output of build/generate_cpu (the program is llmc/generate_main.h; the model is
// llmc/gpu_backend.cuh). Sampling itself runs on the host in float64 from the downloaded logits.
//
//   ./build/generate_gpu --load ckpt/model.ckpt --prompt "The weather" --length 16
//   ./build/generate_gpu --load mdm.ckpt --length 32 --steps 8 --block 16 --remasking random --temperature 1
#include "llmc/generate_main.h"  // generate_main
#include "llmc/gpu_backend.cuh"  // GpuBackend: the Transformer of llmc/transformer.cuh

int main(int argc, char** argv) {
    GpuBackend backend;
    return generate_main(argc, argv, "generate_gpu", backend);
}
