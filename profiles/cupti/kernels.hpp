#pragma once
// Small CUDA kernels of trainsim-profile (kernels.cu): input initialisation, RMSNorm, SwiGLU and
// the residual add, all on BF16 rows. Host-callable launchers; no CUDA types in the interface
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

}  // namespace trainsim::profiler
