#include "plan/plan_report.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/format.hpp"
#include "core/table.hpp"

namespace trainsim::plan {

namespace {

constexpr double kGiB = 1073741824.0;

std::string grouped(std::size_t n) {
  std::string s = std::to_string(n), out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string pct(double x) { return fmt::format("{:.1f}%", 100 * x); }
std::string signed_pct(double x) { return fmt::format("{:+.1f}%", 100 * x); }
std::string share(double part, double whole) { return whole > 0 ? fmt::format("{:.0f}%", 100 * part / whole) : "-"; }

bool by_cost(const SearchResult& r) { return r.objective == "cost"; }
double objective(const Rerun& x, bool cost) { return cost ? x.cost_usd : x.days; }
double est_objective(const Rerun& x, bool cost) { return cost ? x.screened.estimate.cost_usd : x.screened.estimate.days; }

std::string constraints(const SearchOptions& o) {
  std::vector<std::string> c;
  if (o.deadline_days) c.push_back(fmt::format("at most {} days", *o.deadline_days));
  if (o.budget_usd) c.push_back(fmt::format("at most {}", format_usd(*o.budget_usd)));
  if (c.empty()) return "none";
  return c.size() == 1 ? c[0] : c[0] + " and " + c[1];
}

std::string gpus_text(const SearchResult& r) {
  std::string s;
  for (auto g : r.gpus) s += (s.empty() ? "" : ", ") + std::to_string(g);
  return s;
}

const Rerun* find_published(const SearchResult& r) {
  for (const auto& x : r.reruns)
    if (x.screened.candidate.published) return &x;
  return nullptr;
}
const Rerun* find_best(const SearchResult& r) {
  for (const auto& x : r.reruns)
    if (x.event_rank == 1) return &x;
  return nullptr;
}

// The keys two re-run plans set differently, "plan.cp: 1 -> 2".
std::vector<std::string> differences(const Rerun& from, const Rerun& to) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < from.overrides.size() && i < to.overrides.size(); ++i)
    if (from.overrides[i] != to.overrides[i]) {
      const auto eq = from.overrides[i].find('=');
      out.push_back(fmt::format("{}: {} -> {}", from.overrides[i].substr(0, eq), from.overrides[i].substr(eq + 1),
                                to.overrides[i].substr(to.overrides[i].find('=') + 1)));
    }
  return out;
}

struct Lines {
  std::string space, screened, rerun;
  std::vector<std::string> rejected;
};

Lines summary(const SearchResult& r) {
  const ScreenStats& s = r.stats;
  Lines l;
  l.space = fmt::format("{} valid layouts (dp, tp, pp, cp, ep, vpp, micro-batch, schedule) of {} GPUs; {} layouts refused by a "
                        "rule; {} valid plans (recompute, ZeRO stage and the six overlap switches on each layout), {} knob "
                        "combinations refused",
                        grouped(s.layouts), gpus_text(r), grouped(s.layouts_refused), grouped(s.plans), grouped(s.knobs_refused));
  l.screened = fmt::format("{} plans screened: {} do not fit GPU memory in some phase (not timed), {} timed, {} within the "
                           "constraints ({})",
                           grouped(s.plans), grouped(s.unfit), grouped(s.timed), grouped(s.meeting), constraints(r.options));
  std::vector<Rejection> rej = s.rejected;
  std::stable_sort(rej.begin(), rej.end(), [](const Rejection& a, const Rejection& b) { return a.count > b.count; });
  for (const auto& x : rej) l.rejected.push_back(fmt::format("{} x {}: {}", grouped(x.count), x.key, x.example));
  std::size_t ok = 0;
  for (const auto& x : r.reruns) ok += x.status == "ok" ? 1 : 0;
  l.rerun = fmt::format("{} plans re-run at event level: the best {} by the estimate, {} more of the {}{} within {} of the best "
                        "estimate (the best plan of each layout first), the estimated Pareto front ({} plan{}){}; {} ok",
                        r.reruns.size(), r.rerun_best, r.rerun_margin, r.within_margin >= 2048 ? "at least " : "",
                        grouped(r.within_margin), pct(r.options.margin), r.screened_front.size(),
                        r.screened_front.size() == 1 ? "" : "s", find_published(r) ? ", the scenario's own plan" : "", ok);
  return l;
}

std::string fidelity_text(const SearchResult& r) {
  const Fidelity& f = r.fidelity;
  if (f.compared == 0) return "no plan was re-run at event level";
  return fmt::format(
      "over the {} re-run plans: Spearman rank correlation of the estimated and the event-level {} {:.2f}; the screened #1 {} "
      "the event-level #1{}; the estimate's error in {}: median {}, max {}; in the main phase's step time: median {}, max {}",
      f.compared, r.objective, f.spearman, f.screened_first_is_first ? "is" : "is not",
      f.screened_first_is_first ? "" : fmt::format(" (choosing it would cost {} more)", signed_pct(f.regret)), r.objective,
      pct(f.median_abs_error), pct(f.max_abs_error), pct(f.median_abs_step_error), pct(f.max_abs_step_error));
}

struct PublishedLines {
  std::string rank;
  std::vector<std::string> why;
};

PublishedLines published_lines(const SearchResult& r) {
  PublishedLines out;
  const Rerun* pub = find_published(r);
  const Rerun* best = find_best(r);
  const bool cost = by_cost(r);
  if (!pub) return out;
  if (pub->status != "ok") {
    out.rank = fmt::format("the scenario's own plan is {}: {}", pub->status, pub->reason);
    return out;
  }
  std::size_t ranked = 0;
  for (const auto& x : r.reruns) ranked += x.event_rank > 0 ? 1 : 0;
  if (pub->event_rank == 0) {
    out.rank = fmt::format("the scenario's own plan ({}) does not meet the constraints at event level: {}, {:.2f} days", pub->plan,
                           format_usd(pub->cost_usd), pub->days);
    return out;
  }
  out.rank = fmt::format("the scenario's own plan ({}) ranks {} of the {} re-run plans at event level: {}{}{}; by the estimate "
                         "it ranks {} of {} screened plans",
                         pub->plan, pub->event_rank, ranked, cost ? format_usd(pub->cost_usd) : fmt::format("{:.1f} days", pub->days),
                         best && best != pub ? fmt::format(", {} against the best", signed_pct(objective(*pub, cost) / objective(*best, cost) - 1))
                                             : std::string(", the best"),
                         cost ? fmt::format(" ({:.1f} days)", pub->days) : fmt::format(" ({})", format_usd(pub->cost_usd)),
                         r.published_screen_rank ? grouped(r.published_screen_rank) : std::string("-"), grouped(r.stats.meeting));
  if (best && best != pub) {
    out.why.push_back(fmt::format("the best plan: {}", best->plan));
    const auto diff = differences(*pub, *best);
    std::string d;
    for (const auto& x : diff) d += (d.empty() ? "" : "; ") + x;
    out.why.push_back("it differs in " + d);
    out.why.push_back(fmt::format(
        "main phase step at the final batch: {:.2f} s -> {:.2f} s ({}): compute {:.2f} -> {:.2f} s, exposed communication "
        "{:.2f} -> {:.2f} s, pipeline bubble and imbalance {:.2f} -> {:.2f} s, optimizer {:.2f} -> {:.2f} s",
        pub->step_s, best->step_s, signed_pct(best->step_s / pub->step_s - 1), pub->compute_s, best->compute_s,
        pub->exposed_comm_s, best->exposed_comm_s, pub->bubble_s, best->bubble_s, pub->optimizer_s, best->optimizer_s));
    out.why.push_back(fmt::format("memory per GPU (the largest phase): {:.1f} -> {:.1f} GiB; the whole run: {} -> {}, {:.1f} -> {:.1f} days",
                                  pub->peak_gib, best->peak_gib, format_usd(pub->cost_usd), format_usd(best->cost_usd), pub->days,
                                  best->days));
  }
  return out;
}

std::vector<std::string> row_cells(const Rerun& x, bool cost) {
  const double step = x.step_s;
  return {x.event_rank ? std::to_string(x.event_rank) : std::string("-"),
          x.plan,
          std::to_string(x.gpus),
          x.status == "ok" ? fmt::format("{:.2f}", step) : "-",
          x.status == "ok" ? format_count(x.gpu_hours) : "-",
          x.status == "ok" ? fmt::format("{:.1f}", x.days) : "-",
          x.status == "ok" ? format_usd(x.cost_usd) : "-",
          x.status == "ok" ? share(x.compute_s, step) : "-",
          x.status == "ok" ? share(x.exposed_comm_s, step) : "-",
          x.status == "ok" ? share(x.bubble_s, step) : "-",
          x.status == "ok" ? fmt::format("{:.1f}", x.peak_gib) : "-",
          std::to_string(x.estimate_rank),
          x.status == "ok" ? signed_pct(est_objective(x, cost) / objective(x, cost) - 1) : "-"};
}

const std::vector<std::string>& header() {
  static const std::vector<std::string> h = {"#",       "plan",    "GPUs",   "step (s)", "GPU-hours", "days",  "cost",
                                             "compute", "exp. comm", "bubble", "GiB",     "est. #",    "est. err"};
  return h;
}

}  // namespace

