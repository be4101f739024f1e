// trainsim-profile: runs one layer's worth of a model's kernels on the GPUs present and records
// every kernel with the CUPTI Activity API; writes a trainsim profile (JSON Lines, the format of
// sim/calibration/profile.hpp) and a per-op summary. See README.md here.
//
// Exit status: 0 profile written; 2 bad options or model config; 3 no usable CUDA GPU;
// 1 a CUDA / CUPTI / cuBLASLt / NCCL call failed or the output could not be written.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <numeric>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cupti.h>
#ifdef TRAINSIM_PROFILE_NCCL
#include <nccl.h>
// CMakeLists.txt builds with NCCL only from 2.7 on (grouped ncclSend/ncclRecv); what came later
// is used only where the headers have it.
#if !defined(NCCL_VERSION_CODE) || !defined(NCCL_VERSION) || NCCL_VERSION_CODE < NCCL_VERSION(2, 7, 0)
#error "trainsim-profile needs NCCL 2.7 or newer (configure without NCCL to skip the collectives)"
#endif
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 28, 0)
#define TRAINSIM_NCCL_ALLTOALL 1  // ncclAlltoAll (NCCL 2.28)
#endif
#endif

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "calibration/profile.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "cupti_records.hpp"
#include "kernels.hpp"
#include "model/model_math.hpp"
#include "profile_convert.hpp"
#include "profile_plan.hpp"

namespace {

using namespace trainsim;
using namespace trainsim::profiler;

constexpr int kExitRuntime = 1;
constexpr int kExitInput = 2;
constexpr int kExitNoGpu = 3;

struct RuntimeFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw RuntimeFailure(fmt::format("{}: {} ({})", what, cudaGetErrorString(e), static_cast<int>(e)));
}
void check_cupti(CUptiResult r, const char* what) {
  if (r != CUPTI_SUCCESS) {
    const char* s = nullptr;
    cuptiGetResultString(r, &s);
    throw RuntimeFailure(fmt::format("{}: {} ({})", what, s ? s : "?", static_cast<int>(r)));
  }
}
void check_lt(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) throw RuntimeFailure(fmt::format("{}: cuBLAS status {}", what, static_cast<int>(st)));
}
#ifdef TRAINSIM_PROFILE_NCCL
void check_nccl(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw RuntimeFailure(fmt::format("{}: {}", what, ncclGetErrorString(r)));
}
// 16-bit elements for the collectives: BF16 from NCCL 2.10 on, else FP16 (same bytes; only the
// all-reduce's arithmetic differs).
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
constexpr ncclDataType_t kNccl16 = ncclBfloat16;
constexpr const char* kNccl16Name = "bf16";
#else
constexpr ncclDataType_t kNccl16 = ncclFloat16;
constexpr const char* kNccl16Name = "fp16";
#endif
#endif

// ---- CUPTI activity collection -------------------------------------------------------------
std::mutex g_mu;
Recording* g_rec = nullptr;
std::size_t g_dropped = 0;
constexpr std::size_t kBufferBytes = 8u << 20;
const std::pair<CUpti_ActivityKind, const char*> kCuptiKinds[] = {
    {CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION, "cuptiActivityEnable(EXTERNAL_CORRELATION)"},
    {CUPTI_ACTIVITY_KIND_RUNTIME, "cuptiActivityEnable(RUNTIME)"},
    {CUPTI_ACTIVITY_KIND_DRIVER, "cuptiActivityEnable(DRIVER)"},
    {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, "cuptiActivityEnable(CONCURRENT_KERNEL)"},
    {CUPTI_ACTIVITY_KIND_MEMSET, "cuptiActivityEnable(MEMSET)"},
    {CUPTI_ACTIVITY_KIND_MEMCPY, "cuptiActivityEnable(MEMCPY)"},
};

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;
}

std::string api_name(bool driver, std::uint32_t cbid) {
  const char* name = nullptr;
  if (cuptiGetCallbackName(driver ? CUPTI_CB_DOMAIN_DRIVER_API : CUPTI_CB_DOMAIN_RUNTIME_API, cbid, &name) != CUPTI_SUCCESS ||
      name == nullptr)
    return "";
  return name;
}

