#pragma once
// The CostModel implementation: per-class curves from a Calibration. The calibration is either
// the target GPU's own file (each class's basis, measured / same-die / transferred at
// calibration time, says where it came from), or another GPU's file carried over whole by the
// transfer rules of sim/calibration/README.md ("Transfer to other GPUs": every cost Transferred).
#include <memory>
#include <string>

#include "core/memo.hpp"

#include "calibration/calibration_file.hpp"
#include "calibration/cost_model.hpp"
#include "config/config.hpp"

namespace trainsim::calibration {

enum class TransferKind { None, SameDie, CrossArch };
const char* transfer_kind_name(TransferKind k);  // "none" | "same-die" | "cross-architecture"

// Same die: equal SM count and equal BF16 and FP8 dense peaks (within 1%).
TransferKind transfer_kind(const HardwareConfig& source, const HardwareConfig& target);

// The memory-bound kind of a model op (cost_model.hpp memory_time kinds).
std::string memory_kind(const Op& op);

class FittedCostModel final : public CostModel {
 public:
  // `source`: the GPU the calibration is for; `target`: the GPU to answer for.
  FittedCostModel(Calibration cal, HardwareConfig source, HardwareConfig target);

  OpCost op_time(const Op& op, int sms) const override;
  std::shared_ptr<const OpCost> op_cost(const Op& op, int sms) const override;  // memo "op cost"
  Time kernel_gap() const override;
  std::string gpu() const override { return target_.name; }
  std::string describe() const override;
  OpCost memory_time(const std::string& kind, double bytes) const override;
  std::vector<ClassProvenance> provenance() const override;

  const Calibration& calibration() const { return cal_; }
  TransferKind transfer() const { return kind_; }
  // The target's effective parameters after the transfer rules (== the calibration's when
  // target == source): for reports and tests.
  const GemmParams& gemm_params(const std::string& dtype) const;
  bool has_gemm(const std::string& dtype) const { return cal_.has_gemm(dtype); }
  const AttnParams& attention(bool backward) const { return backward ? cal_.attn_bwd : cal_.attn_fwd; }
  const MemClass& memory(const std::string& kind) const;  // the kind's class or the pooled one
  bool has_attention() const { return cal_.attn_fwd_fit.present && cal_.attn_bwd_fit.present; }
  // Costs attention ops when this calibration has no attention class (nothing measured on the
  // GPU): another GPU's model carried over by the transfer rules. load_cost_model sets it.
  // A new fallback changes the answers: the model takes a fresh identity and an empty memo.
  void set_attention_fallback(std::shared_ptr<const FittedCostModel> f);

 private:
  OpCost finish(double us, CostSource src, std::string basis) const;
  CostSource class_source(const ClassFit& f) const;
  std::string class_basis(const ClassFit& f) const;

  Calibration cal_;  // after the whole-file transfer when source != target
  HardwareConfig source_, target_;
  TransferKind kind_;
  std::string transfer_note_;
  std::shared_ptr<const FittedCostModel> attention_fallback_;
  // One entry per distinct (every field of the Op, SM count); shared by the model's copies,
  // which answer alike. At most 4096 entries.
  using OpMemo = StringMemo<OpCost>;
  std::shared_ptr<OpMemo> memo_ = std::make_shared<OpMemo>("op cost", 4096);
};

}  // namespace trainsim::calibration
