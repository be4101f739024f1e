#pragma once
// Writing output files so that nothing is ever half-written: the content goes to a temporary
// file beside the target, which is renamed over it only once complete.
#include <string>

namespace trainsim {

// Throws UsageError naming the path if the folder does not exist or cannot be written.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace trainsim
