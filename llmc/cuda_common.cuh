// llmc/cuda_common.cuh — what every CUDA translation unit needs: error checks, the activation dtype, the
// card's ceilings for MFU / bandwidth reports, and small test utilities (poisoning, bf16 conversion).
#pragma once
#include <cublasLt.h>         // cublasLtHandle_t, cublasStatus_t
#include <cuda_bf16.h>        // __nv_bfloat16
#include <cuda_runtime.h>     // cudaMalloc, streams, events
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include "utils.h"

// Activations and parameter copies are bf16; master weights, moments and gradient accumulators are fp32.
typedef __nv_bfloat16 floatX;

inline void cuda_check(cudaError_t err, const char* file, int line) {
    if (err != cudaSuccess) {
        if (err == cudaErrorMemoryAllocation)
            llmc_die("out of GPU memory at %s:%d (reduce --micro-batch or the model size)", file, line);
        llmc_die("CUDA error at %s:%d: %s", file, line, cudaGetErrorString(err));
    }
}
#define cudaCheck(err) cuda_check((err), __FILE__, __LINE__)
// After a kernel launch: catches bad launch configurations immediately.
#define cudaCheckLaunch() cuda_check(cudaGetLastError(), __FILE__, __LINE__)

inline void cublas_check(cublasStatus_t status, const char* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS) llmc_die("cuBLAS error %d at %s:%d", (int)status, file, line);
}
#define cublasCheck(status) cublas_check((status), __FILE__, __LINE__)

// An empty kernel: whether its code loads on the current device says whether this program was built for it.
static __global__ void llmc_probe_kernel() {}

// Makes device index % count current and returns it. Dies with one line, ending in `hint` (where the same work runs
// on the CPU) where that helps: no usable CUDA device (with the runtime's reason), a GPU older than sm_80 (the
// kernels use bf16 tensor cores and cp.async), or a GPU this binary has no code for (naming the make command that
// builds for it).
inline int use_device_or_die(int index, const char* hint) {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0)) llmc_die("no CUDA device found (%s)", hint);
    // Without a driver the runtime says "driver version is insufficient"; with an old one, the same words are the fix.
    if (e != cudaSuccess) llmc_die("no CUDA device found: %s (%s)", cudaGetErrorString(e), hint);
    const int dev = index % count;
    cudaCheck(cudaSetDevice(dev));
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, dev));
    if (prop.major < 8)
        llmc_die("%s is sm_%d%d; the CUDA kernels need sm_80 or newer (%s)", prop.name, prop.major, prop.minor, hint);
    cudaFuncAttributes attr;
    const cudaError_t k = cudaFuncGetAttributes(&attr, llmc_probe_kernel);
    if (k != cudaSuccess) {
        (void)cudaGetLastError();  // clear it
        llmc_die("this program has no code for %s (sm_%d%d): %s; rebuild for it with make -B gpu GPU_GENCODE="
                 "'-gencode arch=compute_%d%d,code=sm_%d%d'", prop.name, prop.major, prop.minor, cudaGetErrorString(k),
                 prop.major, prop.minor, prop.major, prop.minor);
    }
    return dev;
}

// The most dynamic shared memory one block may opt in to on the current device (227 KB on H100, 163 KB on A100,
// ~99 KB on consumer Ampere/Ada/Blackwell cards), read once per process (a process uses one device).
inline int device_smem_optin() {
    static int optin = -1;
    if (optin < 0) {
        int dev;
        cudaCheck(cudaGetDevice(&dev));
        cudaCheck(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    }
    return optin;
}

template <class T>
__host__ __device__ constexpr T ceil_div(T a, T b) { return (a + b - 1) / b; }

// Peak dense bf16 tensor throughput and memory bandwidth of the current card, for MFU and GB/s reports.
// Known by name; an unknown card reports 0 (callers print "n/a" rather than a made-up number) unless the
// user passes --peak-tflops.
struct DevicePeaks {
    char name[256];
    double bf16_tflops;  // dense, no sparsity
    double mem_gbps;     // GB/s (1e9 bytes)
    int sm_count;
};

inline DevicePeaks device_peaks() {
    DevicePeaks p{};
    int dev;
    cudaCheck(cudaGetDevice(&dev));
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, dev));
    snprintf(p.name, sizeof p.name, "%s", prop.name);
    p.sm_count = prop.multiProcessorCount;
    struct Known { const char* key; double tflops, gbps; };
    // Datasheet values (SXM parts unless named); order matters: the first substring match wins.
    static const Known known[] = {
        {"H200", 989.0, 4800.0}, {"H100 PCIe", 756.0, 2000.0}, {"H100 NVL", 835.0, 3900.0},
        {"H100", 989.0, 3350.0}, {"A100-PCIE-40GB", 312.0, 1555.0}, {"A100", 312.0, 2039.0},
    };
    for (const Known& k : known)
        if (strstr(prop.name, k.key)) { p.bf16_tflops = k.tflops; p.mem_gbps = k.gbps; break; }
    return p;
}

// ---- test utilities ----------------------------------------------------------------------------------
// Fill a device buffer with 0xFF bytes: NaN in fp32 and bf16, so any element a kernel forgets to write fails
// the comparison.
inline void poison(void* dptr, size_t bytes) { cudaCheck(cudaMemset(dptr, 0xFF, bytes)); }

inline float bf16_to_float_host(floatX x) { return __bfloat162float(x); }
inline floatX float_to_bf16_host(float x) { return __float2bfloat16(x); }  // round-to-nearest-even
