#include "report/op_costs.hpp"

#include <fmt/format.h>

#include <map>

#include "calibration/cost_model.hpp"
#include "core/error.hpp"
#include "core/table.hpp"
#include "model/recompute.hpp"
#include "step/caches.hpp"
#include "step/op_lists.hpp"

namespace trainsim {

namespace {

using json = nlohmann::json;

struct CostedOp {
  Op op;
  calibration::OpCost cost;
};

// Consecutive layers with the same ops (shapes, FLOPs, bytes) and recompute mode are one group.
struct Group {
  std::string first, last;
  std::int64_t count = 0;
  Recompute recompute = Recompute::None;
  std::vector<CostedOp> ops;
  double seconds() const {
    double s = 0;
    for (const auto& c : ops) s += c.cost.time.seconds();
    return s;
  }
};

bool same_ops(const std::vector<Op>& a, const std::vector<CostedOp>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const Op& x = a[i];
    const Op& y = b[i].op;
    if (x.name != y.name || x.cls != y.cls || x.pass != y.pass || x.m != y.m || x.n != y.n || x.k != y.k ||
        x.groups != y.groups || x.dtype != y.dtype || x.flops != y.flops || x.bytes != y.bytes)
      return false;
  }
  return true;
}

const char* class_key(const Op& o) {
  if (o.cls == OpClass::Gemm || o.cls == OpClass::GroupedGemm) return o.dtype == "fp8" ? "gemm fp8" : "gemm bf16";
  if (o.cls == OpClass::Attention) return "attention";
  return "memory-bound";
}

struct Costs {
  std::string gpu;
  std::int64_t sms = 0;
  std::int64_t stage = 0, stages = 0;
  std::vector<std::int64_t> split;
  std::vector<Group> groups;
  std::map<std::string, double> by_class;  // seconds per op class over the stage (groups x count)
  double total = 0;
};

Costs compute(const Scenario& sc, std::int64_t stage) {
  const PlanConfig& plan = sc.plan;
  const TrainingConfig& tr = sc.training;
  const auto cost = calibration::load_cost_model(sc.hardware, data_dir());
  const auto setup = step::step_setup(sc, plan, tr, *cost);
  Costs C;
  C.gpu = sc.hardware.name;
  C.sms = sc.hardware.sms;
  C.split = setup->layer_split;
  C.stages = static_cast<std::int64_t>(C.split.size());
  C.stage = stage;
  if (stage < 0 || stage >= C.stages)
    throw UsageError(fmt::format("--stage {}: the plan has {} pipeline stage(s), 0 to {}", stage, C.stages,
                                 C.stages - 1));
  const int sms = static_cast<int>(sc.hardware.sms);
  for (const auto& L : step::stage_ops(sc.model, plan, tr, C.split, stage)) {
    if (!C.groups.empty() && C.groups.back().recompute == L.recompute && C.groups.back().first != "embed" &&
        L.label != "head" && L.label != "embed" && same_ops(L.ops, C.groups.back().ops)) {
      C.groups.back().last = L.label;
      ++C.groups.back().count;
      continue;
    }
    Group g;
    g.first = g.last = L.label;
    g.count = 1;
    g.recompute = L.recompute;
    for (const auto& o : L.ops) g.ops.push_back(CostedOp{o, cost->op_time(o, sms)});
    C.groups.push_back(std::move(g));
  }
  for (const auto& g : C.groups)
    for (const auto& c : g.ops) {
      const double t = c.cost.time.seconds() * static_cast<double>(g.count);
      C.by_class[class_key(c.op)] += t;
      C.total += t;
    }
  return C;
}

std::string group_label(const Group& g) {
  return g.count == 1 ? g.first : fmt::format("{}-{} (x{})", g.first, g.last.substr(1), g.count);
}

std::string shape(const Op& o) {
  if (o.m == 0) return "";
  std::string s = fmt::format("{}x{}x{}", o.m, o.n, o.k);
  if (o.groups > 1) s += fmt::format(" x{}", o.groups);
  return s;
}

// Achieved rate: TFLOP/s for ops with FLOPs, else GB/s.
std::string rate(const CostedOp& c) {
  const double t = c.cost.time.seconds();
  if (t <= 0) return "";
  if (c.op.flops > 0) return fmt::format("{:.0f} TFLOP/s", c.op.flops / t / 1e12);
  if (c.op.bytes > 0) return fmt::format("{:.0f} GB/s", c.op.bytes / t / 1e9);
  return "";
}

}  // namespace

