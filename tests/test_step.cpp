// The training-step simulator against hand calculations, with a synthetic cost model whose
// every answer the test can compute itself.
#include <catch2/catch.hpp>

#include "calibration/cost_model.hpp"
#include "config/scenario.hpp"
#include "model/model_math.hpp"
#include "step/step.hpp"
#include "linear_cost.hpp"
#include "support.hpp"

using namespace trainsim;

namespace {

using ts_test::LinearCost;

double op_seconds(const Op& o) { return o.flops / 1e15 + o.bytes / 1e12; }

Scenario scenario(const std::string& tag, const std::string& model, int gpus, const std::string& plan,
                  const std::string& training) {
  const auto dir = ts_test::temp_dir(tag);
  ts_test::write_file(dir / "s.toml",
                      "name = \"t\"\nmodel = \"" + ts_test::data("models/" + model + ".toml").string() +
                          "\"\n[cluster]\ngpu = \"h800\"\ngpus = " + std::to_string(gpus) +
                          "\ngpus_per_node = 8\n[plan]\n" + plan + "\n[training]\n" + training + "\n");
  return load_scenario((dir / "s.toml").string());
}

}  // namespace

TEST_CASE("Without a pipeline a step is M x (F + B) plus DP communication and the optimizer", "[step]") {
  // Llama 3 8B, dp 8 on one node, pp 1: every micro-batch runs F then B on the one rank.
  const Scenario sc = scenario("pp1", "llama3-8b", 8, "dp = 8\nzero = 1\nschedule = \"1f1b\"",
                               "seq_len = 4096\nglobal_batch = 32\ntokens = 1e9");
  const LinearCost cost(132);
  const auto r = step::simulate_step(sc, 0, 32, cost);
  // Hand sum of the ops of the whole model for one 4096-token micro-batch.
  OpContext oc;
  oc.seq_len = 4096;
  double f = 0, b = 0;
  auto add = [&](const std::vector<Op>& ops) {
    for (const auto& o : ops) (o.pass == Pass::Forward ? f : b) += op_seconds(o);
  };
  add(embedding_ops(sc.model, oc));
  for (int l = 0; l < 32; ++l) add(layer_ops(sc.model, l, oc));
  add(head_ops(sc.model, oc));
  const double M = 32.0 / 8;
  REQUIRE(r.microbatches == 4);
  CHECK(r.pipeline_s == Approx(M * (f + b)).epsilon(1e-6));
  CHECK(r.breakdown.schedule_bubble_s == Approx(0).margin(1e-9));
  CHECK(r.step_s == Approx(r.pipeline_s + r.dp_reduce_scatter_s + r.dp_all_gather_s + r.breakdown.optimizer_s));
  CHECK(r.dp_reduce_scatter_s > 0);
  // MFU by its definition: model FLOPs of the step over GPU-seconds at the BF16 peak.
  const double flops = flops_per_token(sc.model, 4096, true).train_causal * 32 * 4096;
  CHECK(r.mfu_causal == Approx(flops / (r.step_s * 8 * 989e12)).epsilon(1e-9));
  CHECK(r.tokens_per_s_per_gpu == Approx(32.0 * 4096 / r.step_s / 8).epsilon(1e-12));
}

TEST_CASE("GPipe over uniform stages: (M + P - 1)(F + B) + 2(P - 1) p2p", "[step]") {
  // GPT-3-shaped stages are uniform only without embedding and head, so compare each stage's
  // F and B with its own hand sum instead and check the pipeline closed form on the largest.
  const Scenario sc = scenario("gpipe", "llama3-8b", 32, "dp = 8\npp = 4\nzero = 1\nschedule = \"gpipe\"\nlayer_split = \"even\"",
                               "seq_len = 4096\nglobal_batch = 64\ntokens = 1e9");
  const LinearCost cost(132);
  const auto r = step::simulate_step(sc, 0, 64, cost);
  OpContext oc;
  oc.seq_len = 4096;
  for (int s = 0; s < 4; ++s) {
    double f = 0, b = 0;
    auto add = [&](const std::vector<Op>& ops) {
      for (const auto& o : ops) (o.pass == Pass::Forward ? f : b) += op_seconds(o);
    };
    if (s == 0) add(embedding_ops(sc.model, oc));
    for (int l = 8 * s; l < 8 * s + 8; ++l) add(layer_ops(sc.model, l, oc));
    if (s == 3) add(head_ops(sc.model, oc));
    INFO("stage " << s);
    CHECK(r.stages[static_cast<std::size_t>(s)].f.seconds() == Approx(f).epsilon(1e-6));
    CHECK(r.stages[static_cast<std::size_t>(s)].b.seconds() == Approx(b).epsilon(1e-6));
  }
  // With unequal stages GPipe's makespan is bounded below by the slowest stage's work plus the
  // fill and drain of the others: M x (F+B) of the slowest stage.
  double worst = 0;
  for (const auto& st : r.stages) worst = std::max(worst, (st.f + st.b).seconds());
  CHECK(r.pipeline_s >= 8 * worst);
}

TEST_CASE("DualPipe overlaps the all-to-all that 1F1B exposes", "[step]") {
  // DeepSeek-V2-Lite, 64 GPUs: pp 4, dp 16, ep 16 (two nodes per EP group).
  const std::string plan = "dp = 16\npp = 4\nep = 16\nzero = 1\ncomm_sms = 20\nlayer_split = [6, 7, 7, 7]\nschedule = ";
  const std::string tr = "seq_len = 4096\nglobal_batch = 256\ntokens = 1e9";
  const LinearCost cost(132);
  const auto one = step::simulate_step(scenario("a2a1", "deepseek-v2-lite", 64, plan + "\"1f1b\"", tr), 0, 256, cost);
  const auto dual = step::simulate_step(scenario("a2a2", "deepseek-v2-lite", 64, plan + "\"dualpipe\"", tr), 0, 256, cost);
  REQUIRE(one.a2a_dispatch_s > 0);
  // 1F1B runs each chunk's phases back to back: its all-to-all is fully exposed. Per micro-batch
  // and MoE layer: dispatch + combine forward, their gradients backward.
  CHECK(one.breakdown.exposed_ep_s > 0);
  CHECK(dual.breakdown.exposed_ep_s < one.breakdown.exposed_ep_s);
  // An F&B pair never takes longer than running its two chunks one after the other on all SMs
  // scaled to the SMs left, and never less than either stream's busy time.
  for (const auto& st : dual.stages) {
    CHECK(st.f_comm > Time::zero());
    CHECK(st.b_comm > Time::zero());
  }
}

TEST_CASE("Same scenario, same step, same numbers", "[step]") {
  const LinearCost cost(132);
  const Scenario sc = scenario("det", "llama3-8b", 32, "dp = 8\npp = 4\nzero = 1",
                               "seq_len = 4096\nglobal_batch = 64\ntokens = 1e9");
  const auto a = step::simulate_step(sc, 0, 64, cost);
  const auto b = step::simulate_step(sc, 0, 64, cost);
  CHECK(a.step_s == b.step_s);
  CHECK(a.breakdown.exposed_ep_s == b.breakdown.exposed_ep_s);
}
