// Where the tree, the shared/ folder and the trainsim binary are: the only test source that
// is compiled with these paths (tests/CMakeLists.txt), so the others share the compiler cache
// between checkouts.
#include "support.hpp"

namespace ts_test {
std::filesystem::path source_dir() { return TRAINSIM_SOURCE_DIR; }
std::filesystem::path shared_dir() { return TRAINSIM_SHARED_DIR; }
const char* trainsim_bin() { return TRAINSIM_BIN; }
}  // namespace ts_test
