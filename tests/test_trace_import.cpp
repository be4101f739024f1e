// Generic Kineto import (issue 14 point 1): traces written here in the shapes public PyTorch
// profiler output takes, across the schema versions in use, and the refusals of what trainsim
// does not model. The field shapes follow public traces: the PyTorch 1.8 samples of
// pytorch/kineto's tb_plugin (capitalised categories "Kernel"/"Operator"/"Runtime", "external
// id" in lower case on kernels, "Input dims", string tids such as "stream 7"), the 2022-23
// traces of HolisticTraceAnalysis's tests (lower-case categories, "Input Dims", integer ts,
// record_param_comms operators), and 2024 output (fractional ts relative to
// baseTimeNanoseconds, NCCL metadata on the kernel itself). Expected values are worked out by
// hand in the comments.
#include <zlib.h>

#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "calibration/classifier.hpp"
#include "calibration/kineto.hpp"
#include "calibration/profile.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "support.hpp"

using namespace trainsim;
using namespace trainsim::calibration;

namespace {

const Classifier& rules() {
  static const Classifier c = Classifier::load((ts_test::source_dir() / "profiles/classifier.toml").string());
  return c;
}

// The whole import path, as `trainsim import` runs it.
Profile import_text(const std::string& text, const std::string& name, DeviceInfo* dev = nullptr) {
  RawImport r = parse_kineto_text(text, name);
  classify(r.profile, rules());
  account_sms(r.profile);
  recorded_shapes(r.profile);
  if (dev != nullptr) *dev = r.device;
  return r.profile;
}

const KernelRecord& kernel_named(const Profile& p, const std::string& needle) {
  for (const auto& k : p.kernels)
    if (k.name.find(needle) != std::string::npos) return k;
  FAIL("no kernel named like " << needle);
  return p.kernels.front();
}

template <class F>
std::string data_error(F&& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  FAIL("no DataError thrown");
  return {};
}

// PyTorch 1.8 (tb_plugin samples, 2021): "Operator" with "Input dims" and an empty
// "Input type"; "Runtime" launches; "Kernel" with "external id" (lower case) naming the
// operator's "External id"; string tids; "async" flow events.
const char* kLegacy = R"TR({
  "schemaVersion": 1,
  "traceEvents": [
    {"ph": "X", "cat": "Operator", "name": "aten::addmm", "pid": 118664, "tid": "1441273664", "ts": 1610366387140000, "dur": 40,
     "args": {"Input dims": [[1000], [32, 2048], [2048, 1000], [], []], "Input type": [], "Device": 0, "External id": 883}},
    {"ph": "X", "cat": "Runtime", "name": "cudaLaunchKernel", "pid": 118664, "tid": "1441273664", "ts": 1610366387140010, "dur": 8,
     "args": {"cbid": 211, "correlation": 627, "external id": 883, "external ts": 1610366387140000}},
    {"ph": "s", "id": 627, "pid": 118664, "tid": "1441273664", "ts": 1610366387140010, "cat": "async", "name": "launch"},
    {"ph": "X", "cat": "Kernel", "name": "volta_sgemm_128x64_nn", "pid": 0, "tid": "stream 7", "ts": 1610366387140030, "dur": 25,
     "args": {"queued": 0, "device": 0, "context": 1, "stream": 7, "correlation": 627, "external id": 883,
              "registers per thread": 80, "shared memory": 2304, "warps per SM": 6.2, "grid": [16, 8, 1], "block": [256, 1, 1]}},
    {"ph": "f", "id": 627, "pid": 0, "tid": "stream 7", "ts": 1610366387140030, "cat": "async", "name": "launch", "bp": "e"},
    {"ph": "X", "cat": "Memcpy", "name": "Memcpy HtoD (Pageable -> Device)", "pid": 0, "tid": "stream 7", "ts": 1610366387140100, "dur": 3,
     "args": {"device": 0, "stream": 7, "correlation": 628, "bytes": 4096}}
  ]
})TR";

