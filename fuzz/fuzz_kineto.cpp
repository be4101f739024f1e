// libFuzzer target for the Kineto / Chrome-trace importer (built with -DTRAINSIM_FUZZ=ON and
// clang; run with scripts/fuzz.sh). The input is a trace text, or a gzip stream of one (the
// 1f 8b magic: inflated with a 16 MiB limit, as parse_kineto does with its 1 GiB one). It goes
// through the importer's whole path: parse_kineto_text (JSON parse, every schema version,
// device and unsupported-content checks, operator linking, launch/annotation matching), the
// hardware-profile match of the device, classification with a fixed classifier (RE2 rules),
// SM accounting, shape inference with the DeepSeek-V3 figures, recorded shapes (Input Dims,
// NCCL collectives), and a write_profile / read_profile_text round trip that must reproduce
// the same bytes. trainsim::InputError is the expected answer to bad input and is swallowed;
// anything else (another exception, an InternalError, a crash, a sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "calibration/classifier.hpp"
#include "calibration/kineto.hpp"
#include "calibration/profile.hpp"
#include "core/error.hpp"
#include "core/input.hpp"

using namespace trainsim;
using namespace trainsim::calibration;

namespace {

const Classifier& rules() {
  static const Classifier c = Classifier::parse(
      "version = 1\n"
      "[[rule]]\nname = \"dispatch\"\nclass = \"a2a_dispatch\"\nregex = \"dispatch<\"\n"
      "[[rule]]\nname = \"grouped\"\nclass = \"fp8_grouped_gemm\"\ncontains = \"m_grouped\"\nstream = 7\n"
      "[[rule]]\nname = \"nccl\"\nclass = \"collective\"\nregex = \"^nccl\"\n"
      "[[rule]]\nname = \"gemm\"\nclass = \"gemm\"\nregex = \"(s|h)?gemm|(a*)*b\"\n"
      "[[rule]]\nname = \"attn\"\nclass = \"attn_fwd\"\nregex = \"flash_fwd\"\n"
      "[[rule]]\nname = \"ew\"\nclass = \"elementwise\"\ncontains = \"elementwise\"\n",
      "fuzz-classifier.toml");
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  RawImport r;
  try {
    if (is_gzip(text)) text = gunzip(text, "fuzz.json.gz", std::uint64_t{16} << 20);
    r = parse_kineto_text(text, "fuzz.json");
  } catch (const InputError&) {
    return 0;
  }
  std::string why;
  (void)hardware_key(r.device, &why);
  TS_ASSERT(!r.profile.kernels.empty(), "an accepted trace has kernels");
  classify(r.profile, rules());
  account_sms(r.profile);
  ShapeModel m;
  m.tokens = 4096;
  m.hidden = 7168;
  m.expert_intermediate = 2048;
  m.routed_experts = 256;
  m.top_k = 8;
  m.ep = 64;
  m.heads = 128;
  m.qk_head_dim = 192;
  infer_shapes(r.profile, m);
  recorded_shapes(r.profile);
  const std::string out = write_profile(r.profile);
  // What write_profile writes must read back (invalid UTF-8 in names is replaced on writing).
  const Profile back = read_profile_text(out, "fuzz.profile.jsonl");
  TS_ASSERT(write_profile(back) == out, "profile round trip reproduces the bytes");
  return 0;
}
