#pragma once
// Reading the files a user names: the one place that opens an input path. It refuses what a
// stream would silently read as empty or endless (a directory, a FIFO, a device), files larger
// than the input limit, and names the path and the operating system's reason
// ("Permission denied"). Gzip-compressed input (the 1f 8b magic, whatever the file is called:
// PyTorch writes `*.pt.trace.json.gz`) is inflated, with the same limit on the inflated size
// so that a small compressed file cannot expand without bound.
#include <cstdint>
#include <filesystem>
#include <string>

namespace trainsim {

// The most bytes one input file may hold (after decompression): 1 GiB. A parsed JSON trace
// takes several times its text in memory, so this also bounds the importer's memory
// (docs/limits.md).
inline constexpr std::uint64_t kMaxInputBytes = std::uint64_t{1} << 30;

struct InputFile {
  std::string text;   // the bytes (inflated when the file was gzip-compressed)
  bool gzip = false;  // the file was gzip-compressed
};

// Reads `path` whole. `what` names the file's role in messages ("trace file", "profile").
// Throws DataError(path, ...) when the path is missing, not a regular file, unreadable, larger
// than `limit` bytes, or (with `inflate`) a damaged or truncated gzip stream.
InputFile read_input(const std::string& path, const std::string& what, bool inflate = false,
                     std::uint64_t limit = kMaxInputBytes);

// The same, without decompression: the file's bytes.
std::string read_input_text(const std::string& path, const std::string& what, std::uint64_t limit = kMaxInputBytes);

// Inflates a gzip (or zlib) stream held in memory; concatenated gzip members are joined.
// Throws DataError(`name`, ...) on a damaged or truncated stream or when the result exceeds `limit`.
std::string gunzip(const std::string& data, const std::string& name, std::uint64_t limit = kMaxInputBytes);

// Questions about a path that never throw: a name the operating system refuses ("File name too
// long", a component that is not a folder, no permission to look) is an answer of false, so that
// the caller's own message names the path and key instead of an escaped filesystem_error.
bool path_exists(const std::filesystem::path& p) noexcept;
bool is_file(const std::filesystem::path& p) noexcept;  // a regular file (following links)
bool is_dir(const std::filesystem::path& p) noexcept;   // a directory (following links)

// True when `data` starts with the gzip magic bytes 1f 8b.
bool is_gzip(const std::string& data);

}  // namespace trainsim
