#pragma once
// A sweep built in memory (no sweep file) so that `trainsim plan` runs its event-level stage
// through the sweep machinery (sweep::run_sweep, evaluate_point, the SQLite store): one
// [[link]]-style dimension whose settings are the candidate plans, every setting the same keys.
//
// The point ids are the ones load_sweep would give the same points (sweep/identity.hpp: the
// build, the data files, the base scenario's bytes and the files it reads, the overrides and the
// bytes of any file an override names): both use sweep::make_override and sweep::hash_inputs
// (tests/test_plan.cpp compares them through a sweep file of the same points).

#include <string>
#include <vector>

#include "config/scenario.hpp"
#include "sweep/spec.hpp"

namespace trainsim::plan {

// `settings[i]`: "key=value" strings (values as TOML text), the keys in `keys` order.
sweep::SweepSpec sweep_spec(const std::string& scenario_file, const Scenario& base, const std::string& name,
                            const std::vector<std::string>& keys, const std::vector<std::vector<std::string>>& settings);

}  // namespace trainsim::plan