// 2022-23 (HolisticTraceAnalysis test traces): lower-case categories, integer ts, "Input
// Dims" with "Input type", deviceProperties of an A100 SXM4 80GB. The kernels' "External id"
// equals their correlation id (some versions wrote it so), so the launching op is found as
// the innermost operator around the launch call. The NCCL kernel's collective sits on the
// record_param_comms operator around its launch.
const char* k2023 = R"TR({
  "schemaVersion": 1,
  "deviceProperties": [
    {"id": 0, "name": "NVIDIA A100-SXM4-80GB", "totalGlobalMem": 85097971712, "computeMajor": 8, "computeMinor": 0,
     "maxThreadsPerBlock": 1024, "maxThreadsPerMultiprocessor": 2048, "regsPerBlock": 65536, "warpSize": 32,
     "sharedMemPerBlock": 49152, "numSms": 108, "regsPerMultiprocessor": 65536, "sharedMemPerBlockOptin": 166912,
     "sharedMemPerMultiprocessor": 167936}
  ],
  "distributedInfo": {"backend": "nccl", "rank": 0, "world_size": 8},
  "record_shapes": 1,
  "traceEvents": [
    {"ph": "X", "cat": "cpu_op", "name": "aten::linear", "pid": 4515, "tid": 4515, "ts": 1683564901559000, "dur": 100,
     "args": {"External id": 291, "Input Dims": [[64, 128], [256, 128], []], "Input type": ["float", "float", ""]}},
    {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 4515, "tid": 4515, "ts": 1683564901559010, "dur": 80,
     "args": {"External id": 295, "Input Dims": [[64, 128], [128, 256]], "Input type": ["float", "float"]}},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 4515, "tid": 4515, "ts": 1683564901559020, "dur": 10,
     "args": {"External id": 863350, "cbid": 211, "correlation": 863350}},
    {"ph": "X", "cat": "kernel", "name": "ampere_sgemm_64x64_nn", "pid": 0, "tid": 7, "ts": 1683564901559100, "dur": 12,
     "args": {"External id": 863350, "queued": 0, "device": 0, "context": 1, "stream": 7, "correlation": 863350,
              "grid": [4, 1, 1], "block": [128, 1, 1]}},
    {"ph": "X", "cat": "cpu_op", "name": "aten::add", "pid": 4515, "tid": 4515, "ts": 1683564901559200, "dur": 30,
     "args": {"External id": 300, "Input Dims": [[64, 256], [64, 256], []], "Input type": ["float", "float", "Scalar"]}},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 4515, "tid": 4515, "ts": 1683564901559205, "dur": 5,
     "args": {"External id": 863360, "cbid": 211, "correlation": 863360}},
    {"ph": "X", "cat": "kernel", "name": "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float> >", "pid": 0, "tid": 7,
     "ts": 1683564901559300, "dur": 4, "args": {"External id": 863360, "device": 0, "stream": 7, "correlation": 863360, "grid": [64, 1, 1], "block": [128, 1, 1]}},
    {"ph": "X", "cat": "cpu_op", "name": "record_param_comms", "pid": 4515, "tid": 4515, "ts": 1683564901559400, "dur": 50,
     "args": {"External id": 2099, "Collective name": "allreduce", "In msg nelems": 2049000, "Out msg nelems": 2049000,
              "Group size": 8, "dtype": "Float", "Process Group Name": "0", "Process Group Description": "default_pg",
              "Process Group Ranks": "[0, 1, 2, 3, 4, 5, 6, 7]"}},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 4515, "tid": 4515, "ts": 1683564901559410, "dur": 5,
     "args": {"External id": 863370, "cbid": 211, "correlation": 863370}},
    {"ph": "X", "cat": "kernel", "name": "ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*, unsigned long, ncclWork*)", "pid": 0, "tid": 40,
     "ts": 1683564901559500, "dur": 300, "args": {"External id": 863370, "device": 0, "stream": 40, "correlation": 863370, "grid": [8, 1, 1], "block": [544, 1, 1]}},
    {"ph": "f", "id": 863350, "pid": 0, "tid": 7, "ts": 1683564901559100, "cat": "ac2g", "name": "ac2g", "bp": "e"}
  ]
})TR";

