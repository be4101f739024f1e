// Regression tests for the defects of issue 14 (one section each) and for "nothing
// half-written": every bad input class is refused with exit status 2 and a message naming the
// file or option, never a crash, a hang, a silent default or a partial output.
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "calibration/classifier.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "support.hpp"

using namespace ts_test;
namespace fs = std::filesystem;

namespace {

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// A one-kernel trace of an H800 whose kernel has this name.
std::string one_kernel_trace(const std::string& name) {
  return R"({"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA H800", "numSms": 132, "totalGlobalMem": 84943110144}],
  "traceEvents": [
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 1000, "dur": 4, "args": {"correlation": 1}},
    {"ph": "X", "cat": "kernel", "name": ")" +
         name + R"(", "pid": 0, "tid": 7, "ts": 1010, "dur": 5, "args": {"device": 0, "stream": 7, "correlation": 1, "grid": [1, 1, 1]}}]})";
}

// Files in `dir`, recursively (hidden ones included).
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> v;
  if (!fs::exists(dir)) return v;
  for (const auto& e : fs::recursive_directory_iterator(dir)) v.push_back(fs::relative(e.path(), dir).string());
  std::sort(v.begin(), v.end());
  return v;
}

const std::string kScenario = "scenarios/sweeps/base/llama3-8b-64xh100.toml";

}  // namespace

TEST_CASE("a kernel name of megabytes neither crashes import nor raw replay (was a stack overflow in std::regex)") {
  const auto dir = temp_dir("longname");
  // "deep_gemm::" followed by 400,000 characters: the fp8-gemm rule's ".*" made libstdc++'s
  // recursive std::regex overflow the stack. RE2 matches it in linear time.
  ts_test::write_file(dir / "long.json", one_kernel_trace("deep_gemm::" + std::string(400000, 'a') + "<x>"));
  auto r = run_trainsim("import " + q(dir / "long.json") + " -o " + q(dir / "long.profile.jsonl"));
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("fp8_gemm"));
  r = run_trainsim("replay " + q(dir / "long.json"));
  CHECK(r.status == 0);
  fs::remove_all(dir);
}

TEST_CASE("classifier regexes are bounded: catastrophic patterns run in linear time, unsupported ones are refused") {
  using trainsim::calibration::Classifier;
  // (a*)*b against 100,000 'a's backtracks exponentially in a backtracking engine.
  const Classifier c = Classifier::parse(
      "version = 1\n[[rule]]\nname = \"evil\"\nclass = \"norm\"\nregex = \"(a*)*b\"\n"
      "[[rule]]\nname = \"nested\"\nclass = \"elementwise\"\nregex = \"((a+)+)+$\"\n",
      "evil.toml");
  const std::string name(100000, 'a');
  CHECK(c.classify(name, 0).op_class == "elementwise");
  CHECK(c.classify(name + "b", 0).op_class == "norm");
  // Backreferences and lookaround need backtracking: not RE2 syntax, refused at the key.
  for (const char* bad : {"(a)\\\\1", "a(?=b)", "("}) {
    INFO(bad);
    try {
      (void)Classifier::parse(fmt::format("version = 1\n[[rule]]\nname = \"x\"\nclass = \"norm\"\nregex = \"{}\"\n", bad),
                              "bad.toml");
      FAIL("accepted");
    } catch (const trainsim::ConfigError& e) {
      CHECK(e.key() == "rule[0].regex");
      CHECK_THAT(e.message(), Catch::Contains("RE2"));
    }
  }
  // A pattern longer than the limit.
  CHECK_THROWS_AS(Classifier::parse("version = 1\n[[rule]]\nname = \"x\"\nclass = \"norm\"\nregex = \"" +
                                        std::string(trainsim::calibration::kMaxPatternBytes + 1, 'a') + "\"\n",
                                    "long.toml"),
                  trainsim::ConfigError);
  // The same through the command line, with the user's classifier file.
  const auto dir = temp_dir("evil");
  write_file(dir / "evil.toml", "version = 1\n[[rule]]\nname = \"evil\"\nclass = \"norm\"\nregex = \"(a*)*b\"\n");
  write_file(dir / "t.json", one_kernel_trace(std::string(200000, 'a')));
  const auto r = run_trainsim("import " + q(dir / "t.json") + " -o " + q(dir / "t.profile.jsonl") + " --classifier " +
                              q(dir / "evil.toml"));
  CHECK(r.status == 0);
  fs::remove_all(dir);
}

TEST_CASE("training.global_batch is range-checked where it becomes micro-batches, not truncated to 32 bits") {
  // 128 * (2^32 + 240) sequences: 2^32 + 240 micro-batches per step on dp 128; cast to a
  // 32-bit int it used to become 240, and the run exited 0 about 10^9 times too cheap.
  const long long gb = 128LL * ((1LL << 32) + 240);
  const auto r = run_trainsim(fmt::format("run {} --set training.global_batch={}", q(data("scenarios/deepseek-v3-h800.toml")), gb));
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains("training.global_batch"));
  CHECK_THAT(r.err, Catch::Contains("work limit"));
}

