// The Perfetto timeline (Chrome Trace Event JSON) of one step of a run: timeline.json.
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "report/run_report.hpp"
#include "schedule/schedule_report.hpp"

namespace trainsim {

nlohmann::json run_timeline(const RunReport& r) {
  const auto& s = r.phases.front().step;
  TS_ASSERT(s.pipeline.has_value(), "the step has a replayed pipeline");
  return nlohmann::json::parse(schedule::chrome_trace(*s.pipeline, nullptr));
}

}  // namespace trainsim
