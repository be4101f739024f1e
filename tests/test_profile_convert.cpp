// trainsim-profile's conversion of CUPTI activity records into the trainsim profile format
// (profiles/cupti/profile_convert.hpp). The records are synthetic, written by hand here with
// round nanosecond times so that every expected value below is computed by hand:
//   * duration = (end - start) / 1000 us; ts relative to the first measured kernel's start;
//   * warm-up launches' kernels and kernels of no launch are dropped (and counted);
//   * a repetition's time is the sum of its kernels' durations (max over devices);
//     median and min over repetitions;
//   * SMs: a GEMM overlapping a communication kernel on another stream of the same device
//     loses that kernel's blocks (capped at the SM count); a comm kernel "has" its blocks.
#include <string>

#include <catch2/catch.hpp>

#include "calibration/profile.hpp"
#include "profile_convert.hpp"

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
