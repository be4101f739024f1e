// Layer-order shape inference for the non-grouped FP8 GEMMs (sim/calibration/README.md, "Shape
// inference"), checked on the committed import of DeepSeek's H800 trace. Expectations are
// computed here from the model's layer_ops, not copied from the importer's output.
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "calibration/kineto.hpp"
#include "calibration/profile.hpp"
#include "config/scenario.hpp"
#include "model/model_math.hpp"
#include "support.hpp"

using namespace trainsim;
using namespace trainsim::calibration;

namespace {
const Op& op_named(const std::vector<Op>& ops, const std::string& name, Pass pass) {
  for (const auto& o : ops)
    if (o.name == name && o.pass == pass && o.cls == OpClass::Gemm) return o;
  FAIL("no op " << name);
  return ops.front();
}
}  // namespace

TEST_CASE("layer-order shapes of the trace's dense FP8 GEMMs") {
  const Profile p = read_profile(ts_test::data("profiles/h800/deepseek-v3-train-fwdbwd-ep64.profile.jsonl").string());
  const ModelConfig mc = load_model(ts_test::data("models/deepseek-v3.toml").string());
  OpContext ctx;
  ctx.micro_batch = 1;
  ctx.seq_len = 4096;
  ctx.gemm_dtype = "fp8";
  std::int64_t moe_layer = 0;
  while (!mc.is_moe_layer(moe_layer)) ++moe_layer;
  const std::vector<Op> ops = layer_ops(mc, moe_layer, ctx);
  const std::vector<Op> via_helper = shape_layer_ops(mc, 4096);
  REQUIRE(via_helper.size() == ops.size());

  // Expected op per position, per range (DeepSeek's execution order; README).
  const std::map<std::string, std::vector<std::pair<std::string, Pass>>> expect = {
      {"attn(F)",
       {{"attn.q_a", Pass::Forward},
        {"attn.kv_a", Pass::Forward},
        {"attn.q_b", Pass::Forward},
        {"attn.kv_b", Pass::Forward},
        {"attn.o", Pass::Forward}}},
      {"attn(B)",
       {{"attn.o", Pass::BackwardInput},
        {"attn.q_b", Pass::Forward},
        {"attn.kv_b", Pass::Forward},
        {"attn.q_b", Pass::BackwardInput},
        {"attn.kv_b", Pass::BackwardInput},
        {"attn.kv_a", Pass::BackwardInput},
        {"attn.q_a", Pass::BackwardInput}}},
      {"attn(W)",
       {{"attn.o", Pass::BackwardWeight},
        {"attn.kv_b", Pass::BackwardWeight},
        {"attn.q_b", Pass::BackwardWeight},
        {"attn.kv_a", Pass::BackwardWeight},
        {"attn.q_a", Pass::BackwardWeight}}},
      {"mlp(F)", {{"moe.shared.up_gate", Pass::Forward}, {"moe.shared.down", Pass::Forward}}},
      {"mlp(B)", {{"moe.shared.down", Pass::BackwardInput}, {"moe.shared.up_gate", Pass::BackwardInput}}},
  };
  // fp8_gemm kernels per annotated range instance, in kernel order. A range instance is told
  // apart by its start time (each range name occurs once per layer).
  std::map<std::pair<std::string, double>, std::vector<const KernelRecord*>> inst;
  for (const auto& k : p.kernels) {
    if (k.op_class != "fp8_gemm" || k.launch_ts_us < 0) continue;
    const Annotation* best = nullptr;
    for (const auto& a : p.annotations)
      if (a.ts_us <= k.launch_ts_us && k.launch_ts_us <= a.ts_us + a.dur_us &&
          (best == nullptr || a.dur_us < best->dur_us))
        best = &a;
    REQUIRE(best != nullptr);
    inst[{best->name, best->ts_us}].push_back(&k);
  }
  std::size_t shaped = 0, per_kind_instances = 0;
  for (const auto& [key, ks] : inst) {
    auto it = expect.find(key.first);
    if (it == expect.end()) {
      // mlp(W): deliberately left unshaped, with the reason in `how`.
      for (const auto* k : ks) {
        CHECK_FALSE(k->shape.known());
        CHECK(k->shape.how.find("not matched") != std::string::npos);
      }
      continue;
    }
    ++per_kind_instances;
    REQUIRE(ks.size() == it->second.size());
    for (std::size_t i = 0; i < ks.size(); ++i) {
      const Op& o = op_named(ops, it->second[i].first, it->second[i].second);
      INFO(key.first << " #" << i << " = " << o.name);
      CHECK(ks[i]->shape.m == o.m);
      CHECK(ks[i]->shape.n == o.n);
      CHECK(ks[i]->shape.k == o.k);
      CHECK(ks[i]->shape.groups == 1);
      CHECK(ks[i]->dtype == "fp8");
      CHECK(ks[i]->shape.how.find("layer-order") == 0);
      ++shaped;
    }
  }
  // Hand count: 4 layers x (5 attn(F) + 7 attn(B) + 5 attn(W) + 2 mlp(F) + 2 mlp(B)) = 84 of the
  // 124 non-grouped FP8 GEMMs; the other 40 are mlp(W)'s 4 x 10.
  CHECK(per_kind_instances == 20);
  CHECK(shaped == 84);
  std::size_t all_fp8 = 0;
  for (const auto& k : p.kernels) all_fp8 += k.op_class == "fp8_gemm" ? 1 : 0;
  CHECK(all_fp8 == 124);
}
