// Bad input for the step models' [plan] switches: a switch that would change nothing in every
// phase is an error naming the file, line and key (config/scenario.cpp), and `trainsim run`
// exits with status 2 and writes nothing.
#include <catch2/catch.hpp>

#include "config/scenario.hpp"
#include "core/error.hpp"
#include "support.hpp"

using namespace trainsim;

namespace {

struct Case {
  const char* model;
  int gpus;
  const char* plan;       // the [plan] table, the bad key on its last line
  const char* key;        // "plan.<key>"
  const char* message;    // part of the message
};

std::string text(const Case& c) {
  return "name = \"t\"\nmodel = \"" + ts_test::data(std::string("models/") + c.model + ".toml").string() +
         "\"\n[cluster]\ngpu = \"h800\"\ngpus = " + std::to_string(c.gpus) + "\ngpus_per_node = 8\n[plan]\n" + c.plan +
         "\n[training]\nseq_len = 4096\nglobal_batch = 64\ntokens = 1e9\n";
}

}  // namespace

TEST_CASE("Step-model switches that would change nothing are rejected with file, line and key", "[config][step]") {
  const Case cases[] = {
      {"llama3-8b", 8, "dp = 8\nsequence_parallel = true", "plan.sequence_parallel", "needs tp > 1"},
      {"deepseek-v2-lite", 16, "dp = 4\npp = 4\nep = 4\nschedule = \"dualpipe\"\nep_comm_overlap = true",
       "plan.ep_comm_overlap", "overlaps by its own F&B pairs"},
      {"llama3-8b", 8, "dp = 8\nep_comm_overlap = true", "plan.ep_comm_overlap", "this plan has none"},
      {"llama3-8b", 8, "dp = 8\nep_dispatcher = \"alltoall\"", "plan.ep_dispatcher", "no phase of this plan has an all-to-all"},
      {"llama3-8b", 8, "dp = 8\nshared_expert_overlap = true", "plan.shared_expert_overlap", "no experts"},
      {"deepseek-v2-lite", 8, "dp = 8\nshared_expert_overlap = true", "plan.shared_expert_overlap", "no all-to-all"},
      {"llama3-8b", 8, "dp = 1\ntp = 8\noverlap_grad_reduce = true", "plan.overlap_grad_reduce", "dp * cp = 1"},
      {"llama3-8b", 8, "dp = 8\nzero = 3\noverlap_grad_reduce = true", "plan.overlap_grad_reduce", "zero 3 reduces"},
      {"llama3-8b", 8, "dp = 8\nzero = 3\noverlap_param_gather = true", "plan.overlap_param_gather", "ZeRO-3"},
      {"llama3-8b", 8, "dp = 8\nzero = 2\ndp_bucket_params = 1000", "plan.dp_bucket_params", "zero 0 or 1"},
      {"llama3-8b", 8, "dp = 8\ncp_comm = \"all_gather\"", "plan.cp_comm", "cp > 1"},
      // Megatron-Core DDP (the default bucketing) reduces one bucket per buffer without the overlap.
      {"llama3-8b", 8, "dp = 8\ndp_bucket_params = 1000", "plan.dp_bucket_params", "no effect here"},
      {"llama3-8b", 8, "dp = 8\nzero = 1\noverlap_param_gather = true", "plan.overlap_param_gather",
       "needs overlap_grad_reduce in Megatron-Core"},
      {"llama3-8b", 8, "dp = 1\ntp = 8\ngrad_buckets = \"uniform\"", "plan.grad_buckets", "zero 0 or 1"},
      {"llama3-8b", 8, "dp = 8\nzero = 3\ngrad_buckets = \"uniform\"", "plan.grad_buckets", "zero 0 or 1"},
      {"deepseek-v2-lite", 16, "dp = 4\npp = 4\nep = 4\nschedule = \"dualpipe\"\ngrad_buckets = \"megatron-core\"",
       "plan.grad_buckets", "does not run schedule \"dualpipe\""},
  };
  int k = 0;
  for (const Case& c : cases) {
    INFO(c.plan);
    const auto dir = ts_test::temp_dir("plan" + std::to_string(++k));
    const std::string t = text(c);
    ts_test::write_file(dir / "s.toml", t);
    // The bad key is the last line of [plan].
    const std::string plan = std::string("[plan]\n") + c.plan;
    const auto line = static_cast<std::uint32_t>(std::count(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.find(plan) + plan.size()), '\n') + 1);
    try {
      load_scenario((dir / "s.toml").string());
      FAIL("no error");
    } catch (const ConfigError& e) {
      INFO(e.what());
      CHECK(e.pos().file == (dir / "s.toml").string());
      CHECK(e.pos().line == line);
      CHECK(e.key() == c.key);
      CHECK_THAT(e.message(), Catch::Contains(c.message));
    }
  }
}

TEST_CASE("trainsim run on a switch that changes nothing: exit 2, file:line and key, nothing written", "[config][step]") {
  const Case c{"llama3-8b", 8, "dp = 8\nsequence_parallel = true", "plan.sequence_parallel", "needs tp > 1"};
  const auto dir = ts_test::temp_dir("plan-cli");
  ts_test::write_file(dir / "s.toml", text(c));
  const auto r = ts_test::run_trainsim("run '" + (dir / "s.toml").string() + "' --out '" + (dir / "out").string() + "'");
  INFO(r.err);
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::Contains((dir / "s.toml").string() + ":"));
  CHECK_THAT(r.err, Catch::Contains("key 'plan.sequence_parallel'"));
  CHECK_FALSE(std::filesystem::exists(dir / "out"));
}

TEST_CASE("A base-plan switch some phase uses is accepted", "[config][step]") {
  // cp_comm in the base plan of a scenario whose pre-training has cp = 1 but whose context
  // extension runs cp = 4: the key is used, so no error.
  const auto dir = ts_test::temp_dir("plan-phase");
  ts_test::write_file(dir / "s.toml",
                      "name = \"t\"\nmodel = \"" + ts_test::data("models/llama3-8b.toml").string() +
                          "\"\n[cluster]\ngpu = \"h800\"\ngpus = 8\ngpus_per_node = 8\n[plan]\ndp = 8\ncp_comm = \"all_gather\"\n"
                          "[training]\nseq_len = 4096\nglobal_batch = 64\ntokens = 1e9\n"
                          "[[phases]]\nname = \"long\"\nkind = \"context_extension\"\nseq_len = 32768\nglobal_batch = 16\n"
                          "steps = 10\nplan = { dp = 2, cp = 4 }\n");
  CHECK_NOTHROW(load_scenario((dir / "s.toml").string()));
}
