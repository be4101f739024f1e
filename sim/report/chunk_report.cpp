#include "report/chunk_report.hpp"

#include <fmt/format.h>

#include "calibration/calibration_file.hpp"
#include "calibration/cost_model.hpp"
#include "calibration/profile.hpp"
#include "calibration/replay.hpp"
#include "core/error.hpp"
#include "core/table.hpp"

namespace trainsim {

ChunkReport build_chunk_report(const Scenario& sc) {
  TS_ASSERT(sc.chunk_pair.has_value(), "a [chunk_pair] scenario");
  ChunkReport r;
  r.scenario = sc.name;
  r.profile = sc.chunk_pair->measured_profile;
  r.source = sc.chunk_pair->source;
  const auto cost = calibration::load_cost_model(sc.hardware, data_dir());
  r.cost_model = cost->describe();
  r.predicted = step::simulate_chunk_pair(sc, static_cast<int>(sc.chunk_pair->moe_layers), *cost);
  // Measured: from the profile's kernel timestamps (the replay's measurement side).
  const calibration::Profile prof = calibration::read_profile(r.profile);
  const calibration::Calibration cal =
      calibration::read_calibration((data_dir() / "profiles" / sc.hardware.name / "calibration.toml").string());
  const calibration::ReplayResult rep = calibration::replay(prof, cal, sc.model.attention.v_dim());
  r.measured_span_us = rep.measured_span_us;
  r.measured_exposed_comm_us = rep.measured_exposed_comm_us;
  std::int64_t most = -1;
  for (const auto& s : rep.streams) {
    if (s.role == "compute" && s.kernels > most) {
      most = s.kernels;
      r.measured_compute_busy_us = s.measured_busy_us;
    }
  }
  for (const auto& k : prof.kernels) {
    const std::string& c = k.op_class;
    if (c.rfind("a2a_", 0) == 0) {
      r.measured_comm_by_class_us[c] += k.dur_us;
      // The prediction models dispatch and combine; DeepEP's notify/layout kernels (which
      // exchange counts and wait for the other ranks) are reported apart.
      if (c == "a2a_dispatch" || c == "a2a_combine") r.measured_comm_busy_us += k.dur_us;
      continue;
    }
    const char* g = (c == "fp8_gemm" || c == "bf16_gemm") ? "dense GEMM"
                  : c == "fp8_grouped_gemm" ? "grouped GEMM"
                  : (c == "attn_fwd" || c == "attn_bwd") ? "attention" : "memory-bound";
    r.measured_by_group_us[g] += k.dur_us;
  }
  return r;
}

std::string chunk_text(const ChunkReport& r) {
  const auto& p = r.predicted;
  std::string out = fmt::format("trainsim run: {} — one DualPipe forward+backward chunk pair\n", r.scenario);
  out += fmt::format("  measured: {}\n  ({})\n  predicted from the model math, {} and the network model;\n"
                     "  the profile's kernel durations are not used by the prediction.\n\n",
                     r.profile, r.source, r.cost_model);
  TextTable t({"", "measured", "predicted", "gap"}, {false, true, true, true});
  auto row = [&](const char* what, double meas_us, double pred_us) {
    t.add_row({what, fmt::format("{:.1f} ms", meas_us / 1e3), fmt::format("{:.1f} ms", pred_us / 1e3),
               meas_us > 0 ? fmt::format("{:+.1f}%", (pred_us - meas_us) / meas_us * 100) : "-"});
  };
  row("GPU span of the pair", r.measured_span_us, p.span_s * 1e6);
  row("compute stream busy", r.measured_compute_busy_us, p.compute_busy_s * 1e6);
  row("dispatch + combine kernels", r.measured_comm_busy_us, p.comm_busy_s * 1e6);
  row("exposed communication", r.measured_exposed_comm_us, p.exposed_comm_s * 1e6);
  out += t.str();
  out += fmt::format("  compute busy: measured {:.0f}% of the span, predicted {:.0f}%\n",
                     100 * r.measured_compute_busy_us / r.measured_span_us, 100 * p.compute_busy_s / p.span_s);
  const auto notify = r.measured_comm_by_class_us.find("a2a_notify");
  if (notify != r.measured_comm_by_class_us.end())
    out += fmt::format("  DeepEP notify/layout kernels (not modelled): measured {:.1f} ms\n", notify->second / 1e3);
  out += fmt::format("  communication hidden: measured {:.0f}%, predicted {:.0f}%\n",
                     100 * (1 - r.measured_exposed_comm_us / r.measured_comm_busy_us),
                     100 * (1 - p.exposed_comm_s / p.comm_busy_s));
  out += "\nCompute kernel time by group (measured: the profile's kernels on all streams; predicted: the\n"
         "same ops alone on all SMs, without inter-kernel gaps)\n";
  TextTable g({"group", "measured", "predicted", "gap"}, {false, true, true, true});
  for (const auto& [name, meas] : r.measured_by_group_us) {
    const auto it = p.compute_by_group_s.find(name);
    const double pred = it == p.compute_by_group_s.end() ? 0.0 : it->second * 1e6;
    g.add_row({name, fmt::format("{:.1f} ms", meas / 1e3), fmt::format("{:.1f} ms", pred / 1e3),
               fmt::format("{:+.1f}%", (pred - meas) / meas * 100)});
  }
  out += g.str();
  std::string comm;
  for (const auto& [c, us] : r.measured_comm_by_class_us) comm += fmt::format(" {} {:.1f} ms,", c, us / 1e3);
  if (!comm.empty()) comm.pop_back();
  out += fmt::format("  measured communication kernels:{}\n", comm);
  out += fmt::format("  per layer: dispatch {:.0f} us, combine {:.0f} us (forward); compute alone: forward {:.1f} ms, "
                     "backward {:.1f} ms\n",
                     p.dispatch_s * 1e6, p.combine_s * 1e6, p.forward_compute_s * 1e3, p.backward_compute_s * 1e3);
  return out;
}

nlohmann::json chunk_json(const ChunkReport& r) {
  const auto& p = r.predicted;
  return {{"scenario", r.scenario},
          {"measured_profile", r.profile},
          {"measured_span_us", r.measured_span_us},
          {"predicted_span_us", p.span_s * 1e6},
          {"span_error_pct", r.span_error_pct()},
          {"measured_compute_busy_us", r.measured_compute_busy_us},
          {"predicted_compute_busy_us", p.compute_busy_s * 1e6},
          {"measured_comm_busy_us", r.measured_comm_busy_us},
          {"predicted_comm_busy_us", p.comm_busy_s * 1e6},
          {"measured_exposed_comm_us", r.measured_exposed_comm_us},
          {"predicted_exposed_comm_us", p.exposed_comm_s * 1e6},
          {"dispatch_us", p.dispatch_s * 1e6},
          {"combine_us", p.combine_s * 1e6}};
}

}  // namespace trainsim