std::string timing_line(const SearchResult& r) {
  const ScreenStats& s = r.stats;
  return fmt::format("plan {}: screened {} plans in {:.1f} s ({:.1f} CPU-s: {} plans per CPU-second); event level {} plans in {:.1f} s{}",
                     r.scenario, grouped(s.plans), s.wall_s, s.cpu_s,
                     grouped(static_cast<std::size_t>(s.cpu_s > 0 ? static_cast<double>(s.plans) / s.cpu_s : 0)), r.reruns.size(),
                     r.event_s, r.sweep_summary.empty() ? "" : " (" + r.sweep_summary + ")");
}

std::string plan_text(const SearchResult& r) {
  const bool cost = by_cost(r);
  std::string out;
  out += fmt::format("trainsim plan: {}  ({})\n", r.scenario, r.scenario_file);
  out += fmt::format("  objective: {} (ties: {}); constraints: {}; GPUs: {}\n", r.objective, cost ? "fewer days" : "lower cost",
                     constraints(r.options), gpus_text(r));
  const auto& p = r.provenance;
  if (!p.command.empty()) out += fmt::format("  command: {}\n", p.command);
  if (!p.version.empty()) out += fmt::format("  trainsim {}, commit {}; {}\n", p.version, p.commit, p.date);
  const Lines l = summary(r);
  out += "\nSearch space\n  " + l.space + "\n  " + l.screened + "\n";
  if (!l.rejected.empty()) {
    out += "  refused by the config rules (count x key: the first message):\n";
    for (const auto& x : l.rejected) out += "    " + x + "\n";
  }
  out += "  " + l.rerun + "\n";

  out += fmt::format("\nBest plans at event level, by {} (the top {}; exp. comm and bubble: shares of the main phase's step)\n",
                     r.objective, r.options.top);
  {
    std::vector<bool> right = {true, false, true, true, true, true, true, true, true, true, true, true, true};
    TextTable t(header(), right);
    std::size_t n = 0;
    for (const auto& x : r.reruns)
      if (x.event_rank > 0 && n++ < r.options.top) t.add_row(row_cells(x, cost));
    if (n == 0) out += "  no re-run plan meets the constraints\n";
    else out += t.str();
  }
  const Rerun* pub = find_published(r);
  if (pub && (pub->event_rank == 0 || pub->event_rank > r.options.top)) {
    TextTable t(header(), {true, false, true, true, true, true, true, true, true, true, true, true, true});
    t.add_row(row_cells(*pub, cost));
    out += "  the scenario's own plan:\n" + t.str();
  }
  std::size_t unranked = 0;
  for (const auto& x : r.reruns) unranked += x.status != "ok" ? 1 : 0;
  if (unranked) {
    out += "  re-run plans without an event-level result:\n";
    for (const auto& x : r.reruns)
      if (x.status != "ok") out += fmt::format("    {}: {}: {}\n", x.plan, x.status, x.reason);
  }

  out += "\nPareto front of cost against time (event level)\n";
  if (r.gpus.size() == 1) out += "  one GPU count: cost is proportional to time, so the front is the best plan (and its ties)\n";
  for (std::size_t i : r.front) {
    const Rerun& x = r.reruns[i];
    out += fmt::format("  {} GPUs: {}, {:.1f} days: {}\n", x.gpus, format_usd(x.cost_usd), x.days, x.plan);
  }

  const PublishedLines pl = published_lines(r);
  if (!pl.rank.empty()) {
    out += "\nThe scenario's own plan\n  " + pl.rank + "\n";
    for (const auto& w : pl.why) out += "  " + w + "\n";
  }

  out += "\nWhy the best excluded alternatives lost\n";
  if (r.exclusions.empty()) out += "  nothing binding: no lighter-memory variant of the best plan was refused, no plan was over a constraint\n";
  for (const auto& x : r.exclusions) out += fmt::format("  {}: {}\n", x.constraint, x.text);

  out += "\nScreening fidelity\n  " + fidelity_text(r) + "\n";
  for (const auto& n : r.notes) out += "  note: " + n + "\n";
  return out;
}

