// dev/cuda/matmul.cu — kernel lab for llmc/matmul.cuh: the cuBLASLt linears against ref::matmul_forward /
// ref::matmul_backward on identical bf16-rounded inputs, determinism, then TFLOP/s at the 140M model's shapes.
// Usage: build/cuda/matmul [seed]
#include "dev/cuda/lab.h"  // lab_args: --seed N, --quick, --no-bench
#include <algorithm>
#include <cmath>
#include <ctime>
#include <random>
#include "dev/cpu/reference.h"
#include "dev/test/test.h"
#include "llmc/matmul.cuh"

// bf16 outputs: fp32 accumulation in both, then the GPU rounds each output to bf16 (relative error up to 2^-9,
// RMS ~ 2^-9/sqrt(3) ~ 1.1e-3): 4e-3 leaves margin yet catches any indexing error (O(1)).
static const double TOL_BF16_OUT = 4e-3;
// fp32 outputs: only the summation order differs (K <= 2048 terms): ~1e-6; 1e-4 is far below any real bug.
static const double TOL_FP32_OUT = 1e-4;

// Random normal * scale, rounded to bf16; returns the device-ready bf16 values and their exact float twins.
static void random_bf16(std::vector<floatX>& h, std::vector<float>& f, size_t n, float scale) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    h.resize(n);
    f.resize(n);
    for (size_t i = 0; i < n; i++) {
        h[i] = float_to_bf16_host(nd(rng) * scale);
        f[i] = bf16_to_float_host(h[i]);
    }
}

