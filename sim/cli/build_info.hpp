#pragma once
// The git commit the trainsim binary was built from: "3ef7efb6a1c2", "3ef7efb6a1c2-dirty" (tracked
// files differed from it), or "unknown (not built from a git checkout)". Generated at build
// time by cmake/build_info.cmake into the build folder; only the trainsim executable links it.

namespace trainsim::cli {
const char* build_commit();
}  // namespace trainsim::cli
