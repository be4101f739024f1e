// Kineto/Chrome-trace importer, kernel classifier and profile format (sim/calibration).
//
// Expectations for DeepSeek's H800 trace (shared/profiles/h800/deepseek-v3-train-fwdbwd-ep64.json)
// are hand counts made independently of the C++ code:
//   * grep -c '"cat": "kernel"' FILE                       -> 963 (one event per match: Kineto
//     writes each event's "ph", "cat", "name" on one line)
//   * grep -c '"cat": "user_annotation"' FILE              -> 42
//   * grep -o '"stream": [0-9]*' FILE | sort | uniq -c     -> 927 x 7, 40 x 27, 16 x 23; the 927
//     on stream 7 include 12 gpu_memset and 8 gpu_memcpy events (grep -c '"cat": "gpu_memset"'
//     -> 12, '"cat": "gpu_memcpy"' -> 8), so kernels: 907 on 7, 40 on 27, 16 on 23.
//   * annotation names (python3: Counter(e["name"] for e in ev if e["cat"]=="user_annotation")):
//     ProfilerStep#1 x1, 1F1B x1, and 4 each of attn(F) attn(B) attn(W) mlp(F) mlp(B) mlp(W)
//     dispatch(F) dispatch(B) combine(F) combine(B).
//   * python3 -c 'len(d["traceEvents"])' -> 14240; cuda_runtime "cudaStreamWaitEvent" -> 56.
//   * kernel names by family (grep -c on lines with "cat": "kernel"):
//       'dpsk::ep::internode::dispatch<'  -> 8,  'dpsk::ep::internode::combine<' -> 8,
//       'notify_dispatch' -> 4, 'cached_notify' -> 12, 'get_dispatch_layout' -> 4,
//       'm_grouped_fp8' -> 16, 'FlashAttnBwd' -> 12, 'Flash_fwd' -> 4, 'sm90_xmma_gemm_bf16' -> 12.
#include <algorithm>
#include <filesystem>
#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "calibration/classifier.hpp"
#include "calibration/kineto.hpp"
#include "calibration/profile.hpp"
#include "core/error.hpp"
#include "support.hpp"

using namespace trainsim;
using namespace trainsim::calibration;

namespace {

const std::filesystem::path kTrace = ts_test::shared_dir() / "profiles/h800/deepseek-v3-train-fwdbwd-ep64.json";

// Parsed once per test executable.
const RawImport& deepseek() {
  static const RawImport r = parse_kineto(kTrace.string());
  return r;
}

const Classifier& rules() {
  static const Classifier c = Classifier::load((ts_test::source_dir() / "profiles/classifier.toml").string());
  return c;
}

std::size_t count_names(const Profile& p, const std::string& needle) {
  return static_cast<std::size_t>(std::count_if(p.kernels.begin(), p.kernels.end(), [&](const KernelRecord& k) {
    return k.name.find(needle) != std::string::npos;
  }));
}

// Expects a DataError whose message contains every fragment.
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

}  // namespace

