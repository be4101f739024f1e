#pragma once
// The plan search space of a scenario (docs/plan.md): every parallel plan of its model, cluster
// and batch that the config reader accepts.
//
// A candidate is a Layout (dp, tp, pp, cp, ep, vpp, micro-batch, schedule) and Knobs (recompute,
// ZeRO stage and the six overlap switches). It replaces the scenario's main [plan] keys of those
// names; every other [plan] key keeps the scenario's value, except layer_split, which becomes
// "balanced" (a written split fits one pp only). The scenario's own plan is a candidate too,
// with its layer_split (published()).
//
// Phases (the one rule, docs/plan.md "Phases"): a phase without a plan table of its own runs the
// candidate. A phase whose [[phases]] entry has a `plan` table keeps every key that table sets,
// laid over the candidate as the scenario file lays it over [plan]; when it sets any of dp, tp,
// pp or cp, its dp is re-derived as gpus / (tp*pp*cp) of the phase, so that the phase fills the
// same GPUs (DeepSeek-V3: the context-extension phases keep their cp 8 and cp 32, with
// dp = 2048 / (tp*pp*cp)). A candidate whose phase cannot fill the GPUs that way is invalid.
//
// Validity is config/plan_rules.hpp's, nothing else: a layout is kept when phase_layout_problem
// accepts every phase's plan, and knobs when plan_key_problem and phase_switch_problem accept
// every phase's plan. The switch rules read a layout only through a few of its features (per
// phase: tp > 1, ep > 1, dp*cp*copies = 1, cp = 1, vpp > 1, the schedule), so the valid knobs are
// computed once per combination of those (knobs()); tests/test_plan.cpp checks the result against
// the rules applied to every single plan of a small space, and samples against the reader.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/plan_rules.hpp"
#include "config/scenario.hpp"

namespace trainsim::plan {

struct Layout {
  std::int32_t dp = 1, tp = 1, pp = 1, cp = 1, ep = 1, vpp = 1, micro_batch = 1;
  std::int32_t schedule = 0;  // index into Space::schedules()
  friend bool operator==(const Layout&, const Layout&) = default;
};

struct Knobs {
  Recompute recompute = Recompute::None;
  int zero = 0;
  bool sequence_parallel = false, tp_comm_overlap = false, ep_comm_overlap = false, shared_expert_overlap = false,
       overlap_grad_reduce = false, overlap_param_gather = false;
  // A dense code 0..kCount-1 (recompute, zero, then the switches as bits).
  static constexpr int kCount = 4 * 4 * 64;
  int code() const;
  static Knobs from_code(int code);
  friend bool operator==(const Knobs&, const Knobs&) = default;
};

struct Candidate {
  Layout layout;
  Knobs knobs;
  bool published = false;  // the scenario's own plan (its layer_split and other keys as written)
};

// Why the enumerator refused a plan: the rule's key and message (the first plan refused by it).
struct Rejection {
  std::string phase;    // "training", "phases[1]", ...
  std::string key;      // "plan.schedule", "training.global_batch", ...
  std::size_t count = 0;
  std::string example;  // the first refused plan's message
};

class Space {
 public:
  // `base`: the scenario as loaded; `gpus`: the GPU count searched (the cluster's, or --gpus;
  // a multiple of gpus_per_node). `gpus_key`: the overrides set cluster.gpus even when it is the
  // scenario's (a search over several GPU counts). Throws UsageError when a phase's own plan
  // sets a key the search cannot carry over.
  Space(const Scenario& base, std::int64_t gpus, bool gpus_key = false);

  const Scenario& scenario() const { return sc_; }  // the base with cluster.gpus = gpus()
  std::int64_t gpus() const { return gpus_; }
  const std::vector<std::string>& schedules() const { return schedules_; }
  std::size_t phase_count() const { return sc_.phases.size(); }
  // Phases whose dp the rule re-derives (their own plan sets dp, tp, pp or cp).
  const std::vector<bool>& derives_dp() const { return derive_dp_; }

  // The main [plan] of a candidate, and phase `i`'s plan (false: the phase cannot fill the GPUs).
  PlanConfig main_plan(const Candidate& c) const;
  bool phase_plan(const Candidate& c, std::size_t phase, PlanConfig& out) const;

  // The knobs phase `phase` runs under candidate knobs `k` (its own plan's knob keys kept).
  Knobs phase_knobs(std::size_t phase, const Knobs& k) const;

  // The candidate as `--set` overrides of the base scenario (keys in sweep_keys() order), and
  // the keys themselves: the searched plan keys, plan.layer_split, each re-derived phase's
  // phases.<i>.plan.dp, and cluster.gpus when gpus() is not the scenario's.
  std::vector<std::string> overrides(const Candidate& c) const;
  const std::vector<std::string>& sweep_keys() const { return keys_; }

  // The scenario's own plan as a candidate (published = true).
  Candidate published() const;

  // The plans of a phase of a candidate all valid? (Every rule, every phase: the check the
  // config reader does; for tests and single candidates.)
  std::optional<std::pair<std::string, PlanProblem>> problem(const Candidate& c) const;

  // --- enumeration ---------------------------------------------------------------------------
  // How many layouts layouts() proposes over every (tp, pp) pair (saturating at 2^64 - 1): the
  // work limit is checked on it before anything is enumerated.
  std::uint64_t proposals() const;
  std::uint64_t proposals(std::int32_t tp, std::int32_t pp) const;  // of one (tp, pp) pair
  // The (tp, pp) pairs of the GPU count, in enumeration order: the units of parallel work.
  std::vector<std::pair<std::int32_t, std::int32_t>> tp_pp_pairs() const;
  // The layouts with this tp and pp valid in every phase, in enumeration order (ep, micro-batch,
  // schedule, vpp, cp: the phases with a plan of their own repeat across cp). Layouts refused by
  // a rule are counted into `rejected` (by phase and key) and `refused`.
  std::vector<Layout> layouts(std::int32_t tp, std::int32_t pp, std::vector<Rejection>& rejected,
                              std::size_t& refused) const;
  // Codes of the knobs valid with `layout` (in every phase), ascending. Thread-safe.
  const std::vector<int>& knobs(const Layout& layout) const;
  // Knob combinations refused for this layout (for the counts), thread-safe.
  std::size_t refused_knobs(const Layout& layout) const;

 private:
  std::string switch_context(const Layout& l) const;
  void apply(const Candidate& c, PlanConfig& p) const;
  Scenario sc_;
  std::int64_t gpus_ = 0;
  std::vector<std::string> schedules_;
  std::vector<std::vector<std::string>> own_keys_;  // per phase
  std::vector<bool> derive_dp_, cp_comm_written_;
  std::vector<std::uint16_t> knob_own_;  // per phase: bits of the knob keys its own plan sets
  std::vector<std::string> keys_;
  struct KnobSet {
    std::vector<int> valid;
    std::size_t refused = 0;
  };
  mutable std::mutex mu_;
  mutable std::map<std::string, KnobSet> knob_sets_;
};

// Divisors of n, ascending.
std::vector<std::int64_t> divisors(std::int64_t n);

// "dp128 tp1 pp16 ep64 cp1 dualpipe mb1 rc=deepseek zero1 sp ..." for tables.
std::string describe(const Space& s, const Candidate& c);

}  // namespace trainsim::plan
