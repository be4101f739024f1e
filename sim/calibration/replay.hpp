#pragma once
// `trainsim replay`: rebuild a profile's streams and cross-stream waits and re-simulate it on
// the engine with fitted per-kernel costs instead of the recorded durations. The rules (which
// kernel waits for which, where each simulated duration comes from) are in
// sim/calibration/README.md ("Replay").
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "calibration/calibration_file.hpp"
#include "calibration/profile.hpp"

namespace trainsim::calibration {

struct ReplayStream {
  std::int64_t stream = 0;
  std::string role;  // "compute" | "communication"
  std::int64_t kernels = 0;
  double measured_busy_us = 0, simulated_busy_us = 0;
};

struct ReplayWait {
  std::size_t sync = 0;    // index into Profile::syncs
  std::size_t waiter = 0;  // kernel index (first kernel launched after the wait on the waiting stream)
  std::size_t event = 0;   // kernel index whose end it waits for
};

struct ReplayResult {
  double measured_span_us = 0, simulated_span_us = 0, error_pct = 0;
  std::vector<ReplayStream> streams;  // by stream id
  double measured_exposed_comm_us = 0, simulated_exposed_comm_us = 0;
  std::map<std::string, std::int64_t> cost_sources;  // "fitted-shape" | "per-group-mean" | "per-group-median" -> kernels
  std::vector<ReplayWait> waits;
  std::int64_t waits_unresolved = 0;    // wait calls with no kernel after / before them
  std::int64_t waits_inconsistent = 0;  // resolved waits the measured timing contradicts
  double launch_latency_us = 0, kernel_gap_us = 0;
  std::vector<double> simulated_start_us, simulated_dur_us;  // per kernel of the profile
  std::vector<std::string> kernel_source;                    // per kernel: "fitted-shape" | "per-group-mean" | "per-group-median"
};

// Cross-stream waits from the cudaStreamWaitEvent records (see README.md).
std::vector<ReplayWait> resolve_waits(const Profile& p, std::int64_t* unresolved);

// `v_head_dim` is needed for attention kernels' FLOPs (0: attention kernels fall back to the
// per-group cost). Kernels without a shape fit get their group's mean measured duration (the
// least-squares constant), or its median with `group_median`.
ReplayResult replay(const Profile& p, const Calibration& cal, std::int64_t v_head_dim, bool group_median = false);

}  // namespace trainsim::calibration
