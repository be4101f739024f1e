#pragma once
// Builders of the schedule families (one file each), registered in schedule.cpp.
#include <vector>

#include "schedule/schedule.hpp"

namespace trainsim::schedule {
Schedule build_gpipe(const ScheduleParams& p);
Schedule build_1f1b(const ScheduleParams& p);
Schedule build_interleaved(const ScheduleParams& p);
std::optional<ParamProblem> check_interleaved(const ScheduleParams& p);
Schedule build_zb1p(const ScheduleParams& p);
Schedule build_dualpipe(const ScheduleParams& p);
std::optional<ParamProblem> check_dualpipe(const ScheduleParams& p);
Schedule build_dualpipev(const ScheduleParams& p);
std::optional<ParamProblem> check_dualpipev(const ScheduleParams& p);

// One rank's op order by the eight steps of the reference `step()` (dualpipe.py and
// dualpipev.py share them; see dualpipe.cpp). The rank's two chunks are `near_chunk` (the one
// its step 1 fills: DualPipe's direction entering in this rank's half; DualPipeV's chunk 0) and
// 1 - near_chunk. `h` is the rank's distance from the end of the pipeline in the code's terms
// (DualPipe: min(r, P-1-r); DualPipeV: r), `half` the ranks in one arm (DualPipe: P/2;
// DualPipeV: P), `per_chunk` the micro-batches each chunk runs (DualPipe: M/2; DualPipeV: M).
// The rank with h = half-1 (DualPipe's two middle ranks, DualPipeV's last) runs the first
// forward and backward of its main loop one after the other instead of overlapped.
void append_dualpipe_steps(std::vector<graph::Op>& ops, int near_chunk, int h, int half, int per_chunk);
}  // namespace trainsim::schedule