std::string plan_markdown(const SearchResult& r) {
  const bool cost = by_cost(r);
  std::string out;
  out += fmt::format("# trainsim plan: {}\n\n", r.scenario);
  out += fmt::format("Scenario `{}`; objective **{}**; constraints: {}; GPUs: {}.\n\n", r.scenario_file, r.objective,
                     constraints(r.options), gpus_text(r));
  const auto& p = r.provenance;
  if (!p.command.empty()) out += fmt::format("Generated by `{}` (trainsim {}, commit {}; {}).\n\n", p.command, p.version, p.commit, p.date);
  const Lines l = summary(r);
  out += "## Search space\n\n";
  out += "- " + l.space + ".\n- " + l.screened + ".\n- " + l.rerun + ".\n\n";
  if (!l.rejected.empty()) {
    out += "Refused by the config rules (count x key: the first message):\n\n";
    for (const auto& x : l.rejected) out += "- " + x + "\n";
    out += "\n";
  }
  out += fmt::format("## Best plans at event level, by {}\n\n", r.objective);
  out += "| # | plan | GPUs | step (s) | GPU-hours | days | cost | compute | exposed comm | bubble | memory (GiB) | estimate # | estimate error |\n";
  out += "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  const Rerun* pub = find_published(r);
  for (const auto& x : r.reruns) {
    if (x.event_rank == 0 && &x != pub) continue;
    if (x.event_rank > r.options.top && &x != pub) continue;
    const auto cells = row_cells(x, cost);
    out += "|";
    for (std::size_t i = 0; i < cells.size(); ++i)
      out += " " + (i == 1 && &x == pub ? "**" + cells[i] + "**" : cells[i]) + " |";
    out += "\n";
  }
  out += "\nShares are of the main phase's step at its final batch (compute includes recomputation; bubble includes stage imbalance).\n\n";
  out += "## Pareto front of cost against time\n\n";
  if (r.gpus.size() == 1) out += "One GPU count: cost is proportional to time, so the front is the best plan (and its ties).\n\n";
  for (std::size_t i : r.front) {
    const Rerun& x = r.reruns[i];
    out += fmt::format("- {} GPUs: {}, {:.1f} days: {}\n", x.gpus, format_usd(x.cost_usd), x.days, x.plan);
  }
  const PublishedLines pl = published_lines(r);
  if (!pl.rank.empty()) {
    out += "\n## The scenario's own plan\n\n" + pl.rank + ".\n\n";
    for (const auto& w : pl.why) out += "- " + w + "\n";
  }
  out += "\n## Why the best excluded alternatives lost\n\n";
  if (r.exclusions.empty()) out += "Nothing binding.\n";
  for (const auto& x : r.exclusions) out += fmt::format("- {}: {}\n", x.constraint, x.text);
  out += "\n## Screening fidelity\n\n" + fidelity_text(r) + ".\n";
  for (const auto& n : r.notes) out += "\nNote: " + n + "\n";
  return out;
}

