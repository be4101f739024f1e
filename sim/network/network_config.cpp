#include "network/network_config.hpp"

#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "calibration/calibration_file.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "core/memo.hpp"

namespace trainsim::network {

const char* fabric_name(Fabric f) {
  switch (f) {
    case Fabric::SingleSwitch: return "single";
    case Fabric::Rail: return "rail";
    case Fabric::MultiPlaneFatTree: return "mpft";
    case Fabric::Clos3: return "clos3";
  }
  return "?";
}

Fabric parse_fabric(const std::string& name) {
  if (name == "single") return Fabric::SingleSwitch;
  if (name == "rail") return Fabric::Rail;
  if (name == "mpft") return Fabric::MultiPlaneFatTree;
  if (name == "clos3") return Fabric::Clos3;
  throw UsageError("unknown fabric '" + name + "' (expected single, rail, mpft or clos3)");
}

namespace {
struct Calibrated {
  NetworkConfig config;
  std::string source;
};

Calibrated read_calibrated(const std::filesystem::path& file) {
  NetworkConfig c;
  std::string src = "no calibration file: library defaults";
  if (path_exists(file)) {
    const calibration::Calibration cal = calibration::read_calibration(file.string());
    src.clear();
    if (cal.nvlink.fit.present) c.nvlink_efficiency = cal.nvlink.efficiency;
    if (cal.ib.fit.present) c.ib_efficiency = cal.ib.efficiency;
    for (const auto* l : {&cal.nvlink, &cal.ib}) {
      const char* name = l == &cal.nvlink ? "NVLink" : "IB";
      src += src.empty() ? "" : "; ";
      src += l->fit.present ? fmt::format("{} efficiency {:.4g} ({} on {})", name, l->efficiency,
                                          calibration::basis_name(l->fit.basis), l->fit.measured_on)
                            : fmt::format("{} efficiency: not in {}, library default", name, file.string());
    }
  }
  return {c, src};
}

// A file's bytes, or nullopt when it cannot be read (read_calibration then says why).
std::optional<std::string> file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

NetworkConfig calibrated_network(const std::string& gpu, const std::filesystem::path& data_dir, std::string* source) {
  // Memo "calibrated network": keyed on the file's path, whether it exists, and its bytes (every
  // scenario load asks, a sweep's points for the same few GPUs).
  static StringMemo<Calibrated> memo("calibrated network", 64);
  const auto file = data_dir / "profiles" / gpu / "calibration.toml";
  const bool exists = std::filesystem::exists(file);
  const std::optional<std::string> bytes = exists ? file_bytes(file) : std::nullopt;
  KeyWriter k;
  k.add(file.string()).add(exists).add(bytes.has_value()).add(bytes.value_or(std::string()));
  const auto r = memo.get(k.str(), [&] { return read_calibrated(file); });
  if (source != nullptr) *source = r->source;
  return r->config;
}

NetworkConfig parse_network(Section s, const NetworkConfig& defaults) {
  NetworkConfig c = defaults;
  c.fabric = parse_fabric(s.choice_or("fabric", "mpft", {"single", "rail", "mpft", "clos3"}));
  if (auto v = s.opt_quantity("nvlink_latency", Dim::Duration, 0, 1e-3)) c.nvlink_latency = *v;
  if (auto v = s.opt_quantity("ib_latency", Dim::Duration, 0, 1e-3)) c.ib_latency = *v;
  if (auto v = s.opt_quantity("switch_latency", Dim::Duration, 0, 1e-3)) c.switch_latency = *v;
  c.switch_ports = static_cast<int>(s.integer_or("switch_ports", c.switch_ports, 4, 4096));
  c.oversubscription = s.number_or("oversubscription", c.oversubscription, 1.0, 64.0);
  c.pod_leaves = static_cast<int>(s.integer_or("pod_leaves", c.pod_leaves, 1, 4096));
  c.nvlink_efficiency = s.number_or("nvlink_efficiency", c.nvlink_efficiency, 0.01, 1.0);
  c.ib_efficiency = s.number_or("ib_efficiency", c.ib_efficiency, 0.01, 1.0);
  c.nvlink = s.opt_quantity("nvlink", Dim::Bandwidth, 1e6, 1e15);
  c.nic = s.opt_quantity("nic", Dim::Bandwidth, 1e6, 1e15);
  s.finish();
  return c;
}

}  // namespace trainsim::network
