#pragma once
// Writing output files so that nothing is ever half-written.
//
// One file: its content goes to a temporary file beside the target, is flushed to the disk
// (fsync), and only then renamed over the target; a failure removes the temporary file and
// leaves the target as it was.
//
// Several files into one folder (`--out DIR`): when DIR does not exist yet, every file is
// written into a temporary folder beside it, which is renamed to DIR once all are complete;
// when DIR exists, every file is first written as a temporary file inside it and the
// temporaries are renamed over the targets only after all of them were written. Either way a
// full disk or a permission error leaves no new file behind (and none of the old ones changed).
//
// Errors are UsageErrors naming the option (when given), the path and the operating system's
// reason: "--out runs/x: cannot write 'runs/x/report.html': No space left on device".
#include <string>
#include <vector>

namespace trainsim {

void write_file_atomic(const std::string& path, const std::string& content, const std::string& option = "");

struct OutputFile {
  std::string name;     // a plain file name: no folder part, not "." or ".."
  std::string content;
};

void write_files_atomic(const std::string& dir, const std::vector<OutputFile>& files, const std::string& option = "");

// Checks, before any work is done, that `path` can be written as a file: it is not a folder,
// its folder exists and is writable. Throws UsageError naming `option`.
void check_output_file(const std::string& option, const std::string& path);

// Checks, before any work is done, that `dir` can be made an output folder: it is a folder, or
// its nearest existing ancestor is a writable folder. Throws UsageError naming `option`.
void check_output_dir(const std::string& option, const std::string& dir);

}  // namespace trainsim