// 2024: ts are fractional microseconds relative to baseTimeNanoseconds; NCCL kernels carry
// their collective in their own args; SDPA recorded with shapes; an H800.
const char* k2024 = R"TR({
  "schemaVersion": 1,
  "deviceProperties": [
    {"id": 0, "name": "NVIDIA H800", "totalGlobalMem": 84943110144, "computeMajor": 9, "computeMinor": 0, "numSms": 132,
     "regsPerMultiprocessor": 65536, "sharedMemPerBlockOptin": 232448, "sharedMemPerMultiprocessor": 233472}
  ],
  "cupti_version": 22, "cuda_runtime_version": 12040, "cuda_driver_version": 12040,
  "record_shapes": 1,
  "displayTimeUnit": "ms",
  "baseTimeNanoseconds": 1711964646000000000,
  "traceEvents": [
    {"ph": "X", "cat": "cpu_op", "name": "aten::_scaled_dot_product_flash_attention", "pid": 291, "tid": 291, "ts": 4458676000000.100, "dur": 50.5,
     "args": {"External id": 10, "Record function id": 3, "Input Dims": [[2, 16, 1024, 64], [2, 16, 1024, 64], [2, 16, 1024, 64], [], []],
              "Input type": ["c10::BFloat16", "c10::BFloat16", "c10::BFloat16", "Scalar", "Scalar"], "Ev Idx": 1}},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 291, "tid": 291, "ts": 4458676000010.250, "dur": 6.125,
     "args": {"External id": 10, "cbid": 211, "correlation": 60001}},
    {"ph": "X", "cat": "kernel", "name": "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 128, 4, false, false, cutlass::bfloat16_t> >(Flash_fwd_params)",
     "pid": 0, "tid": 7, "ts": 4458676000100.500, "dur": 210.375,
     "args": {"External id": 10, "queued": 0, "device": 0, "context": 1, "stream": 7, "correlation": 60001, "grid": [8, 2, 16], "block": [128, 1, 1]}},
    {"ph": "X", "cat": "cpu_op", "name": "c10d::allreduce_", "pid": 291, "tid": 291, "ts": 4458676000500.000, "dur": 40.0,
     "args": {"External id": 11, "Input Dims": [[], [], [], []], "Input type": ["GenericList", "", "", ""]}},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 291, "tid": 291, "ts": 4458676000510.000, "dur": 5.0,
     "args": {"External id": 11, "cbid": 211, "correlation": 60002}},
    {"ph": "X", "cat": "kernel", "name": "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)", "pid": 0, "tid": 40,
     "ts": 4458676000600.000, "dur": 2636.669,
     "args": {"External id": 11, "device": 0, "stream": 40, "correlation": 60002, "grid": [16, 1, 1], "block": [544, 1, 1],
              "Collective name": "allreduce", "In msg nelems": 6637568, "Out msg nelems": 6637568, "Group size": 8,
              "dtype": "BFloat16", "In split size": "[]", "Out split size": "[]", "Process Group Name": "0",
              "Process Group Description": "default_pg", "Process Group Ranks": "[0, 1, 2, 3, 4, 5, 6, 7]"}},
    {"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#3", "pid": 291, "tid": 291, "ts": 4458675999990.000, "dur": 4000.0, "args": {}},
    {"ph": "X", "cat": "gpu_user_annotation", "name": "ProfilerStep#3", "pid": 0, "tid": 7, "ts": 4458676000099.0, "dur": 3500.0, "args": {}},
    {"ph": "X", "cat": "cuda_sync", "name": "Stream Sync", "pid": 0, "tid": 7, "ts": 4458676003300.0, "dur": 1.0, "args": {"stream": 7}}
  ]
})TR";

}  // namespace

