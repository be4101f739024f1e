#include "graph/op.hpp"

#include <charconv>

#include <fmt/format.h>

#include "core/error.hpp"

namespace trainsim::graph {

char kind_letter(OpKind k) {
  switch (k) {
    case OpKind::F: return 'F';
    case OpKind::B: return 'B';
    case OpKind::I: return 'I';
    case OpKind::W: return 'W';
    case OpKind::FB: return 'X';
  }
  return '?';
}

std::string to_string(const Op& op) {
  if (op.kind == OpKind::FB) return fmt::format("F{}:{}+B{}:{}", op.chunk, op.mb, op.chunk2, op.mb2);
  return fmt::format("{}{}:{}", kind_letter(op.kind), op.chunk, op.mb);
}

namespace {
// Parses "Kc:k" into kind, chunk, micro-batch.
bool parse_simple(std::string_view t, OpKind& kind, int& chunk, int& mb) {
  if (t.size() < 4) return false;
  switch (t[0]) {
    case 'F': kind = OpKind::F; break;
    case 'B': kind = OpKind::B; break;
    case 'I': kind = OpKind::I; break;
    case 'W': kind = OpKind::W; break;
    default: return false;
  }
  const auto colon = t.find(':');
  if (colon == std::string_view::npos || colon < 2) return false;
  const char* b = t.data();
  auto r1 = std::from_chars(b + 1, b + colon, chunk);
  if (r1.ec != std::errc{} || r1.ptr != b + colon || chunk < 0) return false;
  auto r2 = std::from_chars(b + colon + 1, b + t.size(), mb);
  return r2.ec == std::errc{} && r2.ptr == b + t.size() && mb >= 0;
}
}  // namespace

Op parse_op(std::string_view text) {
  Op op;
  const auto plus = text.find('+');
  if (plus == std::string_view::npos) {
    if (parse_simple(text, op.kind, op.chunk, op.mb)) return op;
  } else {
    OpKind k1{}, k2{};
    int c2 = 0, m2 = 0;
    if (parse_simple(text.substr(0, plus), k1, op.chunk, op.mb) &&
        parse_simple(text.substr(plus + 1), k2, c2, m2) && k1 == OpKind::F && k2 == OpKind::B)
      return Op::fb(op.chunk, op.mb, c2, m2);
  }
  throw InputError(fmt::format("'{}' is not an op (expected e.g. F0:3, B1:2, I0:1, W0:1, F0:3+B1:1)", text));
}

PipelineTopology::PipelineTopology(int ranks, int chunks, std::vector<std::vector<Stage>> flows)
    : ranks_(ranks), chunks_(chunks), flows_(std::move(flows)),
      slots_(static_cast<std::size_t>(ranks) * static_cast<std::size_t>(chunks)) {
  for (std::size_t f = 0; f < flows_.size(); ++f) {
    for (std::size_t p = 0; p < flows_[f].size(); ++p) {
      const Stage& s = flows_[f][p];
      TS_ASSERT(s.rank >= 0 && s.rank < ranks_ && s.chunk >= 0 && s.chunk < chunks_, "stage out of range");
      Slot& slot = slots_[static_cast<std::size_t>(s.rank * chunks_ + s.chunk)];
      TS_ASSERT(slot.flow < 0, "stage on two paths");
      slot = Slot{static_cast<int>(f), static_cast<int>(p)};
    }
  }
}

const PipelineTopology::Slot& PipelineTopology::at(int rank, int chunk) const {
  if (rank < 0 || rank >= ranks_ || chunk < 0 || chunk >= chunks_)
    throw InputError(fmt::format("no chunk {} on rank {} in this pipeline", chunk, rank));
  const Slot& s = slots_[static_cast<std::size_t>(rank * chunks_ + chunk)];
  if (s.flow < 0) throw InputError(fmt::format("no chunk {} on rank {} in this pipeline", chunk, rank));
  return s;
}

PipelineTopology PipelineTopology::linear(int ranks) {
  std::vector<Stage> path;
  for (int r = 0; r < ranks; ++r) path.push_back({r, 0});
  return PipelineTopology(ranks, 1, {path});
}

PipelineTopology PipelineTopology::interleaved(int ranks, int v) {
  std::vector<Stage> path;
  for (int s = 0; s < ranks * v; ++s) path.push_back({s % ranks, s / ranks});
  return PipelineTopology(ranks, v, {path});
}

PipelineTopology PipelineTopology::bidirectional(int ranks) {
  std::vector<Stage> down, up;
  for (int r = 0; r < ranks; ++r) {
    down.push_back({r, 0});
    up.push_back({ranks - 1 - r, 1});
  }
  return PipelineTopology(ranks, 2, {down, up});
}

PipelineTopology PipelineTopology::v_shape(int ranks) {
  std::vector<Stage> path;
  for (int r = 0; r < ranks; ++r) path.push_back({r, 0});
  for (int r = ranks - 1; r >= 0; --r) path.push_back({r, 1});
  return PipelineTopology(ranks, 2, {path});
}

}  // namespace trainsim::graph
