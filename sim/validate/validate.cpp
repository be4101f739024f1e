#include "validate/validate.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "config/scenario.hpp"
#include "core/error.hpp"
#include "report/run_report.hpp"

namespace trainsim::validate {

namespace {

std::string plan_text(const PlanConfig& p) {
  std::string s = fmt::format("dp{} tp{} pp{}", p.dp, p.tp, p.pp);
  if (p.vpp > 1) s += fmt::format(" vpp{}", p.vpp);
  if (p.ep > 1) s += fmt::format(" ep{}", p.ep);
  if (p.cp > 1) s += fmt::format(" cp{}", p.cp);
  if (p.zero > 0) s += fmt::format(" zero{}", p.zero);
  return s + fmt::format(" mb{} {}", p.micro_batch, p.schedule);
}

}  // namespace

CaseResult run_case(const Family& f, const Case& c) {
  CaseResult r;
  r.family = &f;
  r.c = &c;
  r.published = c.published;
  if (!c.not_expressible.empty()) {
    r.gpu = c.gpu;
    return r;
  }
  const Scenario sc = load_scenario(c.scenario);
  if (const std::string why = metric_inapplicable(*f.metric, sc); !why.empty())
    throw ConfigError(f.metric_pos, "metric",
                      fmt::format("'{}' does not apply to case '{}': {}", f.metric->name, c.id, why));
  // The same path as `trainsim run`: the GPU's calibrated cost model, every phase simulated. The
  // published run happened, so it is timed even where trainsim's memory model says it does not
  // fit (fits_memory then says so, and the tables flag the case).
  const RunReport run = build_run_report_even_if_unfit(sc);
  const step::StepResult& st = run.phases.front().step;
  r.expressible = true;
  r.scenario_name = sc.name;
  r.model = sc.model.name;
  r.gpu = sc.hardware.name;
  r.gpus = sc.cluster.gpus;
  r.plan = plan_text(sc.phases.front().plan);
  r.step_s = st.step_s;
  r.breakdown = st.breakdown;
  r.peak_memory_gib = run.memory.peak / 1073741824.0;
  r.fits_memory = run.fits();
  r.notes = run.notes;
  r.trainsim = metric_value(*f.metric, sc, st.step_s, run.run.pretraining_gpu_hours);
  r.error_pct = (r.trainsim - r.published) / r.published * 100.0;
  TS_ASSERT(std::isfinite(r.error_pct), fmt::format("case {}: the error is not finite", c.id));
  return r;
}

Summary summarize(const std::string& id, const std::string& title, const std::vector<const CaseResult*>& rs) {
  Summary s;
  s.id = id;
  s.title = title;
  s.cases = rs.size();
  std::vector<double> errs;
  double worst = -1;
  for (const CaseResult* r : rs) {
    if (!r->expressible) {
      ++s.not_expressible;
      continue;
    }
    ++s.expressible;
    const double a = std::fabs(r->error_pct);
    errs.push_back(a);
    if (a > worst) {
      worst = a;
      s.worst_case = r->c->id;
    }
  }
  if (!errs.empty()) {
    std::sort(errs.begin(), errs.end());
    const std::size_t n = errs.size();
    s.median_abs_error_pct = n % 2 ? errs[n / 2] : (errs[n / 2 - 1] + errs[n / 2]) / 2.0;
    s.max_abs_error_pct = errs.back();
  }
  return s;
}

ValidationReport run_suite(const Suite& suite, const std::string& filter, const Progress& progress, unsigned jobs) {
  std::vector<std::pair<const Family*, const Case*>> selected;
  for (const auto& f : suite.families)
    for (const auto& c : f.cases)
      if (filter.empty() || case_matches(c, filter)) selected.emplace_back(&f, &c);
  if (selected.empty())
    throw UsageError(fmt::format("--filter '{}' matches no case (it is matched against 'FAMILY/CASE', the family and "
                                 "the case name, e.g. 'V2', 'V4/fp8-*', '*405b*')",
                                 filter));
  ValidationReport rep;
  rep.suite = &suite;
  rep.filter = filter;
  // Workers take cases in suite order; each result goes to its own slot.
  const std::size_t n = selected.size();
  rep.results.resize(n);
  std::vector<std::exception_ptr> errors(n);
  std::atomic<std::size_t> next{0};
  std::size_t done = 0;
  std::mutex mu;
  auto work = [&] {
    for (std::size_t i = next++; i < n; i = next++) {
      try {
        rep.results[i] = run_case(*selected[i].first, *selected[i].second);
      } catch (...) {
        errors[i] = std::current_exception();
      }
      const std::lock_guard<std::mutex> lock(mu);
      ++done;
      if (progress) progress(done, n, *selected[i].second);
    }
  };
  {
    const unsigned threads = static_cast<unsigned>(std::clamp<std::size_t>(jobs, 1, n));
    std::vector<std::jthread> workers;
    for (unsigned t = 1; t < threads; ++t) workers.emplace_back(work);
    work();
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  std::vector<const CaseResult*> all, oos;
  for (const auto& f : suite.families) {
    std::vector<const CaseResult*> mine;
    for (const auto& r : rep.results)
      if (r.family == &f) mine.push_back(&r);
    if (mine.empty()) continue;
    rep.families.push_back(summarize(f.id, f.title, mine));
    all.insert(all.end(), mine.begin(), mine.end());
    if (f.in_sample.empty()) oos.insert(oos.end(), mine.begin(), mine.end());
  }
  rep.all = summarize("all", "every case", all);
  rep.out_of_sample = summarize("out_of_sample", "out of sample (families not marked in_sample)", oos);
  return rep;
}

}  // namespace trainsim::validate
