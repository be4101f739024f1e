#pragma once
// Renderings of a replayed schedule: the fixture-format order, a terminal summary with an ASCII
// timeline, --json, and a Chrome Trace Event file for Perfetto. All are pure functions of the
// result, so the same inputs give the same bytes.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "schedule/overlap.hpp"
#include "schedule/schedule.hpp"

namespace trainsim::schedule {

// "rank r: op op ...\n" per rank -- the line format of shared/reference/dualpipe/order-*.txt.
std::string order_text(const Schedule& s);

// Readable summary; adds an ASCII timeline when the case is small enough to read.
std::string summary_text(const Result& r);

// makespan_us, busy_us / bubble_us per rank, bubble_fraction, peak_inflight_microbatches,
// weight_copies, stages_per_rank, critical_path; with_order adds "order": one list of op strings per rank.
nlohmann::ordered_json to_json(const Result& r, bool with_order);

// Chrome Trace Event JSON (object form, times in microseconds): process per rank with an "ops"
// track; F&B pairs also appear split over two more tracks of that rank, per stream when
// `fb_slices` (the overlap model of one F&B) is given, else per chunk.
std::string chrome_trace(const Result& r, const std::vector<OverlapSlice>* fb_slices);

}  // namespace trainsim::schedule