std::size_t g_walk_errors = 0;  // buffers whose walk ended with an error other than "end of buffer"

void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t* buffer, size_t /*size*/, size_t valid) {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    CUpti_Activity* rec = nullptr;
    while (g_rec) {
      const CUptiResult st = cuptiActivityGetNextRecord(buffer, valid, &rec);
      if (st == CUPTI_ERROR_MAX_LIMIT_REACHED) break;  // the normal end of the buffer
      if (st != CUPTI_SUCCESS) {
        ++g_walk_errors;
        break;
      }
      cupti::decode_record(rec, *g_rec, api_name);
    }
    size_t dropped = 0;
    if (cuptiActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS) g_dropped += dropped;
  }
  std::free(buffer);
}

// Launches of an op, each inside its own external correlation id.
class Tagger {
 public:
  explicit Tagger(Recording& r) : r_(r) {}
  void launch(std::size_t op, int rep, bool warmup, const std::function<void()>& f) {
    const std::uint64_t id = next_++;
    check_cupti(cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, id),
                "cuptiActivityPushExternalCorrelationId");
    f();
    std::uint64_t last = 0;
    check_cupti(cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last),
                "cuptiActivityPopExternalCorrelationId");
    r_.launches.push_back(Launch{id, op, rep, warmup});
  }

 private:
  Recording& r_;
  std::uint64_t next_ = 1;
};

// ---- device memory -------------------------------------------------------------------------
struct DevBuf {
  void* p = nullptr;
  DevBuf() = default;
  explicit DevBuf(std::size_t bytes) { check_cuda(cudaMalloc(&p, std::max<std::size_t>(bytes, 256)), "cudaMalloc"); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  DevBuf(DevBuf&& o) noexcept : p(o.p) { o.p = nullptr; }
  DevBuf& operator=(DevBuf&& o) noexcept {
    if (this != &o) {
      if (p) cudaFree(p);
      p = o.p;
      o.p = nullptr;
    }
    return *this;
  }
  ~DevBuf() {
    if (p) cudaFree(p);
  }
};

std::vector<std::string> split_list(const std::string& s);

struct Options {
  std::string model;
  std::vector<std::string> sets;
  std::int64_t micro_batch = 1;
  std::int64_t seq_len = 4096;
  std::int64_t ep = 1;
  int warmup = 5;
  int reps = 20;
  std::string dtypes = "bf16,fp8";
  std::string out = "trainsim-profile.jsonl";
  std::string gpu_key;
  std::string fp8_scaling = "block";  // block | tensor
  bool flush_l2 = true;
  bool plan_only = false;             // --plan: print the op plan, touch no GPU
};

// --plan: the ops a run would measure (profile_plan.hpp) for a device with FP8 tensor cores and
// one GPU (no collectives), as TSV on stdout. Needs no GPU: a session with a device sizes and
// checks its run before spending device time on it.
int print_plan(const Options& o) {
  const ModelConfig model = load_model(o.model, o.sets);
  PlanOptions po;
  po.micro_batch = o.micro_batch;
  po.seq_len = o.seq_len;
  po.ep = o.ep;
  po.dtypes = split_list(o.dtypes);
  const Plan plan = plan_ops(model, po);
  std::string out = "op\tclass\tkernel\tdtype\tm\tn\tk\tgroups\trows\twidth\tbytes\tgflop\thow\n";
  double launches = 0;
  for (const auto& p : plan.ops) {
    const auto& s = p.spec;
    const double gflop = p.kernel == "gemm" ? 2.0 * static_cast<double>(s.m) * static_cast<double>(s.n) *
                                                  static_cast<double>(s.k) * static_cast<double>(s.groups) / 1e9
                                            : 0.0;
    out += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.3f}\t{}\n", s.name, s.op_class, p.kernel, s.dtype,
                       s.m, s.n, s.k, s.groups, p.rows, p.width, s.bytes, gflop, s.how);
    launches += o.warmup + o.reps;
  }
  std::cout << out;
  std::cerr << fmt::format("trainsim-profile: {} ops, {} launches (warm-up {} + repetitions {} each); assumed: FP8 "
                           "tensor cores, one GPU (no collectives)\n",
                           plan.ops.size(), launches, o.warmup, o.reps);
  for (const auto& n : plan.notes) std::cerr << "trainsim-profile: note: " << n << "\n";
  return 0;
}