TEST_CASE("DeepSeek trace: kernel, stream and annotation hand counts") {
  if (!ts_test::shared_present(kTrace)) return;
  const RawImport& r = deepseek();
  CHECK(r.stats.events == 14240);
  CHECK(r.stats.kernels == 963);
  CHECK(r.profile.kernels.size() == 963);
  CHECK(r.stats.annotations == 42);
  CHECK(r.stats.memsets == 12);
  CHECK(r.stats.memcpys == 8);
  CHECK(r.stats.streams == std::set<std::int64_t>{7, 23, 27});
  std::map<std::int64_t, std::size_t> per_stream;
  for (const auto& k : r.profile.kernels) per_stream[k.stream]++;
  CHECK(per_stream[7] == 907);
  CHECK(per_stream[27] == 40);
  CHECK(per_stream[23] == 16);

  std::map<std::string, std::size_t> ann;
  for (const auto& a : r.profile.annotations) ann[a.name]++;
  CHECK(ann.size() == 12);
  CHECK(ann["ProfilerStep#1"] == 1);
  CHECK(ann["1F1B"] == 1);
  for (const char* n : {"attn(F)", "attn(B)", "attn(W)", "mlp(F)", "mlp(B)", "mlp(W)", "dispatch(F)", "dispatch(B)",
                        "combine(F)", "combine(B)"})
    CHECK(ann[n] == 4);

  CHECK(std::count_if(r.profile.syncs.begin(), r.profile.syncs.end(),
                      [](const SyncCall& s) { return s.name == "cudaStreamWaitEvent"; }) == 56);
  CHECK(r.profile.provenance.gpu == "NVIDIA H800");
  CHECK(r.profile.provenance.num_sms == 132);
  CHECK(r.profile.provenance.world_size == 64);
  CHECK(r.profile.provenance.date == "2025-02-25");  // ts 1740461679... us = 2025-02-25 UTC
  // Every kernel has a launch (correlation id matched) and the first kernel starts at or after t0.
  for (const auto& k : r.profile.kernels) {
    CHECK(k.launch_ts_us >= 0);
    CHECK(k.ts_us >= 0);
  }
}

TEST_CASE("DeepSeek trace: classes of the kernel families") {
  if (!ts_test::shared_present(kTrace)) return;
  Profile p = deepseek().profile;
  classify(p, rules());
  std::map<std::string, std::size_t> cls;
  for (const auto& k : p.kernels) cls[k.op_class]++;
  // Hand counts by family (header comment): dispatch 8, combine 8, notify 4 + 12 + 4 layout.
  CHECK(cls["a2a_dispatch"] == 8);
  CHECK(cls["a2a_combine"] == 8);
  CHECK(cls["a2a_notify"] == 20);
  CHECK(cls["fp8_grouped_gemm"] == 16);
  CHECK(cls["attn_bwd"] == 12);
  CHECK(cls["attn_fwd"] == 4);
  CHECK(cls["bf16_gemm"] == 12);
  CHECK(count_names(p, "m_grouped_fp8") == 16);
  // All communication kernels ran on stream 27, and the stream-23 kernels are FP8 GEMMs.
  for (const auto& k : p.kernels) {
    if (k.op_class.rfind("a2a_", 0) == 0) CHECK(k.stream == 27);
    if (k.stream == 23) CHECK(k.op_class == "fp8_gemm");
  }
}