TEST_CASE("PyTorch 1.8 trace: capitalised categories, 'external id', 'Input dims', string tids") {
  DeviceInfo dev;
  const Profile p = import_text(kLegacy, "legacy.json", &dev);
  REQUIRE(p.kernels.size() == 1);
  const KernelRecord& k = p.kernels[0];
  CHECK(k.op_class == "gemm");
  CHECK(k.stream == 7);
  CHECK(k.dur_us == 25);
  // t0 = the operator's launch call at ...140010; the kernel starts 20 us later.
  CHECK(k.launch_ts_us == 0);
  CHECK(k.ts_us == 20);
  CHECK(k.launch_tid == 1441273664);  // the string tid read as a number
  CHECK(k.op.name == "aten::addmm");
  // addmm(bias[1000], A[32, 2048], B[2048, 1000]): M = 32, K = 2048, N = 1000.
  CHECK(k.shape.m == 32);
  CHECK(k.shape.n == 1000);
  CHECK(k.shape.k == 2048);
  CHECK(k.shape.how.find("recorded aten::addmm") == 0);
  CHECK(k.dtype.empty());  // this version records no input types
  CHECK(dev.name.empty());  // no deviceProperties
  std::string why;
  CHECK(hardware_key(dev, &why).empty());
  CHECK(why.find("no GPU") != std::string::npos);
}

TEST_CASE("2023 trace: operator around the launch, record_param_comms collective, an A100") {
  DeviceInfo dev;
  const Profile p = import_text(k2023, "2023.json", &dev);
  REQUIRE(p.kernels.size() == 3);
  CHECK(p.provenance.gpu == "NVIDIA A100-SXM4-80GB");
  CHECK(p.provenance.num_sms == 108);
  // 108 SMs and 85.1 GB (80 GB nominal, within 12%): profiles/hardware/a100-sxm-80g.toml.
  CHECK(hardware_key(dev) == "a100-sxm-80g");

  const KernelRecord& mm = kernel_named(p, "ampere_sgemm");
  CHECK(mm.op_class == "gemm");
  // The launch at ...559020 lies in aten::linear [559000, 559100] and, innermost, aten::mm
  // [559010, 559090]: mm([64, 128], [128, 256]) -> M 64, N 256, K 128, FP32.
  CHECK(mm.op.name == "aten::mm");
  CHECK(mm.shape.m == 64);
  CHECK(mm.shape.n == 256);
  CHECK(mm.shape.k == 128);
  CHECK(mm.dtype == "fp32");

  const KernelRecord& add = kernel_named(p, "CUDAFunctor_add");
  CHECK(add.op_class == "elementwise");
  // Two float inputs of 64 x 256 (the Scalar is not a tensor): 2 * 64 * 256 * 4 = 131072 bytes.
  CHECK(add.shape.bytes == 131072);

  const KernelRecord& nccl = kernel_named(p, "ncclKernel_AllReduce");
  CHECK(nccl.op_class == "collective");
  CHECK(nccl.collective.name == "allreduce");
  CHECK(nccl.collective.group_size == 8);
  CHECK(nccl.collective.ranks == "[0, 1, 2, 3, 4, 5, 6, 7]");
  // 2049000 Float elements: 8196000 bytes.
  CHECK(nccl.shape.bytes == 8196000);
}

