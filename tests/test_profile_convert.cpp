// trainsim-profile's conversion of CUPTI activity records into the trainsim profile format
// (profiles/cupti/profile_convert.hpp). The records are synthetic, written by hand here with
// round nanosecond times so that every expected value below is computed by hand:
//   * duration = (end - start) / 1000 us; ts relative to the first measured kernel's start;
//   * warm-up launches' kernels and kernels of no launch are dropped (and counted);
//   * a repetition's time is the sum of its kernels' durations (max over devices);
//     median and min over repetitions;
//   * SMs: a GEMM overlapping a communication kernel on another stream of the same device
//     loses that kernel's blocks (capped at the SM count); a comm kernel "has" its blocks.
#include <algorithm>
#include <string>

#include <catch2/catch.hpp>

#include "calibration/calibration_file.hpp"
#include "calibration/fit.hpp"
#include "calibration/profile.hpp"
#include "config/scenario.hpp"
#include "profile_convert.hpp"
#include "profile_plan.hpp"
#include "support.hpp"

using namespace trainsim;
using namespace trainsim::profiler;

namespace {

ActivityKernel kern(const std::string& name, std::uint64_t start, std::uint64_t end, std::uint32_t corr,
                    std::uint32_t stream = 7, std::uint32_t device = 0, std::int32_t grid_x = 132) {
  ActivityKernel k;
  k.name = name;
  k.start_ns = start;
  k.end_ns = end;
  k.correlation_id = corr;
  k.stream_id = stream;
  k.device_id = device;
  k.grid = {grid_x, 1, 1};
  k.block = {384, 1, 1};
  return k;
}

RunInfo h200_run(int warmup, int reps) {
  RunInfo run;
  DeviceInfo d;
  d.id = 0;
  d.name = "NVIDIA H200";
  d.num_sms = 132;
  d.cc_major = 9;
  d.cc_minor = 0;
  d.sm_clock_khz = 1980000;
  d.mem_clock_khz = 3201000;
  run.devices.push_back(d);
  run.driver_version = 13000;
  run.runtime_version = 13000;
  run.software = "trainsim-profile test";
  run.date = "2025-01-01T00:00:00Z";
  run.model_file = "models/llama3-8b.toml";
  run.command = "trainsim-profile --model models/llama3-8b.toml";
  run.warmup = warmup;
  run.reps = reps;
  run.notes.push_back("clocks not locked");
  return run;
}

OpSpec gemm(const std::string& name, std::int64_t m, std::int64_t n, std::int64_t k) {
  OpSpec o;
  o.name = name;
  o.op_class = "bf16_gemm";
  o.m = m, o.n = n, o.k = k, o.groups = 1;
  o.dtype = "bf16";
  o.how = "launched";
  return o;
}

// One GEMM op: 1 warm-up + 3 measured launches, one kernel each (external ids 100..103,
// correlation ids 10..13), durations 50 us (warm-up), 12, 10, 11 us.
Recording one_gemm() {
  Recording r;
  r.run = h200_run(1, 3);
  r.ops.push_back(gemm("attn.qkv/fwd", 4096, 6144, 4096));
  for (int i = 0; i < 4; ++i) {
    r.launches.push_back(Launch{100u + static_cast<unsigned>(i), 0, i == 0 ? 0 : i - 1, i == 0});
    r.correlations.push_back(ExternalCorrelation{10u + static_cast<unsigned>(i), 100u + static_cast<unsigned>(i)});
  }
  r.kernels.push_back(kern("sm90_gemm", 1'000'000, 1'050'000, 10));
  r.kernels.push_back(kern("sm90_gemm", 2'000'000, 2'012'000, 11));
  r.kernels.push_back(kern("sm90_gemm", 3'000'000, 3'010'000, 12));
  r.kernels.push_back(kern("sm90_gemm", 4'000'000, 4'011'000, 13));
  return r;
}

}  // namespace

TEST_CASE("profile_convert: durations, warm-up dropped, times relative to the first measured kernel") {
  const Conversion c = convert(one_gemm());
  const auto& p = c.profile;
  REQUIRE(p.kernels.size() == 3);
  CHECK(c.warmup_kernels == 1);
  CHECK(c.unattributed == 0);
  CHECK(p.t0_us == 2000.0);  // 2'000'000 ns
  CHECK(p.kernels[0].ts_us == 0.0);
  CHECK(p.kernels[0].dur_us == 12.0);
  CHECK(p.kernels[1].ts_us == 1000.0);
  CHECK(p.kernels[1].dur_us == 10.0);
  CHECK(p.kernels[2].ts_us == 2000.0);
  CHECK(p.kernels[2].dur_us == 11.0);
  const auto& k = p.kernels[0];
  CHECK(k.name == "sm90_gemm");
  CHECK(k.op_class == "bf16_gemm");
  CHECK(k.shape.m == 4096);
  CHECK(k.shape.n == 6144);
  CHECK(k.shape.k == 4096);
  CHECK(k.shape.groups == 1);
  CHECK(k.dtype == "bf16");
  CHECK(k.stream == 7);
  CHECK(k.correlation == 11);
  CHECK(k.grid == std::array<std::int64_t, 3>{132, 1, 1});
  CHECK(k.block == std::array<std::int64_t, 3>{384, 1, 1});
  CHECK(k.phase == "attn.qkv/fwd");
  CHECK(k.sms_available == 132);
  CHECK(k.comm_sms_held == 0);
  CHECK(k.launch_ts_us == -1);
}

TEST_CASE("profile_convert: repetitions aggregated to median, min and max") {
  const Conversion c = convert(one_gemm());
  REQUIRE(c.summary.size() == 1);
  const auto& s = c.summary[0];
  CHECK(s.reps == 3);
  CHECK(s.kernels == 3);
  CHECK(s.median_us == 11.0);  // of 12, 10, 11
  CHECK(s.min_us == 10.0);
  CHECK(s.max_us == 12.0);
  // 2*4096*6144*4096 FLOP / 11 us = 18741.7 TFLOP/s (made-up durations)
  const std::string tsv = write_summary(c, one_gemm().ops);
  CHECK(tsv.find("attn.qkv/fwd\tbf16_gemm\tbf16\t4096\t6144\t4096\t1\t0\t0\t3\t1.00\t11.000\t10.000\t12.000\t18741.7\t-\n") !=
        std::string::npos);
  CHECK(median({4.0, 1.0, 3.0, 2.0}) == 2.5);
  CHECK_THROWS(median({}));
}