namespace {

// A small synthetic trace whose classes are obvious from the names. Hand count: 7 kernels, of
// which 2 fp8_gemm (one on stream 7, one on stream 23), 1 fp8_grouped_gemm, 1 a2a_dispatch,
// 1 a2a_combine (both on stream 27), 1 norm, 1 unmatched ("other"); streams {7, 23, 27};
// 2 annotations; the dispatch (grid 20) overlaps the first GEMM.
std::string synthetic_trace() {
  return R"TR({
  "schemaVersion": 1,
  "deviceProperties": [{"id": 0, "name": "NVIDIA H800", "numSms": 132}],
  "traceEvents": [
    {"ph": "X", "cat": "user_annotation", "name": "mlp(F)", "pid": 1, "tid": 1, "ts": 1000, "dur": 50},
    {"ph": "X", "cat": "user_annotation", "name": "dispatch(F)", "pid": 1, "tid": 1, "ts": 1060, "dur": 20},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 1010, "dur": 2, "args": {"correlation": 11}},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 1065, "dur": 2, "args": {"correlation": 12}},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaStreamWaitEvent", "pid": 1, "tid": 1, "ts": 1070, "dur": 1, "args": {"correlation": 99}},
    {"ph": "X", "cat": "kernel", "name": "void cutlass::device_kernel<dpsk::grouped_gemm::cuda::fp8_ptp128c::GemmKernel>(Params)", "pid": 0, "tid": 7, "ts": 1100, "dur": 100, "args": {"stream": 7, "correlation": 11, "grid": [112, 1, 1], "block": [384, 1, 1]}},
    {"ph": "X", "cat": "kernel", "name": "void dpsk::ep::internode::dispatch<false, 8, false, 8>(int4*)", "pid": 0, "tid": 27, "ts": 1150, "dur": 200, "args": {"stream": 27, "correlation": 12, "grid": [20, 1, 1], "block": [512, 1, 1]}},
    {"ph": "X", "cat": "kernel", "name": "void cutlass::device_kernel<dpsk::grouped_gemm::cuda::fp8_dptp128c_acc::GemmKernel>(Params)", "pid": 0, "tid": 23, "ts": 1400, "dur": 30, "args": {"stream": 23, "correlation": 13}},
    {"ph": "X", "cat": "kernel", "name": "void cutlass::device_kernel<dpsk::grouped_gemm::cuda::m_grouped_fp8_ptp128c::GemmKernel>(Params)", "pid": 0, "tid": 7, "ts": 1500, "dur": 40, "args": {"stream": 7, "correlation": 14}},
    {"ph": "X", "cat": "kernel", "name": "void dpsk::ep::internode::combine<false, 8>(int4*)", "pid": 0, "tid": 27, "ts": 1600, "dur": 60, "args": {"stream": 27, "correlation": 15}},
    {"ph": "X", "cat": "kernel", "name": "void layer_norm::ln_fwd_kernel<7168u>(Params)", "pid": 0, "tid": 7, "ts": 1700, "dur": 5, "args": {"stream": 7, "correlation": 16}},
    {"ph": "X", "cat": "kernel", "name": "some_unknown_kernel", "pid": 0, "tid": 7, "ts": 1710, "dur": 1, "args": {"stream": 7, "correlation": 17}},
    {"ph": "X", "cat": "gpu_memset", "name": "Memset (Device)", "pid": 0, "tid": 7, "ts": 1720, "dur": 0, "args": {"stream": 7, "correlation": 18}},
    {"ph": "s", "cat": "ac2g", "id": 11, "pid": 1, "tid": 1, "ts": 1010, "name": "ac2g"}
  ]
})TR";
}

}  // namespace

TEST_CASE("synthetic trace: per-class counts, SMs, phases, launches") {
  RawImport r = parse_kineto_text(synthetic_trace(), "synthetic.json");
  Profile& p = r.profile;
  CHECK(r.stats.events == 14);
  CHECK(r.stats.kernels == 7);
  CHECK(r.stats.annotations == 2);
  CHECK(r.stats.memsets == 1);
  CHECK(r.stats.flows == 1);
  CHECK(r.stats.streams == std::set<std::int64_t>{7, 23, 27});
  classify(p, rules());
  account_sms(p);
  std::map<std::string, int> cls;
  for (const auto& k : p.kernels) cls[k.op_class]++;
  CHECK(cls == std::map<std::string, int>{{"fp8_gemm", 2}, {"fp8_grouped_gemm", 1}, {"a2a_dispatch", 1},
                                          {"a2a_combine", 1}, {"norm", 1}, {"other", 1}});
  // t0 = the first annotation (ts 1000); kernels ordered by start.
  CHECK(p.t0_us == 1000);
  REQUIRE(p.kernels.size() == 7);
  const KernelRecord& gemm = p.kernels[0];
  CHECK(gemm.op_class == "fp8_gemm");
  CHECK(gemm.dtype == "fp8");
  CHECK(gemm.ts_us == 100);
  CHECK(gemm.dur_us == 100);
  CHECK(gemm.launch_ts_us == 10);
  CHECK(gemm.phase == "mlp(F)");
  CHECK(gemm.grid == std::array<std::int64_t, 3>{112, 1, 1});
  // The dispatch (grid 20, stream 27) overlaps it: 132 - 20 SMs left.
  CHECK(gemm.comm_sms_held == 20);
  CHECK(gemm.sms_available == 112);
  const KernelRecord& disp = p.kernels[1];
  CHECK(disp.op_class == "a2a_dispatch");
  CHECK(disp.phase == "dispatch(F)");
  CHECK(disp.sms_available == 20);
  // No launch event for correlation 13..17.
  CHECK(p.kernels[2].launch_ts_us == -1);
  CHECK(p.kernels[2].phase.empty());
  REQUIRE(p.syncs.size() == 1);
  CHECK(p.syncs[0].name == "cudaStreamWaitEvent");

  // The profile format round-trips exactly, and writing is deterministic.
  const std::string text = write_profile(p);
  const Profile back = read_profile_text(text, "x.jsonl");
  CHECK(write_profile(back) == text);
  CHECK(back.kernels.size() == 7);
  CHECK(back.kernels[0].comm_sms_held == 20);
}