struct Ctx {
  Ctx(const Options& opts, Recording& r, Tagger& t) : o(opts), rec(r), tag(t) {}
  const Options& o;
  Recording& rec;
  Tagger& tag;
  cudaStream_t stream = nullptr;
  std::int64_t l2_bytes = 0;
  DevBuf l2_scrub;
};

// Overwrite L2 between repetitions (an untagged memset: not in the profile).
void scrub(Ctx& c) {
  if (c.l2_scrub.p) check_cuda(cudaMemsetAsync(c.l2_scrub.p, 0, static_cast<std::size_t>(2 * c.l2_bytes), c.stream), "cudaMemsetAsync");
}

void run_reps(Ctx& c, std::size_t op, const std::function<void()>& f) {
  for (int i = 0; i < c.o.warmup; ++i) {
    scrub(c);
    c.tag.launch(op, i, true, f);
  }
  for (int i = 0; i < c.o.reps; ++i) {
    scrub(c);
    c.tag.launch(op, i, false, f);
  }
  check_cuda(cudaStreamSynchronize(c.stream), "cudaStreamSynchronize");
}

// ---- GEMMs (cuBLASLt) ----------------------------------------------------------------------
// Y[M x N] = X[M x K] . W[K x N] per group, row-major. cuBLASLt is column-major, so it computes
// Y^T (N x M) = W^T (N x K) . X^T (K x M): A = W stored K x N (lda = K, op T), B = X^T stored
// K x M (ldb = K, op N), D = N x M (ldd = N) -- the "TN" layout FP8 requires on Hopper.
// Groups run as a strided batch (equal rows per group: balanced routing).
struct GemmShape {
  std::int64_t m = 0, n = 0, k = 0, groups = 1;  // m per group
  std::string dtype;
  auto key() const { return std::tie(m, n, k, groups, dtype); }
};

// FP8 scaling: DeepSeek-V3's recipe (§3.3.2) is 1x128 scales along K for activations and 128x128
// blocks for weights; cuBLASLt has both from 12.9 on (VEC128_32F, BLK128x128_32F). All scales
// are 1 (the values do not change the time). Where no block-scaled algorithm exists (older
// cuBLASLt, another GPU, a batched layout it refuses), per-tensor scaling, and `how` says so.
#if defined(CUBLAS_VERSION) && CUBLAS_VERSION >= 120900
#define TRAINSIM_LT_BLOCK_SCALING 1
#endif

// Whether the GEMM ran (cuBLASLt had an algorithm) and, for FP8, with which scales.
struct GemmRun {
  bool ran = false;
  std::string scaling;  // "1x128 (activations) / 128x128 (weights) block scales" | "per-tensor scales" | ""
};