nlohmann::ordered_json plan_json(const SearchResult& r) {
  using J = nlohmann::ordered_json;
  const ScreenStats& s = r.stats;
  J rej = J::array();
  for (const auto& x : s.rejected) rej.push_back(J{{"phase", x.phase}, {"key", x.key}, {"count", x.count}, {"example", x.example}});
  J reruns = J::array();
  for (const auto& x : r.reruns) {
    const auto& e = x.screened.estimate;
    J ov = J::array();
    for (const auto& o : x.overrides) ov.push_back(o);
    reruns.push_back(J{{"event_rank", x.event_rank ? J(x.event_rank) : J(nullptr)},
                       {"estimate_rank", x.estimate_rank},
                       {"why", x.why},
                       {"plan", x.plan},
                       {"gpus", x.gpus},
                       {"published", x.screened.candidate.published},
                       {"overrides", ov},
                       {"estimate", J{{"cost_usd", e.cost_usd}, {"wall_clock_days", e.days}, {"gpu_hours", e.gpu_hours},
                                      {"step_time_s", e.step_s}, {"peak_memory_gib", e.peak_bytes / kGiB}}},
                       {"status", x.status},
                       {"reason", x.reason},
                       {"meets_constraints", x.meets},
                       {"cost_usd", x.cost_usd},
                       {"wall_clock_days", x.days},
                       {"gpu_hours", x.gpu_hours},
                       {"step_time_s", x.step_s},
                       {"mfu", x.mfu},
                       {"peak_memory_gib", x.peak_gib},
                       {"step_parts_s", J{{"compute", x.compute_s}, {"exposed_comm", x.exposed_comm_s}, {"bubble", x.bubble_s},
                                          {"optimizer", x.optimizer_s}}}});
  }
  J front = J::array();
  for (std::size_t i : r.front) front.push_back(i);
  J excl = J::array();
  for (const auto& x : r.exclusions) excl.push_back(J{{"constraint", x.constraint}, {"plan", x.plan}, {"text", x.text}});
  const Fidelity& f = r.fidelity;
  J gpus = J::array();
  for (auto g : r.gpus) gpus.push_back(g);
  J prov = J{{"command", r.provenance.command}, {"version", r.provenance.version}, {"commit", r.provenance.commit},
             {"date", r.provenance.date}};
  const Rerun* pub = find_published(r);
  const Rerun* best = find_best(r);
  J published = nullptr;
  if (pub)
    published = J{{"plan", pub->plan},
                  {"event_rank", pub->event_rank ? J(pub->event_rank) : J(nullptr)},
                  {"gap_to_best", pub->status == "ok" && best ? J(objective(*pub, by_cost(r)) / objective(*best, by_cost(r)) - 1) : J(nullptr)},
                  {"screen_rank", r.published_screen_rank ? J(r.published_screen_rank) : J(nullptr)}};
  return J{{"scenario", r.scenario},
           {"scenario_file", r.scenario_file},
           {"objective", r.objective},
           {"deadline_days", r.options.deadline_days ? J(*r.options.deadline_days) : J(nullptr)},
           {"budget_usd", r.options.budget_usd ? J(*r.options.budget_usd) : J(nullptr)},
           {"gpus", gpus},
           {"provenance", prov},
           {"space", J{{"layouts", s.layouts}, {"layouts_refused", s.layouts_refused}, {"plans", s.plans},
                       {"knob_combinations_refused", s.knobs_refused}, {"unfit", s.unfit}, {"timed", s.timed},
                       {"meeting_constraints", s.meeting}, {"refused", rej}}},
           {"margin", r.options.margin},
           {"within_margin", r.within_margin},
           {"reruns", reruns},
           {"pareto_front", front},
           {"published", published},
           {"exclusions", excl},
           {"fidelity", J{{"compared", f.compared}, {"spearman", f.spearman}, {"screened_first_is_first", f.screened_first_is_first},
                          {"regret", f.regret}, {"median_abs_error", f.median_abs_error}, {"max_abs_error", f.max_abs_error},
                          {"median_abs_step_error", f.median_abs_step_error}, {"max_abs_step_error", f.max_abs_step_error}}}};
}

std::string plan_csv(const SearchResult& r) {
  auto field = [](const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  std::string out = "event_rank,estimate_rank,why,plan,gpus,published,estimate_cost_usd,estimate_days,estimate_step_s,status,reason,"
                    "cost_usd,wall_clock_days,gpu_hours,step_time_s,mfu,peak_memory_gib,compute_s,exposed_comm_s,bubble_s,"
                    "optimizer_s,overrides\n";
  for (const auto& x : r.reruns) {
    std::string ov;
    for (const auto& o : x.overrides) ov += (ov.empty() ? "" : " ") + o;
    const auto& e = x.screened.estimate;
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                       x.event_rank ? std::to_string(x.event_rank) : "", x.estimate_rank, field(x.why), field(x.plan), x.gpus,
                       x.screened.candidate.published ? "true" : "false", e.cost_usd, e.days, e.step_s, x.status, field(x.reason),
                       x.cost_usd, x.days, x.gpu_hours, x.step_s, x.mfu, x.peak_gib, x.compute_s, x.exposed_comm_s, x.bubble_s,
                       x.optimizer_s, field(ov));
  }
  return out;
}

}  // namespace trainsim::plan
