#include "kernels.hpp"

#include <cuda_bf16.h>
#include <cuda_fp8.h>

namespace trainsim::profiler {

namespace {

__device__ __forceinline__ float hash_unit(std::uint64_t i, std::uint32_t seed) {
  std::uint64_t x = i * 0x9E3779B97F4A7C15ull + seed;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return static_cast<float>(x >> 40) * (2.0f / 16777216.0f) - 1.0f;  // [-1, 1)
}

__global__ void fill_bf16_k(__nv_bfloat16* p, std::int64_t n, std::uint32_t seed) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16(hash_unit(static_cast<std::uint64_t>(i), seed));
}

__global__ void fill_fp8_k(__nv_fp8_e4m3* p, std::int64_t n, std::uint32_t seed) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    p[i] = __nv_fp8_e4m3(hash_unit(static_cast<std::uint64_t>(i), seed));
}

__global__ void fill_f32_k(float* p, std::int64_t n, float v) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    p[i] = v;
}

// One block per row; 256 threads; FP32 accumulation.
__global__ void rmsnorm_k(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y, std::int64_t width) {
  const std::int64_t row = blockIdx.x;
  const __nv_bfloat16* xr = x + row * width;
  __nv_bfloat16* yr = y + row * width;
  float ss = 0.f;
  for (std::int64_t i = threadIdx.x; i < width; i += blockDim.x) {
    const float v = __bfloat162float(xr[i]);
    ss += v * v;
  }
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  __shared__ float warp_sums[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = ss;
  __syncthreads();
  if (warp == 0) {
    ss = lane < static_cast<int>(blockDim.x / 32) ? warp_sums[lane] : 0.f;
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if (lane == 0) warp_sums[0] = ss;
  }
  __syncthreads();
  const float r = rsqrtf(warp_sums[0] / static_cast<float>(width) + 1e-6f);
  for (std::int64_t i = threadIdx.x; i < width; i += blockDim.x)
    yr[i] = __float2bfloat16(__bfloat162float(xr[i]) * r * __bfloat162float(w[i]));
}

__global__ void swiglu_k(const __nv_bfloat16* x, __nv_bfloat16* y, std::int64_t rows, std::int64_t width) {
  const std::int64_t n = rows * width;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / width, c = i % width;
    const float g = __bfloat162float(x[r * 2 * width + c]);
    const float u = __bfloat162float(x[r * 2 * width + width + c]);
    y[i] = __float2bfloat16(g / (1.f + __expf(-g)) * u);
  }
}

__global__ void add_k(const __nv_bfloat16* a, const __nv_bfloat16* b, __nv_bfloat16* y, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    y[i] = __float2bfloat16(__bfloat162float(a[i]) + __bfloat162float(b[i]));
}

unsigned grid_for(std::int64_t n, unsigned threads) {
  const std::int64_t g = (n + threads - 1) / threads;
  return static_cast<unsigned>(g < 1 ? 1 : (g > 65535 * 16 ? 65535 * 16 : g));
}

}  // namespace

cudaError_t fill_bf16(void* p, std::int64_t n, std::uint32_t seed, cudaStream_t s) {
  fill_bf16_k<<<grid_for(n, 256), 256, 0, s>>>(static_cast<__nv_bfloat16*>(p), n, seed);
  return cudaGetLastError();
}
cudaError_t fill_fp8_e4m3(void* p, std::int64_t n, std::uint32_t seed, cudaStream_t s) {
  fill_fp8_k<<<grid_for(n, 256), 256, 0, s>>>(static_cast<__nv_fp8_e4m3*>(p), n, seed);
  return cudaGetLastError();
}
cudaError_t fill_f32(float* p, std::int64_t n, float value, cudaStream_t s) {
  fill_f32_k<<<grid_for(n, 256), 256, 0, s>>>(p, n, value);
  return cudaGetLastError();
}
cudaError_t rmsnorm_bf16(const void* x, const void* w, void* y, std::int64_t rows, std::int64_t width,
                         cudaStream_t s) {
  rmsnorm_k<<<static_cast<unsigned>(rows), 256, 0, s>>>(static_cast<const __nv_bfloat16*>(x),
                                                        static_cast<const __nv_bfloat16*>(w),
                                                        static_cast<__nv_bfloat16*>(y), width);
  return cudaGetLastError();
}
cudaError_t swiglu_bf16(const void* x, void* y, std::int64_t rows, std::int64_t width, cudaStream_t s) {
  swiglu_k<<<grid_for(rows * width, 256), 256, 0, s>>>(static_cast<const __nv_bfloat16*>(x),
                                                       static_cast<__nv_bfloat16*>(y), rows, width);
  return cudaGetLastError();
}
cudaError_t add_bf16(const void* a, const void* b, void* y, std::int64_t n, cudaStream_t s) {
  add_k<<<grid_for(n, 256), 256, 0, s>>>(static_cast<const __nv_bfloat16*>(a), static_cast<const __nv_bfloat16*>(b),
                                         static_cast<__nv_bfloat16*>(y), n);
  return cudaGetLastError();
}

}  // namespace trainsim::profiler
