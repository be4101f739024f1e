#pragma once
// What `trainsim plan` prints and writes (docs/plan.md): pure functions of a SearchResult, so the
// same search gives the same bytes (no timings: those go to stderr, timing_line()).
//
//   plan_text      the report: the search space and what the rules refused, the top plans at
//                  event level with their breakdown, the Pareto front of cost against time, the
//                  scenario's own plan (rank and gap to the best, and why), why the best excluded
//                  alternatives lost, how far the screening can be trusted
//   plan_markdown  the same as Markdown (reports/deepseek-v3-plan/report.md)
//   plan_json      every figure (--json)
//   plan_csv       one row per re-run plan (--csv)

#include <string>

#include <nlohmann/json.hpp>

#include "plan/search.hpp"

namespace trainsim::plan {

std::string plan_text(const SearchResult& r);
std::string plan_markdown(const SearchResult& r);
nlohmann::ordered_json plan_json(const SearchResult& r);
std::string plan_csv(const SearchResult& r);
// "screened 58,266,036 plans in 14.2 s (28.3 CPU-s: 2,058,000 plans per CPU-second); event level 25 plans in 12.8 s"
std::string timing_line(const SearchResult& r);

}  // namespace trainsim::plan