TEST_CASE("the work a plan asks for is bounded before allocation") {
  // pp 1000 x 10000 micro-batches took 7.7 GB; now refused at once, naming the option.
  auto r = run_trainsim("schedule --kind 1f1b --pp 1000 --microbatches 10000");
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains("--microbatches"));
  CHECK_THAT(r.err, Catch::Contains("work limit"));
  // One slot past the limit: 1,000,001 = 1 x 1 x 1,000,001 (the limit itself, 1,000,000 slots,
  // runs in about 10-20 s and 1.2 GB: docs/limits.md).
  r = run_trainsim("schedule --kind gpipe --pp 1 --microbatches 1000001");
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains("1000001 pipeline slots"));
  r = run_trainsim("schedule --kind 1f1b --pp 8 --microbatches 64 --json > /dev/null");
  CHECK(r.status == 0);
  // Tokens per micro-batch above 2^31 (the all-to-all model's int): refused at micro_batch.
  r = run_trainsim(fmt::format("describe {} --set plan.micro_batch=1048576 --set training.seq_len=4096",
                               q(data(kScenario))));
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains("micro_batch"));
}

TEST_CASE("a directory given as an input file is refused as one, not read as empty") {
  const auto dir = temp_dir("dirinput");
  fs::create_directories(dir / "d.profile.jsonl");
  fs::create_directories(dir / "d.toml");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"import " + q(dir) + " -o " + q(dir / "x.profile.jsonl"), "is a directory"},
      {"replay " + q(dir / "d.profile.jsonl"), "is a directory"},
      {"import " + q(data("fuzz/corpus/kineto/small.json")) + " -o " + q(dir / "y.profile.jsonl") + " --classifier " +
           q(dir / "d.toml"),
       "is a directory"},
      {"describe " + q(dir / "d.toml"), "directory"},
      {"run " + q(dir / "d.toml"), "directory"},
  };
  for (const auto& [args, expect] : cases) {
    INFO(args);
    const auto r = run_trainsim(args);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains(expect));
  }
  CHECK_FALSE(fs::exists(dir / "x.profile.jsonl"));
  CHECK_FALSE(fs::exists(dir / "y.profile.jsonl"));
  fs::remove_all(dir);
}

TEST_CASE("output options name themselves and the cause; nothing is written when they are bad") {
  const auto dir = temp_dir("outopts");
  write_file(dir / "file", "x");
  const std::string trace = q(data("fuzz/corpus/kineto/small.json"));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"import " + trace + " -o " + q(dir), "-o: '" + dir.string() + "' is a folder"},
      {"import " + trace + " -o " + q(dir / "missing" / "p.jsonl"), "-o: cannot write into folder"},
      {"schedule --kind 1f1b --pp 4 --microbatches 8 --trace " + q(dir), "--trace"},
      {"run " + q(data(kScenario)) + " --out " + q(dir / "file"), "--out: '" + (dir / "file").string() + "' is"},
      {"run " + q(data(kScenario)) + " --out " + q(dir / "file" / "sub"), "--out"},
  };
  for (const auto& [args, expect] : cases) {
    INFO(args);
    const auto r = run_trainsim(args);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains(expect));
  }
  CHECK(listing(dir) == std::vector<std::string>{"file"});
  fs::remove_all(dir);
}

TEST_CASE("--out on a full disk leaves nothing behind and says so (injected with a file-size limit)") {
  // RLIMIT_FSIZE (ulimit -f 64: 64 blocks, of 512 bytes in dash, 1024 in bash) makes the kernel
  // fail write() with EFBIG once a file would pass 32-64 KiB; SIGXFSZ is ignored so that the
  // write fails instead of killing. report.md (~4 KB) is written, report.html (~300 KB) fails.
  const auto dir = temp_dir("outlimit");
  const std::string env = "trap '' XFSZ; ulimit -f 64; ";
  auto r = run_trainsim("run " + q(data(kScenario)) + " --out " + q(dir / "new"), "", env);
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains("--out: cannot write '" + (dir / "new").string() + "/report.html': File too large"));
  CHECK(listing(dir).empty());  // no folder, no temporary

  // Into an existing folder with the previous run's files: they stay exactly as they were.
  r = run_trainsim("run " + q(data(kScenario)) + " --out " + q(dir / "old"));
  REQUIRE(r.status == 0);
  const auto before = listing(dir / "old");
  const std::string md = read_file(dir / "old" / "report.md");
  write_file(dir / "old" / "report.md", md + "previous run\n");
  r = run_trainsim("run " + q(data(kScenario)) + " --set plan.schedule=zb1p --out " + q(dir / "old"), "", env);
  CHECK(r.status == 2);
  CHECK(listing(dir / "old") == before);
  CHECK(read_file(dir / "old" / "report.md") == md + "previous run\n");
  fs::remove_all(dir);
}

TEST_CASE("--out on a real full tmpfs: 'No space left on device', nothing left (skipped where mounting is not allowed)") {
  const auto dir = temp_dir("outtmpfs");
  const auto mnt = dir / "mnt";
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) {
    WARN("cannot mount a 64 KiB tmpfs here (" << std::strerror(errno) << "): covered by the file-size-limit test above");
    fs::remove_all(dir);
    return;
  }
  auto r = run_trainsim("run " + q(data(kScenario)) + " --out " + q(mnt / "run"));
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains("No space left on device"));
  CHECK_THAT(r.err, Catch::Contains((mnt / "run").string()));
  CHECK(listing(mnt).empty());
  // The library call itself, several files into an existing folder.
  fs::create_directories(mnt / "keep");
  write_file(mnt / "keep" / "a.txt", "old");
  try {
    trainsim::write_files_atomic((mnt / "keep").string(), {{"a.txt", "new"}, {"b.txt", std::string(200000, 'x')}}, "--out");
    FAIL("no error");
  } catch (const trainsim::UsageError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("No space left on device"));
  }
  CHECK(listing(mnt / "keep") == std::vector<std::string>{"a.txt"});
  CHECK(read_file(mnt / "keep" / "a.txt") == "old");
  ::umount(mnt.c_str());
  fs::remove_all(dir);
}
