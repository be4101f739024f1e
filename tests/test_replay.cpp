// Replay target (issue 4 point 4): DeepSeek's H800 trace re-simulated with the committed
// calibration must reproduce the measured span within 3% and each stream's busy time within 5%.
// The measured figures are computed here from the profile itself, independently of replay().
#include <algorithm>
#include <cmath>
#include <map>

#include <catch2/catch.hpp>

#include "calibration/calibration_file.hpp"
#include "calibration/profile.hpp"
#include "calibration/replay.hpp"
#include "support.hpp"

using namespace trainsim::calibration;

TEST_CASE("replay of the DeepSeek H800 trace: span within 3%, per-stream busy within 5%") {
  const Profile p = read_profile(ts_test::data("profiles/h800/deepseek-v3-train-fwdbwd-ep64.profile.jsonl").string());
  const Calibration cal = read_calibration(ts_test::data("profiles/h800/calibration.toml").string());
  const ReplayResult r = replay(p, cal, 128);  // DeepSeek-V3 v_head_dim (models/deepseek-v3.toml)

  double t0 = 1e300, t1 = -1e300;
  std::map<std::int64_t, double> busy;
  for (const auto& k : p.kernels) {
    t0 = std::min(t0, k.ts_us);
    t1 = std::max(t1, k.ts_us + k.dur_us);
    busy[k.stream] += k.dur_us;
  }
  CHECK(r.measured_span_us == Approx(t1 - t0));
  INFO("measured " << r.measured_span_us << " us, simulated " << r.simulated_span_us << " us");
  CHECK(std::abs(r.error_pct) <= 3.0);
  REQUIRE(r.streams.size() == busy.size());
  for (const auto& s : r.streams) {
    INFO("stream " << s.stream << ": measured " << s.measured_busy_us << " simulated " << s.simulated_busy_us);
    CHECK(s.measured_busy_us == Approx(busy[s.stream]));
    CHECK(std::abs(s.simulated_busy_us / s.measured_busy_us - 1.0) <= 0.05);
  }
  // Shape-fitted kernels: the 16 FP8 grouped GEMMs, the 84 dense FP8 GEMMs whose shapes the
  // importer infers (per layer 5 in attn(F) + 7 in attn(B) + 5 in attn(W) + 2 in mlp(F) + 2 in
  // mlp(B) = 21, over 4 layers), 4 attention forward and 12 attention backward kernels.
  CHECK(r.cost_sources.at("fitted-shape") == 16 + 4 * (5 + 7 + 5 + 2 + 2) + 4 + 12);
  // The cross-stream waits resolved from the 56 cudaStreamWaitEvent records never contradict
  // the measured order.
  CHECK(r.waits.size() + static_cast<std::size_t>(r.waits_unresolved) == 56);
  CHECK(r.waits_inconsistent == 0);
  // Simulated kernels keep per-stream order and start no earlier than their launch.
  for (std::size_t i = 0; i < p.kernels.size(); ++i)
    CHECK(r.simulated_start_us[i] + 1e-9 >= p.kernels[i].launch_ts_us);
}

TEST_CASE("trainsim replay --json prints the figures") {
  const auto res = ts_test::run_trainsim("replay '" +
                                         ts_test::data("profiles/h800/deepseek-v3-train-fwdbwd-ep64.profile.jsonl").string() +
                                         "' --json");
  REQUIRE(res.status == 0);
  for (const char* key : {"measured_span_us", "simulated_span_us", "error_pct", "exposed_comm_measured_us",
                          "exposed_comm_simulated_us", "cost_sources", "measured_busy_us", "simulated_busy_us"})
    CHECK(res.out.find(key) != std::string::npos);
}
