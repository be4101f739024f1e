#pragma once
// What each registered pipeline schedule accepts, without the task graph: the known names and
// the rules on ranks, micro-batches and chunks. A light header so that config/ can refuse an
// unknown or unsupported schedule when it reads a plan (naming its own keys), and the CLI when
// it reads its options (naming its own flags), from the one table in schedule.cpp.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trainsim::schedule {

struct ScheduleParams {
  int pp = 0;            // pipeline ranks (devices; DualPipeV holds 2 stages on each)
  int microbatches = 0;  // micro-batches per step (DualPipe: both directions together)
  int vpp = 1;           // virtual stages (model chunks) per rank; interleaved only
};

// The parameter a schedule refuses, so that each caller names it its own way (--pp / plan.pp).
enum class Param { Pp, Microbatches, Vpp };

struct ParamProblem {
  Param param;
  // What the schedule needs, e.g. "dualpipe needs an even pp"; the caller appends the value it
  // was given (", got 5", or for micro-batches where the count came from).
  std::string need;
};

// The registered schedule names, in registry order.
std::vector<std::string> known_schedules();
// "gpipe, 1f1b, ..." for messages.
std::string known_schedules_list();
bool is_known_schedule(std::string_view name);

// Why `name` cannot run with `params` (the common rules: pp, micro-batches and vpp >= 1, vpp > 1
// for interleaved only; then the family's own), or nullopt when it can. `name` must be known.
std::optional<ParamProblem> check_params(std::string_view name, const ScheduleParams& params);

// The fewest micro-batches, at least `at_least`, with which `name` runs on pp ranks with vpp
// chunks (DualPipe: the next even count >= 2pp; DualPipeV: >= 2pp; interleaved: the next
// multiple of pp). -1 if no count up to at_least + 4*pp*vpp + 2 is accepted.
int fewest_microbatches(std::string_view name, int pp, int vpp, int at_least);

}  // namespace trainsim::schedule
