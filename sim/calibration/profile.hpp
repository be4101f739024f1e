#pragma once
// The measured-kernel profile: one record per GPU kernel with its class, shape, dtype, timing,
// the SMs it had, its stream and launch, plus the annotation ranges and cross-stream sync calls
// of the run and where it all came from. The on-disk format (JSON Lines, one object per line)
// is documented in sim/calibration/README.md.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace trainsim::calibration {

// The op classes a kernel can be sorted into (the classifier's rules name one of these).
// "other" is what an unmatched kernel gets.
const std::vector<std::string>& op_classes();

struct Provenance {
  std::string gpu;             // device name as the trace gives it ("NVIDIA H800")
  std::string gpu_key;         // profiles/<gpu_key>/ folder ("h800")
  std::int64_t num_sms = 0;    // SMs of the device (0 = unknown)
  std::string driver;          // driver version ("" = not recorded in the trace)
  std::string cuda;            // CUDA runtime version ("" = not recorded)
  std::string software;        // framework / profiler that recorded it
  std::string date;            // capture date (ISO 8601) if known
  std::string source_file;     // file the profile was imported from (as given)
  std::string source;          // free text: repository, commit, original file name
  std::string trace_name;      // the trace's own traceName, if any
  std::int64_t rank = -1;      // distributedInfo.rank (-1 = not given)
  std::int64_t world_size = 0; // distributedInfo.world_size (0 = not given)
  std::string classifier;      // classifier rules file used
  std::string shapes;          // how shapes were inferred ("" = not inferred)
};

// Shape of the work a kernel did. GEMMs: M, N, K (and groups for grouped GEMMs, M per group);
// attention: M = query tokens, N = key tokens, K = q/k head dim, groups = heads;
// communication / memory-bound ops: tokens and bytes. 0 = unknown.
struct Shape {
  std::int64_t m = 0, n = 0, k = 0, groups = 0;
  std::int64_t tokens = 0, bytes = 0;
  std::string how;  // "" (unknown) or the inference rule that set it (see README.md)
  bool known() const { return m != 0 || tokens != 0 || bytes != 0; }
};

// The CPU operator that launched a kernel, as a trace recorded with record_shapes=True gives
// it (linked through the kernel's External id, or the operator around its launch call).
struct LaunchOp {
  std::string name;                                   // "aten::addmm"
  std::vector<std::vector<std::int64_t>> input_dims;  // "Input Dims" per input ([] = a scalar)
  std::vector<std::string> input_types;               // "Input type" ("float", "c10::BFloat16", "Scalar")
  bool empty() const { return name.empty(); }
};

// An NCCL collective's parameters as Kineto records them (the kernel's args, or the
// record_param_comms operator that launched it).
struct Collective {
  std::string name;               // "allreduce", "allgather", "reduce_scatter", "broadcast", "all_to_all", ...
  std::int64_t in_nelems = 0;     // "In msg nelems"
  std::int64_t out_nelems = 0;    // "Out msg nelems"
  std::string dtype;              // "Float", "BFloat16", ... as recorded
  std::int64_t group_size = 0;    // "Group size"
  std::string group;              // "Process Group Name"
  std::string group_desc;         // "Process Group Description"
  std::string ranks;              // "Process Group Ranks", as recorded ("[0, 1]")
  bool empty() const { return name.empty(); }
};

struct KernelRecord {
  std::string name;
  std::string op_class = "other";
  std::string rule;                // classifier rule that matched ("" = none)
  Shape shape;
  std::string dtype;               // "fp8", "bf16", "fp32", "" = unknown
  double ts_us = 0;                // start, microseconds from the profile's t0
  double dur_us = 0;
  std::int64_t device = 0;
  std::int64_t stream = 0;
  std::int64_t correlation = 0;    // links the kernel to its CPU-side launch
  std::array<std::int64_t, 3> grid{0, 0, 0};
  std::array<std::int64_t, 3> block{0, 0, 0};
  std::int64_t sms_available = 0;  // SMs it could use (0 = unknown)
  std::int64_t comm_sms_held = 0;  // SMs held by concurrent communication kernels on other streams
  double launch_ts_us = -1;        // CPU time of the launch call (from t0), -1 = no launch found
  std::int64_t launch_tid = 0;     // CPU thread that launched it
  std::string phase;               // innermost user annotation around the launch ("" = none)
  LaunchOp op;                     // launching CPU operator with recorded shapes (empty = none)
  Collective collective;           // NCCL collective parameters (empty = none)
};

// A user_annotation range (CPU time): attn(F), mlp(B), dispatch(F), ...
struct Annotation {
  std::string name;
  double ts_us = 0;
  double dur_us = 0;
  std::int64_t tid = 0;
};

// A CPU-side synchronisation call (cudaStreamWaitEvent, cudaEventRecord, ...), for replay.
struct SyncCall {
  std::string name;
  double ts_us = 0;
  std::int64_t tid = 0;
  std::int64_t correlation = 0;
};

struct Profile {
  Provenance provenance;
  double t0_us = 0;  // absolute trace time that ts fields are relative to (first kernel start)
  std::vector<KernelRecord> kernels;       // ordered by (ts, stream, correlation)
  std::vector<Annotation> annotations;     // ordered by (ts, tid, name)
  std::vector<SyncCall> syncs;             // ordered by (ts, correlation)
};

// JSON Lines: a header line, then one line per annotation, sync call and kernel. Byte-for-byte
// deterministic for a given Profile. Format version 1; version 2 when some kernel has a
// recorded launch operator or collective (the optional kernel keys "op" and "collective"), so
// that a profile without them reads and writes exactly as before.
std::string write_profile(const Profile& p);

// Reads what write_profile writes. Throws DataError naming file and line on any deviation.
Profile read_profile_text(const std::string& text, const std::string& file);
Profile read_profile(const std::string& path);

}  // namespace trainsim::calibration