template <class T>
static T* to_device_misaligned(const std::vector<T>& h, size_t pad_elems, T** base_out) {
    T* base;
    cudaCheck(cudaMalloc(&base, (h.size() + pad_elems) * sizeof(T)));
    cudaCheck(cudaMemcpy(base + pad_elems, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    if (base_out) *base_out = base;
    return base + pad_elems;
}

struct Shape {
    int N, IC, OC;
    int offset;  // elements by which x, dout, out, dx are shifted from a 256-byte boundary (alignment planning)
};

static void check_shape(MatmulContext& ctx, const Shape& s) {
    const int N = s.N, IC = s.IC, OC = s.OC;
    printf("shape N=%d IC=%d OC=%d offset=%d\n", N, IC, OC, s.offset);
    std::vector<floatX> hx, hW, hdout;
    std::vector<float> fx, fW, fdout;
    random_bf16(hx, fx, (size_t)N * IC, 1.0f);
    random_bf16(hW, fW, (size_t)OC * IC, 1.0f / sqrtf((float)IC));
    random_bf16(hdout, fdout, (size_t)N * OC, 1.0f);
    // dW starts non-zero and as large as the product, so a kernel that overwrote instead of accumulating fails.
    std::vector<float> dW0((size_t)OC * IC);
    std::normal_distribution<float> nd(0.0f, sqrtf((float)std::max(N, 1)));
    for (float& v : dW0) v = nd(rng);

    // CPU oracle.
    std::vector<float> out_ref((size_t)N * OC), dx_ref((size_t)N * IC, 0.0f), dW_ref = dW0;
    ref::matmul_forward(out_ref.data(), fx.data(), fW.data(), N, IC, OC);
    ref::matmul_backward(dx_ref.data(), dW_ref.data(), fdout.data(), fx.data(), fW.data(), N, IC, OC);

    // GPU buffers; activations optionally misaligned by `offset` elements.
    floatX *bx, *bdout, *bout, *bdx;
    floatX* dx_in = to_device_misaligned(hx, s.offset, &bx);
    floatX* ddout = to_device_misaligned(hdout, s.offset, &bdout);
    floatX* dWt = to_device(hW);
    float* ddW = to_device(dW0);
    float* dout32;
    cudaCheck(cudaMalloc(&bout, ((size_t)N * OC + s.offset) * sizeof(floatX)));
    cudaCheck(cudaMalloc(&bdx, ((size_t)N * IC + s.offset) * sizeof(floatX)));
    cudaCheck(cudaMalloc(&dout32, (size_t)N * OC * sizeof(float)));
    floatX* dout_ = bout + s.offset;
    floatX* ddx = bdx + s.offset;

    std::vector<floatX> first_out, first_dx;
    std::vector<float> first_dW;
    for (int run = 0; run < 2; run++) {
        poison(dout_, (size_t)N * OC * sizeof(floatX));
        poison(ddx, (size_t)N * IC * sizeof(floatX));
        poison(dout32, (size_t)N * OC * sizeof(float));
        cudaCheck(cudaMemcpy(ddW, dW0.data(), dW0.size() * sizeof(float), cudaMemcpyHostToDevice));
        matmul_forward(ctx, dout_, dx_in, dWt, N, IC, OC, 0);
        matmul_forward_f32(ctx, dout32, dx_in, dWt, N, IC, OC, 0);
        matmul_backward(ctx, ddx, ddW, ddout, dx_in, dWt, N, IC, OC, 0);
        cudaCheck(cudaDeviceSynchronize());
        std::vector<floatX> g_out = to_host(dout_, (size_t)N * OC), g_dx = to_host(ddx, (size_t)N * IC);
        std::vector<float> g_out32 = to_host(dout32, (size_t)N * OC), g_dW = to_host(ddW, dW0.size());
        if (run == 0) {
            std::vector<float> f_out = to_float(g_out), f_dx = to_float(g_dx);
            double e_out = rel_error(f_out.data(), out_ref.data(), out_ref.size());
            double e_out32 = rel_error(g_out32.data(), out_ref.data(), out_ref.size());
            double e_dx = rel_error(f_dx.data(), dx_ref.data(), dx_ref.size());
            double e_dW = rel_error(g_dW.data(), dW_ref.data(), dW_ref.size());
            printf("  forward bf16  rel err %.3e (tol %.0e, bf16 output rounding)\n", e_out, TOL_BF16_OUT);
            printf("  forward fp32  rel err %.3e (tol %.0e, summation order only)\n", e_out32, TOL_FP32_OUT);
            printf("  backward dx   rel err %.3e (tol %.0e, bf16 output rounding)\n", e_dx, TOL_BF16_OUT);
            printf("  backward dW+= rel err %.3e (tol %.0e, fp32 accumulate, summation order only)\n", e_dW,
                   TOL_FP32_OUT);
            CHECK(e_out < TOL_BF16_OUT, "forward N=%d IC=%d OC=%d: %.3e", N, IC, OC, e_out);
            CHECK(e_out32 < TOL_FP32_OUT, "forward_f32 N=%d IC=%d OC=%d: %.3e", N, IC, OC, e_out32);
            CHECK(e_dx < TOL_BF16_OUT, "backward dx N=%d IC=%d OC=%d: %.3e", N, IC, OC, e_dx);
            CHECK(e_dW < TOL_FP32_OUT, "backward dW N=%d IC=%d OC=%d: %.3e", N, IC, OC, e_dW);
            first_out = g_out, first_dx = g_dx, first_dW = g_dW;
        } else {
            bool same = memcmp(first_out.data(), g_out.data(), g_out.size() * sizeof(floatX)) == 0 &&
                        memcmp(first_dx.data(), g_dx.data(), g_dx.size() * sizeof(floatX)) == 0 &&
                        memcmp(first_dW.data(), g_dW.data(), g_dW.size() * sizeof(float)) == 0;
            printf("  second run bit-identical: %s\n", same ? "yes" : "NO");
            CHECK(same, "matmul N=%d IC=%d OC=%d not deterministic", N, IC, OC);
        }
    }
    cudaCheck(cudaFree(bx));
    cudaCheck(cudaFree(bdout));
    cudaCheck(cudaFree(dWt));
    cudaCheck(cudaFree(ddW));
    cudaCheck(cudaFree(bout));
    cudaCheck(cudaFree(bdx));
    cudaCheck(cudaFree(dout32));
}

// An MDM micro-batch may have no masked row: N = 0 must leave dW untouched and write nothing.
static void check_empty(MatmulContext& ctx) {
    const int IC = 64, OC = 128;
    std::vector<float> dW0((size_t)OC * IC, 0.5f);
    std::vector<floatX> hW((size_t)OC * IC, float_to_bf16_host(1.0f));
    float* ddW = to_device(dW0);
    floatX* dWt = to_device(hW);
    floatX* dummy;
    cudaCheck(cudaMalloc(&dummy, 256));
    matmul_forward(ctx, dummy, dummy, dWt, 0, IC, OC, 0);
    matmul_backward(ctx, dummy, ddW, dummy, dummy, dWt, 0, IC, OC, 0);
    cudaCheck(cudaDeviceSynchronize());
    std::vector<float> g = to_host(ddW, dW0.size());
    CHECK(memcmp(g.data(), dW0.data(), g.size() * sizeof(float)) == 0, "N=0 changed dW");
    printf("shape N=0: dW unchanged: %s\n", memcmp(g.data(), dW0.data(), g.size() * 4) == 0 ? "yes" : "NO");
    cudaCheck(cudaFree(ddW));
    cudaCheck(cudaFree(dWt));
    cudaCheck(cudaFree(dummy));
}

// Cheap device-side fill for the timing buffers (values in [-1, 1), any pattern will do for throughput).
__global__ void fill_kernel(floatX* p, size_t n, uint32_t salt) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u ^ salt;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        p[i] = __float2bfloat16((float)(h & 0xFFFF) / 32768.0f - 1.0f);
    }
}

