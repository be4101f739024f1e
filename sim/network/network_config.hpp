#pragma once
// The [network] table of a scenario: the cluster fabric and the link efficiencies.
//
//   [network]
//   fabric = "mpft"               # single | rail | mpft | clos3
//   nvlink_latency = "1us"        # per NVLink hop (GPU -> NVSwitch -> GPU), one-way
//   ib_latency = "3.7us"          # NIC to NIC through one switch, one-way
//   switch_latency = "0.3us"      # each further switch hop
//   switch_ports = 64             # radix of the fabric switches (mpft/rail/clos3 leaves)
//   oversubscription = 1.0        # clos3: down/up bandwidth at the spine->core tier (Llama 3: 7)
//   pod_leaves = 16               # clos3: leaves per pod
//   nvlink_efficiency = 0.652     # achieved/nominal one-way NVLink bandwidth of comm kernels
//   ib_efficiency = 0.7267        # achieved/nominal NIC bandwidth of comm kernels
//   nvlink = "400GB/s"            # optional override of the hardware file (bidirectional sum)
//   nic = "400Gb/s"               # optional override of the hardware file (one direction)
//
// Defaults (used when the key is absent): the two efficiencies come from the GPU's calibration
// file (profiles/<gpu>/calibration.toml, [network.nvlink] and [network.ib]: fitted by `trainsim
// calibrate` to DeepEP's and nccl-tests' measurements, or carried over from another GPU's, as
// the file says); the latencies are assumptions (stated as such in the README), not
// measurements.

#include <filesystem>
#include <optional>
#include <string>

#include "config/reader.hpp"

namespace trainsim::network {

enum class Fabric { SingleSwitch, Rail, MultiPlaneFatTree, Clos3 };

const char* fabric_name(Fabric f);
Fabric parse_fabric(const std::string& name);  // throws UsageError on an unknown name

// The efficiencies a bare NetworkConfig{} starts with (library callers and tests that build a
// topology by hand): the earlier minimax fit to DeepEP's Feb-2025 H800 table. Scenarios do not
// use them: load_scenario() starts from calibrated_network() of the scenario's GPU.
inline constexpr double kH800NvlinkEfficiency = 0.652;
inline constexpr double kH800IbEfficiency = 0.7267;

struct NetworkConfig {
  Fabric fabric = Fabric::MultiPlaneFatTree;
  double nvlink_latency = 1e-6;      // s, assumed
  double ib_latency = 3.7e-6;        // s, assumed
  double switch_latency = 0.3e-6;    // s, assumed
  int switch_ports = 64;             // ISCA25 §5.1: 64-port 400G IB switches
  double oversubscription = 1.0;
  int pod_leaves = 16;
  double nvlink_efficiency = kH800NvlinkEfficiency;
  double ib_efficiency = kH800IbEfficiency;
  std::optional<double> nvlink;      // bytes/s, bidirectional sum; empty = hardware file
  std::optional<double> nic;         // bytes/s, one direction; empty = hardware file
};

// The [network] defaults for a GPU: NetworkConfig{} with the link efficiencies of
// <data_dir>/profiles/<gpu>/calibration.toml ([network.nvlink], [network.ib]) where the file
// has them. `source` (if given) receives where each came from. Throws ConfigError on a file that
// cannot be read.
NetworkConfig calibrated_network(const std::string& gpu, const std::filesystem::path& data_dir,
                                 std::string* source = nullptr);

// Strict reader: every key optional (`defaults` when absent), unknown keys rejected,
// quantities with units. Calls s.finish().
NetworkConfig parse_network(Section s, const NetworkConfig& defaults = NetworkConfig{});

}  // namespace trainsim::network
