#pragma once
// Overlap of computation and communication on a GPU's streams: one list scheduler, shared by
// `trainsim schedule` (the F&B pair of DualPipe, DeepSeek-V3 report §3.2.1, Figure 4) and the
// step simulator (sim/step/: every pipeline op's phases, F&B pairs, combined 1F1B, shared-expert
// and tensor-parallel overlap, FSDP prefetch).
//
// A task runs on one stream (a CUDA stream: 0 compute, 1.. communication) for a fixed duration
// and may start only when the tasks it waits for have ended and its stream is free. Greedy list
// scheduling: repeatedly start, among the tasks whose predecessors are placed, the one that can
// start earliest; ties go to the task with the longest chain still ahead of it (its level: its
// duration plus the longest path of its successors, over every stream; the "highest level
// first" rule, Adam, Chandy & Dickson, CACM 17(12), 1974), then to the lower `priority`, then to
// the earlier task. Each stream runs one
// task at a time, in the order chosen. Complexity O(n · r) for n tasks and r tasks ready at once.
//
// The F&B pair of DualPipe (overlap_forward_backward): each chunk alternates compute and
// communication, a forward chunk attention (compute), dispatch (comm), MLP (compute), combine
// (comm), a backward chunk the reverse; here a chunk's compute and communication are each split
// into two equal halves in that pattern. While the pair runs, the communication kernels hold K of
// the N SMs, so every compute phase takes N/(N-K) times its standalone time
// (engine::GpuCompute::shared). Of phases ready at once the one with the longer chain ahead goes
// first; at equal chains the backward's.

#include <string>
#include <vector>

#include "core/time.hpp"
#include "engine/resource.hpp"

namespace trainsim::schedule {

struct Task {
  int stream = 0;          // 0 compute, 1.. communication streams
  Time duration;
  std::vector<int> after;  // tasks (indices into the list, each < this task's index) to wait for
  int priority = 0;        // lower wins ties of equal level
};

struct TaskSlot {
  Time start, end;
};

struct ListSchedule {
  Time makespan;
  std::vector<TaskSlot> slots;  // one per task, in task order
};

// Throws InternalError for a predecessor index that is not an earlier task.
ListSchedule list_schedule(const std::vector<Task>& tasks);

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
