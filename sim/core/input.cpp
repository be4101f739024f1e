#include "core/input.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/error.hpp"

namespace trainsim {

namespace {

std::string bytes_text(std::uint64_t n) {
  if (n >= (std::uint64_t{1} << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(n) / (1 << 30));
  if (n >= (std::uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1 << 20));
  return fmt::format("{} bytes", n);
}

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a pipe (FIFO)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

// Closes the descriptor on every path out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

bool is_gzip(const std::string& data) {
  return data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f && static_cast<unsigned char>(data[1]) == 0x8b;
}

std::string read_input_text(const std::string& path, const std::string& what, std::uint64_t limit) {
  if (path.empty()) throw DataError(SourcePos{"(empty path)"}, fmt::format("no {} given", what));
  Fd f;
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
  f.fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (f.fd < 0) {
    const int e = errno;
    throw DataError(SourcePos{path}, fmt::format("cannot open {}: {}", what, std::strerror(e)));
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) {
    const int e = errno;
    throw DataError(SourcePos{path}, fmt::format("cannot read {}: {}", what, std::strerror(e)));
  }
  if (!S_ISREG(st.st_mode)) throw DataError(SourcePos{path}, fmt::format("the {} is {}, not a file", what, kind_of(st.st_mode)));
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > limit)
    throw DataError(SourcePos{path}, fmt::format("the {} holds {}; the input limit is {} (docs/limits.md)", what,
                                                 bytes_text(size), bytes_text(limit)));
  ::fcntl(f.fd, F_SETFL, ::fcntl(f.fd, F_GETFL) & ~O_NONBLOCK);
  std::string text;
  text.resize(static_cast<std::size_t>(size));
  std::size_t got = 0;
  for (;;) {
    if (got == text.size()) {
      // The file may have grown since fstat: keep reading up to the limit.
      if (text.size() >= limit + 1) break;
      text.resize(std::min<std::uint64_t>(limit + 1, text.size() + 65536));
    }
    const ssize_t n = ::read(f.fd, text.data() + got, text.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      throw DataError(SourcePos{path}, fmt::format("cannot read {}: {}", what, std::strerror(e)));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  if (got > limit)
    throw DataError(SourcePos{path}, fmt::format("the {} holds more than {}, the input limit (docs/limits.md)", what,
                                                 bytes_text(limit)));
  return text;
}

std::string gunzip(const std::string& data, const std::string& name, std::uint64_t limit) {
  z_stream zs{};
  // 15 + 32: a zlib or gzip header, detected automatically.
  if (inflateInit2(&zs, 15 + 32) != Z_OK) throw DataError(SourcePos{name}, "cannot start gzip decompression (zlib)");
  std::string out;
  std::size_t in_pos = 0;
  int rc = Z_OK;
  char buf[1 << 16];
  try {
    while (true) {
      const std::size_t chunk = std::min<std::size_t>(data.size() - in_pos, 1u << 30);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + in_pos));
      zs.avail_in = static_cast<uInt>(chunk);
      const std::size_t before_in = zs.avail_in;
      zs.next_out = reinterpret_cast<Bytef*>(buf);
      zs.avail_out = sizeof buf;
      rc = inflate(&zs, Z_NO_FLUSH);
      in_pos += before_in - zs.avail_in;
      out.append(buf, sizeof buf - zs.avail_out);
      if (out.size() > limit)
        throw DataError(SourcePos{name}, fmt::format("inflates to more than {}, the input limit (docs/limits.md)",
                                                     bytes_text(limit)));
      if (rc == Z_STREAM_END) {
        // Concatenated gzip members (what `cat a.gz b.gz` gives) are one stream to gzip(1).
        if (in_pos < data.size() && is_gzip(data.substr(in_pos, 2))) {
          inflateReset(&zs);
          continue;
        }
        break;
      }
      if (rc == Z_BUF_ERROR && in_pos >= data.size() && zs.avail_out != 0)
        throw DataError(SourcePos{name}, fmt::format("truncated gzip stream (input ends after {} compressed bytes)",
                                                     data.size()));
      if (rc != Z_OK && rc != Z_BUF_ERROR)
        throw DataError(SourcePos{name}, fmt::format("damaged gzip stream at compressed byte {}: {}", in_pos,
                                                     zs.msg != nullptr ? zs.msg : zError(rc)));
    }
  } catch (...) {
    inflateEnd(&zs);
    throw;
  }
  inflateEnd(&zs);
  return out;
}

InputFile read_input(const std::string& path, const std::string& what, bool inflate, std::uint64_t limit) {
  InputFile f;
  f.text = read_input_text(path, what, limit);
  if (inflate && is_gzip(f.text)) {
    f.text = gunzip(f.text, path, limit);
    f.gzip = true;
  }
  return f;
}

bool path_exists(const std::filesystem::path& p) noexcept {
  std::error_code ec;
  return std::filesystem::exists(p, ec) && !ec;
}

bool is_file(const std::filesystem::path& p) noexcept {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec) && !ec;
}

bool is_dir(const std::filesystem::path& p) noexcept {
  std::error_code ec;
  return std::filesystem::is_directory(p, ec) && !ec;
}

}  // namespace trainsim