static void bench(MatmulContext& ctx) {
    DevicePeaks pk = device_peaks();
    printf("timing on %s (peak bf16 dense %s TFLOP/s), N = 16384 rows (B=8, S=2048), median of 20\n", pk.name,
           pk.bf16_tflops > 0 ? std::to_string((int)pk.bf16_tflops).c_str() : "n/a");
    const int N = 16384;
    const Shape shapes[] = {{N, 768, 2304, 0}, {N, 768, 4096, 0}, {N, 2048, 768, 0}, {N, 768, 50304, 0}};
    for (const Shape& s : shapes) {
        floatX *x, *W, *out, *dx;
        float* dW;
        size_t nx = (size_t)N * s.IC, nw = (size_t)s.OC * s.IC, no = (size_t)N * s.OC;
        cudaCheck(cudaMalloc(&x, nx * sizeof(floatX)));
        cudaCheck(cudaMalloc(&W, nw * sizeof(floatX)));
        cudaCheck(cudaMalloc(&out, no * sizeof(floatX)));
        cudaCheck(cudaMalloc(&dx, nx * sizeof(floatX)));
        cudaCheck(cudaMalloc(&dW, nw * sizeof(float)));
        fill_kernel<<<1024, 256>>>(x, nx, 1u);
        fill_kernel<<<1024, 256>>>(W, nw, 2u);
        fill_kernel<<<1024, 256>>>(out, no, 3u);  // doubles as dout for the backward timings
        cudaCheckLaunch();
        cudaCheck(cudaMemset(dW, 0, nw * sizeof(float)));
        double flops = 2.0 * N * s.IC * s.OC;
        float t_f = median_ms([&] { matmul_forward(ctx, out, x, W, N, s.IC, s.OC, 0); });
        float t_dx = median_ms([&] { matmul_backward_dx(ctx, dx, out, W, N, s.IC, s.OC, 0); });
        float t_dw = median_ms([&] { matmul_backward_dw(ctx, dW, out, x, N, s.IC, s.OC, 0); });
        auto line = [&](const char* what, float ms) {
            double tf = flops / (ms * 1e-3) / 1e12;
            if (pk.bf16_tflops > 0)
                printf("  %5d -> %5d %-8s %8.3f ms %7.1f TFLOP/s (%4.1f%% of peak)\n", s.IC, s.OC, what, ms, tf,
                       100.0 * tf / pk.bf16_tflops);
            else
                printf("  %5d -> %5d %-8s %8.3f ms %7.1f TFLOP/s\n", s.IC, s.OC, what, ms, tf);
        };
        line("forward", t_f);
        line("dx", t_dx);
        line("dW+=", t_dw);
        cudaCheck(cudaFree(x));
        cudaCheck(cudaFree(W));
        cudaCheck(cudaFree(out));
        cudaCheck(cudaFree(dx));
        cudaCheck(cudaFree(dW));
    }
}

int main(int argc, char** argv) {
    const LabArgs args = lab_args(argc, argv);
    if (!lab_have_device()) return test_summary();
    unsigned long long seed = args.seed;
    printf("matmul kernel test, seed %llu\n", seed);
    MatmulContext ctx;
    matmul_init(ctx);
    // Ragged row counts (compacted MDM rows), the LM head's 50304 classes, and one misaligned-pointer case.
    const Shape shapes[] = {{1, 64, 64, 0},     {333, 256, 200, 0},  {333, 256, 200, 8}, {1000, 768, 2304, 0},
                            {517, 2048, 768, 0}, {97, 64, 50304, 0}, {250, 768, 4096, 0}};
    for (const Shape& s : shapes) check_shape(ctx, s);
    check_empty(ctx);
    printf("%zu pinned cuBLASLt plans\n", ctx.plans.size());
    if (g_test_failed == 0 && args.bench) bench(ctx);
    matmul_free(ctx);
    return test_summary();
}