TEST_CASE("shape inference for the MoE grouped GEMMs and all-to-all") {
  RawImport r = parse_kineto_text(synthetic_trace(), "synthetic.json");
  classify(r.profile, rules());
  ShapeModel m;
  m.tokens = 4096;
  m.hidden = 7168;
  m.expert_intermediate = 2048;
  m.routed_experts = 256;
  m.top_k = 8;
  m.ep = 64;
  m.heads = 128;
  m.qk_head_dim = 192;
  infer_shapes(r.profile, m);
  for (const auto& k : r.profile.kernels) {
    if (k.op_class == "a2a_dispatch") {
      // Launched inside dispatch(F): FP8 payload, 7168 + 7168/128*4 bytes per token and expert.
      CHECK(k.shape.tokens == 4096);
      CHECK(k.shape.bytes == 4096LL * 8 * (7168 + 56 * 4));
    }
    // The grouped GEMM has no launch in this trace, so no phase and no inferred shape.
    if (k.op_class == "fp8_grouped_gemm") CHECK_FALSE(k.shape.known());
  }
}

TEST_CASE("importer errors: file, position, what was expected") {
  SECTION("malformed JSON names line and column") {
    // The stray 'x' is on line 3 after four spaces: column 5.
    const std::string text = "{\n  \"traceEvents\": [\n    x\n  ]\n}\n";
    const std::string msg = data_error([&] { parse_kineto_text(text, "bad.json"); });
    CHECK(msg.find("bad.json:3:5:") == 0);
    CHECK(msg.find("malformed JSON") != std::string::npos);
  }
  SECTION("a number too large for a double is a DataError at the number (found by fuzzing)") {
    // The literal starts after `{"traceEvents": [{"ts": ` = 24 characters: column 25.
    const std::string text = "{\"traceEvents\": [{\"ts\": 44444444444E4444441}]}";
    const std::string msg = data_error([&] { parse_kineto_text(text, "big.json"); });
    CHECK(msg.find("big.json:1:25:") == 0);
    CHECK(msg.find("out of range") != std::string::npos);
  }
  SECTION("truncated file") {
    std::string text = synthetic_trace();
    text.resize(text.size() / 2);
    const std::string msg = data_error([&] { parse_kineto_text(text, "cut.json"); });
    CHECK(msg.find("cut.json:") == 0);
    CHECK(msg.find("truncated") != std::string::npos);
  }
  SECTION("no traceEvents") {
    const std::string msg = data_error([&] { parse_kineto_text("{\"schemaVersion\": 1, \"events\": []}", "w.json"); });
    CHECK(msg.find("w.json:1:1:") == 0);
    CHECK(msg.find("'traceEvents'") != std::string::npos);
    CHECK(msg.find("schemaVersion") != std::string::npos);  // lists the keys found
  }
  SECTION("kernel without dur: position of the event") {
    const std::string text =
        "{\"traceEvents\": [\n"
        "  {\"ph\": \"X\", \"cat\": \"cpu_op\", \"name\": \"a\", \"ts\": 1, \"dur\": 1},\n"
        "  {\"ph\": \"X\", \"cat\": \"kernel\", \"name\": \"k\", \"ts\": 5, \"args\": {\"stream\": 7, \"correlation\": 1}}\n"
        "]}\n";
    const std::string msg = data_error([&] { parse_kineto_text(text, "nodur.json"); });
    CHECK(msg.find("nodur.json:3:3:") == 0);  // the second event starts at line 3, column 3
    CHECK(msg.find("trace event #1") != std::string::npos);
    CHECK(msg.find("missing 'dur'") != std::string::npos);
  }
  SECTION("kernel with a string stream") {
    const std::string text =
        "[{\"cat\": \"kernel\", \"name\": \"k\", \"ts\": 5, \"dur\": 1, \"args\": {\"stream\": \"7\", \"correlation\": 1}}]";
    const std::string msg = data_error([&] { parse_kineto_text(text, "s.json"); });
    CHECK(msg.find("s.json:1:2:") == 0);
    CHECK(msg.find("'args.stream' must be an integer") != std::string::npos);
  }
  SECTION("no kernels") {
    const std::string text = "{\"traceEvents\": [{\"ph\": \"X\", \"cat\": \"cpu_op\", \"name\": \"a\", \"ts\": 1, \"dur\": 1}]}";
    const std::string msg = data_error([&] { parse_kineto_text(text, "nok.json"); });
    CHECK(msg.find("nok.json: no GPU kernels") == 0);
  }
}