TEST_CASE("2024 trace: baseTimeNanoseconds, fractional ts, collective on the kernel, SDPA shapes") {
  const Profile p = import_text(k2024, "2024.json");
  REQUIRE(p.kernels.size() == 2);
  CHECK(p.provenance.gpu == "NVIDIA H800");
  CHECK(p.provenance.cuda == "12040");
  // Times: t0 = the ProfilerStep annotation at 4458675999990 us after the base; the attention
  // kernel starts 110.5 us after it and lasts 210.375 us.
  const KernelRecord& fa = kernel_named(p, "flash_fwd_kernel");
  CHECK(fa.op_class == "attn_fwd");
  CHECK(fa.ts_us == Approx(110.5));
  CHECK(fa.dur_us == Approx(210.375));
  CHECK(fa.phase == "ProfilerStep#3");
  // q [2, 16, 1024, 64] (batch, heads, tokens, head dim): M = N = 1024 tokens, K = 64,
  // groups = 2 * 16 = 32 (batch x heads), tokens = 2 * 1024.
  CHECK(fa.shape.m == 1024);
  CHECK(fa.shape.n == 1024);
  CHECK(fa.shape.k == 64);
  CHECK(fa.shape.groups == 32);
  CHECK(fa.shape.tokens == 2048);
  // The capture date from baseTimeNanoseconds + ts: 1711964646 s + 4458676 s = 1716423322 s,
  // 2024-05-23 UTC.
  CHECK(p.provenance.date == "2024-05-23");

  const KernelRecord& nccl = kernel_named(p, "ncclDevKernel_AllReduce");
  CHECK(nccl.op_class == "collective");
  CHECK(nccl.collective.dtype == "BFloat16");
  CHECK(nccl.collective.in_nelems == 6637568);
  // 6637568 BFloat16 elements: 13275136 bytes.
  CHECK(nccl.shape.bytes == 13275136);

  // Profile format version 2 carries the operator and the collective and round-trips exactly.
  const std::string text = write_profile(p);
  CHECK(text.find("\"version\":2") != std::string::npos);
  const Profile back = read_profile_text(text, "2024.profile.jsonl");
  CHECK(write_profile(back) == text);
  CHECK(back.kernels[0].op.input_dims.size() == 5);
  CHECK(back.kernels[1].collective.group == "0");
}

