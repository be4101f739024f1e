#pragma once
// Identity of sweep results (issue 12 point 9): a point's id is a SHA-256 (OpenSSL) over the
// build of trainsim that evaluates it and the bytes of every file its result can depend on, so
// that results from another build or from edited inputs are never reused as if current.
//
//   build_identity()   the GNU build-id of the running executable (a hash the linker computes over
//                      the linked code: any change of code or compiler gives another one), or,
//                      where the executable has none, the SHA-256 of its bytes;
//   data_identity()    the bytes of every *.toml under <data>/profiles (hardware profiles,
//                      calibrations, microbenchmark tables), by path relative to the data folder.
#include <string>

namespace trainsim::sweep {

// Lower-case hex SHA-256 of `bytes`.
std::string sha256_hex(const std::string& bytes);

// Computed once per process.
const std::string& build_identity();
const std::string& data_identity();

}  // namespace trainsim::sweep