TEST_CASE("classifier rules: strict TOML, first match wins") {
  const Classifier c = Classifier::parse(
      "version = 1\n"
      "[[rule]]\nname = \"a\"\nclass = \"norm\"\ncontains = \"xnorm\"\nstream = 3\n"
      "[[rule]]\nname = \"b\"\nclass = \"elementwise\"\nregex = \"norm$\"\n",
      "r.toml");
  CHECK(c.classify("xnorm", 3).op_class == "norm");
  CHECK(c.classify("xnorm", 4).op_class == "elementwise");  // stream condition fails, rule b matches
  CHECK(c.classify("other", 3).op_class == "other");
  CHECK(c.classify("other", 3).rule.empty());
  CHECK_THROWS_AS(Classifier::parse("version = 1\n[[rule]]\nname = \"a\"\nclass = \"norm\"\ncontains = \"x\"\ncolour = 1\n",
                                    "u.toml"),
                  ConfigError);
  CHECK_THROWS_AS(Classifier::parse("version = 1\n[[rule]]\nname = \"a\"\nclass = \"nope\"\ncontains = \"x\"\n", "c.toml"),
                  ConfigError);
  CHECK_THROWS_AS(Classifier::parse("version = 1\n[[rule]]\nname = \"a\"\nclass = \"norm\"\nregex = \"(\"\n", "x.toml"),
                  ConfigError);
}

TEST_CASE("trainsim import: bad input exits 2, names the file, writes nothing") {
  const auto dir = ts_test::temp_dir("import");
  const auto bad = dir / "trunc.json";
  std::string text = synthetic_trace();
  ts_test::write_file(bad, text.substr(0, text.size() - 40));
  const auto out = dir / "out.profile.jsonl";
  auto r = ts_test::run_trainsim("import '" + bad.string() + "' -o '" + out.string() + "'");
  CHECK(r.status == 2);
  CHECK(r.err.find(bad.string()) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out));

  const auto good = dir / "good.json";
  ts_test::write_file(good, text);
  r = ts_test::run_trainsim("import '" + good.string() + "' -o '" + out.string() + "' --json");
  CHECK(r.status == 0);
  CHECK(r.out.find("\"kernels\": 7") != std::string::npos);
  REQUIRE(std::filesystem::exists(out));
  const Profile p = read_profile(out.string());
  CHECK(p.kernels.size() == 7);
  std::filesystem::remove_all(dir);
}

TEST_CASE("the committed DeepSeek profile matches the trace's hand counts") {
  const Profile p = read_profile((ts_test::source_dir() / "profiles/h800/deepseek-v3-train-fwdbwd-ep64.profile.jsonl").string());
  CHECK(p.kernels.size() == 963);
  CHECK(p.annotations.size() == 42);
  CHECK(p.provenance.num_sms == 132);
  CHECK(p.provenance.source.find("4496024") != std::string::npos);
  std::size_t other = 0;
  for (const auto& k : p.kernels) other += k.op_class == "other" ? 1 : 0;
  CHECK(other == 3);  // grep -c 'fill_tensormaps_kernel' on kernel lines -> 3 (GEMM setup, left as other)
}