TEST_CASE("a gzip-compressed trace imports exactly as the plain one") {
  const auto dir = ts_test::temp_dir("gz");
  const auto plain = dir / "trace.json";
  const auto gz = dir / "trace.pt.trace.json.gz";
  ts_test::write_file(plain, k2024);
  {
    gzFile f = gzopen(gz.c_str(), "wb");
    REQUIRE(f != nullptr);
    const std::string t = k2024;
    REQUIRE(gzwrite(f, t.data(), static_cast<unsigned>(t.size())) == static_cast<int>(t.size()));
    gzclose(f);
  }
  RawImport a = parse_kineto(plain.string());
  RawImport b = parse_kineto(gz.string());
  a.profile.provenance.source_file = b.profile.provenance.source_file = "";
  CHECK(write_profile(a.profile) == write_profile(b.profile));

  // A damaged or truncated stream is named as such, not "malformed JSON".
  std::string bytes = ts_test::read_file(gz);
  ts_test::write_file(dir / "cut.json.gz", bytes.substr(0, bytes.size() / 2));
  std::string msg = data_error([&] { parse_kineto((dir / "cut.json.gz").string()); });
  CHECK(msg.find("truncated gzip stream") != std::string::npos);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x55);
  bytes[bytes.size() / 2 + 1] = static_cast<char>(bytes[bytes.size() / 2 + 1] ^ 0x55);
  ts_test::write_file(dir / "bad.json.gz", bytes);
  msg = data_error([&] { parse_kineto((dir / "bad.json.gz").string()); });
  CHECK((msg.find("gzip") != std::string::npos || msg.find("inflated") != std::string::npos));
  CHECK(msg.find((dir / "bad.json.gz").string()) == 0);

  // A directory given as the trace is refused as one, not read as empty.
  msg = data_error([&] { parse_kineto(dir.string()); });
  CHECK(msg.find("is a directory") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("traces trainsim does not model are refused with what was found") {
  SECTION("CPU-only") {
    const std::string msg = data_error([] {
      parse_kineto_text(R"TR({"schemaVersion": 1, "deviceProperties": [], "traceEvents": [
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 1, "dur": 5, "args": {"External id": 1}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::add", "pid": 1, "tid": 1, "ts": 7, "dur": 2, "args": {"External id": 2}},
        {"ph": "X", "cat": "user_annotation", "name": "step", "pid": 1, "tid": 1, "ts": 0, "dur": 10, "args": {}}]})TR",
                        "cpu.json");
    });
    CHECK(msg.find("cpu.json: no GPU kernels") == 0);
    CHECK(msg.find("2 CPU operators") != std::string::npos);
    CHECK(msg.find("CPU-only") != std::string::npos);
  }
  SECTION("AMD (ROCm): device name, HIP calls, roctracer kernels") {
    const std::string msg = data_error([] {
      parse_kineto_text(R"TR({"schemaVersion": 1,
        "deviceProperties": [{"id": 0, "name": "AMD Instinct MI250X", "totalGlobalMem": 68702699520, "numSms": 110,
                              "maxSharedMemoryPerMultiProcessor": 65536}],
        "traceEvents": [
        {"ph": "X", "cat": "cuda_runtime", "name": "hipLaunchKernel", "pid": 5, "tid": 5, "ts": 10, "dur": 11,
         "args": {"External id": 13, "correlation": 121}},
        {"ph": "X", "cat": "kernel", "name": "Cijk_Alik_Bljk_SB_MT64x16x32_MI16x16x1", "pid": 2, "tid": 0, "ts": 30, "dur": 17.6,
         "args": {"External id": 13, "device": 0, "stream": 0, "correlation": 121, "kind": "Dispatch Kernel"}}]})TR",
                        "mi250.json");
    });
    CHECK(msg.find("mi250.json: unsupported device: an AMD GPU (ROCm) trace") == 0);
    CHECK(msg.find("AMD Instinct MI250X") != std::string::npos);
    CHECK(msg.find("hipLaunchKernel") != std::string::npos);
    CHECK(msg.find("Cijk_Alik") != std::string::npos);
  }
  SECTION("MTIA") {
    const std::string msg = data_error([] {
      parse_kineto_text(R"TR({"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "ARTEMIS"}], "traceEvents": [
        {"ph": "X", "cat": "mtia_runtime", "name": "mtiaLaunchKernel", "pid": 1, "tid": 1, "ts": 1, "dur": 5, "args": {}},
        {"ph": "X", "cat": "mtia_ccp_events", "name": "matmul_kernel", "pid": 2, "tid": 3, "ts": 9, "dur": 50, "args": {}},
        {"ph": "X", "cat": "mtia_ccp_events", "name": "add_kernel", "pid": 2, "tid": 3, "ts": 60, "dur": 5, "args": {}}]})TR",
                        "mtia.json");
    });
    CHECK(msg.find("mtia.json: unsupported device") == 0);
    CHECK(msg.find("2 Meta MTIA: mtia_ccp_events events") != std::string::npos);
  }
  SECTION("kernels on two GPU models") {
    const std::string msg = data_error([] {
      parse_kineto_text(R"TR({"deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3", "numSms": 132},
                                                 {"id": 1, "name": "NVIDIA A100-SXM4-80GB", "numSms": 108}], "traceEvents": [
        {"ph": "X", "cat": "kernel", "name": "a", "ts": 1, "dur": 1, "args": {"device": 0, "stream": 7, "correlation": 1}},
        {"ph": "X", "cat": "kernel", "name": "b", "ts": 2, "dur": 1, "args": {"device": 1, "stream": 7, "correlation": 2}}]})TR",
                        "mixed.json");
    });
    CHECK(msg.find("different GPU models") != std::string::npos);
  }
}

