#pragma once
// Pipeline operations and the path micro-batches take through the pipeline.
//
// Notation (shared with the DualPipe reference fixtures, shared/reference/dualpipe/README.md):
//   Fc:k    forward of micro-batch k in chunk c
//   Bc:k    full backward (input and weight gradients together)
//   Ic:k    backward for input only; its weight part runs later as Wc:k
//   Wc:k    backward for weights of an earlier Ic:k
//   Fc:k+Bd:j  a forward and a full backward chunk run overlapped (F&B)
// "Chunk" is the model chunk a rank holds: 0 for GPipe/1F1B/ZB-H1, the virtual-stage index
// for interleaved (0..v-1), the direction for DualPipe (0: enters at rank 0, 1: at rank P-1),
// the arm of the V for DualPipeV (0: stage r on rank r, 1: stage 2P-1-r on rank r).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace trainsim::graph {

enum class OpKind : std::uint8_t { F, B, I, W, FB };

struct Op {
  OpKind kind = OpKind::F;
  int chunk = 0;   // forward chunk for FB
  int mb = 0;      // forward micro-batch for FB
  int chunk2 = -1; // FB only: backward chunk
  int mb2 = -1;    // FB only: backward micro-batch

  static Op f(int c, int k) { return Op{OpKind::F, c, k, -1, -1}; }
  static Op b(int c, int k) { return Op{OpKind::B, c, k, -1, -1}; }
  static Op i(int c, int k) { return Op{OpKind::I, c, k, -1, -1}; }
  static Op w(int c, int k) { return Op{OpKind::W, c, k, -1, -1}; }
  static Op fb(int fc, int fk, int bc, int bk) { return Op{OpKind::FB, fc, fk, bc, bk}; }

  bool has_forward() const { return kind == OpKind::F || kind == OpKind::FB; }
  friend bool operator==(const Op&, const Op&) = default;
};

std::string to_string(const Op& op);            // "F0:3", "F1:2+B0:0"
Op parse_op(std::string_view text);             // inverse of to_string; throws InputError
char kind_letter(OpKind k);                     // 'F','B','I','W','X' (X = F&B)

// The stages a micro-batch visits, in forward order, as (rank, chunk) pairs. Every (rank,
// chunk) belongs to exactly one flow at exactly one position.
struct Stage {
  int rank = 0;
  int chunk = 0;
};

class PipelineTopology {
 public:
  // ranks: pipeline ranks; chunks: chunk ids per rank; flows: each flow's path of stages.
  PipelineTopology(int ranks, int chunks, std::vector<std::vector<Stage>> flows);

  // 1 flow through ranks 0..P-1 holding chunk 0 (GPipe, 1F1B, ZB-H1).
  static PipelineTopology linear(int ranks);
  // Megatron interleaving: virtual stage s = c*P + r lives on rank s % P as chunk s / P.
  static PipelineTopology interleaved(int ranks, int v);
  // DualPipe: flow 0 = chunk 0 on ranks 0..P-1; flow 1 = chunk 1 on ranks P-1..0.
  static PipelineTopology bidirectional(int ranks);
  // DualPipeV: 1 flow of 2P stages, chunk 0 on ranks 0..P-1 then chunk 1 on ranks P-1..0 (the
  // V: rank r holds stages r and 2P-1-r; the turn at rank P-1 is local, with no transfer).
  static PipelineTopology v_shape(int ranks);

  int ranks() const { return ranks_; }
  int chunks() const { return chunks_; }
  int flows() const { return static_cast<int>(flows_.size()); }
  const std::vector<Stage>& path(int flow) const { return flows_[static_cast<std::size_t>(flow)]; }
  int flow_of(int rank, int chunk) const { return at(rank, chunk).flow; }
  int position_of(int rank, int chunk) const { return at(rank, chunk).pos; }

 private:
  struct Slot {
    int flow = -1;
    int pos = -1;
  };
  const Slot& at(int rank, int chunk) const;
  int ranks_;
  int chunks_;
  std::vector<std::vector<Stage>> flows_;
  std::vector<Slot> slots_;  // [rank * chunks + chunk]
};

}  // namespace trainsim::graph
