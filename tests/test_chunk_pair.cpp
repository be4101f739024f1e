// First-principles prediction of DeepSeek's profiled H800 chunk pair (4 MoE layers per chunk,
// EP64, one 4096-token micro-batch, 20 communication SMs): from the model math, the calibrated
// compute costs and the network model, never the trace's kernel durations. The measured figures
// come from the profile's own timestamps.
#include <catch2/catch.hpp>

#include "config/scenario.hpp"
#include "report/chunk_report.hpp"
#include "support.hpp"

using namespace trainsim;

TEST_CASE("The predicted F&B chunk pair is within 10% of DeepSeek's measured span", "[chunk]") {
  const Scenario sc = load_scenario(ts_test::data("scenarios/calibration/deepseek-v3-h800-chunk.toml").string());
  const ChunkReport r = build_chunk_report(sc);
  // Measured span = last kernel end - first kernel start over every stream of the trace.
  CHECK(r.measured_span_us == Approx(129012).margin(1));
  INFO("predicted " << r.predicted.span_s * 1e6 << " us");
  CHECK(std::fabs(r.span_error_pct()) <= 10.0);
  // Dispatch and combine: the network model against the trace's DeepEP kernels (within 10%).
  CHECK(r.predicted.comm_busy_s * 1e6 == Approx(r.measured_comm_busy_us).epsilon(0.10));
  // The pair cannot be shorter than its compute stream nor than its communication stream.
  CHECK(r.predicted.span_s >= r.predicted.compute_busy_s);
  CHECK(r.predicted.span_s >= r.predicted.comm_busy_s);
}
