#pragma once
// trainsim-profile, GPU-free half: turns what the CUPTI Activity API recorded (kernel records,
// external-correlation records) plus the profiler's own notes on what it launched (op class,
// shape, dtype, warm-up or measured repetition) into a calibration::Profile (the JSON Lines
// format of sim/calibration/profile.hpp) and a per-op summary (median / min over repetitions).
//
// No CUDA or CUPTI header is needed here: main.cpp copies the fields of CUpti_ActivityKernel10
// and CUpti_ActivityExternalCorrelation into the plain structs below. That keeps the conversion
// testable on machines without a GPU (tests/test_profile_convert.cpp).

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "calibration/profile.hpp"

namespace trainsim::profiler {

// The fields of CUpti_ActivityKernel10 that the profile uses. Times are CUPTI timestamps (ns).
struct ActivityKernel {
  std::string name;
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
  std::uint32_t device_id = 0;
  std::uint32_t context_id = 0;
  std::uint32_t stream_id = 0;
  std::uint32_t correlation_id = 0;
  std::array<std::int32_t, 3> grid{0, 0, 0};
  std::array<std::int32_t, 3> block{0, 0, 0};
};

// CUpti_ActivityExternalCorrelation: the runtime/driver launch `correlation_id` happened while
// the profiler had pushed `external_id` (one id per launch of an op, see Launch).
struct ExternalCorrelation {
  std::uint32_t correlation_id = 0;
  std::uint64_t external_id = 0;
};

// One operation the profiler runs repeatedly (a GEMM shape, a norm, a collective, ...).
struct OpSpec {
  std::string name;                // "attn.qkv/fwd", "moe.experts.up_gate/fwd", "nccl.all_reduce"
  std::string op_class = "other";  // one of calibration::op_classes()
  std::int64_t m = 0, n = 0, k = 0, groups = 0;  // GEMMs: M per group, N, K, groups
  std::int64_t tokens = 0, bytes = 0;            // memory-bound ops and collectives
  std::string dtype;               // "bf16", "fp8", "fp32"
  std::string how;                 // how the shape was set (goes to the record's shape.how)
  bool comm = false;               // a communication op: its kernels hold SMs while they run
  std::int64_t sm_limit = 0;       // SMs the launch was restricted to (0 = the whole GPU)
};

// One launch of an op: the external correlation id pushed around it, which op, which repetition.
struct Launch {
  std::uint64_t external_id = 0;
  std::size_t op = 0;              // index into Recording::ops
  int rep = 0;                     // 0-based within warm-up or within measured repetitions
  bool warmup = false;
};

struct DeviceInfo {
  std::uint32_t id = 0;
  std::string name;                // cudaDeviceProp::name
  std::int64_t num_sms = 0;
  int cc_major = 0, cc_minor = 0;
  std::int64_t sm_clock_khz = 0;   // peak SM clock (cudaDevAttrClockRate), 0 = unknown
  std::int64_t mem_clock_khz = 0;  // peak memory clock, 0 = unknown
};

struct RunInfo {
  std::vector<DeviceInfo> devices;  // devices used; devices[0] names the profile's GPU
  int driver_version = 0;           // cudaDriverGetVersion (e.g. 13000)
  int runtime_version = 0;          // cudaRuntimeGetVersion
  std::string software;             // "trainsim-profile 0.1.0 (CUPTI ..., cuBLASLt ..., NCCL ...)"
  std::string date;                 // ISO 8601 UTC
  std::string model_file;           // --model (goes to provenance.source_file)
  std::string command;              // the command line
  std::string gpu_key;              // "" = derived from the device name
  int warmup = 0, reps = 0;
  std::vector<std::string> notes;   // clocks not locked, what was skipped and why, ...
};

struct Recording {
  std::vector<ActivityKernel> kernels;
  std::vector<ExternalCorrelation> correlations;
  std::vector<OpSpec> ops;
  std::vector<Launch> launches;
  RunInfo run;
};

// Per op over its measured repetitions. A repetition's time is, per device, the sum of the
// durations of the op's kernels in that launch; the maximum over devices (collectives run on
// every GPU). Repetitions without any kernel are not counted.
struct OpSummary {
  std::size_t op = 0;
  std::size_t reps = 0;            // measured repetitions with kernels
  std::size_t kernels = 0;         // kernels over all measured repetitions
  double median_us = 0, min_us = 0, max_us = 0;
};

struct Conversion {
  calibration::Profile profile;
  std::vector<OpSummary> summary;  // one per op, in Recording::ops order
  std::size_t warmup_kernels = 0;  // dropped: kernels of warm-up launches
  std::size_t unattributed = 0;    // dropped: kernels of no known launch (library set-up, ...)
};

// "NVIDIA H200" -> "h200", "NVIDIA H100 80GB HBM3" -> "h100": the first word after the vendor,
// lower-cased, letters and digits only.
std::string gpu_key_from_name(const std::string& name);

// Median of a non-empty list (mean of the middle two for an even count).
double median(std::vector<double> v);

// Throws std::invalid_argument on an inconsistent recording (launch naming an unknown op,
// unknown op class, two launches with one external id, a kernel ending before it starts).
Conversion convert(const Recording& r);

// Tab-separated summary: a header line, then one line per op.
std::string write_summary(const Conversion& c, const std::vector<OpSpec>& ops);

}  // namespace trainsim::profiler
