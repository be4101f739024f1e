// CostModel (sim/calibration/cost_model.hpp): the committed H800 calibration answers every op
// class; the transfer rules to other GPUs (README "Transfer to other GPUs") hold, with the
// expectations derived here from the hardware files, not from the implementation.
#include <string>

#include <catch2/catch.hpp>

#include "calibration/calibration_file.hpp"
#include "calibration/cost_model.hpp"
#include "calibration/fitted_model.hpp"
#include "config/scenario.hpp"
#include "support.hpp"

using namespace trainsim;
using namespace trainsim::calibration;

namespace {
Op gemm(std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t groups, const std::string& dt) {
  Op o;
  o.name = "test.gemm";
  o.cls = groups > 1 ? OpClass::GroupedGemm : OpClass::Gemm;
  o.m = m, o.n = n, o.k = k, o.groups = groups, o.dtype = dt;
  o.flops = o.flops_full = 2.0 * double(m) * double(n) * double(k);
  return o;
}
Op membound(OpClass c, double bytes) {
  Op o;
  o.name = "test.mem";
  o.cls = c;
  o.dtype = "bf16";
  o.bytes = bytes;
  return o;
}
HardwareConfig hw(const std::string& name) {
  return load_hardware((ts_test::source_dir() / "profiles" / "hardware" / (name + ".toml")).string());
}
}  // namespace

TEST_CASE("H800 calibration: fitted costs for every op class, with a basis") {
  const auto m = load_cost_model(hw("h800"), ts_test::source_dir());
  REQUIRE(m->gpu() == "h800");
  // DeepSeek-V3 EP64 expert GEMM on one GPU: 4 local experts, 4096*8 rows, on 112 SMs.
  const OpCost c = m->op_time(gemm(4096 * 8, 4096, 7168, 4, "fp8"), 112);
  CHECK(c.source == CostSource::Fitted);
  CHECK(std::string(cost_source_name(c.source)) == "fitted");
  // The trace measured 1739-2126 us for this kernel; the fit is within its residual band.
  CHECK(c.time.micros() > 1500);
  CHECK(c.time.micros() < 2300);
  // Fewer SMs never make a GEMM faster.
  CHECK(m->op_time(gemm(4096 * 8, 4096, 7168, 4, "fp8"), 100).time >= c.time);
  for (OpClass cls : {OpClass::Norm, OpClass::Elementwise, OpClass::Router, OpClass::Permute, OpClass::Embedding, OpClass::Loss}) {
    const OpCost mc = m->op_time(membound(cls, 1e8), 132);
    CHECK(mc.time > Time::zero());
    CHECK(!mc.basis.empty());
  }
  Op att;
  att.cls = OpClass::Attention;
  att.m = att.n = 4096, att.k = 192, att.groups = 128, att.dtype = "bf16";
  att.flops_full = 2.0 * 4096 * 4096 * 128 * (192 + 128);
  att.flops = att.flops_full / 2;
  const OpCost af = m->op_time(att, 112);
  CHECK(af.time.micros() == Approx(1237).epsilon(0.10));  // trace: 1199-1280 us
  CHECK(m->kernel_gap() > Time::zero());
}

TEST_CASE("BF16 GEMMs are costed from BF16 measurements, not the FP8 fit x 2") {
  const auto m = load_cost_model(hw("h800"), ts_test::source_dir());
  const auto* f = dynamic_cast<const FittedCostModel*>(m.get());
  REQUIRE(f != nullptr);
  REQUIRE(f->has_gemm("bf16"));
  const Op bf = gemm(4096, 4096, 7168, 1, "bf16");
  const OpCost c = m->op_time(bf, 132);
  CHECK(c.basis.find("bf16 GEMM fit") != std::string::npos);
  CHECK(c.basis.find("assumption") == std::string::npos);
  // The time is the BF16 curve with 2-byte operands, computed here from its parameters.
  const GemmParams& p = f->gemm_params("bf16");
  CHECK(c.time.micros() == Approx(gemm_time_us(p, 4096, 4096, 7168, 1, 132, 2.0)).epsilon(1e-6));
  // The BF16 curve's basis names the H100 measurements (same die as H800).
  CHECK(c.basis.find("h100-sxm") != std::string::npos);
}

