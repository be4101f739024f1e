#pragma once
// Builders of the schedule families (one file each), registered in schedule.cpp.
#include "schedule/schedule.hpp"

namespace trainsim::schedule {
Schedule build_gpipe(const ScheduleParams& p);
Schedule build_1f1b(const ScheduleParams& p);
Schedule build_interleaved(const ScheduleParams& p);
Schedule build_zb1p(const ScheduleParams& p);
Schedule build_dualpipe(const ScheduleParams& p);
}  // namespace trainsim::schedule
