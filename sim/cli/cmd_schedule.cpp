// `trainsim schedule`: replay a pipeline schedule with given op times. A thin layer over
// sim/schedule: parse options, run, render; everything is computed before anything is written.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include <unistd.h>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "core/units.hpp"
#include "engine/resource.hpp"
#include "schedule/overlap.hpp"
#include "schedule/schedule.hpp"
#include "schedule/schedule_report.hpp"

namespace trainsim::cli {
namespace {

struct ScheduleOptions {
  std::string kind;
  int pp = 0;
  int microbatches = 0;
  int vpp = 1;
  std::string f, b, w, fb, p2p, f_comm, b_comm;
  int sms = 132;
  int comm_sms = 20;
  bool json = false;
  bool order = false;
  std::string trace;
};

// A duration on the command line: a plain number is microseconds; otherwise a number with a
// unit ("3.7us", "1.2ms", "500ns", "2s"), parsed by the project's unit parser.
Time parse_time(const std::string& text, const char* option) {
  double us = 0;
  const char* b = text.data();
  const char* e = b + text.size();
  auto [ptr, ec] = std::from_chars(b, e, us);
  double seconds = 0;
  if (ec == std::errc{} && ptr == e && !text.empty()) {
    seconds = us * 1e-6;
  } else {
    try {
      seconds = parse_quantity(text, Dim::Duration);
    } catch (const QuantityError& q) {
      throw UsageError(fmt::format("{}: cannot read '{}' as a time ({}); give microseconds (\"3.7\") or a "
                                   "number with a unit (\"3.7us\", \"1.2ms\")",
                                   option, text, q.msg));
    }
  }
  if (!std::isfinite(seconds)) throw UsageError(fmt::format("{}: '{}' is not a finite time", option, text));
  if (seconds < 0) throw UsageError(fmt::format("{}: time must not be negative, got '{}'", option, text));
  if (seconds > 1e6) throw UsageError(fmt::format("{}: '{}' is implausibly long for one op", option, text));
  return Time::from_seconds(seconds);
}

std::optional<Time> parse_opt(const std::string& text, const char* option) {
  if (text.empty()) return std::nullopt;
  return parse_time(text, option);
}

void run_schedule(const ScheduleOptions& o) {
  if (!o.trace.empty()) check_output_file("--trace", o.trace);  // before the work
  graph::OpTimes t;
  t.f = parse_opt(o.f, "--f").value_or(Time::us(1));
  t.b = parse_opt(o.b, "--b").value_or(t.f * 2);
  t.w = parse_opt(o.w, "--w").value_or(t.b / 2);
  if (t.w > t.b) throw UsageError(fmt::format("--w: the weight-gradient part ({}) cannot exceed --b ({})", t.w, t.b));
  const auto fb = parse_opt(o.fb, "--fb");
  const auto f_comm = parse_opt(o.f_comm, "--f-comm");
  const auto b_comm = parse_opt(o.b_comm, "--b-comm");
  std::optional<schedule::OverlapResult> overlap;
  if (f_comm || b_comm) {
    if (fb) throw UsageError("--fb: give either --fb or --f-comm/--b-comm (the overlap model), not both");
    const Time fa = f_comm.value_or(Time::zero()), ba = b_comm.value_or(Time::zero());
    if (fa > t.f) throw UsageError("--f-comm: the forward's communication cannot exceed --f");
    if (ba > t.b) throw UsageError("--b-comm: the backward's communication cannot exceed --b");
    engine::GpuCompute gpu = [&] {
      try {
        return engine::GpuCompute(o.sms, o.comm_sms);
      } catch (const InputError& e) {
        throw UsageError(fmt::format("--sms/--comm-sms: {}", e.what()));
      }
    }();
    overlap = schedule::overlap_forward_backward({t.f - fa, fa}, {t.b - ba, ba}, gpu);
    t.fb = overlap->duration;
  } else {
    t.fb = fb.value_or(t.f + t.b);
  }
  const Time p2p = parse_opt(o.p2p, "--p2p").value_or(Time::zero());

  const auto result = schedule::run(o.kind, schedule::ScheduleParams{o.pp, o.microbatches, o.vpp}, t, p2p);

  std::string out;
  if (o.json) {
    out = schedule::to_json(result, o.order).dump(2) + "\n";
  } else if (o.order) {
    out = schedule::order_text(result.schedule);
  } else {
    out = schedule::summary_text(result);
    if (overlap)
      out += fmt::format("F&B from the overlap model: {} ({} of {} SMs for communication)\n", t.fb, o.comm_sms, o.sms);
  }
  if (!o.trace.empty()) {
    const std::string trace = schedule::chrome_trace(result, overlap ? &overlap->slices : nullptr);
    write_file_atomic(o.trace, trace, "--trace");
    if (!o.json && !o.order) out += fmt::format("trace written to {}\n", o.trace);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

}  // namespace

void setup_schedule(CLI::App& sub) {
  auto o = std::make_shared<ScheduleOptions>();
  sub.add_option("--kind", o->kind, "Schedule: " + schedule::known_schedules_list())->required();
  sub.add_option("--pp", o->pp, "Pipeline ranks (dualpipev: devices, each holding 2 of the 2*pp stages)")->required();
  sub.add_option("--microbatches", o->microbatches,
                 "Micro-batches per step (dualpipe: both directions together; dualpipe, dualpipev: at least 2*pp)")
      ->required();
  sub.add_option("--vpp", o->vpp, "Model chunks per rank (interleaved only)");
  sub.add_option("--f", o->f, "Forward chunk time (microseconds, or with a unit: 3.7us, 1.2ms) [1us]");
  sub.add_option("--b", o->b, "Full backward chunk time [2 x F]");
  sub.add_option("--w", o->w, "Weight-gradient part of the backward (I = B - W) [B/2]");
  sub.add_option("--fb", o->fb, "Time of an overlapped F&B pair [F + B, or the overlap model]");
  sub.add_option("--f-comm", o->f_comm, "All-to-all time inside F; enables the F&B overlap model");
  sub.add_option("--b-comm", o->b_comm, "All-to-all time inside B; enables the F&B overlap model");
  sub.add_option("--sms", o->sms, "SMs per GPU for the overlap model [132]");
  sub.add_option("--comm-sms", o->comm_sms, "SMs held by communication kernels in an F&B pair [20]");
  sub.add_option("--p2p", o->p2p, "Point-to-point transfer time between ranks [0]");
  sub.add_flag("--json", o->json, "Print JSON");
  sub.add_flag("--order", o->order, "Print each rank's op order (fixture format; in JSON as \"order\")");
  sub.add_option("--trace", o->trace, "Write a Chrome Trace Event JSON file (opens in Perfetto)");
  sub.callback([o] { run_schedule(*o); });
}

}  // namespace trainsim::cli