TEST_CASE("H800 calibration: weight-gradient GEMMs use the fitted wgrad factor") {
  const auto m = load_cost_model(hw("h800"), ts_test::source_dir());
  const Calibration cal = read_calibration((ts_test::source_dir() / "profiles" / "h800" / "calibration.toml").string());
  // The attn(W) kernels are ~1.4x slower than the one-curve prediction (README residual table).
  CHECK(cal.gemm_fp8_wgrad_factor > 1.2);
  CHECK(cal.gemm_fp8_wgrad_factor < 1.7);
  // Dense: same (M, N, K) as a forward GEMM, times the factor.
  Op fwd = gemm(7168, 16384, 4096, 1, "fp8");
  Op wg = fwd;
  wg.pass = Pass::BackwardWeight;
  const OpCost cf = m->op_time(fwd, 112), cw = m->op_time(wg, 112);
  CHECK(cw.time.micros() == Approx(cf.time.micros() * cal.gemm_fp8_wgrad_factor).epsilon(1e-6));
  CHECK(cw.basis.find("weight gradient") != std::string::npos);
  CHECK(cf.basis.find("weight gradient") == std::string::npos);
  // Input gradients stay on the main curve.
  Op bi = fwd;
  bi.pass = Pass::BackwardInput;
  CHECK(m->op_time(bi, 112).time == cf.time);
  // Grouped wgrad: the dense factor applied, marked as an assumption.
  Op gw = gemm(2048, 7168, 4096 * 8, 4, "fp8");
  gw.pass = Pass::BackwardWeight;
  const OpCost cg = m->op_time(gw, 112);
  CHECK(cg.basis.find("grouped wgrad uses the dense wgrad factor (assumption") != std::string::npos);
  // A BF16 weight gradient is a plain BF16 GEMM (the factor belongs to DeepGEMM's FP8 dW kernel).
  Op bw = gemm(7168, 16384, 4096, 1, "bf16");
  bw.pass = Pass::BackwardWeight;
  Op bfwd = bw;
  bfwd.pass = Pass::Forward;
  CHECK(m->op_time(bw, 112).time == m->op_time(bfwd, 112).time);
}

TEST_CASE("memory-bound ops cost by their kind's fitted bandwidth; kinds without one say so") {
  const auto m = load_cost_model(hw("h800"), ts_test::source_dir());
  const auto* f = dynamic_cast<const FittedCostModel*>(m.get());
  REQUIRE(f != nullptr);
  Op norm = membound(OpClass::Norm, 1e8);
  const MemClass& nc = f->memory("norm");
  CHECK(m->op_time(norm, 132).time.micros() == Approx(nc.overhead_us + 1e8 / nc.bytes_per_us).epsilon(1e-6));
  // A backward norm takes the backward norm fit.
  Op nb = norm;
  nb.pass = Pass::BackwardInput;
  const MemClass& nbc = f->memory("norm_bwd");
  CHECK(m->op_time(nb, 132).time.micros() == Approx(nbc.overhead_us + 1e8 / nbc.bytes_per_us).epsilon(1e-6));
  // FP8 casts are their own kind.
  Op q = membound(OpClass::Elementwise, 1e8);
  q.name = "attn.q_a.quant";
  CHECK(m->op_time(q, 132).basis.find("memory-bound cast") != std::string::npos);
  // No permute kernel is measured: the pooled fit, and the basis says so.
  const OpCost p = m->op_time(membound(OpClass::Permute, 1e8), 132);
  CHECK(p.basis.find("no permute kernel measured") != std::string::npos);
  // The memory_time query answers the same as an op of that kind.
  CHECK(m->memory_time("norm", 1e8).time == m->op_time(norm, 132).time);
  // No FlashMLA decode-kernel bound: the fitted bandwidths are below the 3000 GB/s it reached.
  CHECK(nc.bytes_per_us * 1e6 < 3000e9);
}

