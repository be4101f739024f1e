#include "report/describe.hpp"

#include <fmt/format.h>

#include "core/table.hpp"
#include "core/units.hpp"
#include "report/run_report.hpp"

namespace trainsim {

namespace {

using json = nlohmann::json;
constexpr double kGiB = 1073741824.0;

struct LayerRow {
  std::int64_t first = 0, last = 0;
  std::string kind;
  double params = 0, active = 0, fwd = 0, train = 0, train_full = 0, act_bytes = 0;
};

std::vector<LayerRow> layer_rows(const DescribeInput& in) {
  const auto& m = in.model;
  const ParamCounts pc = count_params(m);
  OpContext ctx;
  ctx.seq_len = in.seq_len;
  const Recompute rc = in.scenario ? in.scenario->plan.recompute : Recompute::None;
  const PrecisionConfig prec = in.scenario ? in.scenario->training.precision : PrecisionConfig{};
  std::vector<LayerRow> rows;
  for (std::int64_t l = 0; l < m.layers; ++l) {
    LayerRow r;
    r.first = r.last = l;
    r.kind = m.is_moe_layer(l) ? "moe" : "dense";
    r.params = pc.layer_total[static_cast<std::size_t>(l)];
    r.active = pc.layer_active[static_cast<std::size_t>(l)];
    const auto ops = layer_ops(m, l, ctx);
    const double T = static_cast<double>(ctx.tokens());
    r.fwd = totals(ops, 1).flops / T;
    const OpTotals all = totals(ops);
    r.train = all.flops / T;
    r.train_full = all.flops_full / T;
    r.act_bytes = activation_bytes_per_token(m, l, rc, prec);
    if (!rows.empty() && rows.back().kind == r.kind && rows.back().params == r.params) {
      rows.back().last = l;
    } else {
      rows.push_back(r);
    }
  }
  return rows;
}

}  // namespace

json describe_json(const DescribeInput& in) {
  const auto& m = in.model;
  const ParamCounts pc = count_params(m);
  const FlopsPerToken f = flops_per_token(m, in.seq_len, false);
  const FlopsPerToken fm = flops_per_token(m, in.seq_len, true);
  json j;
  j["file"] = in.file;
  j["model"] = m.name;
  j["seq_len"] = in.seq_len;
  j["params_total"] = pc.total;
  j["params_active"] = pc.active;
  j["params_mtp"] = pc.mtp_total;
  j["params_mtp_active"] = pc.mtp_active;
  j["params_embedding"] = pc.embedding;
  j["params_head"] = pc.head;
  j["params_attention"] = pc.attention;
  j["params_dense_mlp"] = pc.dense_mlp;
  j["params_moe_routed"] = pc.moe_routed;
  j["params_moe_shared"] = pc.moe_shared;
  j["params_moe_gate"] = pc.moe_gate;
  j["flops_per_token_causal"] = f.train_causal;
  j["flops_per_token_full"] = f.train_full;
  j["flops_per_token_forward_causal"] = f.forward_causal;
  j["flops_per_token_forward_full"] = f.forward_full;
  j["flops_per_token_attention_causal"] = f.attention_train_causal;
  j["flops_per_token_mtp_causal"] = fm.mtp_train_causal;
  j["flops_convention"] =
      "training = forward + backward-for-input + backward-for-weights; GEMM 2MNK; attention causal = half "
      "of the s^2 matrix; main model without MTP (see flops_per_token_mtp_causal)";
  json layers = json::array();
  for (const auto& r : layer_rows(in)) {
    layers.push_back({{"first", r.first},
                      {"last", r.last},
                      {"kind", r.kind},
                      {"params", r.params},
                      {"params_active", r.active},
                      {"flops_per_token_forward_causal", r.fwd},
                      {"flops_per_token_train_causal", r.train},
                      {"flops_per_token_train_full", r.train_full},
                      {"activation_bytes_per_token", r.act_bytes}});
  }
  j["layers"] = layers;
  if (in.scenario) {
    const auto& s = *in.scenario;
    const MemoryReport mr = memory_as_run(s, *calibration::load_cost_model(s.hardware, data_dir()));  // the split the step runs
    j["scenario"] = s.name;
    j["gpu"] = s.hardware.name;
    json per = json::array(), ranks = json::array();
    for (const auto& r : mr.ranks) {
      per.push_back(r.total() / kGiB);
      ranks.push_back({{"rank", r.rank},
                       {"stages", r.stages},
                       {"layers", r.layers},
                       {"embedding", r.has_embedding},
                       {"head", r.has_head},
                       {"mtp", r.has_mtp},
                       {"params", r.params},
                       {"weights_gib", r.weights / kGiB},
                       {"gradients_gib", r.gradients / kGiB},
                       {"optimizer_gib", r.optimizer / kGiB},
                       {"activations_gib", r.activations / kGiB},
                       {"buffers_gib", r.buffers / kGiB},
                       {"inflight_microbatches", r.inflight},
                       {"total_gib", r.total() / kGiB},
                       {"fits", r.total() <= mr.capacity}});
    }
    j["memory_gib_per_stage"] = per;
    j["memory_per_rank"] = ranks;
    j["memory_capacity_gib"] = mr.capacity / kGiB;
    j["memory_peak_gib"] = mr.peak / kGiB;
    j["fits_memory"] = mr.fits;
  }
  return j;
}

std::string describe_text(const DescribeInput& in) {
  const auto& m = in.model;
  const ParamCounts pc = count_params(m);
  const FlopsPerToken f = flops_per_token(m, in.seq_len, false);
  const FlopsPerToken fm = flops_per_token(m, in.seq_len, true);
  std::string out;
  const auto& a = m.attention;
  std::string attn = a.kind == AttentionKind::MLA
                         ? fmt::format("MLA {} heads (q_lora {}, kv_lora {}, qk {}+{}, v {})", a.heads, a.q_lora_rank,
                                       a.kv_lora_rank, a.qk_nope_head_dim, a.qk_rope_head_dim, a.v_head_dim)
                     : a.kind == AttentionKind::GQA
                         ? fmt::format("GQA {} heads / {} kv heads x {}", a.heads, a.kv_heads, a.head_dim)
                         : fmt::format("MHA {} heads x {}", a.heads, a.head_dim);
  out += fmt::format("Model {}  ({})\n", m.name, in.file);
  if (!m.description.empty()) out += fmt::format("  {}\n", m.description);
  const std::int64_t dense_layers = m.moe.enabled ? m.moe.first_dense_layers : m.layers;
  out += fmt::format("  {} layers ({} dense{}), hidden {}, vocab {}, {}\n", m.layers, dense_layers,
                     m.moe.enabled ? fmt::format(" + {} MoE", m.layers - dense_layers) : "", m.hidden, m.vocab, attn);
  if (m.moe.enabled)
    out += fmt::format("  MoE: {} routed + {} shared experts of width {}, top-{}, {} groups / {} per token\n",
                       m.moe.routed_experts, m.moe.shared_experts, m.moe.expert_intermediate, m.moe.top_k,
                       m.moe.expert_groups, m.moe.limited_groups);
  if (m.mtp_depth > 0) out += fmt::format("  multi-token prediction: {} module(s)\n", m.mtp_depth);

  out += "\nParameters\n";
  TextTable pt({"part", "total", "activated/token"}, {false, true, true});
  pt.add_row({"embedding", human_count(pc.embedding), human_count(pc.embedding)});
  pt.add_row({m.tied_embeddings ? "final norm (head tied)" : "output head + final norm", human_count(pc.head),
              human_count(pc.head)});
  pt.add_row({"attention + norms", human_count(pc.attention), human_count(pc.attention)});
  if (pc.dense_mlp > 0) pt.add_row({"dense MLP", human_count(pc.dense_mlp), human_count(pc.dense_mlp)});
  if (m.moe.enabled) {
    const double per_expert = pc.moe_routed / static_cast<double>(m.moe.routed_experts);
    pt.add_row({"routed experts", human_count(pc.moe_routed),
                human_count(per_expert * static_cast<double>(m.moe.top_k))});
    if (pc.moe_shared > 0) pt.add_row({"shared experts", human_count(pc.moe_shared), human_count(pc.moe_shared)});
    pt.add_row({"router", human_count(pc.moe_gate), human_count(pc.moe_gate)});
  }
  pt.add_rule();
  pt.add_row({"model (without MTP)", human_count(pc.total), human_count(pc.active)});
  if (m.mtp_depth > 0) pt.add_row({"MTP modules (extra)", human_count(pc.mtp_total), human_count(pc.mtp_active)});
  out += pt.str();

  out += fmt::format("\nFLOPs per token at sequence length {} (training = forward + backward)\n", in.seq_len);
  TextTable ft({"", "causal attention", "full attention"}, {false, true, true});
  ft.add_row({"forward", fmt::format("{:.1f} GFLOP", f.forward_causal / 1e9), fmt::format("{:.1f} GFLOP", f.forward_full / 1e9)});
  ft.add_row({"training", fmt::format("{:.1f} GFLOP", f.train_causal / 1e9), fmt::format("{:.1f} GFLOP", f.train_full / 1e9)});
  ft.add_row({"  of which attention core", fmt::format("{:.1f} GFLOP", f.attention_train_causal / 1e9),
              fmt::format("{:.1f} GFLOP", (f.train_full - f.train_causal + f.attention_train_causal) / 1e9)});
  if (m.mtp_depth > 0)
    ft.add_row({"MTP modules (extra, training)", fmt::format("{:.1f} GFLOP", fm.mtp_train_causal / 1e9), ""});
  ft.add_row({"6 x activated params (for reference)", fmt::format("{:.1f} GFLOP", 6 * pc.active / 1e9), ""});
  out += ft.str();

  out += "\nPer layer (per token)\n";
  TextTable lt({"layers", "kind", "params", "activated", "fwd GFLOP", "train GFLOP", "saved act."},
               {false, false, true, true, true, true, true});
  for (const auto& r : layer_rows(in)) {
    const std::string span = r.first == r.last ? fmt::format("{}", r.first)
                                               : fmt::format("{}-{} (x{})", r.first, r.last, r.last - r.first + 1);
    lt.add_row({span, r.kind, human_count(r.params), human_count(r.active), fmt::format("{:.3f}", r.fwd / 1e9),
                fmt::format("{:.3f}", r.train / 1e9), fmt::format("{:.1f} KB", r.act_bytes / 1e3)});
  }
  out += lt.str();
  out += "  (saved act. = bytes kept for the backward pass per token";
  out += in.scenario ? " under the scenario's recompute and precision)\n" : ", no recomputation, BF16)\n";

  if (in.scenario) {
    const auto& s = *in.scenario;
    const auto& p = s.plan;
    const MemoryReport mr = memory_as_run(s, *calibration::load_cost_model(s.hardware, data_dir()));  // the split the step runs
    out += fmt::format("\nMemory per GPU: {} x {} ({}), dp {} tp {} pp {} ep {} cp {}, {} schedule, ZeRO-{}, "
                       "micro-batch {} x {} tokens, recompute {}\n",
                       s.cluster.gpus, s.hardware.name, format_quantity(mr.capacity, Dim::Bytes), p.dp, p.tp, p.pp,
                       p.ep, p.cp, p.schedule, p.zero, p.micro_batch, s.training.seq_len,
                       p.recompute == Recompute::None       ? "none"
                       : p.recompute == Recompute::Selective ? "selective"
                       : p.recompute == Recompute::DeepSeek  ? "deepseek"
                                                             : "full");
    TextTable mt({"rank", "stages", "layers", "params", "weights", "grads", "optimizer", "activations", "in flight",
                  "buffers", "total GiB", "fits"},
                 {true, false, true, true, true, true, true, true, true, true, true, false});
    for (const auto& r : mr.ranks) {
      std::string st;
      for (auto x : r.stages) {
        if (!st.empty()) st += ',';
        st += std::to_string(x);
      }
      if (r.has_embedding) st += " +emb";
      if (r.has_head) st += " +head";
      if (r.has_mtp) st += " +mtp";
      const double free = mr.capacity - r.total();
      mt.add_row({std::to_string(r.rank), st, std::to_string(r.layers), human_count(r.params),
                  fmt::format("{:.1f}", r.weights / kGiB), fmt::format("{:.1f}", r.gradients / kGiB),
                  fmt::format("{:.1f}", r.optimizer / kGiB), fmt::format("{:.1f}", r.activations / kGiB),
                  fmt::format("{:.1f}", r.inflight), fmt::format("{:.1f}", r.buffers / kGiB),
                  fmt::format("{:.1f}", r.total() / kGiB),
                  free >= 0 ? fmt::format("yes ({:.1f} free)", free / kGiB)
                            : fmt::format("NO ({:.1f} over)", -free / kGiB)});
    }
    out += mt.str();
    out += fmt::format("  capacity {:.1f} GiB; peak {:.1f} GiB: {}\n", mr.capacity / kGiB, mr.peak / kGiB,
                       mr.fits ? "fits" : "DOES NOT FIT");
    if (!s.assumptions.empty()) {
      out += "\nAssumptions named in the scenario\n";
      for (const auto& [k, v] : s.assumptions) out += fmt::format("  {}: {}\n", k, v);
    }
  }
  return out;
}

}  // namespace trainsim