GemmRun run_gemm(Ctx& c, cublasLtHandle_t lt, const GemmShape& g, std::size_t op, void* workspace, std::size_t ws_bytes,
                 const float* scale_one, bool block_scaling) {
  const bool fp8 = g.dtype == "fp8";
  const cudaDataType_t in_t = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  const std::size_t esz = fp8 ? 1 : 2;
  const auto G = static_cast<std::size_t>(g.groups);
  const auto M = static_cast<std::size_t>(g.m), N = static_cast<std::size_t>(g.n), K = static_cast<std::size_t>(g.k);
  DevBuf a(G * K * N * esz), b(G * K * M * esz), d(G * N * M * 2);
  if (fp8) {
    check_cuda(fill_fp8_e4m3(a.p, static_cast<std::int64_t>(G * K * N), 1, c.stream), "fill");
    check_cuda(fill_fp8_e4m3(b.p, static_cast<std::int64_t>(G * K * M), 2, c.stream), "fill");
  } else {
    check_cuda(fill_bf16(a.p, static_cast<std::int64_t>(G * K * N), 1, c.stream), "fill");
    check_cuda(fill_bf16(b.p, static_cast<std::int64_t>(G * K * M), 2, c.stream), "fill");
  }
  // Block scales: A = W (K x N, blocks of 128 x 128), B = X^T (K x M, 1 x 128 along K).
  const std::size_t kb = (K + 127) / 128;
  DevBuf block_scales;
  if (fp8 && block_scaling) {
    const std::size_t count = G * kb * std::max(M, (N + 127) / 128);
    block_scales = DevBuf(count * sizeof(float));
    check_cuda(fill_f32(static_cast<float*>(block_scales.p), static_cast<std::int64_t>(count), 1.f, c.stream), "fill");
  }

  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  check_lt(cublasLtMatrixLayoutCreate(&la, in_t, K, N, static_cast<int64_t>(K)), "layout A");
  check_lt(cublasLtMatrixLayoutCreate(&lb, in_t, K, M, static_cast<int64_t>(K)), "layout B");
  check_lt(cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, N, M, static_cast<int64_t>(N)), "layout D");
  if (G > 1) {
    const int32_t count = static_cast<int32_t>(G);
    const int64_t sa = static_cast<int64_t>(K * N), sb = static_cast<int64_t>(K * M), sd = static_cast<int64_t>(N * M);
    for (auto [l, s] : {std::pair{la, sa}, std::pair{lb, sb}, std::pair{ld, sd}}) {
      check_lt(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)), "BATCH_COUNT");
      check_lt(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &s, sizeof(s)), "BATCH_OFFSET");
    }
  }
  cublasLtMatmulPreference_t pref = nullptr;
  check_lt(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  check_lt(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof(ws_bytes)),
           "MAX_WORKSPACE_BYTES");

  // A descriptor and its best algorithm, or nullptr when cuBLASLt has none for it.
  auto make = [&](bool blocks, cublasLtMatmulHeuristicResult_t& heur) -> cublasLtMatmulDesc_t {
    cublasLtMatmulDesc_t desc = nullptr;
    check_lt(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
    const cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
    check_lt(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof(opT)), "TRANSA");
    check_lt(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof(opN)), "TRANSB");
    if (fp8) {
      const void* sp = blocks ? block_scales.p : static_cast<const void*>(scale_one);
      check_lt(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sp, sizeof(sp)), "A_SCALE");
      check_lt(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sp, sizeof(sp)), "B_SCALE");
#ifdef TRAINSIM_LT_BLOCK_SCALING
      if (blocks) {
        const int32_t ma = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F, mb = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
        if (cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &ma, sizeof(ma)) != CUBLAS_STATUS_SUCCESS ||
            cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mb, sizeof(mb)) != CUBLAS_STATUS_SUCCESS) {
          cublasLtMatmulDescDestroy(desc);
          return nullptr;
        }
      }
#endif
    }
    int found = 0;
    if (cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 1, &heur, &found) != CUBLAS_STATUS_SUCCESS || found == 0) {
      cublasLtMatmulDescDestroy(desc);
      return nullptr;
    }
    return desc;
  };
  const float alpha = 1.f, beta = 0.f;
  auto matmul = [&](cublasLtMatmulDesc_t desc, const cublasLtMatmulHeuristicResult_t& heur) {
    return cublasLtMatmul(lt, desc, &alpha, a.p, la, b.p, lb, &beta, d.p, ld, d.p, ld, &heur.algo, workspace, ws_bytes, c.stream);
  };
  GemmRun res;
  cublasLtMatmulHeuristicResult_t heur{};
  cublasLtMatmulDesc_t desc = nullptr;
#ifdef TRAINSIM_LT_BLOCK_SCALING
  if (fp8 && block_scaling && (desc = make(true, heur)) != nullptr) {
    // One untagged trial launch (not in the profile): a block-scaled algorithm the heuristic
    // offers but the kernel refuses falls back to per-tensor scaling rather than ending the run.
    if (matmul(desc, heur) == CUBLAS_STATUS_SUCCESS && cudaStreamSynchronize(c.stream) == cudaSuccess) {
      res.scaling = "1x128 (activations) / 128x128 (weights) block scales";
    } else {
      cudaGetLastError();
      cublasLtMatmulDescDestroy(desc);
      desc = nullptr;
    }
  }
#endif
  if (desc == nullptr && (desc = make(false, heur)) != nullptr && fp8) res.scaling = "per-tensor scales";
  if (desc != nullptr) {
    run_reps(c, op, [&] { check_lt(matmul(desc, heur), "cublasLtMatmul"); });
    res.ran = true;
    cublasLtMatmulDescDestroy(desc);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(ld);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(la);
  return res;
}

