#include "plan/space.hpp"

#include <algorithm>
#include <functional>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/limits.hpp"
#include "schedule/schedule_rules.hpp"

namespace trainsim::plan {

namespace {

using i64 = std::int64_t;

// How a phase's own plan key is carried from the scenario's phase plan onto a candidate's.
using Copy = void (*)(PlanConfig& dst, const PlanConfig& src);
const std::map<std::string, Copy>& carried_keys() {
  static const std::map<std::string, Copy> keys = {
      {"dp", [](PlanConfig& d, const PlanConfig& s) { d.dp = s.dp; }},
      {"tp", [](PlanConfig& d, const PlanConfig& s) { d.tp = s.tp; }},
      {"pp", [](PlanConfig& d, const PlanConfig& s) { d.pp = s.pp; }},
      {"ep", [](PlanConfig& d, const PlanConfig& s) { d.ep = s.ep; }},
      {"cp", [](PlanConfig& d, const PlanConfig& s) { d.cp = s.cp; }},
      {"vpp", [](PlanConfig& d, const PlanConfig& s) { d.vpp = s.vpp; }},
      {"zero", [](PlanConfig& d, const PlanConfig& s) { d.zero = s.zero; }},
      {"schedule", [](PlanConfig& d, const PlanConfig& s) { d.schedule = s.schedule; }},
      {"micro_batch", [](PlanConfig& d, const PlanConfig& s) { d.micro_batch = s.micro_batch; }},
      {"recompute", [](PlanConfig& d, const PlanConfig& s) { d.recompute = s.recompute; }},
      {"comm_sms", [](PlanConfig& d, const PlanConfig& s) { d.comm_sms = s.comm_sms; }},
      {"recompute_num_layers", [](PlanConfig& d, const PlanConfig& s) { d.recompute_num_layers = s.recompute_num_layers; }},
      {"layer_split",
       [](PlanConfig& d, const PlanConfig& s) {
         d.layer_split = s.layer_split;
         d.split_rule = s.split_rule;
       }},
      {"comm_buffers", [](PlanConfig& d, const PlanConfig& s) { d.comm_buffers = s.comm_buffers; }},
      {"sequence_parallel", [](PlanConfig& d, const PlanConfig& s) { d.sequence_parallel = s.sequence_parallel; }},
      {"tp_comm_overlap", [](PlanConfig& d, const PlanConfig& s) { d.tp_comm_overlap = s.tp_comm_overlap; }},
      {"ep_comm_overlap", [](PlanConfig& d, const PlanConfig& s) { d.ep_comm_overlap = s.ep_comm_overlap; }},
      {"shared_expert_overlap", [](PlanConfig& d, const PlanConfig& s) { d.shared_expert_overlap = s.shared_expert_overlap; }},
      {"overlap_grad_reduce", [](PlanConfig& d, const PlanConfig& s) { d.overlap_grad_reduce = s.overlap_grad_reduce; }},
      {"overlap_param_gather", [](PlanConfig& d, const PlanConfig& s) { d.overlap_param_gather = s.overlap_param_gather; }},
      {"dp_bucket_params", [](PlanConfig& d, const PlanConfig& s) { d.dp_bucket_params = s.dp_bucket_params; }},
      {"grad_buckets", [](PlanConfig& d, const PlanConfig& s) { d.grad_buckets = s.grad_buckets; }},
      {"ep_dispatcher", [](PlanConfig& d, const PlanConfig& s) { d.ep_dispatcher = s.ep_dispatcher; }},
      {"cp_comm", [](PlanConfig& d, const PlanConfig& s) { d.cp_comm = s.cp_comm; }},
  };
  return keys;
}

std::string toml_string(const std::string& s) { return "\"" + s + "\""; }
const char* boolean(bool b) { return b ? "true" : "false"; }

std::string split_text(const PlanConfig& p) {
  if (p.layer_split.empty()) return toml_string(p.split_rule);
  std::string s = "[";
  for (std::size_t i = 0; i < p.layer_split.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", p.layer_split[i]);
  return s + "]";
}

bool in(std::int64_t v, const PlanKeyRange& r) { return v >= r.lo && v <= r.hi; }

}  // namespace

std::vector<i64> divisors(i64 n) {
  std::vector<i64> lo, hi;
  for (i64 d = 1; d * d <= n; ++d)
    if (n % d == 0) {
      lo.push_back(d);
      if (d != n / d) hi.push_back(n / d);
    }
  lo.insert(lo.end(), hi.rbegin(), hi.rend());
  return lo;
}

int Knobs::code() const {
  int c = static_cast<int>(recompute) * 4 + zero;
  int bits = (sequence_parallel ? 1 : 0) | (tp_comm_overlap ? 2 : 0) | (ep_comm_overlap ? 4 : 0) |
             (shared_expert_overlap ? 8 : 0) | (overlap_grad_reduce ? 16 : 0) | (overlap_param_gather ? 32 : 0);
  return c * 64 + bits;
}

Knobs Knobs::from_code(int code) {
  Knobs k;
  const int bits = code % 64, c = code / 64;
  k.recompute = static_cast<Recompute>(c / 4);
  k.zero = c % 4;
  k.sequence_parallel = bits & 1;
  k.tp_comm_overlap = bits & 2;
  k.ep_comm_overlap = bits & 4;
  k.shared_expert_overlap = bits & 8;
  k.overlap_grad_reduce = bits & 16;
  k.overlap_param_gather = bits & 32;
  return k;
}

Space::Space(const Scenario& base, i64 gpus, bool gpus_key) : sc_(base), gpus_(gpus) {
  sc_.cluster.gpus = gpus;
  schedules_ = schedule::known_schedules();
  const std::size_t n = sc_.phases.size();
  own_keys_.resize(n);
  derive_dp_.assign(n, false);
  cp_comm_written_.assign(n, false);
  for (std::size_t i = 0; i < n; ++i) {
    // Phase 0 is the plan being searched: keys set for it alone (--set phases.0.plan.*) are
    // searched like the rest, not kept.
    if (i > 0) own_keys_[i] = phase_own_plan_keys(base, i);
    for (const auto& k : own_keys_[i]) {
      if (!carried_keys().count(k))
        throw UsageError(fmt::format("plan: phase '{}' sets plan key '{}', which the search cannot carry over to other plans",
                                     sc_.phases[i].training.name, k));
      if (k == "dp" || k == "tp" || k == "pp" || k == "cp") derive_dp_[i] = true;
    }
    cp_comm_written_[i] = phase_plan_writes(base, i, "cp_comm");
    std::uint16_t bits = 0;
    const char* knob_keys[] = {"recompute", "zero", "sequence_parallel", "tp_comm_overlap", "ep_comm_overlap",
                               "shared_expert_overlap", "overlap_grad_reduce", "overlap_param_gather"};
    for (int b = 0; b < 8; ++b)
      if (std::find(own_keys_[i].begin(), own_keys_[i].end(), knob_keys[b]) != own_keys_[i].end())
        bits = static_cast<std::uint16_t>(bits | (1u << b));
    knob_own_.push_back(bits);
  }
  keys_ = {"plan.dp", "plan.tp", "plan.pp", "plan.ep", "plan.cp", "plan.vpp", "plan.micro_batch", "plan.schedule",
           "plan.recompute", "plan.zero", "plan.sequence_parallel", "plan.tp_comm_overlap", "plan.ep_comm_overlap",
           "plan.shared_expert_overlap", "plan.overlap_grad_reduce", "plan.overlap_param_gather", "plan.layer_split"};
  for (std::size_t i = 1; i < n; ++i)
    if (derive_dp_[i]) keys_.push_back(fmt::format("phases.{}.plan.dp", i));
  if (gpus_key || gpus_ != base.cluster.gpus) keys_.push_back("cluster.gpus");
}

void Space::apply(const Candidate& c, PlanConfig& p) const {
  p = sc_.plan;
  if (c.published) return;
  const Layout& l = c.layout;
  p.dp = l.dp;
  p.tp = l.tp;
  p.pp = l.pp;
  p.cp = l.cp;
  p.ep = l.ep;
  p.vpp = l.vpp;
  p.micro_batch = l.micro_batch;
  p.schedule = schedules_[static_cast<std::size_t>(l.schedule)];
  const Knobs& k = c.knobs;
  p.recompute = k.recompute;
  p.zero = k.zero;
  p.sequence_parallel = k.sequence_parallel;
  p.tp_comm_overlap = k.tp_comm_overlap;
  p.ep_comm_overlap = k.ep_comm_overlap;
  p.shared_expert_overlap = k.shared_expert_overlap;
  p.overlap_grad_reduce = k.overlap_grad_reduce;
  p.overlap_param_gather = k.overlap_param_gather;
  p.layer_split.clear();
  p.split_rule = "balanced";
}

Knobs Space::phase_knobs(std::size_t phase, const Knobs& k) const {
  const std::uint16_t bits = knob_own_[phase];
  if (bits == 0) return k;
  const PlanConfig& own = sc_.phases[phase].plan;
  Knobs out = k;
  if (bits & 1) out.recompute = own.recompute;
  if (bits & 2) out.zero = static_cast<int>(own.zero);
  if (bits & 4) out.sequence_parallel = own.sequence_parallel;
  if (bits & 8) out.tp_comm_overlap = own.tp_comm_overlap;
  if (bits & 16) out.ep_comm_overlap = own.ep_comm_overlap;
  if (bits & 32) out.shared_expert_overlap = own.shared_expert_overlap;
  if (bits & 64) out.overlap_grad_reduce = own.overlap_grad_reduce;
  if (bits & 128) out.overlap_param_gather = own.overlap_param_gather;
  return out;
}

PlanConfig Space::main_plan(const Candidate& c) const {
  PlanConfig p;
  apply(c, p);
  return p;
}

bool Space::phase_plan(const Candidate& c, std::size_t phase, PlanConfig& out) const {
  TS_ASSERT(phase < sc_.phases.size(), "phase_plan: no such phase");
  if (c.published) {
    out = sc_.phases[phase].plan;
    return true;
  }
  apply(c, out);
  if (phase == 0) return true;
  const PlanConfig& own = sc_.phases[phase].plan;
  for (const auto& k : own_keys_[phase]) carried_keys().at(k)(out, own);
  if (derive_dp_[phase]) {
    const i64 rest = out.tp * out.pp * out.cp;
    if (rest <= 0 || gpus_ % rest != 0) return false;
    out.dp = gpus_ / rest;
  }
  return true;
}

Candidate Space::published() const {
  Candidate c;
  c.published = true;
  const PlanConfig& p = sc_.plan;
  c.layout = Layout{static_cast<std::int32_t>(p.dp), static_cast<std::int32_t>(p.tp), static_cast<std::int32_t>(p.pp),
                    static_cast<std::int32_t>(p.cp), static_cast<std::int32_t>(p.ep), static_cast<std::int32_t>(p.vpp),
                    static_cast<std::int32_t>(p.micro_batch), 0};
  const auto it = std::find(schedules_.begin(), schedules_.end(), p.schedule);
  c.layout.schedule = static_cast<std::int32_t>(it - schedules_.begin());
  c.knobs.recompute = p.recompute;
  c.knobs.zero = static_cast<int>(p.zero);
  c.knobs.sequence_parallel = p.sequence_parallel;
  c.knobs.tp_comm_overlap = p.tp_comm_overlap;
  c.knobs.ep_comm_overlap = p.ep_comm_overlap;
  c.knobs.shared_expert_overlap = p.shared_expert_overlap;
  c.knobs.overlap_grad_reduce = p.overlap_grad_reduce;
  c.knobs.overlap_param_gather = p.overlap_param_gather;
  return c;
}

std::vector<std::string> Space::overrides(const Candidate& c) const {
  const PlanConfig p = main_plan(c);
  std::vector<std::string> out = {
      fmt::format("plan.dp={}", p.dp),
      fmt::format("plan.tp={}", p.tp),
      fmt::format("plan.pp={}", p.pp),
      fmt::format("plan.ep={}", p.ep),
      fmt::format("plan.cp={}", p.cp),
      fmt::format("plan.vpp={}", p.vpp),
      fmt::format("plan.micro_batch={}", p.micro_batch),
      "plan.schedule=" + toml_string(p.schedule),
      std::string("plan.recompute=") + toml_string(recompute_name(p.recompute)),
      fmt::format("plan.zero={}", p.zero),
      std::string("plan.sequence_parallel=") + boolean(p.sequence_parallel),
      std::string("plan.tp_comm_overlap=") + boolean(p.tp_comm_overlap),
      std::string("plan.ep_comm_overlap=") + boolean(p.ep_comm_overlap),
      std::string("plan.shared_expert_overlap=") + boolean(p.shared_expert_overlap),
      std::string("plan.overlap_grad_reduce=") + boolean(p.overlap_grad_reduce),
      std::string("plan.overlap_param_gather=") + boolean(p.overlap_param_gather),
      "plan.layer_split=" + split_text(p),
  };
  for (std::size_t i = 1; i < sc_.phases.size(); ++i)
    if (derive_dp_[i]) {
      PlanConfig q;
      const bool ok = phase_plan(c, i, q);
      TS_ASSERT(ok, "overrides of a candidate whose phase cannot fill the GPUs");
      out.push_back(fmt::format("phases.{}.plan.dp={}", i, q.dp));
    }
  if (std::find(keys_.begin(), keys_.end(), "cluster.gpus") != keys_.end()) out.push_back(fmt::format("cluster.gpus={}", gpus_));
  return out;
}

std::optional<std::pair<std::string, PlanProblem>> Space::problem(const Candidate& c) const {
  const std::size_t n = sc_.phases.size();
  std::vector<PlanConfig> plans(n);
  for (std::size_t i = 0; i < n; ++i)
    if (!phase_plan(c, i, plans[i]))
      return std::make_pair(sc_.phases[i].key,
                            PlanProblem{false, "dp", fmt::format("the phase's own plan cannot fill {} GPUs", gpus_)});
  std::vector<const PlanConfig*> ptrs;
  for (const auto& p : plans) ptrs.push_back(&p);
  const PlanRuleContext ctx{sc_.model, sc_.hardware, sc_.cluster};
  for (std::size_t i = 0; i < n; ++i)
    if (auto pr = plan_key_problem(plans[i])) return std::make_pair(sc_.phases[i].key, *pr);
  for (std::size_t i = 0; i < n; ++i)
    if (auto pr = phase_plan_problem(ctx, plans[i], sc_.phases[i].training, ptrs, cp_comm_written_[i]))
      return std::make_pair(sc_.phases[i].key, *pr);
  return std::nullopt;
}

std::vector<std::pair<std::int32_t, std::int32_t>> Space::tp_pp_pairs() const {
  std::vector<std::pair<std::int32_t, std::int32_t>> out;
  for (i64 tp : divisors(gpus_)) {
    if (!in(tp, kPlanTpRange)) continue;
    for (i64 pp : divisors(gpus_ / tp))
      if (in(pp, kPlanPpRange)) out.emplace_back(static_cast<std::int32_t>(tp), static_cast<std::int32_t>(pp));
  }
  return out;
}

std::uint64_t Space::proposals(std::int32_t tp, std::int32_t pp) const {
  const ModelConfig& m = sc_.model;
  const std::uint64_t eps = m.moe.enabled ? divisors(m.moe.routed_experts).size() : 1;
  const std::uint64_t mbs = divisors(sc_.phases.front().training.global_batch).size();
  std::uint64_t scheds = 0;
  for (const auto& s : schedules_)
    scheds += s == "interleaved" ? static_cast<std::uint64_t>(std::min<i64>(kPlanVppRange.hi, std::max<i64>(1, m.layers / pp))) : 1;
  const std::uint64_t cps = divisors(gpus_ / (i64{tp} * pp)).size();
  return eps * mbs * scheds * cps;  // each factor is small: no overflow
}

std::uint64_t Space::proposals() const {
  std::uint64_t total = 0;
  const std::uint64_t cap = ~std::uint64_t{0};
  for (const auto& [tp, pp] : tp_pp_pairs()) {
    const std::uint64_t n = proposals(tp, pp);
    total = total > cap - n ? cap : total + n;
  }
  return total;
}

std::vector<Layout> Space::layouts(std::int32_t tp, std::int32_t pp, std::vector<Rejection>& rejected,
                                   std::size_t& refused) const {
  std::vector<Layout> out;
  const ModelConfig& m = sc_.model;
  const i64 rest = gpus_ / (i64{tp} * pp);
  const std::vector<i64> eps = m.moe.enabled ? divisors(m.moe.routed_experts) : std::vector<i64>{1};
  const TrainingConfig& main = sc_.phases.front().training;
  const std::vector<i64> mbs = divisors(main.global_batch);
  const std::vector<i64> cps = divisors(rest);
  const std::size_t n = sc_.phases.size();
  std::vector<PlanConfig> plans(n);
  const PlanRuleContext ctx{sc_.model, sc_.hardware, sc_.cluster};
  auto reject = [&](std::size_t phase, const PlanProblem& pr) {
    ++refused;
    const std::string key = (pr.training ? sc_.phases[phase].training_prefix : sc_.phases[phase].plan_prefix) + "." + pr.key;
    for (auto& r : rejected)
      if (r.phase == sc_.phases[phase].key && r.key == key) {
        ++r.count;
        return;
      }
    rejected.push_back(Rejection{sc_.phases[phase].key, key, 1, pr.message});
  };
  for (i64 ep : eps) {
    if (!in(ep, kPlanEpRange)) continue;
    for (i64 mb : mbs) {
      if (!in(mb, kPlanMicroBatchRange)) continue;
      for (std::size_t s = 0; s < schedules_.size(); ++s) {
        const bool interleaved = schedules_[s] == "interleaved";
        const i64 max_vpp = interleaved ? std::min<i64>(kPlanVppRange.hi, std::max<i64>(1, m.layers / pp)) : 1;
        for (i64 vpp = 1; vpp <= max_vpp; ++vpp)
          for (i64 cp : cps) {
            const i64 dp = rest / cp;
            if (!in(cp, kPlanCpRange) || !in(dp, kPlanDpRange)) continue;
            // The generator proposes only micro-batch sizes with dp*micro_batch dividing the main
            // phase's batch; the rules check everything else (and this again).
            if (main.global_batch % (dp * mb) != 0) continue;
            Candidate c;
            c.layout = Layout{static_cast<std::int32_t>(dp), tp, pp, static_cast<std::int32_t>(cp), static_cast<std::int32_t>(ep),
                              static_cast<std::int32_t>(vpp), static_cast<std::int32_t>(mb), static_cast<std::int32_t>(s)};
            bool ok = true;
            for (std::size_t i = 0; i < n && ok; ++i) {
              if (!phase_plan(c, i, plans[i])) {
                reject(i, PlanProblem{false, "dp", fmt::format("the phase's own plan cannot fill {} GPUs", gpus_)});
                ok = false;
              } else if (auto pr = phase_layout_problem(ctx, plans[i], sc_.phases[i].training)) {
                reject(i, *pr);
                ok = false;
              }
            }
            if (ok) out.push_back(c.layout);
          }
      }
    }
  }
  return out;
}

std::string Space::switch_context(const Layout& l) const {
  // Per phase one byte: tp > 1, ep > 1, dp*cp*copies = 1, cp = 1, vpp > 1, the schedule's index.
  Candidate c;
  c.layout = l;
  std::string key;
  for (std::size_t i = 0; i < sc_.phases.size(); ++i) {
    PlanConfig p;
    if (!phase_plan(c, i, p)) return "-";
    const auto it = std::find(schedules_.begin(), schedules_.end(), p.schedule);
    const auto sched = static_cast<unsigned>(it - schedules_.begin());
    const i64 dpg = p.dp * p.cp * (p.schedule == "dualpipe" ? 2 : 1);
    const unsigned bits = (p.tp > 1 ? 1u : 0u) | (p.ep > 1 ? 2u : 0u) | (dpg == 1 ? 4u : 0u) | (p.cp == 1 ? 8u : 0u) |
                          (p.vpp > 1 ? 16u : 0u) | (sched << 5);
    key += static_cast<char>(static_cast<unsigned char>(bits & 0xffu));
    key += static_cast<char>(static_cast<unsigned char>(sched >> 3));
  }
  return key;
}

const std::vector<int>& Space::knobs(const Layout& layout) const {
  const std::string key = switch_context(layout);
  {
    std::lock_guard lk(mu_);
    auto it = knob_sets_.find(key);
    if (it != knob_sets_.end()) return it->second.valid;
  }
  KnobSet ks;
  const std::size_t n = sc_.phases.size();
  std::vector<PlanConfig> plans(n);
  std::vector<const PlanConfig*> ptrs;
  for (const auto& p : plans) ptrs.push_back(&p);
  const PlanRuleContext ctx{sc_.model, sc_.hardware, sc_.cluster};
  for (int code = 0; code < Knobs::kCount; ++code) {
    Candidate c;
    c.layout = layout;
    c.knobs = Knobs::from_code(code);
    bool ok = true;
    for (std::size_t i = 0; i < n && ok; ++i) ok = phase_plan(c, i, plans[i]) && !plan_key_problem(plans[i]);
    for (std::size_t i = 0; i < n && ok; ++i) ok = !phase_switch_problem(ctx, plans[i], ptrs, cp_comm_written_[i]);
    if (ok) ks.valid.push_back(code);
    else ++ks.refused;
  }
  std::lock_guard lk(mu_);
  return knob_sets_.emplace(key, std::move(ks)).first->second.valid;
}

std::size_t Space::refused_knobs(const Layout& layout) const {
  (void)knobs(layout);
  std::lock_guard lk(mu_);
  return knob_sets_.at(switch_context(layout)).refused;
}

std::string describe(const Space& s, const Candidate& c) {
  const PlanConfig p = s.main_plan(c);
  std::string out = fmt::format("dp{} tp{} pp{} ep{} cp{}", p.dp, p.tp, p.pp, p.ep, p.cp);
  if (p.vpp > 1) out += fmt::format(" vpp{}", p.vpp);
  out += fmt::format(" {} mb{} {} zero{}", p.schedule, p.micro_batch, recompute_name(p.recompute), p.zero);
  std::string sw;
  const auto add = [&](bool on, const char* name) {
    if (on) sw += std::string(sw.empty() ? "" : ",") + name;
  };
  add(p.sequence_parallel, "sp");
  add(p.tp_comm_overlap, "tpo");
  add(p.ep_comm_overlap, "epo");
  add(p.shared_expert_overlap, "seo");
  add(p.overlap_grad_reduce, "ogr");
  add(p.overlap_param_gather, "opg");
  if (!sw.empty()) out += " " + sw;
  if (c.published) out += " (published" + std::string(p.layer_split.empty() ? "" : ", its layer_split") + ")";
  return out;
}

}  // namespace trainsim::plan
