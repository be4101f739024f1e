#pragma once
// trainsim-profile, GPU-free half: turns what the CUPTI Activity API recorded (kernel records,
// runtime/driver API records, external-correlation records, memset/memcpy records) plus the
// profiler's own notes on what it launched (op class, shape, dtype, warm-up or measured
// repetition) into a calibration::Profile (the JSON Lines format of sim/calibration/profile.hpp)
// and a per-op summary (median / min over repetitions).
//
// No CUDA or CUPTI header is needed here: cupti_records.hpp copies the fields of the CUPTI
// records into the plain structs below. That keeps the conversion testable on machines without
// a GPU (tests/test_profile_convert.cpp).

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "calibration/profile.hpp"

namespace trainsim::profiler {

// The fields of a CUPTI kernel record (CUpti_ActivityKernel4 ... 10: the same offsets in every
// version, see cupti_records.hpp) that the profile uses. Times are CUPTI timestamps (ns); CUPTI
// writes start = end = 0 when it could not time the kernel.
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

// CUpti_ActivityExternalCorrelation: the runtime/driver API call `correlation_id` happened while
// `external_id` was pushed for `kind`. CUPTI writes one such record per API call made under a
// pushed id (only while RUNTIME/DRIVER API activity is enabled); the kernel that call launched
// carries the same correlation id. The profiler pushes one id per launch of an op (see Launch)
// under kExternalKindProfiler; ids of other kinds (another tool in the process) are ignored.
constexpr std::uint32_t kExternalKindProfiler = 3;  // CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0
struct ExternalCorrelation {
  std::uint32_t correlation_id = 0;
  std::uint64_t external_id = 0;
  std::uint32_t kind = kExternalKindProfiler;
};

// CUpti_ActivityAPI (kinds RUNTIME and DRIVER): one CUDA API call on the CPU. A kernel's launch
// is the API record with the kernel's correlation id (cudaLaunchKernel, cuLaunchKernelEx, ...).
struct ApiCall {
  bool driver = false;             // CUPTI_ACTIVITY_KIND_DRIVER (else RUNTIME)
  std::uint32_t cbid = 0;          // callback id (cupti_runtime_cbid.h / cupti_driver_cbid.h)
  std::string name;                // e.g. "cudaLaunchKernel_v7000"; "" if not looked up
  std::uint64_t start_ns = 0, end_ns = 0;
  std::uint32_t process_id = 0, thread_id = 0;
  std::uint32_t correlation_id = 0;
};

// Memset and memcpy records (CUpti_ActivityMemset4, CUpti_ActivityMemcpy6): GPU work on a
// stream that is not a kernel, e.g. the L2 scrub between repetitions. Not in the profile, but
// it tells which gaps between profile kernels on a stream are not kernel-to-kernel gaps.
struct ActivityCopy {
  std::string what;                // "memset" | "memcpy"
  std::uint64_t start_ns = 0, end_ns = 0;
  std::uint32_t device_id = 0, context_id = 0, stream_id = 0, correlation_id = 0;
};

// What the record decoder saw (cupti_records.hpp), for the provenance notes.
struct DecodeStats {
  std::size_t kernels = 0, api = 0, external = 0, copies = 0;
  std::size_t other_external_kind = 0;  // external-correlation records of another kind (ignored)
  std::size_t unknown_kind = 0;         // records of a kind the decoder does not read (ignored)
};

// One operation the profiler runs repeatedly (a GEMM shape, a norm, a collective, ...).
struct OpSpec {
  std::string name;                // "attn.qkv/fwd", "moe.experts.up_gate/fwd", "nccl.all_reduce"
  std::string op_class = "other";  // one of calibration::op_classes()
  std::int64_t m = 0, n = 0, k = 0, groups = 0;  // GEMMs: M per group, N, K, groups
  std::int64_t tokens = 0, bytes = 0;            // memory-bound ops and collectives
  std::string dtype;               // "bf16", "fp8", "fp32"
  std::string how;                 // how the shape was set (goes to the record's shape.how); GEMMs
                                   // name their pass ("pass bwd_weight"): calibrate tells
                                   // weight-gradient GEMMs apart by it
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
  std::vector<ApiCall> api;
  std::vector<ActivityCopy> copies;
  DecodeStats decoded;
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
  std::size_t untimed = 0;         // dropped: kernels CUPTI could not time (start = end = 0)
  std::size_t with_launch = 0;     // profile kernels whose runtime/driver launch record was found
  std::size_t auxiliary = 0;       // profile kernels that are not the longest of their launch on
                                   // their device (class "other", no shape)
  std::size_t launch_withheld = 0; // ... of them with launch_ts_us = -1: other work ran on the
                                   // stream between the previous profile kernel and this one
};

// "NVIDIA H200" -> "h200", "NVIDIA H100 80GB HBM3" -> "h100": the first word after the vendor,
// lower-cased, letters and digits only.
std::string gpu_key_from_name(const std::string& name);

// Median of a non-empty list (mean of the middle two for an even count).
double median(std::vector<double> v);

// Attribution: kernel -> (correlation id) -> external-correlation record of the profiler's kind
// -> external id -> Launch. Launch time: the API record with the kernel's correlation id (the
// runtime one if a runtime and a driver record share it), in the same CUPTI clock as the GPU
// times; launch_ts_us = -1 when there is none, or when a kernel, memset or memcpy that is not
// in the profile ran on the same stream between the previous profile kernel and this one (so
// that `trainsim calibrate`'s gap fit never takes an L2 scrub or a warm-up for a launch gap).
// t0 = the earliest start or launch among the profile's kernels, so every time is >= 0.
// Several kernels in one launch of a non-communication op on one device: the longest carries
// the op's class and shape, the others are class "other" without a shape (Conversion::auxiliary).
// Throws std::invalid_argument on an inconsistent recording (launch naming an unknown op,
// unknown op class, two launches with one external id, one correlation id under two external
// ids of the profiler's kind, a kernel ending before it starts).
Conversion convert(const Recording& r);

// Tab-separated summary: a header line, then one line per op.
std::string write_summary(const Conversion& c, const std::vector<OpSpec>& ops);

}  // namespace trainsim::profiler