// One memory-bound op of the plan (kernels.hpp), its buffers sized for the largest kernel.
void run_membound(Ctx& c, const PlannedOp& p, std::size_t op) {
  const std::int64_t rows = p.rows, width = p.width;
  const auto n = static_cast<std::size_t>(rows * width);
  DevBuf x(2 * n * 2), w(2 * n), y(2 * n);
  check_cuda(fill_bf16(x.p, static_cast<std::int64_t>(2 * n), 3, c.stream), "fill");
  if (p.kernel == "permute") {
    std::int64_t a = 2654435761 % rows;  // a multiplier coprime with rows: a scattered permutation
    while (std::gcd(a, rows) != 1) ++a;
    check_cuda(fill_permutation(static_cast<std::int32_t*>(w.p), rows, a, 17 % rows, c.stream), "fill");
  } else {
    check_cuda(fill_bf16(w.p, static_cast<std::int64_t>(n), 4, c.stream), "fill");
  }
  const std::string& k = p.kernel;
  run_reps(c, op, [&] {
    if (k == "rmsnorm") check_cuda(rmsnorm_bf16(x.p, w.p, y.p, rows, width, c.stream), "rmsnorm");
    else if (k == "swiglu") check_cuda(swiglu_bf16(x.p, y.p, rows, width, c.stream), "swiglu");
    else if (k == "gelu" || k == "sqrelu") check_cuda(activation_bf16(x.p, y.p, rows * width, k == "sqrelu", c.stream), "activation");
    else if (k == "add") check_cuda(add_bf16(x.p, w.p, y.p, rows * width, c.stream), "add");
    else if (k == "quant") check_cuda(quant_fp8_1x128(x.p, y.p, static_cast<float*>(w.p), rows, width, c.stream), "quant");
    else if (k == "permute")
      check_cuda(permute_rows_bf16(x.p, static_cast<const std::int32_t*>(w.p), y.p, rows, width, c.stream), "permute");
    else throw RuntimeFailure(fmt::format("op {}: unknown kernel '{}'", p.spec.name, k));
  });
}

std::string iso_date_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

int profile(const Options& o, const std::string& command, int ndev) {
  const ModelConfig model = load_model(o.model, o.sets);

  Recording rec;
  RunInfo& run = rec.run;
  run.model_file = o.model;
  run.command = command;
  run.gpu_key = o.gpu_key;
  run.warmup = o.warmup;
  run.reps = o.reps;
  run.date = iso_date_utc();
  check_cuda(cudaDriverGetVersion(&run.driver_version), "cudaDriverGetVersion");
  check_cuda(cudaRuntimeGetVersion(&run.runtime_version), "cudaRuntimeGetVersion");
  for (int d = 0; d < ndev; ++d) {
    cudaDeviceProp prop{};
    check_cuda(cudaGetDeviceProperties(&prop, d), "cudaGetDeviceProperties");
    DeviceInfo di;
    di.id = static_cast<std::uint32_t>(d);
    di.name = prop.name;
    di.num_sms = prop.multiProcessorCount;
    di.cc_major = prop.major;
    di.cc_minor = prop.minor;
    int v = 0;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrClockRate, d) == cudaSuccess) di.sm_clock_khz = v;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMemoryClockRate, d) == cudaSuccess) di.mem_clock_khz = v;
    cudaGetLastError();
    run.devices.push_back(di);
  }
  const DeviceInfo& d0 = run.devices.front();
  run.notes.push_back("clocks not locked by trainsim-profile (peak clocks above are the device's rated maxima, "
                      "not the clocks the kernels ran at)");

  // CUPTI before any context is created.
  uint32_t cupti_version = 0;
  cuptiGetVersion(&cupti_version);
  int nccl_version = 0;
#ifdef TRAINSIM_PROFILE_NCCL
  ncclGetVersion(&nccl_version);
  if (nccl_version < NCCL_VERSION_CODE)
    run.notes.push_back(fmt::format("NCCL library {} is older than its headers ({})", nccl_version, NCCL_VERSION_CODE));
