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

// GELU (tanh approximation, as GPT-2/3 use) or squared ReLU (Nemotron-4), elementwise.
__global__ void activation_k(const __nv_bfloat16* x, __nv_bfloat16* y, std::int64_t n, bool squared_relu) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float v = __bfloat162float(x[i]);
    float r;
    if (squared_relu) {
      r = v > 0.f ? v * v : 0.f;
    } else {
      r = 0.5f * v * (1.f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
    }
    y[i] = __float2bfloat16(r);
  }
}

// BF16 -> FP8 E4M3 with one FP32 scale per 1x128 group of a row (DeepSeek-V3 §3.3.2's activation
// tiles): one warp per group, 4 values per lane; scale = amax / 448 (E4M3's largest finite value).
__global__ void quant_k(const __nv_bfloat16* x, __nv_fp8_e4m3* y, float* scales, std::int64_t rows, std::int64_t width) {
  const std::int64_t groups_per_row = (width + 127) / 128;
  const std::int64_t group = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
  if (group >= rows * groups_per_row) return;
  const int lane = threadIdx.x % 32;
  const std::int64_t row = group / groups_per_row, col0 = (group % groups_per_row) * 128 + lane * 4;
  float v[4];
  float amax = 0.f;
  for (int j = 0; j < 4; ++j) {
    v[j] = col0 + j < width ? __bfloat162float(x[row * width + col0 + j]) : 0.f;
    amax = fmaxf(amax, fabsf(v[j]));
  }
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float scale = amax > 0.f ? amax / 448.f : 1.f;
  for (int j = 0; j < 4; ++j)
    if (col0 + j < width) y[row * width + col0 + j] = __nv_fp8_e4m3(v[j] / scale);
  if (lane == 0) scales[group] = scale;
}

// y[r, :] = x[idx[r], :]: one block per output row, 16-byte copies when the row allows them.
__global__ void permute_k(const __nv_bfloat16* x, const std::int32_t* idx, __nv_bfloat16* y, std::int64_t width) {
  const std::int64_t r = blockIdx.x, src = idx[r];
  if (width % 8 == 0) {
    const uint4* xs = reinterpret_cast<const uint4*>(x + src * width);
    uint4* yd = reinterpret_cast<uint4*>(y + r * width);
    for (std::int64_t i = threadIdx.x; i < width / 8; i += blockDim.x) yd[i] = xs[i];
  } else {
    for (std::int64_t i = threadIdx.x; i < width; i += blockDim.x) y[r * width + i] = x[src * width + i];
  }
}

// idx[i] = (i * a + b) mod n: a permutation of 0..n-1 when gcd(a, n) = 1.
__global__ void permutation_k(std::int32_t* idx, std::int64_t n, std::int64_t a, std::int64_t b) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    idx[i] = static_cast<std::int32_t>((i % n * (a % n) + b) % n);
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

cudaError_t activation_bf16(const void* x, void* y, std::int64_t n, bool squared_relu, cudaStream_t s) {
  activation_k<<<grid_for(n, 256), 256, 0, s>>>(static_cast<const __nv_bfloat16*>(x), static_cast<__nv_bfloat16*>(y), n,
                                                squared_relu);
  return cudaGetLastError();
}
cudaError_t quant_fp8_1x128(const void* x, void* y, float* scales, std::int64_t rows, std::int64_t width, cudaStream_t s) {
  const std::int64_t groups = rows * ((width + 127) / 128);
  const std::int64_t blocks = (groups * 32 + 255) / 256;
  quant_k<<<static_cast<unsigned>(blocks), 256, 0, s>>>(static_cast<const __nv_bfloat16*>(x), static_cast<__nv_fp8_e4m3*>(y),
                                                        scales, rows, width);
  return cudaGetLastError();
}
cudaError_t permute_rows_bf16(const void* x, const std::int32_t* idx, void* y, std::int64_t rows, std::int64_t width,
                              cudaStream_t s) {
  permute_k<<<static_cast<unsigned>(rows), 256, 0, s>>>(static_cast<const __nv_bfloat16*>(x), idx,
                                                        static_cast<__nv_bfloat16*>(y), width);
  return cudaGetLastError();
}
cudaError_t fill_permutation(std::int32_t* idx, std::int64_t n, std::int64_t a, std::int64_t b, cudaStream_t s) {
  permutation_k<<<grid_for(n, 256), 256, 0, s>>>(idx, n, a, b);
  return cudaGetLastError();
}

}  // namespace trainsim::profiler
