#include "report/chunk_report.hpp"

#include <fmt/format.h>

#include "calibration/calibrate.hpp"
#include "calibration/calibration_file.hpp"
#include "calibration/cost_model.hpp"
#include "calibration/fitted_model.hpp"
#include "calibration/profile.hpp"
#include "calibration/replay.hpp"
#include "core/error.hpp"
#include "core/table.hpp"
#include "model/model_math.hpp"
#include "step/comm_plan.hpp"

namespace trainsim {

namespace {

using i64 = std::int64_t;
double d(i64 v) { return static_cast<double>(v); }
bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

struct GroupDef {
  const char* key;
  const char* label;
};
const GroupDef kCompute[] = {{"dense_gemm", "dense GEMM"},
                             {"grouped_gemm", "grouped GEMM (experts, fwd + input grad)"},
                             {"mlp_wgrad", "MLP weight-gradient GEMMs (experts + shared)"},
                             {"attention", "attention"},
                             {"memory_bound", "memory-bound"}};

// The group of a model op, matching trace_group() of the kernels that run it: the trace's
// mlp(W) range holds the routed experts' and the shared expert's weight-gradient GEMMs.
std::string op_group(const Op& o) {
  if (o.cls == OpClass::Attention) return "attention";
  if (o.cls == OpClass::GroupedGemm) return o.pass == Pass::BackwardWeight ? "mlp_wgrad" : "grouped_gemm";
  if (o.cls == OpClass::Gemm)
    return o.pass == Pass::BackwardWeight && starts_with(o.name, "moe.shared") ? "mlp_wgrad" : "dense_gemm";
  return "memory_bound";
}

// The memory-bound kernels by the trace's class (profiles/classifier.toml), and the model ops'
// memory kinds (cost_model memory_kind()) that run as each: norms as the norm kernels, the FP8
// quantisation as the cast kernels, the token permutes as the permute kernels, everything else
// (activations, RoPE, the router, residual adds, ...) as ATen elementwise kernels.
const GroupDef kMemoryKinds[] = {{"norm", "  norms (RMSNorm forward, backward)"},
                                 {"quant_cast", "  FP8 quantisation and casts"},
                                 {"permute", "  token permutes (dispatch/combine layout)"},
                                 {"elementwise", "  other elementwise (activations, RoPE, router, adds)"}};
std::string trace_memory_class(const std::string& op_class) {
  return op_class == "norm" || op_class == "quant_cast" || op_class == "permute" ? op_class : "elementwise";
}
std::string op_memory_class(const Op& o) {
  const std::string k = calibration::memory_kind(o);
  if (k == "norm" || k == "norm_bwd") return "norm";
  if (k == "cast") return "quant_cast";
  if (k == "permute") return "permute";
  return "elementwise";
}

// DeepSeek-V3 recomputes in the backward pass every RMSNorm and the MLA up-projections
// (§3.2.3) and the SwiGLU outputs from their cached inputs (§3.3.2): these forward ops run again
// in the backward chunk.
bool recomputed(const Op& o) {
  if (o.pass != Pass::Forward) return false;
  if (o.cls == OpClass::Norm) return true;
  for (const char* n : {"attn.q_b", "attn.kv_b", "moe.experts.swiglu", "moe.shared.swiglu"})
    if (o.name == n) return true;
  return false;
}

}  // namespace

ChunkReport build_chunk_report(const Scenario& sc) {
  TS_ASSERT(sc.chunk_pair.has_value(), "a [chunk_pair] scenario");
  ChunkReport r;
  r.scenario = sc.name;
  r.profile = sc.chunk_pair->measured_profile;
  r.source = sc.chunk_pair->source;
  const auto cost = calibration::load_cost_model(sc.hardware, data_dir());
  r.cost_model = cost->describe();
  r.predicted = step::simulate_chunk_pair(sc, static_cast<int>(sc.chunk_pair->moe_layers), *cost);
  // Measured: from the profile's kernel timestamps (the replay's measurement side).
  const calibration::Profile prof = calibration::read_profile(r.profile);
  const auto cal_path = data_dir() / "profiles" / sc.hardware.name / "calibration.toml";
  const calibration::Calibration cal = calibration::read_calibration(cal_path.string());
  const calibration::ReplayResult rep = calibration::replay(prof, cal, sc.model.attention.v_dim());
  r.measured_span_us = rep.measured_span_us;
  r.measured_exposed_comm_us = rep.measured_exposed_comm_us;
  std::int64_t most = -1;
  for (const auto& s : rep.streams) {
    if (s.role == "compute" && s.kernels > most) {
      most = s.kernels;
      r.measured_compute_busy_us = s.measured_busy_us;
    }
  }
  std::map<std::string, i64> kernels;
  for (const auto& k : prof.kernels) {
    const std::string& c = k.op_class;
    if (c.rfind("a2a_", 0) == 0) {
      r.measured_comm_by_class_us[c] += k.dur_us;
      ++kernels[c];
      // The prediction models dispatch and combine; DeepEP's notify/layout kernels (which
      // exchange counts and wait for the other ranks) are reported apart.
      if (c == "a2a_dispatch" || c == "a2a_combine") r.measured_comm_busy_us += k.dur_us;
      continue;
    }
    const std::string g = calibration::trace_group(k);
    if (g.empty()) continue;
    r.measured_by_group_us[g] += k.dur_us;
    ++kernels[g];
    if (g == "memory_bound") {
      const std::string mk = "mb:" + trace_memory_class(c);
      r.measured_by_group_us[mk] += k.dur_us;
      ++kernels[mk];
    }
  }

  // ---- the pair's model ops, as one GPU runs them ----
  const trainsim::Phase& ph = sc.phases.front();
  const PlanConfig& plan = ph.plan;
  const ModelConfig& m = sc.model;
  if (plan.tp != 1 || plan.cp != 1)
    throw UsageError("chunk pair: the per-group comparison models tp = cp = 1 (DeepSeek's profile); the scenario has "
                     "tp " + std::to_string(plan.tp) + ", cp " + std::to_string(plan.cp));
  OpContext oc;
  oc.micro_batch = plan.micro_batch;
  oc.seq_len = ph.training.seq_len;
  oc.gemm_dtype = ph.training.precision.gemm;
  std::vector<Op> ops;
  for (i64 i = 0; i < sc.chunk_pair->moe_layers; ++i) {
    const i64 l = m.moe.first_dense_layers + i;
    for (Op o : layer_ops(m, l, oc)) {
      // Expert parallelism: this GPU holds routed/ep experts and receives as many token-expert
      // rows as it sends (balanced routing), so the rows stay tokens x top_k.
      if (o.cls == OpClass::GroupedGemm) o.groups = std::max<i64>(1, m.moe.routed_experts / plan.ep);
      const bool again = plan.recompute == Recompute::DeepSeek && recomputed(o);
      ops.push_back(o);
      if (again) ops.push_back(o);
    }
  }
  r.compute_sms = static_cast<int>(sc.hardware.sms - plan.comm_sms);
  r.notes.push_back(fmt::format(
      "ops: {} MoE layers x (forward + input-gradient + weight-gradient ops){}, each on {} SMs (the SMs the {} "
      "communication SMs leave, as in the pair's overlap), no inter-kernel gaps",
      sc.chunk_pair->moe_layers,
      plan.recompute == Recompute::DeepSeek ? ", and the recomputed RMSNorms, MLA up-projections and SwiGLUs (DeepSeek-V3 "
                                              "sections 3.2.3, 3.3.2)"
                                            : "",
      r.compute_sms, plan.comm_sms));

  // ---- per group: in-sample and held out ----
  calibration::FittedCostModel insample(cal, sc.hardware, sc.hardware);
  ModelConfig cal_model;
  const calibration::CalibrateInputs base = calibration::inputs_from_command(cal.command, data_dir(), cal_model);
  bool has_profile = false;
  for (const auto& p : base.profile_paths) has_profile = has_profile || p.find(".profile.jsonl") != std::string::npos;
  for (const auto& g : kCompute) {
    ChunkGroup row;
    row.key = g.key;
    row.label = g.label;
    row.measured_us = r.measured_by_group_us.count(g.key) ? r.measured_by_group_us.at(g.key) : 0.0;
    row.kernels = kernels.count(g.key) ? kernels.at(g.key) : 0;
    calibration::CalibrateInputs in = base;
    in.exclude_trace = {g.key};
    const calibration::CalibrateResult held = calibration::calibrate(in);
    const calibration::FittedCostModel heldout(held.cal, sc.hardware, sc.hardware);
    std::map<std::string, ChunkGroup> kinds;
    for (const auto& o : ops) {
      if (op_group(o) != g.key) continue;
      const double pred = heldout.op_time(o, r.compute_sms).time.seconds() * 1e6;
      const double ins = insample.op_time(o, r.compute_sms).time.seconds() * 1e6;
      ++row.ops;
      row.predicted_us += pred;
      row.insample_us += ins;
      if (row.key == "memory_bound") {
        ChunkGroup& x = kinds[op_memory_class(o)];
        ++x.ops;
        x.predicted_us += pred;
        x.insample_us += ins;
      }
    }
    row.basis = has_profile ? fmt::format("calibration refitted without the trace's {} kernels", g.label)
                            : "calibration without a kernel profile";
    if (row.key == "memory_bound")
      for (const auto& mk : kMemoryKinds) {
        ChunkGroup x = kinds[mk.key];
        x.key = mk.key;
        x.label = mk.label;
        const std::string mb = std::string("mb:") + mk.key;
        x.measured_us = r.measured_by_group_us.count(mb) ? r.measured_by_group_us.at(mb) : 0.0;
        x.kernels = kernels.count(mb) ? kernels.at(mb) : 0;
        x.basis = row.basis;
        r.memory_kinds.push_back(std::move(x));
      }
    r.groups.push_back(std::move(row));
  }

  // ---- communication kernels: the network model with the calibrated link efficiencies ----
  {
    // The step's own communication plan (sim/step/comm_plan.hpp): the forward dispatch and the
    // backward's gradient of the combine run DeepEP's dispatch kernel (both FP8), the forward
    // combine and the gradient of the dispatch its combine kernel (both BF16): DeepSeek-V3
    // section 3.3.3. Alone, without pipeline traffic beside them, as in the profiled pair.
    const step::CommPlan plan_comm(sc, plan, ph.training);
    const step::AllToAllTimes t = plan_comm.alltoall(0.0);
    const double L = d(sc.chunk_pair->moe_layers);
    const double disp = L * (t.dispatch_fwd + t.combine_bwd).seconds() * 1e6;
    const double comb = L * (t.combine_fwd + t.dispatch_bwd).seconds() * 1e6;
    const std::string eff = fmt::format("network model, NVLink efficiency {:.4g}, IB efficiency {:.4g} (DeepEP-fitted; "
                                        "not from the trace)",
                                        sc.net.nvlink_efficiency, sc.net.ib_efficiency);
    for (const auto& [key, label, pred] :
         std::vector<std::tuple<std::string, std::string, double>>{{"a2a_dispatch", "DeepEP dispatch kernels", disp},
                                                                    {"a2a_combine", "DeepEP combine kernels", comb}}) {
      ChunkGroup row;
      row.key = key;
      row.label = label;
      row.measured_us = r.measured_comm_by_class_us.count(key) ? r.measured_comm_by_class_us.at(key) : 0.0;
      row.kernels = kernels.count(key) ? kernels.at(key) : 0;
      row.predicted_us = row.insample_us = pred;
      row.ops = static_cast<i64>(2 * L);
      row.basis = eff;
      r.groups.push_back(std::move(row));
    }
    if (r.measured_comm_by_class_us.count("a2a_notify")) {
      ChunkGroup row;
      row.key = "a2a_notify";
      row.label = "DeepEP notify/layout kernels";
      row.measured_us = r.measured_comm_by_class_us.at("a2a_notify");
      row.kernels = kernels.count("a2a_notify") ? kernels.at("a2a_notify") : 0;
      row.modelled = false;
      row.basis = "not modelled: they exchange token counts and wait for the other ranks, so their time is the skew "
                  "between ranks, which a symmetric, balanced simulation has none of";
      r.groups.push_back(std::move(row));
    }
  }
  return r;
}

std::string chunk_text(const ChunkReport& r) {
  const auto& p = r.predicted;
  std::string out = fmt::format("trainsim run: {} — one DualPipe forward+backward chunk pair\n", r.scenario);
  out += fmt::format("  measured: {}\n  ({})\n  predicted from the model math, {} and the network model;\n"
                     "  the profile's kernel durations are not used by the prediction.\n\n",
                     r.profile, r.source, r.cost_model);
  TextTable t({"", "measured", "predicted", "gap"}, {false, true, true, true});
  auto row = [&](const char* what, double meas_us, double pred_us) {
    t.add_row({what, fmt::format("{:.1f} ms", meas_us / 1e3), fmt::format("{:.1f} ms", pred_us / 1e3),
               meas_us > 0 ? fmt::format("{:+.1f}%", (pred_us - meas_us) / meas_us * 100) : "-"});
  };
  row("GPU span of the pair", r.measured_span_us, p.span_s * 1e6);
  row("compute stream busy", r.measured_compute_busy_us, p.compute_busy_s * 1e6);
  row("dispatch + combine kernels", r.measured_comm_busy_us, p.comm_busy_s * 1e6);
  row("exposed communication", r.measured_exposed_comm_us, p.exposed_comm_s * 1e6);
  out += t.str();
  out += fmt::format("  compute busy: measured {:.0f}% of the span, predicted {:.0f}%\n",
                     100 * r.measured_compute_busy_us / r.measured_span_us, 100 * p.compute_busy_s / p.span_s);
  out += fmt::format("  communication hidden: measured {:.0f}%, predicted {:.0f}%\n",
                     100 * (1 - r.measured_exposed_comm_us / r.measured_comm_busy_us),
                     100 * (1 - p.exposed_comm_s / p.comm_busy_s));
  out += "\nKernel time by group (measured: the trace's kernels on all streams; predicted: the same ops, each\n"
         "group costed by a calibration refitted without that group's trace kernels; in-sample: the committed\n"
         "calibration, for reference)\n";
  TextTable g({"group", "kernels", "ops", "measured", "predicted", "gap", "in-sample"},
              {false, true, true, true, true, true, true});
  for (const auto& x : r.groups) {
    if (!x.modelled) {
      g.add_row({x.label, std::to_string(x.kernels), "-", fmt::format("{:.1f} ms", x.measured_us / 1e3), "not modelled", "-",
                 "-"});
      continue;
    }
    const auto add = [&](const ChunkGroup& y) {
      g.add_row({y.label, std::to_string(y.kernels), std::to_string(y.ops), fmt::format("{:.1f} ms", y.measured_us / 1e3),
                 fmt::format("{:.1f} ms", y.predicted_us / 1e3),
                 y.measured_us > 0 ? fmt::format("{:+.1f}%", y.error_pct()) : "-",
                 fmt::format("{:.1f} ms", y.insample_us / 1e3)});
    };
    add(x);
    if (x.key == "memory_bound")
      for (const auto& y : r.memory_kinds) add(y);
  }
  out += g.str();
  for (const auto& n : r.notes) out += "  " + n + "\n";
  for (const auto& x : r.groups)
    if (!x.modelled) out += fmt::format("  {}: {}\n", x.label, x.basis);
  out += fmt::format("  per layer: dispatch {:.0f} us, combine {:.0f} us (forward); compute alone: forward {:.1f} ms, "
                     "backward {:.1f} ms\n",
                     p.dispatch_s * 1e6, p.combine_s * 1e6, p.forward_compute_s * 1e3, p.backward_compute_s * 1e3);
  return out;
}

nlohmann::json chunk_json(const ChunkReport& r) {
  const auto& p = r.predicted;
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : r.groups)
    groups.push_back({{"group", g.key},
                      {"label", g.label},
                      {"kernels", g.kernels},
                      {"ops", g.ops},
                      {"measured_us", g.measured_us},
                      {"predicted_us", g.modelled ? nlohmann::json(g.predicted_us) : nlohmann::json(nullptr)},
                      {"insample_us", g.modelled ? nlohmann::json(g.insample_us) : nlohmann::json(nullptr)},
                      {"error_pct", g.modelled ? nlohmann::json(g.error_pct()) : nlohmann::json(nullptr)},
                      {"modelled", g.modelled},
                      {"basis", g.basis}});
  nlohmann::json kinds = nlohmann::json::array();
  for (const auto& g : r.memory_kinds)
    kinds.push_back({{"kind", g.key},
                     {"kernels", g.kernels},
                     {"ops", g.ops},
                     {"measured_us", g.measured_us},
                     {"predicted_us", g.predicted_us},
                     {"insample_us", g.insample_us},
                     {"error_pct", g.measured_us > 0 ? nlohmann::json(g.error_pct()) : nlohmann::json(nullptr)}});
  return {{"scenario", r.scenario},
          {"measured_profile", r.profile},
          {"measured_span_us", r.measured_span_us},
          {"predicted_span_us", p.span_s * 1e6},
          {"span_error_pct", r.span_error_pct()},
          {"measured_compute_busy_us", r.measured_compute_busy_us},
          {"predicted_compute_busy_us", p.compute_busy_s * 1e6},
          {"measured_comm_busy_us", r.measured_comm_busy_us},
          {"predicted_comm_busy_us", p.comm_busy_s * 1e6},
          {"measured_exposed_comm_us", r.measured_exposed_comm_us},
          {"predicted_exposed_comm_us", p.exposed_comm_s * 1e6},
          {"dispatch_us", p.dispatch_s * 1e6},
          {"combine_us", p.combine_s * 1e6},
          {"group_compute_sms", r.compute_sms},
          {"groups", groups},
          {"memory_bound_kinds", kinds},
          {"notes", r.notes}};
}

}  // namespace trainsim
