#pragma once
// Overlap inside an F&B pair (DeepSeek-V3 report §3.2.1, Figure 4).
//
// Each chunk alternates compute and communication: a forward chunk runs attention (compute),
// all-to-all dispatch (comm), MLP (compute), all-to-all combine (comm); a backward chunk runs
// them in reverse: combine (comm), MLP (compute), dispatch (comm), attention (compute). Here a
// chunk's compute and its communication are each split into two equal halves in that pattern.
// In an F&B pair the GPU runs two streams: the compute stream and the communication stream,
// so the forward's compute runs against the backward's all-to-all and vice versa. While the
// pair runs, communication kernels hold K of the N SMs, so every compute phase takes N/(N-K)
// times its standalone time (engine::GpuCompute::shared).
//
// Each stream runs one phase at a time; a phase starts when its chunk's previous phase is done
// and its stream is free; when both chunks have a phase ready for a stream, the backward's
// goes first (it is on the critical path of the pipeline).

#include <string>
#include <vector>

#include "core/time.hpp"
#include "engine/resource.hpp"

namespace trainsim::schedule {

struct ChunkCost {
  Time compute;  // on all N SMs, alone
  Time comm;     // all-to-all time of the chunk (dispatch + combine)
};

struct OverlapSlice {
  int stream = 0;  // 0 compute, 1 communication
  bool backward = false;
  std::string name;  // "attn", "dispatch", "mlp", "combine"
  Time start;        // from the start of the pair
  Time end;
};

struct OverlapResult {
  Time duration;  // the F&B time
  std::vector<OverlapSlice> slices;
};

OverlapResult overlap_forward_backward(ChunkCost forward, ChunkCost backward, const engine::GpuCompute& gpu);

}  // namespace trainsim::schedule
