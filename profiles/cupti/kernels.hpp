#pragma once
// Small CUDA kernels of trainsim-profile (kernels.cu): input initialisation and the memory-bound
// ops it measures (RMSNorm, SwiGLU, GELU / squared ReLU, residual add, BF16 -> FP8 1x128 cast,
// row permutation), all on BF16 rows. Plain, untuned kernels: what they measure is the bandwidth
// simple kernels reach, not that of a framework's fused ones. Host-callable launchers; no CUDA types in the interface
// beyond cudaStream_t so that main.cpp can be plain C++.
#include <cstdint>

#include <cuda_runtime.h>

namespace trainsim::profiler {

// Pseudo-random values in [-1, 1) (BF16) or [-1, 1) in E4M3 (FP8), from a hash of the index.
cudaError_t fill_bf16(void* p, std::int64_t n, std::uint32_t seed, cudaStream_t s);
cudaError_t fill_fp8_e4m3(void* p, std::int64_t n, std::uint32_t seed, cudaStream_t s);
cudaError_t fill_f32(float* p, std::int64_t n, float value, cudaStream_t s);

// y[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * w[:], rows x width, BF16 in and out.
cudaError_t rmsnorm_bf16(const void* x, const void* w, void* y, std::int64_t rows, std::int64_t width,
                         cudaStream_t s);
// y[r, i] = silu(x[r, i]) * x[r, width + i]; x is rows x 2*width (gate | up), y rows x width.
cudaError_t swiglu_bf16(const void* x, void* y, std::int64_t rows, std::int64_t width, cudaStream_t s);
// y = a + b, n elements.
cudaError_t add_bf16(const void* a, const void* b, void* y, std::int64_t n, cudaStream_t s);
// y = gelu(x) (tanh approximation) or relu(x)^2, n elements.
cudaError_t activation_bf16(const void* x, void* y, std::int64_t n, bool squared_relu, cudaStream_t s);
// x (rows x width, BF16) -> y (FP8 E4M3) and one FP32 scale per 1x128 group (rows x ceil(width/128)).
cudaError_t quant_fp8_1x128(const void* x, void* y, float* scales, std::int64_t rows, std::int64_t width, cudaStream_t s);
// y[r, :] = x[idx[r], :], rows x width BF16.
cudaError_t permute_rows_bf16(const void* x, const std::int32_t* idx, void* y, std::int64_t rows, std::int64_t width,
                              cudaStream_t s);
// idx[i] = (i * a + b) mod n (a permutation when gcd(a, n) = 1).
cudaError_t fill_permutation(std::int32_t* idx, std::int64_t n, std::int64_t a, std::int64_t b, cudaStream_t s);

}  // namespace trainsim::profiler
