#pragma once
// A synthetic cost model whose every answer a test can compute itself:
// t = flops / 1 PFLOP/s + bytes / 1 TB/s on all SMs, slower by N/sms on fewer SMs, no gap.
#include "calibration/cost_model.hpp"

namespace ts_test {

class LinearCost final : public trainsim::calibration::CostModel {
 public:
  explicit LinearCost(int sms) : sms_(sms) {}
  trainsim::calibration::OpCost op_time(const trainsim::Op& op, int sms) const override {
    const double t = (op.flops / 1e15 + op.bytes / 1e12) * sms_ / sms;
    return {trainsim::Time::from_seconds(t), trainsim::calibration::CostSource::Fitted, "test: linear"};
  }
  trainsim::Time kernel_gap() const override { return trainsim::Time::zero(); }
  std::string gpu() const override { return "test"; }
  std::string describe() const override { return "linear test model"; }
  static double seconds(const trainsim::Op& o) { return o.flops / 1e15 + o.bytes / 1e12; }

 private:
  int sms_;
};

}  // namespace ts_test