TEST_CASE("profile_convert: several kernels per launch are summed; attribution by correlation id") {
  Recording r;
  r.run = h200_run(0, 2);
  r.ops.push_back(gemm("mlp.down/fwd", 8192, 4096, 14336));
  OpSpec norm;
  norm.name = "attn.norm";
  norm.op_class = "norm";
  norm.tokens = 8192;
  norm.bytes = 2 * 8192 * 4096 * 2;
  norm.dtype = "bf16";
  r.ops.push_back(norm);
  // rep 0 and 1 of the GEMM (ext 1, 2), rep 0 and 1 of the norm (ext 3, 4).
  r.launches = {Launch{1, 0, 0, false}, Launch{2, 0, 1, false}, Launch{3, 1, 0, false}, Launch{4, 1, 1, false}};
  // Correlation ids deliberately not in time order: attribution must go by id, not position.
  r.correlations = {{50, 1}, {51, 1}, {60, 2}, {61, 2}, {40, 3}, {41, 4}, {99, 777}};
  r.kernels = {
      kern("gemm_splitk", 0, 30'000, 50),          // GEMM rep 0: 30 + 5 us
      kern("splitk_reduce", 31'000, 36'000, 51),
      kern("gemm_splitk", 100'000, 128'000, 60),   // GEMM rep 1: 28 + 4 us
      kern("splitk_reduce", 129'000, 133'000, 61),
      kern("rmsnorm", 200'000, 203'000, 41),       // norm rep 1: 3 us
      kern("rmsnorm", 50'000, 54'000, 40),         // norm rep 0: 4 us
      kern("cublas_setup", 10, 20, 5),             // no launch at all
      kern("other_ext", 300'000, 301'000, 99),     // external id of no launch
  };
  const Conversion c = convert(r);
  CHECK(c.unattributed == 2);
  CHECK(c.warmup_kernels == 0);
  REQUIRE(c.profile.kernels.size() == 6);
  // Ordered by start time.
  CHECK(c.profile.kernels[0].name == "gemm_splitk");
  CHECK(c.profile.kernels[2].name == "rmsnorm");
  CHECK(c.profile.kernels[2].op_class == "norm");
  CHECK(c.profile.kernels[2].correlation == 40);
  CHECK(c.profile.kernels[2].shape.tokens == 8192);
  CHECK(c.profile.kernels[2].shape.bytes == 2 * 8192 * 4096 * 2);
  REQUIRE(c.summary.size() == 2);
  CHECK(c.summary[0].reps == 2);
  CHECK(c.summary[0].kernels == 4);
  CHECK(c.summary[0].median_us == 33.5);  // of 35 and 32
  CHECK(c.summary[0].min_us == 32.0);
  CHECK(c.summary[1].median_us == 3.5);   // of 4 and 3
  CHECK(c.summary[1].min_us == 3.0);
}

TEST_CASE("profile_convert: SMs held by concurrent communication kernels") {
  Recording r;
  r.run = h200_run(0, 1);
  r.ops.push_back(gemm("moe.experts.up_gate/fwd", 4096, 4096, 7168));
  OpSpec a2a;
  a2a.name = "nccl.all_to_all";
  a2a.op_class = "a2a_dispatch";
  a2a.comm = true;
  a2a.tokens = 4096;
  a2a.bytes = 4096 * 7168 * 2;
  a2a.dtype = "bf16";
  r.ops.push_back(a2a);
  OpSpec limited = gemm("attn.o/fwd sm-limited", 4096, 7168, 16384);
  limited.sm_limit = 100;
  r.ops.push_back(limited);
  r.launches = {Launch{1, 0, 0, false}, Launch{2, 1, 0, false}, Launch{3, 1, 1, false},
                Launch{4, 0, 1, false}, Launch{5, 2, 0, false}, Launch{6, 1, 2, false},
                Launch{7, 1, 3, true}, Launch{8, 0, 2, false}, Launch{9, 1, 4, false}};
  r.correlations = {{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}, {16, 6}, {7, 7}, {8, 8}, {9, 9}};
  r.kernels = {
      // GEMM rep 0 [0, 100) us on stream 7 overlaps comm on stream 20 (24 blocks) and on
      // stream 21 (16 blocks): 40 SMs held, 92 available.
      kern("gemm", 0, 100'000, 1, 7, 0, 264),
      kern("nccl_a2a", 50'000, 150'000, 2, 20, 0, 24),
      kern("nccl_a2a", 60'000, 70'000, 3, 21, 0, 16),
      // GEMM rep 1 [200, 300) us: comm on the same stream 7 and on another device do not count;
      // a warm-up comm kernel on stream 20 (8 blocks) still holds SMs -> 8 held.
      kern("gemm", 200'000, 300'000, 4, 7, 0, 264),
      kern("nccl_a2a", 250'000, 260'000, 6, 7, 0, 24),
      kern("nccl_a2a", 200'000, 300'000, 7, 20, 0, 8),
      kern("nccl_a2a_dev1", 200'000, 300'000, 16, 20, 1, 24),
      // SM-limited GEMM [400, 500): 100 of 132 SMs, no comm -> 100.
      kern("gemm_limited", 400'000, 500'000, 5, 7, 0, 100),
      // GEMM rep 2 [600, 700) with a comm kernel of 500 blocks: capped at 132 held, 0 available.
      kern("gemm", 600'000, 700'000, 8, 7, 0, 264),
      kern("nccl_big", 600'000, 650'000, 9, 22, 0, 500),
  };
  r.run.devices.push_back(r.run.devices[0]);
  r.run.devices[1].id = 1;
  const Conversion c = convert(r);
  CHECK(c.warmup_kernels == 1);
  auto find = [&](std::uint32_t corr, const std::string& name) -> const calibration::KernelRecord& {
    for (const auto& k : c.profile.kernels)
      if (k.correlation == corr && k.name == name) return k;
    FAIL("kernel not found: " << name << " " << corr);
    return c.profile.kernels.front();
  };
  CHECK(find(1, "gemm").comm_sms_held == 40);
  CHECK(find(1, "gemm").sms_available == 92);
  CHECK(find(4, "gemm").comm_sms_held == 8);
  CHECK(find(4, "gemm").sms_available == 124);
  CHECK(find(5, "gemm_limited").comm_sms_held == 0);
  CHECK(find(5, "gemm_limited").sms_available == 100);
  CHECK(find(8, "gemm").comm_sms_held == 132);
  CHECK(find(8, "gemm").sms_available == 0);
  // Comm kernels: the SMs their blocks occupy, none held from them.
  CHECK(find(2, "nccl_a2a").sms_available == 24);
  CHECK(find(2, "nccl_a2a").comm_sms_held == 0);
  CHECK(find(9, "nccl_big").sms_available == 132);
  // All-to-all repetitions: 0 -> 100 us, 1 -> 10 us, 2 -> 10 us on device 0 and 100 us on
  // device 1 -> 100 us (max over devices, not their sum 110), 4 -> 50 us; 3 was a warm-up.
  CHECK(c.summary[1].reps == 4);
  CHECK(c.summary[1].max_us == 100.0);
  CHECK(c.summary[1].min_us == 10.0);
  CHECK(c.summary[1].median_us == 75.0);  // of 10, 50, 100, 100
}

TEST_CASE("profile_convert: provenance and a round trip through the profile writer and reader") {
  const Conversion c = convert(one_gemm());
  const auto& pv = c.profile.provenance;
  CHECK(pv.gpu == "NVIDIA H200");
  CHECK(pv.gpu_key == "h200");
  CHECK(pv.num_sms == 132);
  CHECK(pv.driver == "13.0");
  CHECK(pv.cuda == "13.0");
  CHECK(pv.date == "2025-01-01T00:00:00Z");
  CHECK(pv.source_file == "models/llama3-8b.toml");
  CHECK(pv.world_size == 1);
  CHECK(pv.source.find("warm-up 1, repetitions 3") != std::string::npos);
  CHECK(pv.source.find("peak SM clock 1980 MHz, peak memory clock 3201 MHz") != std::string::npos);
  CHECK(pv.source.find("clocks not locked") != std::string::npos);

  const std::string text = calibration::write_profile(c.profile);
  const calibration::Profile back = calibration::read_profile_text(text, "roundtrip.jsonl");
  REQUIRE(back.kernels.size() == 3);
  CHECK(back.kernels[1].dur_us == 10.0);
  CHECK(back.kernels[1].shape.n == 6144);
  CHECK(back.provenance.gpu_key == "h200");
  CHECK(calibration::write_profile(back) == text);
}

TEST_CASE("profile_convert: gpu keys and inconsistent recordings") {
  CHECK(gpu_key_from_name("NVIDIA H200") == "h200");
  CHECK(gpu_key_from_name("NVIDIA H100 80GB HBM3") == "h100");
  CHECK(gpu_key_from_name("NVIDIA A100-SXM4-80GB") == "a100sxm480gb");
  CHECK(gpu_key_from_name("") == "");

  Recording r = one_gemm();
  r.ops[0].op_class = "gemmm";
  CHECK_THROWS_WITH(convert(r), Catch::Contains("unknown op class 'gemmm'"));
  r = one_gemm();
  r.launches.push_back(Launch{100, 0, 5, false});
  CHECK_THROWS_WITH(convert(r), Catch::Contains("two launches with external id 100"));
  r = one_gemm();
  r.launches.push_back(Launch{200, 3, 0, false});
  CHECK_THROWS_WITH(convert(r), Catch::Contains("names op 3"));
  r = one_gemm();
  r.kernels[1].end_ns = r.kernels[1].start_ns - 1;
  CHECK_THROWS_WITH(convert(r), Catch::Contains("ends before it starts"));
  r = one_gemm();
  r.run.devices.clear();
  CHECK_THROWS(convert(r));
}

// ---- The op plan (profile_plan.hpp): shapes and byte counts, derived by hand ------------------

namespace {

const PlannedOp* find_op(const Plan& p, const std::string& name) {
  for (const auto& op : p.ops)
    if (op.spec.name == name) return &op;
  return nullptr;
}

}  // namespace

TEST_CASE("profile_plan: Llama 3 8B, BF16 and FP8 GEMMs, memory-bound ops with their bytes") {
  const ModelConfig m = load_model(ts_test::data("models/llama3-8b.toml").string());
  PlanOptions o;  // micro-batch 1, sequence 4096: T = 4096 tokens
  o.dtypes = {"bf16"};
  const Plan bf = plan_ops(m, o);
  // Per linear layer (T x N x K): fwd (T, N, K), bwd_input (T, K, N), bwd_weight (K, N, T).
  // hidden = T = 4096, so several coincide and are measured once:
  //   qkv (N = (32 + 2*8) * 128 = 6144): fwd (4096,6144,4096) = bwd_weight; bwd_input (4096,4096,6144)   -> 2
  //   o (4096 x 4096 x 4096): all three passes identical                                             -> 1
  //   up_gate (N = 2 * 14336 = 28672): fwd = bwd_weight (4096,28672,4096); bwd_input (4096,4096,28672) -> 2
  //   down (K = 14336): fwd (4096,4096,14336), bwd_input (4096,14336,4096), bwd_weight (14336,4096,4096) -> 3
  std::size_t gemms = 0;
  for (const auto& op : bf.ops) gemms += op.kernel == "gemm";
  CHECK(gemms == 8);
  const PlannedOp* qkv = find_op(bf, "attn.qkv/fwd");
  REQUIRE(qkv);
  CHECK(qkv->spec.op_class == "bf16_gemm");
  CHECK((qkv->spec.m == 4096 && qkv->spec.n == 6144 && qkv->spec.k == 4096 && qkv->spec.groups == 1));
  const PlannedOp* down_w = find_op(bf, "mlp.down/bwd_weight");
  REQUIRE(down_w);
  CHECK((down_w->spec.m == 14336 && down_w->spec.n == 4096 && down_w->spec.k == 4096));
  CHECK(down_w->spec.how.find("pass bwd_weight") != std::string::npos);  // calibrate reads the pass from how
  CHECK_FALSE(find_op(bf, "attn.qkv/bwd_weight"));                        // same shape as attn.qkv/fwd
  // Memory-bound, forward only; attn.norm and ffn.norm share a shape, so do the two residuals.
  const PlannedOp* norm = find_op(bf, "attn.norm/fwd");
  REQUIRE(norm);
  CHECK(norm->kernel == "rmsnorm");
  CHECK(norm->spec.op_class == "norm");
  CHECK((norm->rows == 4096 && norm->width == 4096));
  CHECK(norm->spec.bytes == 2 * 4096 * 4096 * 2 + 4096 * 2);  // read x, write y, read the weight
  CHECK_FALSE(find_op(bf, "ffn.norm/fwd"));
  const PlannedOp* add = find_op(bf, "attn.residual/fwd");
  REQUIRE(add);
  CHECK(add->spec.op_class == "elementwise");
  CHECK(add->spec.bytes == 3 * 4096 * 4096 * 2);
  const PlannedOp* swiglu = find_op(bf, "mlp.swiglu/fwd");
  REQUIRE(swiglu);
  CHECK((swiglu->rows == 4096 && swiglu->width == 14336));
  CHECK(swiglu->spec.bytes == 3 * 4096 * 14336 * 2);  // read gate and up, write one
  CHECK(bf.ops.size() == 8 + 3);                        // no casts without FP8, no collectives

  o.dtypes = {"fp8"};
  const Plan f8 = plan_ops(m, o);
  // Casts: X (T x K) forward and dY (T x N) backward-input of each linear layer; distinct
  // widths 4096, 6144, 28672, 14336. Bytes per element: 2 read + 1 written + one 4-byte scale
  // per 128 -- the same figure as layer_ops' elems * (2 + 1 + 4/128).
  std::vector<std::int64_t> widths;
  for (const auto& op : f8.ops)
    if (op.kernel == "quant") {
      widths.push_back(op.width);
      CHECK(op.spec.op_class == "quant_cast");
      CHECK(op.spec.bytes == op.rows * op.width * 3 + op.rows * (op.width / 128) * 4);
    }
  std::sort(widths.begin(), widths.end());
  CHECK(widths == std::vector<std::int64_t>{4096, 6144, 14336, 28672});
  const PlannedOp* q = find_op(f8, "attn.qkv.quant/fwd");
  REQUIRE(q);
  CHECK(q->spec.bytes == 50'855'936);  // 4096 * 4096 * 3.03125
  CHECK(find_op(f8, "attn.qkv/fwd")->spec.op_class == "fp8_gemm");

  // A device without FP8 tensor cores: FP8 is skipped, and the notes say so.
  o.dtypes = {"bf16", "fp8"};
  o.fp8_ok = false;
  const Plan no8 = plan_ops(m, o);
  for (const auto& op : no8.ops) CHECK(op.spec.dtype != "fp8");
  CHECK(std::any_of(no8.notes.begin(), no8.notes.end(),
                    [](const std::string& n) { return n.find("fp8 GEMMs and casts not measured") != std::string::npos; }));
}

TEST_CASE("profile_plan: DeepSeek-V3 MoE layer under EP 64: grouped GEMMs per group, permutation, collectives") {
  const ModelConfig m = load_model(ts_test::data("models/deepseek-v3.toml").string());
  PlanOptions o;
  o.ep = 64;
  o.dtypes = {"fp8"};
  o.collectives = true;
  o.world = 8;
  const Plan p = plan_ops(m, o);
  // 256 routed experts / EP 64 = 4 local experts; each rank gets all T * top_k = 4096 * 8 rows:
  // 8192 per expert (the shape of DeepSeek's profiled mlp(F) grouped GEMM).
  const PlannedOp* up = find_op(p, "moe.experts.up_gate/fwd");
  REQUIRE(up);
  CHECK(up->spec.op_class == "fp8_grouped_gemm");
  CHECK((up->spec.m == 8192 && up->spec.n == 4096 && up->spec.k == 7168 && up->spec.groups == 4));
  const PlannedOp* up_w = find_op(p, "moe.experts.up_gate/bwd_weight");
  REQUIRE(up_w);  // dW = X^T dY per expert: M = hidden, K = the expert's 8192 rows
  CHECK((up_w->spec.m == 7168 && up_w->spec.n == 4096 && up_w->spec.k == 8192 && up_w->spec.groups == 4));
  const PlannedOp* perm = find_op(p, "moe.permute/fwd");
  REQUIRE(perm);
  CHECK((perm->rows == 32768 && perm->width == 7168));
  CHECK(perm->spec.bytes == 2LL * 32768 * 7168 * 2 + 32768 * 4);  // rows read and written, 4-byte index
  CHECK_FALSE(find_op(p, "moe.unpermute/fwd"));                     // same shape as moe.permute
  const PlannedOp* a2a = find_op(p, "nccl.all_to_all");
  REQUIRE(a2a);
  CHECK(a2a->spec.comm);
  CHECK(a2a->spec.op_class == "a2a_dispatch");
  CHECK(a2a->spec.bytes == 4096LL * 8 * 7168 * 2);
  // Bad input: a dtype the profiler does not know, named with its option.
  o.dtypes = {"fp16"};
  CHECK_THROWS_WITH(plan_ops(m, o), Catch::Contains("--dtype: unknown dtype 'fp16'"));
}

// ---- Realistic CUPTI record streams ------------------------------------------------------------
//
// What CUPTI hands trainsim-profile for one cuBLASLt GEMM op (warm-up 1, repetitions 2, L2
// scrubbed before every launch), in the order CUPTI delivers it: the API buffer (runtime and
// driver records, each external-correlation record written just before the API record it
// belongs to) and then the device buffer (kernels and memsets). Real shapes of such streams:
//   * cuBLASLt launches through the driver API (cuLaunchKernelEx) and makes runtime calls that
//     launch nothing (cudaStreamGetCaptureInfo) under the pushed id;
//   * a split-K GEMM is two kernels per launch (the GEMM and cuBLASLt's reduction);
//   * the L2 scrub (cudaMemsetAsync) and the library's own set-up kernel run outside any id;
//   * one kernel arrives without timestamps (start = end = 0: CUPTI could not time it) and with
//     no API record (dropped);
//   * another tool in the process tags calls under other external kinds (CUSTOM1, UNKNOWN).
// Times in ns; CPU (API) and GPU (kernel) timestamps share CUPTI's clock.
namespace {

constexpr std::uint32_t kPid = 1234, kTid = 4242;
constexpr std::uint32_t kLaunchKernel = 211, kMemsetAsync = 51, kStreamSync = 131, kCaptureInfo = 409;  // runtime cbids
constexpr std::uint32_t kCuLaunchKernelEx = 652;                                                        // driver cbid

ApiCall api(bool driver, std::uint32_t cbid, const std::string& name, std::uint64_t start, std::uint64_t end,
            std::uint32_t corr) {
  ApiCall a;
  a.driver = driver;
  a.cbid = cbid;
  a.name = name;
  a.start_ns = start;
  a.end_ns = end;
  a.process_id = kPid;
  a.thread_id = kTid;
  a.correlation_id = corr;
  return a;
}

ActivityCopy memset_on7(std::uint64_t start, std::uint64_t end, std::uint32_t corr) {
  return ActivityCopy{"memset", start, end, 0, 1, 7, corr};
}

Recording cupti_gemm_stream() {
  Recording r;
  r.run = h200_run(1, 2);
  r.ops.push_back(gemm("attn.o/fwd", 4096, 4096, 4096));
  r.launches = {Launch{1, 0, 0, true}, Launch{2, 0, 0, false}, Launch{3, 0, 1, false}};
  // API buffer.
  r.api.push_back(api(false, kLaunchKernel, "cudaLaunchKernel_v7000", 1'000, 4'000, 1));     // library set-up kernel
  r.api.push_back(api(false, kMemsetAsync, "cudaMemsetAsync_v3020", 5'000, 8'000, 2));       // L2 scrub
  r.correlations.push_back({3, 1});
  r.api.push_back(api(false, kCaptureInfo, "cudaStreamGetCaptureInfo_v2_v11030", 9'000, 9'500, 3));  // launches nothing
  r.correlations.push_back({4, 1});
  r.api.push_back(api(true, kCuLaunchKernelEx, "cuLaunchKernelEx", 10'000, 14'000, 4));      // warm-up GEMM
  r.api.push_back(api(false, kMemsetAsync, "cudaMemsetAsync_v3020", 15'000, 18'000, 5));
  r.correlations.push_back({6, 2});
  r.correlations.push_back({6, 999, 4});  // CUSTOM1: another tool's id on the same call
  r.api.push_back(api(true, kCuLaunchKernelEx, "cuLaunchKernelEx", 19'000, 23'000, 6));      // rep 0 GEMM
  r.correlations.push_back({7, 2});
  r.api.push_back(api(true, kCuLaunchKernelEx, "cuLaunchKernelEx", 23'500, 25'500, 7));      // rep 0 split-K reduce
  r.api.push_back(api(false, kMemsetAsync, "cudaMemsetAsync_v3020", 26'000, 29'000, 8));
  r.correlations.push_back({9, 3});
  r.api.push_back(api(true, kCuLaunchKernelEx, "cuLaunchKernelEx", 30'000, 34'000, 9));      // rep 1 GEMM
  r.correlations.push_back({10, 3});
  r.correlations.push_back({10, 5, 1});   // UNKNOWN kind
  r.api.push_back(api(true, kCuLaunchKernelEx, "cuLaunchKernelEx", 34'500, 36'500, 10));     // rep 1 split-K reduce
  r.api.push_back(api(false, kStreamSync, "cudaStreamSynchronize_v3020", 37'000, 183'500, 11));
  // Device buffer: stream 7 of device 0, in the order the GPU ran it.
  r.kernels.push_back(kern("cublasLt_init_kernel", 10'000, 11'000, 1));
  r.copies.push_back(memset_on7(12'000, 42'000, 2));
  r.kernels.push_back(kern("sm90_xmma_gemm_bf16bf16_bf16f32", 42'500, 92'500, 4));
  r.copies.push_back(memset_on7(93'000, 123'000, 5));
  r.kernels.push_back(kern("sm90_xmma_gemm_bf16bf16_bf16f32", 123'500, 135'500, 6));
  r.kernels.push_back(kern("cublasLt::splitKreduce_kernel", 136'000, 138'000, 7));
  r.copies.push_back(memset_on7(138'500, 168'500, 8));
  r.kernels.push_back(kern("sm90_xmma_gemm_bf16bf16_bf16f32", 169'000, 180'000, 9));
  r.kernels.push_back(kern("cublasLt::splitKreduce_kernel", 181'000, 183'000, 10));
  r.kernels.push_back(kern("untimed_kernel", 0, 0, 12));
  return r;
}

}  // namespace

TEST_CASE("profile_convert: a realistic CUPTI stream (driver launches, split-K, L2 scrub, foreign ids)") {
  const Recording r = cupti_gemm_stream();
  const Conversion c = convert(r);
  const auto& p = c.profile;
  // Kept: the two measured repetitions' GEMM and reduction kernels (correlations 6, 7, 9, 10).
  REQUIRE(p.kernels.size() == 4);
  CHECK(c.warmup_kernels == 1);  // correlation 4
  CHECK(c.unattributed == 1);    // the set-up kernel (correlation 1, no pushed id)
  CHECK(c.untimed == 1);
  // Launch times: the reductions follow their GEMM directly; each GEMM follows an L2 scrub
  // memset on stream 7, so its launch time is withheld (-1).
  CHECK(c.with_launch == 4);
  CHECK(c.launch_withheld == 2);
  // t0 = the earliest start or launch kept: the rep-0 reduction's launch at 23'500 ns.
  CHECK(p.t0_us == 23.5);
  const auto& g0 = p.kernels[0];
  CHECK(g0.correlation == 6);
  CHECK(g0.ts_us == 100.0);  // (123'500 - 23'500) / 1000
  CHECK(g0.dur_us == 12.0);
  CHECK(g0.launch_ts_us == -1);
  CHECK(g0.launch_tid == 0);
  const auto& r0 = p.kernels[1];
  CHECK(r0.name == "cublasLt::splitKreduce_kernel");
  // Not the launch's longest kernel: class other and no shape, so that no fit takes the 2 us
  // reduction for a 4096^3 GEMM; the GEMM kernel carries the op's class and shape.
  CHECK(r0.op_class == "other");
  CHECK(r0.shape.m == 0);
  CHECK(r0.shape.how.find("auxiliary kernel of a attn.o/fwd launch") != std::string::npos);
  CHECK(g0.op_class == "bf16_gemm");
  CHECK(g0.shape.m == 4096);
  CHECK(c.auxiliary == 2);
  CHECK(r0.ts_us == 112.5);
  CHECK(r0.launch_ts_us == 0.0);
  CHECK(r0.launch_tid == kTid);
  CHECK(p.kernels[2].ts_us == 145.5);
  CHECK(p.kernels[2].launch_ts_us == -1);
  CHECK(p.kernels[3].ts_us == 157.5);
  CHECK(p.kernels[3].launch_ts_us == 11.0);  // (34'500 - 23'500) / 1000
  for (const auto& k : p.kernels) CHECK(k.phase == "attn.o/fwd");
  // Repetition = GEMM + reduction: 12 + 2 and 11 + 2 us.
  REQUIRE(c.summary.size() == 1);
  CHECK(c.summary[0].reps == 2);
  CHECK(c.summary[0].kernels == 4);
  CHECK(c.summary[0].median_us == 13.5);
  CHECK(c.summary[0].min_us == 13.0);
  CHECK(c.summary[0].max_us == 14.0);
  CHECK(p.provenance.source.find("4 of 4 profile kernels matched to their runtime/driver launch record (2 launch "
                                 "times withheld") != std::string::npos);
  CHECK(p.provenance.source.find("dropped: 1 warm-up kernels, 1 kernels of no launch, 1 kernels without CUPTI "
                                 "timestamps") != std::string::npos);

  // What `trainsim calibrate` makes of stream 7's consecutive kernels (its gap samples, as in
  // calibrate.cpp): only the two GEMM -> reduction pairs, launched before the GEMM ended, are
  // kernel gaps: 112.5 - 112 = 0.5 us and 157.5 - 156.5 = 1 us. Had the rep-1 GEMM kept its
  // launch time (30'000 ns -> 6.5 us), the pair (rep-0 reduction, rep-1 GEMM) would have added
  // a 31 us "gap" that is the L2 scrub.
  std::vector<calibration::GapSample> gaps;
  for (std::size_t i = 1; i < p.kernels.size(); ++i)
    gaps.push_back({p.kernels[i - 1].ts_us + p.kernels[i - 1].dur_us, p.kernels[i].launch_ts_us, p.kernels[i].ts_us});
  const auto g = calibration::fit_gaps(gaps);
  CHECK(g.gap_points == 2);
  CHECK(g.latency_points == 0);
  CHECK(g.gap_us == 0.75);

  // One API call under two of the profiler's ids: a broken recording.
  Recording bad = r;
  bad.correlations.push_back({6, 3});
  CHECK_THROWS_WITH(convert(bad), Catch::Contains("correlation 6 under two external ids (2 and 3)"));
}

TEST_CASE("profile_convert: an NCCL launch on two GPUs (one pushed id, a driver launch per device)") {
  // ncclGroupEnd under external id 1 launches one kernel per device through cuLaunchKernelEx,
  // after runtime calls that launch nothing (cudaSetDevice, cudaGetDevice): every call gets an
  // external-correlation record with id 1.
  Recording r;
  r.run = h200_run(0, 1);
  r.run.devices.push_back(r.run.devices[0]);
  r.run.devices[1].id = 1;
  OpSpec a2a;
  a2a.name = "nccl.all_to_all";
  a2a.op_class = "a2a_dispatch";
  a2a.comm = true;
  a2a.tokens = 4096;
  a2a.bytes = 4096LL * 8 * 7168 * 2;
  a2a.dtype = "bf16";
  r.ops.push_back(a2a);
  r.launches = {Launch{1, 0, 0, false}};
  for (std::uint32_t corr = 20; corr <= 23; ++corr) r.correlations.push_back({corr, 1});
  r.api.push_back(api(false, 0, "cudaSetDevice_v3020", 1'000, 1'200, 20));
  r.api.push_back(api(true, kCuLaunchKernelEx, "cuLaunchKernelEx", 1'300, 5'300, 21));
  r.api.push_back(api(false, 0, "cudaSetDevice_v3020", 5'400, 5'600, 22));
  r.api.push_back(api(true, kCuLaunchKernelEx, "cuLaunchKernelEx", 5'700, 9'700, 23));
  r.kernels.push_back(kern("ncclDevKernel_SendRecv", 10'000, 110'000, 21, 13, 0, 24));
  r.kernels.push_back(kern("ncclDevKernel_SendRecv", 12'000, 92'000, 23, 29, 1, 24));
  const Conversion c = convert(r);
  REQUIRE(c.profile.kernels.size() == 2);
  CHECK(c.profile.t0_us == 1.3);  // the first launch
  CHECK(c.profile.kernels[0].device == 0);
  CHECK(c.profile.kernels[0].launch_ts_us == 0.0);
  CHECK(c.profile.kernels[1].device == 1);
  CHECK(c.profile.kernels[1].launch_ts_us == 4.4);  // (5'700 - 1'300) / 1000
  CHECK(c.profile.kernels[0].sms_available == 24);   // a communication kernel: its blocks
  CHECK(c.summary[0].median_us == 100.0);            // max over devices (100 and 80 us)
}

#ifdef TRAINSIM_PROFILE_CUPTI_HEADERS
// The same stream as real CUPTI structs (the headers of the CUDA toolkit this was built with),
// decoded by cupti_records.hpp -- the code trainsim-profile runs on its activity buffers -- plus
// records the decoder must skip: a CONTEXT record (a kind it does not read) and the foreign
// external kinds. The profile must be the one the plain records give.
#include <cstring>
#include <vector>

#include "cupti_records.hpp"

namespace {

std::string names(bool driver, std::uint32_t cbid) {
  if (driver) return cbid == kCuLaunchKernelEx ? "cuLaunchKernelEx" : "";
  switch (cbid) {
    case kLaunchKernel: return "cudaLaunchKernel_v7000";
    case kMemsetAsync: return "cudaMemsetAsync_v3020";
    case kStreamSync: return "cudaStreamSynchronize_v3020";
    case kCaptureInfo: return "cudaStreamGetCaptureInfo_v2_v11030";
    default: return "";
  }
}

}  // namespace

TEST_CASE("cupti_records: real CUPTI structs decode to the plain records, unknown kinds skipped") {
  const Recording plain = cupti_gemm_stream();
  // The plain fixture's API names are what the callback-name lookup gives for these cbids.
  REQUIRE(names(false, kCaptureInfo) == "cudaStreamGetCaptureInfo_v2_v11030");
  std::vector<std::vector<unsigned char>> keep;  // aligned storage per record
  std::vector<const CUpti_Activity*> recs;
  auto store = [&](const void* p, std::size_t n) {
    std::vector<unsigned char> b(n + 8);
    keep.push_back(std::move(b));
    auto* base = keep.back().data();
    auto* aligned = base + (8 - reinterpret_cast<std::uintptr_t>(base) % 8) % 8;
    std::memcpy(aligned, p, n);
    recs.push_back(reinterpret_cast<const CUpti_Activity*>(aligned));
  };
  for (const auto& e : plain.correlations) {
    CUpti_ActivityExternalCorrelation x{};
    x.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
    x.externalKind = static_cast<CUpti_ExternalCorrelationKind>(e.kind);
    x.externalId = e.external_id;
    x.correlationId = e.correlation_id;
    store(&x, sizeof x);
  }
  for (const auto& a : plain.api) {
    CUpti_ActivityAPI x{};
    x.kind = a.driver ? CUPTI_ACTIVITY_KIND_DRIVER : CUPTI_ACTIVITY_KIND_RUNTIME;
    x.cbid = a.cbid;
    x.start = a.start_ns;
    x.end = a.end_ns;
    x.processId = a.process_id;
    x.threadId = a.thread_id;
    x.correlationId = a.correlation_id;
    store(&x, sizeof x);
  }
  {
    CUpti_ActivityContext3 x{};  // a kind the decoder does not read
    x.kind = CUPTI_ACTIVITY_KIND_CONTEXT;
    store(&x, sizeof x);
  }
  bool first = true;
  for (const auto& k : plain.kernels) {
    cupti::KernelRecord x{};
    x.kind = first ? CUPTI_ACTIVITY_KIND_KERNEL : CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;  // both kinds decode
    first = false;
    x.start = k.start_ns;
    x.end = k.end_ns;
    x.deviceId = k.device_id;
    x.contextId = k.context_id;
    x.streamId = k.stream_id;
    x.correlationId = k.correlation_id;
    x.gridX = k.grid[0], x.gridY = k.grid[1], x.gridZ = k.grid[2];
    x.blockX = k.block[0], x.blockY = k.block[1], x.blockZ = k.block[2];
    x.name = k.name.c_str();  // CUPTI owns its names; here the fixture does, for the decode
    store(&x, sizeof x);
  }
  for (const auto& m : plain.copies) {
    cupti::MemsetRecord x{};
    x.kind = CUPTI_ACTIVITY_KIND_MEMSET;
    x.start = m.start_ns;
    x.end = m.end_ns;
    x.deviceId = m.device_id;
    x.contextId = m.context_id;
    x.streamId = m.stream_id;
    x.correlationId = m.correlation_id;
    store(&x, sizeof x);
  }

  Recording decoded;
  decoded.run = plain.run;
  decoded.ops = plain.ops;
  decoded.launches = plain.launches;
  for (const auto* rec : recs) cupti::decode_record(rec, decoded, names);
  CHECK(decoded.decoded.kernels == plain.kernels.size());
  CHECK(decoded.decoded.api == plain.api.size());
  CHECK(decoded.decoded.external == plain.correlations.size() - 2);  // the CUSTOM1 and UNKNOWN ones
  CHECK(decoded.decoded.other_external_kind == 2);
  CHECK(decoded.decoded.unknown_kind == 1);
  CHECK(decoded.decoded.copies == plain.copies.size());
  REQUIRE(decoded.api.size() == plain.api.size());
  for (std::size_t i = 0; i < plain.api.size(); ++i) {
    CHECK(decoded.api[i].name == plain.api[i].name);
    CHECK(decoded.api[i].driver == plain.api[i].driver);
  }
  Conversion a = convert(plain), b = convert(decoded);
  CHECK(b.profile.provenance.source.find("ignored: 1 CUPTI records of other kinds, 2 external correlations of other "
                                         "kinds") != std::string::npos);
  a.profile.provenance.source = b.profile.provenance.source = "";
  CHECK(calibration::write_profile(b.profile) == calibration::write_profile(a.profile));
  CHECK(b.profile.kernels.size() == 4);
}
#endif

// ---- The profiler's output calibrates ---------------------------------------------------------
//
// A whole trainsim-profile run, GPU-free: the op plan of DeepSeek-V3 under EP 64 (FP8 and BF16
// GEMMs, grouped GEMMs, casts, norms, SwiGLU, residual adds, permutation) executed on a
// closed-form "device" and recorded the way CUPTI records it (per launch: an untagged L2 scrub
// memset, a tagged driver launch, the kernel; warm-up dropped), converted to a profile that
// `trainsim calibrate` fits on its own: no FlashMLA table, no DeepGEMM table, no attention.
// The device (times in us; 132 SMs, tiles 128 x 128, waves = ceil(groups * tiles / 132)):
//   FP8 GEMM  t = 4 + waves * (0.0025 K + 0.6) + bytes / 3.5e6, bytes = g(MK + NK) + 2gMN
//   BF16 GEMM the same with 0.005 K and 2-byte operands
//   norm 2.0 + bytes / 3.2e6; elementwise 1.5 + bytes / 3.6e6; quant_cast 2.5 + bytes / 3.0e6;
//   permute 3.0 + bytes / 2.6e6 (bytes per us, i.e. 3.2 TB/s ...)
// Repetitions vary by -0.4%, 0, +0.4%, so the median repetition is the closed form.
namespace {

double device_waves(const OpSpec& s) {
  const auto tiles = s.groups * ((s.m + 127) / 128) * ((s.n + 127) / 128);
  return static_cast<double>((tiles + 131) / 132);
}

double device_us(const OpSpec& s) {
  if (s.op_class == "fp8_gemm" || s.op_class == "fp8_grouped_gemm" || s.op_class == "bf16_gemm") {
    const bool fp8 = s.dtype == "fp8";
    const double g = static_cast<double>(s.groups), m = static_cast<double>(s.m), n = static_cast<double>(s.n),
                 k = static_cast<double>(s.k);
    const double bytes = g * (m * k + n * k) * (fp8 ? 1 : 2) + 2 * g * m * n;
    return 4 + device_waves(s) * ((fp8 ? 0.0025 : 0.005) * k + 0.6) + bytes / 3.5e6;
  }
  const double b = static_cast<double>(s.bytes);
  if (s.op_class == "norm") return 2.0 + b / 3.2e6;
  if (s.op_class == "elementwise") return 1.5 + b / 3.6e6;
  if (s.op_class == "quant_cast") return 2.5 + b / 3.0e6;
  if (s.op_class == "permute") return 3.0 + b / 2.6e6;
  FAIL("no device time for class " << s.op_class);
  return 0;
}

// main.cpp's run_reps and Tagger, with CUPTI's records: 1 warm-up and 3 measured launches per op.
Recording simulated_run(const Plan& plan) {
  Recording r;
  r.run = h200_run(1, 3);
  r.run.model_file = "models/deepseek-v3.toml";
  std::uint64_t cpu = 1'000'000, gpu = 2'000'000, ext = 1;
  std::uint32_t corr = 1;
  const double jitter[3] = {0.996, 1.0, 1.004};
  for (const auto& p : plan.ops) {
    if (p.spec.comm) continue;
    r.ops.push_back(p.spec);
    const std::size_t op = r.ops.size() - 1;
    for (int i = 0; i < 4; ++i) {
      const bool warm = i == 0;
      // The L2 scrub: cudaMemsetAsync outside any pushed id, 100 MB at ~3 TB/s.
      r.api.push_back(api(false, kMemsetAsync, "cudaMemsetAsync_v3020", cpu, cpu + 3'000, corr));
      gpu = std::max(gpu, cpu + 8'000);
      r.copies.push_back(ActivityCopy{"memset", gpu, gpu + 33'000, 0, 1, 7, corr});
      gpu += 33'500;
      cpu += 3'500;
      ++corr;
      // The tagged launch.
      r.launches.push_back(Launch{ext, op, warm ? 0 : i - 1, warm});
      r.correlations.push_back({corr, ext});
      r.api.push_back(api(true, kCuLaunchKernelEx, "cuLaunchKernelEx", cpu, cpu + 4'000, corr));
      const auto dur = static_cast<std::uint64_t>(device_us(p.spec) * 1000.0 * (warm ? 1.3 : jitter[i - 1]));
      const auto grid = p.kernel == "gemm"
                            ? static_cast<std::int32_t>(std::min<std::int64_t>(
                                  132, p.spec.groups * ((p.spec.m + 127) / 128) * ((p.spec.n + 127) / 128)))
                            : static_cast<std::int32_t>(std::min<std::int64_t>(p.rows, 65535));
      r.kernels.push_back(kern(p.kernel == "gemm" ? "sm90_xmma_gemm" : "trainsim_" + p.kernel, gpu, gpu + dur, corr, 7, 0, grid));
      gpu += dur + 500;
      cpu += 5'000;
      ++corr;
      ++ext;
    }
  }
  return r;
}

}  // namespace

TEST_CASE("trainsim-profile's output calibrates with trainsim calibrate on its own", "[.calibrates]") {
  const ModelConfig m = load_model(ts_test::data("models/deepseek-v3.toml").string());
  PlanOptions o;
  o.ep = 64;
  const Plan plan = plan_ops(m, o);
  const Conversion c = convert(simulated_run(plan));
  REQUIRE(c.profile.kernels.size() == 3 * c.summary.size());
  // (kernel durations are whole nanoseconds: within 1 ns of the closed form)
  for (const auto& s : c.summary) CHECK(s.median_us == Approx(device_us(plan.ops[s.op].spec)).margin(0.0011));
  const auto dir = ts_test::temp_dir("profile-calibrates");
  const auto profile = dir / "h200-dsv3-ep64.profile.jsonl";
  const auto out = dir / "calibration.toml";
  ts_test::write_file(profile, calibration::write_profile(c.profile));
  const auto r = ts_test::run_trainsim("calibrate '" + profile.string() + "' --gpu h200 -o '" + out.string() + "'",
                                       ts_test::source_dir().string());
  INFO(r.out << r.err);
  // Before the calib branch (issue 11) lands, calibrate demands attention kernels and a FlashMLA
  // table: say so and let CTest mark this test skipped (SKIP_REGULAR_EXPRESSION in
  // tests/profiler.cmake) instead of passing or failing on it.
  const bool old_calibrate = r.status == 2 && (r.err.find("no attention forward/backward kernels") != std::string::npos ||
                                               r.err.find("no memory-bound bandwidth measurement (FlashMLA table)") !=
                                                   std::string::npos);
  if (old_calibrate) {
    WARN("trainsim-profile-calibrate-skipped: this trainsim calibrate still requires attention kernels and a FlashMLA "
         "table: " << r.err);
    return;
  }
  REQUIRE(r.status == 0);
  const calibration::Calibration cal = calibration::read_calibration(out.string());
  CHECK(cal.gpu == "h200");
  CHECK(cal.sms == 132);
  // The FP8 GEMM curve is the device's own form: the fit recovers it (tiles 128 x 128).
  for (const auto& p : plan.ops) {
    if (p.spec.op_class != "fp8_gemm" && p.spec.op_class != "fp8_grouped_gemm") continue;
    const double fitted = calibration::gemm_time_us(cal.gemm_fp8, p.spec.m, p.spec.n, p.spec.k, p.spec.groups, 132);
    INFO(p.spec.name);
    CHECK(fitted == Approx(device_us(p.spec)).epsilon(0.02));
  }
  CHECK(cal.gemm_fp8_wgrad_factor == Approx(1.0).epsilon(0.02));  // the device has no separate wgrad kernel
}