json op_costs_json(const Scenario& sc, std::int64_t stage) {
  const Costs C = compute(sc, stage);
  json j;
  j["gpu"] = C.gpu;
  j["sms"] = C.sms;
  j["stage"] = C.stage;
  j["stages"] = C.stages;
  j["layer_split"] = C.split;
  j["micro_batch"] = sc.plan.micro_batch;
  j["seq_len"] = sc.training.seq_len;
  json groups = json::array();
  for (const auto& g : C.groups) {
    json jg;
    jg["layers"] = group_label(g);
    jg["count"] = g.count;
    jg["recompute"] = recompute_model(g.recompute).name;
    jg["seconds_each"] = g.seconds();
    json ops = json::array();
    for (const auto& c : g.ops) {
      const double t = c.cost.time.seconds();
      ops.push_back({{"name", c.op.name},
                     {"pass", pass_name(c.op.pass)},
                     {"class", op_class_name(c.op.cls)},
                     {"dtype", c.op.dtype},
                     {"m", c.op.m},
                     {"n", c.op.n},
                     {"k", c.op.k},
                     {"groups", c.op.groups},
                     {"flops", c.op.flops},
                     {"bytes", c.op.bytes},
                     {"seconds", t},
                     {"source", calibration::cost_source_name(c.cost.source)},
                     {"basis", c.cost.basis}});
    }
    jg["ops"] = std::move(ops);
    groups.push_back(std::move(jg));
  }
  j["groups"] = std::move(groups);
  j["seconds_by_class"] = C.by_class;
  j["seconds_total"] = C.total;
  return j;
}

std::string op_costs_text(const Scenario& sc, std::int64_t stage) {
  const Costs C = compute(sc, stage);
  std::string out = fmt::format(
      "Op costs: stage {} of {} (layers {}), one micro-batch ({} x {} tokens) on one {} ({} SMs)\n"
      "  each op alone on the whole GPU, as the cost model answers; recomputed forward ops repeat\n"
      "  their forward row; kernel gaps and communication are not included\n",
      C.stage, C.stages, fmt::join(C.split, ","), sc.plan.micro_batch, sc.training.seq_len, C.gpu, C.sms);
  for (const auto& g : C.groups) {
    out += fmt::format("\n{}  recompute {}, {:.3f} ms each\n", group_label(g), recompute_model(g.recompute).name,
                       g.seconds() * 1e3);
    TextTable t({"op", "pass", "class", "dtype", "shape (m x n x k)", "GFLOP", "MB", "us", "rate", "source"},
                {false, false, false, false, false, true, true, true, true, false});
    for (const auto& c : g.ops) {
      const double s = c.cost.time.seconds();
      t.add_row({c.op.name, pass_name(c.op.pass), op_class_name(c.op.cls), c.op.dtype, shape(c.op),
                 c.op.flops > 0 ? fmt::format("{:.2f}", c.op.flops / 1e9) : "",
                 c.op.bytes > 0 ? fmt::format("{:.1f}", c.op.bytes / 1e6) : "", fmt::format("{:.1f}", s * 1e6),
                 rate(c), calibration::cost_source_name(c.cost.source)});
    }
    out += t.str();
  }
  out += "\nStage total per micro-batch, by op class (forward and backward, recompute not counted)\n";
  TextTable t({"class", "ms", "share"}, {false, true, true});
  for (const auto& [k, v] : C.by_class)
    t.add_row({k, fmt::format("{:.3f}", v * 1e3), fmt::format("{:.1f}%", C.total > 0 ? 100 * v / C.total : 0.0)});
  t.add_rule();
  t.add_row({"total", fmt::format("{:.3f}", C.total * 1e3), "100.0%"});
  out += t.str();
  return out;
}

}  // namespace trainsim