#endif
  run.software = fmt::format("trainsim-profile {} (CUPTI API {} (headers {}), cuBLASLt {}{})", TRAINSIM_PROFILE_VERSION,
                             cupti_version, CUPTI_API_VERSION, cublasLtGetVersion(),
                             nccl_version ? fmt::format(", NCCL {}", nccl_version) : std::string());
  if (cupti_version < CUPTI_API_VERSION)
    run.notes.push_back(fmt::format("CUPTI library API version {} is older than the headers trainsim-profile was built "
                                    "with ({}): kernel records read by their common prefix only",
                                    cupti_version, CUPTI_API_VERSION));
  g_rec = &rec;
  check_cupti(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
  // External-correlation records are written per runtime/driver API call made under a pushed
  // id, so the API kinds must be on for kernels to be attributed to launches at all; their
  // records also give each kernel its CPU launch time. Memsets and memcpys show which gaps on
  // a stream are not kernel-to-kernel gaps (the L2 scrub).
  for (const auto& [kind, what] : kCuptiKinds) check_cupti(cuptiActivityEnable(kind), what);

  check_cuda(cudaSetDevice(0), "cudaSetDevice");
  Tagger tag(rec);
  Ctx c(o, rec, tag);
  check_cuda(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  int l2 = 0;
  check_cuda(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0), "cudaDeviceGetAttribute(L2)");
  c.l2_bytes = l2;
  if (o.flush_l2 && l2 > 0) c.l2_scrub = DevBuf(static_cast<std::size_t>(2 * l2));
  run.notes.push_back(o.flush_l2 ? "L2 overwritten before every launch" : "L2 not flushed between launches");

  // The ops of one dense and (for MoE models) one MoE layer (profile_plan.hpp).
  PlanOptions po;
  po.micro_batch = o.micro_batch;
  po.seq_len = o.seq_len;
  po.ep = o.ep;
  po.dtypes = split_list(o.dtypes);
  po.fp8_ok = d0.cc_major * 10 + d0.cc_minor >= 89;
  po.world = ndev;
#ifdef TRAINSIM_PROFILE_NCCL
  po.collectives = ndev > 1;
  po.collective_dtype = kNccl16Name;
  run.notes.push_back(ndev > 1 ? "collectives measured alone (not overlapped with compute)" : "collectives not measured: one GPU");
#else
  run.notes.push_back("collectives not measured: built without NCCL");
#endif
  const Plan plan = plan_ops(model, po);
  for (const auto& n : plan.notes) run.notes.push_back(n);
  run.notes.push_back("attention not measured: causal flash attention needs cuDNN's SDPA with a causal mask (the "
                      "cuDNN frontend's composite graph, or cuDNN >= 9.20's diagonal band mask), not in this build; "
                      "an own kernel would calibrate the wrong thing");

  cublasLtHandle_t lt = nullptr;
  check_lt(cublasLtCreate(&lt), "cublasLtCreate");
  const std::size_t ws_bytes = 32u << 20;
  DevBuf workspace(ws_bytes), one(sizeof(float));
  check_cuda(fill_f32(static_cast<float*>(one.p), 1, 1.f, c.stream), "fill");
  std::vector<const PlannedOp*> collectives;
  for (const PlannedOp& p : plan.ops) {
    if (p.spec.comm) {
      collectives.push_back(&p);
      continue;
    }
    rec.ops.push_back(p.spec);
    const std::size_t op = rec.ops.size() - 1;
    if (p.kernel == "gemm") {
      const GemmShape g{p.spec.m, p.spec.n, p.spec.k, p.spec.groups, p.spec.dtype};
      const GemmRun gr = run_gemm(c, lt, g, op, workspace.p, ws_bytes, static_cast<const float*>(one.p),
                                  o.fp8_scaling == "block");
      if (!gr.ran)
        run.notes.push_back(fmt::format("{} ({}x{}x{}x{} {}): no cuBLASLt algorithm", p.spec.name, g.m, g.n, g.k, g.groups, g.dtype));
      if (!gr.scaling.empty()) rec.ops[op].how += fmt::format("; FP8 {}", gr.scaling);
    } else {
      run_membound(c, p, op);
    }
    std::cerr << fmt::format("trainsim-profile: {} done\n", p.spec.name);
  }
  cublasLtDestroy(lt);

  // --- collectives
#ifdef TRAINSIM_PROFILE_NCCL
  if (!collectives.empty()) {
    std::vector<ncclComm_t> comms(static_cast<std::size_t>(ndev));
    check_nccl(ncclCommInitAll(comms.data(), ndev, nullptr), "ncclCommInitAll");
    std::vector<cudaStream_t> streams(static_cast<std::size_t>(ndev));
    for (int d = 0; d < ndev; ++d) {
      check_cuda(cudaSetDevice(d), "cudaSetDevice");
      check_cuda(cudaStreamCreateWithFlags(&streams[static_cast<std::size_t>(d)], cudaStreamNonBlocking), "cudaStreamCreate");
    }
    for (const PlannedOp* cl : collectives) {
      const bool a2a = cl->kernel == "all_to_all";
      const auto count = static_cast<std::size_t>(cl->spec.bytes / 2);
      std::vector<DevBuf> send, recv;
      for (int d = 0; d < ndev; ++d) {
        check_cuda(cudaSetDevice(d), "cudaSetDevice");
        send.emplace_back(count * 2);
        recv.emplace_back(count * 2);
        check_cuda(fill_bf16(send.back().p, static_cast<std::int64_t>(count), 5, streams[static_cast<std::size_t>(d)]), "fill");
      }
      OpSpec spec = cl->spec;
#ifdef TRAINSIM_NCCL_ALLTOALL
      const char* a2a_call = "ncclAlltoAll";
#else
      const char* a2a_call = "grouped ncclSend/ncclRecv";
#endif
      spec.how += fmt::format(" ({})", a2a ? a2a_call : "ncclAllReduce");
      rec.ops.push_back(spec);
      const std::size_t op = rec.ops.size() - 1;
      auto once = [&] {
        check_nccl(ncclGroupStart(), "ncclGroupStart");
        for (int d = 0; d < ndev; ++d) {
          const auto i = static_cast<std::size_t>(d);
          const std::size_t chunk = count / static_cast<std::size_t>(ndev);  // elements per peer
          if (a2a) {
#ifdef TRAINSIM_NCCL_ALLTOALL
            check_nccl(ncclAlltoAll(send[i].p, recv[i].p, chunk, kNccl16, comms[i], streams[i]), "ncclAlltoAll");
#else
            // NCCL < 2.28 has no ncclAlltoAll: one send and one receive per peer, in the group.
            for (int peer = 0; peer < ndev; ++peer) {
              const std::size_t off = static_cast<std::size_t>(peer) * chunk * 2;
              check_nccl(ncclSend(static_cast<const char*>(send[i].p) + off, chunk, kNccl16, peer, comms[i], streams[i]),
                         "ncclSend");
              check_nccl(ncclRecv(static_cast<char*>(recv[i].p) + off, chunk, kNccl16, peer, comms[i], streams[i]),
                         "ncclRecv");
            }
#endif
          } else {
            check_nccl(ncclAllReduce(send[i].p, recv[i].p, count, kNccl16, ncclSum, comms[i], streams[i]), "ncclAllReduce");
          }
        }
        check_nccl(ncclGroupEnd(), "ncclGroupEnd");
      };
      for (int i = 0; i < o.warmup + o.reps; ++i) {
        tag.launch(op, i < o.warmup ? i : i - o.warmup, i < o.warmup, once);
        for (int d = 0; d < ndev; ++d) {
          check_cuda(cudaSetDevice(d), "cudaSetDevice");
          check_cuda(cudaStreamSynchronize(streams[static_cast<std::size_t>(d)]), "cudaStreamSynchronize");
        }
      }
      for (int d = 0; d < ndev; ++d) {  // free on the owning device
        check_cuda(cudaSetDevice(d), "cudaSetDevice");
        send[static_cast<std::size_t>(d)] = DevBuf();
        recv[static_cast<std::size_t>(d)] = DevBuf();
      }
    }
    for (auto& cm : comms) ncclCommDestroy(cm);
    check_cuda(cudaSetDevice(0), "cudaSetDevice");
  }
#else
  (void)collectives;
#endif

  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  check_cupti(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll");
  for (const auto& kv : kCuptiKinds) cuptiActivityDisable(kv.first);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_rec = nullptr;
    if (g_dropped > 0) run.notes.push_back(fmt::format("CUPTI dropped {} activity records", g_dropped));
    if (g_walk_errors > 0)
      run.notes.push_back(fmt::format("{} CUPTI activity buffers could not be read to the end", g_walk_errors));
  }

  const Conversion conv = convert(rec);
  {
    std::ofstream f(o.out, std::ios::binary);
    f << calibration::write_profile(conv.profile);
    if (!f) throw RuntimeFailure(fmt::format("cannot write {}", o.out));
  }
  const std::string summary = write_summary(conv, rec.ops);
  if (o.out != "/dev/null") {
    std::ofstream f(o.out + ".summary.tsv", std::ios::binary);
    f << summary;
    if (!f) throw RuntimeFailure(fmt::format("cannot write {}.summary.tsv", o.out));
  }
  std::cout << summary;
  std::cerr << fmt::format("trainsim-profile: {} kernels written to {} ({} warm-up and {} unattributed kernels dropped)\n",
                           conv.profile.kernels.size(), o.out, conv.warmup_kernels, conv.unattributed);
  for (const auto& n : run.notes) std::cerr << "trainsim-profile: note: " << n << "\n";
  cudaStreamDestroy(c.stream);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"trainsim-profile: measure a model's kernels with CUPTI and write a trainsim profile"};
  app.option_defaults()->always_capture_default();
  app.add_option("--model", o.model, "model config (TOML), e.g. models/deepseek-v3.toml")->required();
  app.add_option("--set", o.sets, "override a model key: key=value (repeatable)");
  app.add_option("--micro-batch", o.micro_batch, "sequences per micro-batch")->check(CLI::PositiveNumber);
  app.add_option("--seq-len", o.seq_len, "tokens per sequence")->check(CLI::PositiveNumber);
  app.add_option("--ep", o.ep, "expert-parallel degree: grouped GEMMs get routed_experts/ep groups")->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "warm-up launches per op (dropped)")->check(CLI::NonNegativeNumber);
  app.add_option("--reps", o.reps, "measured launches per op")->check(CLI::PositiveNumber);
  app.add_option("--dtype", o.dtypes, "GEMM dtypes, comma-separated: bf16,fp8");
  app.add_option("--fp8-scaling", o.fp8_scaling,
                 "FP8 GEMM scales: block (1x128 activations, 128x128 weights: DeepSeek-V3's recipe; per-tensor where "
                 "cuBLASLt has no block-scaled algorithm) or tensor")
      ->check(CLI::IsMember({"block", "tensor"}));
  app.add_option("--gpu-key", o.gpu_key, "profiles/<key>/ folder name (default: from the device name)");
  app.add_flag("!--no-l2-flush", o.flush_l2, "do not overwrite L2 before each launch");
  app.add_flag("--plan", o.plan_only, "print the ops a run would measure (shapes, bytes) and exit; needs no GPU");
  app.add_option("-o,--output", o.out, "profile to write (JSON Lines); the summary goes to OUT.summary.tsv");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitInput;
  }
  std::string command = "trainsim-profile";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  if (o.plan_only) {
    try {
      return print_plan(o);
    } catch (const InputError& ex) {
      std::cerr << "trainsim-profile: " << ex.what() << "\n";
      return kExitInput;
    }
  }

  int ndev = 0;
  const cudaError_t e = cudaGetDeviceCount(&ndev);
  if (e != cudaSuccess || ndev == 0) {
    std::cerr << fmt::format("trainsim-profile: no CUDA GPU found ({}): nothing to profile\n",
                             e != cudaSuccess ? fmt::format("cudaGetDeviceCount: {}", cudaGetErrorString(e))
                                              : std::string("cudaGetDeviceCount reports 0 devices"));
    return kExitNoGpu;
  }
  try {
    return profile(o, command, ndev);
  } catch (const InputError& ex) {
    std::cerr << "trainsim-profile: " << ex.what() << "\n";
    return kExitInput;
  } catch (const std::exception& ex) {
    std::cerr << "trainsim-profile: error: " << ex.what() << "\n";
    return kExitRuntime;
  }
}