TEST_CASE("the traced GPU is matched to a hardware profile by model name, SMs and memory") {
  CHECK(hardware_key(DeviceInfo{0, "NVIDIA H100 80GB HBM3", 132, 85520809984}) == "h100-sxm");
  CHECK(hardware_key(DeviceInfo{0, "NVIDIA H800", 132, 84943110144}) == "h800");
  CHECK(hardware_key(DeviceInfo{0, "NVIDIA H200", 132, 150754820096}) == "h200");
  // H100 PCIe has 114 SMs: not the SXM part, and no other profile names it.
  std::string why;
  CHECK(hardware_key(DeviceInfo{0, "NVIDIA H100 PCIe", 114, 85520809984}, &why).empty());
  CHECK(why.find("h100-sxm has 132 SMs, the trace's GPU 114") != std::string::npos);
  // A100 40 GB (HTA's A100-PG509-200): 42.3 GB is not 80 GB.
  CHECK(hardware_key(DeviceInfo{0, "NVIDIA A100-PG509-200", 108, 42297524224}, &why).empty());
  CHECK(why.find("a100-sxm-80g has 80 GB of memory") != std::string::npos);
  CHECK(hardware_key(DeviceInfo{0, "Tesla V100-SXM2-32GB", 80, 34089730048}, &why).empty());
}

TEST_CASE("trainsim replay: a recorded-GPU trace replays with no options; an unknown GPU is refused, never assumed") {
  const auto dir = ts_test::temp_dir("replay-generic");
  ts_test::write_file(dir / "h800.json", k2024);
  ts_test::write_file(dir / "a100.json", k2023);
  ts_test::write_file(dir / "legacy.json", kLegacy);
  auto r = ts_test::run_trainsim("replay '" + (dir / "h800.json").string() + "' --json");
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(r.out.find("\"calibration_gpu\": \"h800\"") != std::string::npos);

  // The A100 has its own calibration (profiles/a100-sxm-80g/): used with no options.
  r = ts_test::run_trainsim("replay '" + (dir / "a100.json").string() + "' --json");
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(r.out.find("\"calibration_gpu\": \"a100-sxm-80g\"") != std::string::npos);
  // A data folder without an A100 calibration: refused, naming the missing calibration.
  {
    namespace fs = std::filesystem;
    const fs::path data = dir / "data";
    fs::create_directories(data / "profiles");
    fs::copy(ts_test::data("profiles/hardware"), data / "profiles" / "hardware", fs::copy_options::recursive);
    fs::copy(ts_test::data("profiles/h800"), data / "profiles" / "h800", fs::copy_options::recursive);
    fs::copy(ts_test::data("profiles/classifier.toml"), data / "profiles" / "classifier.toml");
    r = ts_test::run_trainsim("replay '" + (dir / "a100.json").string() + "'", "", "TRAINSIM_DATA='" + data.string() + "' ");
    CHECK(r.status == 2);
    CHECK(r.err.find("no calibration for GPU 'a100-sxm-80g'") != std::string::npos);
  }
  r = ts_test::run_trainsim("replay '" + (dir / "a100.json").string() + "' --gpu h800");
  CHECK(r.status == 0);
  CHECK(r.out.find("the calibration is h800's, the trace is of a100-sxm-80g") != std::string::npos);

  r = ts_test::run_trainsim("replay '" + (dir / "legacy.json").string() + "'");
  CHECK(r.status == 2);
  CHECK(r.err.find("the traced GPU is unknown") != std::string::npos);
  CHECK(r.err.find("--gpu") != std::string::npos);
  r = ts_test::run_trainsim("replay '" + (dir / "legacy.json").string() + "' --gpu nosuchgpu");
  CHECK(r.status == 2);
  CHECK(r.err.find("--gpu nosuchgpu") != std::string::npos);

  // `trainsim import` on an imported profile without a GPU key: replay says so too.
  r = ts_test::run_trainsim("import '" + (dir / "legacy.json").string() + "' -o '" + (dir / "l.profile.jsonl").string() + "'");
  CHECK(r.status == 0);
  CHECK(r.out.find("no GPU key") != std::string::npos);
  r = ts_test::run_trainsim("replay '" + (dir / "l.profile.jsonl").string() + "'");
  CHECK(r.status == 2);
  CHECK(r.err.find("the traced GPU is unknown") != std::string::npos);
  std::filesystem::remove_all(dir);
}