TEST_CASE("per-GPU calibrations: every class says where it came from") {
  // A100: no FP8 tensor cores; BF16 GEMM and attention transferred from H100 measurements (none
  // measured on A100), memory-bound measured on A100 (Liger-Kernel), NVLink measured (nccl-tests).
  const HardwareConfig a100 = hw("a100-sxm-80g");
  const auto m = load_cost_model(a100, ts_test::source_dir());
  const OpCost fp8 = m->op_time(gemm(8192, 8192, 8192, 1, "fp8"), 108);
  CHECK(fp8.basis.find("no FP8 tensor cores") != std::string::npos);
  CHECK(fp8.source == CostSource::Transferred);
  CHECK(m->op_time(membound(OpClass::Norm, 1e8), 108).source == CostSource::Fitted);
  bool nvlink_measured = false;
  for (const auto& p : m->provenance())
    if (p.cls == "NVLink efficiency") nvlink_measured = p.basis.find("measured on a100-sxm-80g") != std::string::npos;
  CHECK(nvlink_measured);
  // B200: GEMMs measured on B200 (XLA's table), attention transferred.
  const auto b = load_cost_model(hw("b200"), ts_test::source_dir());
  CHECK(b->op_time(gemm(8192, 8192, 8192, 1, "bf16"), 148).source == CostSource::Fitted);
  CHECK(b->op_time(gemm(8192, 8192, 8192, 1, "fp8"), 148).source == CostSource::Fitted);
  Op att;
  att.cls = OpClass::Attention;
  att.m = att.n = 4096, att.k = 128, att.groups = 32, att.dtype = "bf16";
  att.flops_full = 2.0 * 4096 * 4096 * 32 * 256;
  att.flops = att.flops_full / 2;
  const OpCost ba = b->op_time(att, 148);
  CHECK(ba.source == CostSource::Transferred);
  CHECK(ba.basis.find("transferred from h100-sxm") != std::string::npos);
}

TEST_CASE("whole-file transfer H800 -> H200 (same die): compute-bound kept, memory-bound scaled by HBM bandwidth") {
  // The fallback for a GPU without its own calibration file: another GPU's file carried over.
  const HardwareConfig h800 = hw("h800"), h200 = hw("h200");
  const Calibration cal = read_calibration((ts_test::source_dir() / "profiles" / "h800" / "calibration.toml").string());
  const FittedCostModel src(cal, h800, h800), dst(cal, h800, h200);
  CHECK(dst.transfer() == TransferKind::SameDie);
  // GEMM is a compute-bound class: its time is kept.
  const Op big = gemm(4096 * 8, 4096, 7168, 4, "fp8");
  const OpCost a = src.op_time(big, 132), b = dst.op_time(big, 132);
  CHECK(b.source == CostSource::Transferred);
  CHECK(b.basis.find("h800->h200") != std::string::npos);
  CHECK(b.time == a.time);
  // Memory-bound: overhead kept, bytes / bandwidth scaled by 3.35 / 4.8 (the hardware files).
  const double ratio = h800.hbm_bandwidth.value / h200.hbm_bandwidth.value;
  CHECK(ratio == Approx(3.35 / 4.8).epsilon(1e-9));
  const Op mem = membound(OpClass::Elementwise, 1e9);
  const double overhead = src.memory("elementwise").overhead_us;
  const double t800 = src.op_time(mem, 132).time.micros(), t200 = dst.op_time(mem, 132).time.micros();
  CHECK(dst.op_time(mem, 132).source == CostSource::Transferred);
  CHECK(t200 - overhead == Approx((t800 - overhead) * ratio).epsilon(1e-6));
}

TEST_CASE("whole-file transfer across architectures: per-SM roofline ratios") {
  const HardwareConfig h800 = hw("h800"), b200 = hw("b200"), a100 = hw("a100-sxm-80g");
  const Calibration cal = read_calibration((ts_test::source_dir() / "profiles" / "h800" / "calibration.toml").string());
  const FittedCostModel s(cal, h800, h800);
  for (const HardwareConfig* t : {&b200, &a100}) {
    const FittedCostModel d(cal, h800, *t);
    CHECK(d.transfer() == TransferKind::CrossArch);
    // K-loop time per wave scales with the per-SM rate of the dtype (A100: no FP8, runs at BF16).
    const double per_sm = (t->peak_flops("fp8") / double(t->sms)) / (h800.peak_flops("fp8") / double(h800.sms));
    CHECK(d.gemm_params("fp8").a_us == Approx(s.gemm_params("fp8").a_us / per_sm).epsilon(1e-12));
    const double bf16_sm = (t->bf16.value / double(t->sms)) / (h800.bf16.value / double(h800.sms));
    CHECK(d.attention(false).c1_us == Approx(s.attention(false).c1_us / bf16_sm).epsilon(1e-12));
    CHECK(d.memory("norm").bytes_per_us ==
          Approx(s.memory("norm").bytes_per_us * t->hbm_bandwidth.value / h800.hbm_bandwidth.value).epsilon(1e-12));
    CHECK(d.op_time(gemm(8192, 8192, 8192, 1, "fp8"), int(t->sms)).source == CostSource::Transferred);
  }
}
