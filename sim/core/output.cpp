#include "core/output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "core/error.hpp"

namespace trainsim {

namespace fs = std::filesystem;

namespace {

std::string prefix(const std::string& option) { return option.empty() ? std::string() : option + ": "; }

[[noreturn]] void fail(const std::string& option, const std::string& what, const std::string& path, int err) {
  throw UsageError(fmt::format("{}cannot {} '{}': {}", prefix(option), what, path, std::strerror(err)));
}

// A name for a temporary beside `target`: hidden, unique in this process and across processes.
std::string temp_name(const fs::path& target) {
  static std::atomic<unsigned> counter{0};
  return (target.parent_path() /
          fmt::format(".{}.tmp-{}-{}", target.filename().string(), static_cast<long>(::getpid()), counter++))
      .string();
}

void write_all(int fd, const std::string& content, const std::string& option, const std::string& shown) {
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(option, "write", shown, errno);
    }
    done += static_cast<std::size_t>(n);
  }
}

// Creates `tmp` exclusively, writes `content`, flushes it to the disk and closes it. On failure
// removes `tmp` and throws naming `shown` (the file the user asked for).
void write_new_file(const std::string& tmp, const std::string& content, const std::string& option,
                    const std::string& shown) {
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) fail(option, "write", shown, errno);
  try {
    write_all(fd, content, option, shown);
    if (::fsync(fd) != 0 && errno != EINVAL) fail(option, "write", shown, errno);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    fail(option, "write", shown, e);
  }
}

void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a folder";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a pipe (FIFO)";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

void check_plain_name(const std::string& name) {
  TS_ASSERT(!name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos,
            fmt::format("output file name '{}' must be a plain name inside its folder", name));
}

}  // namespace

void check_output_file(const std::string& option, const std::string& path) {
  if (path.empty()) throw UsageError(fmt::format("{}an empty path is not a file name", prefix(option)));
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw UsageError(fmt::format("{}'{}' is {}; give the name of a file to write", prefix(option), path, kind_of(st.st_mode)));
  if (path.back() == '/') throw UsageError(fmt::format("{}'{}' names a folder; give the name of a file to write", prefix(option), path));
  const fs::path parent = fs::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  if (::stat(dir.c_str(), &st) != 0) fail(option, "write into folder", dir, errno);
  if (!S_ISDIR(st.st_mode)) throw UsageError(fmt::format("{}'{}' is not a folder", prefix(option), dir));
  if (::access(dir.c_str(), W_OK | X_OK) != 0) fail(option, "write into folder", dir, errno);
}

void check_output_dir(const std::string& option, const std::string& dir) {
  if (dir.empty()) throw UsageError(fmt::format("{}an empty path is not a folder name", prefix(option)));
  fs::path p = fs::path(dir);
  struct stat st {};
  // The nearest existing ancestor (or the folder itself) must be a writable folder.
  while (true) {
    const std::string s = p.empty() ? "." : p.string();
    if (::stat(s.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode))
        throw UsageError(fmt::format("{}'{}' is {}, not a folder", prefix(option), s,
                                     S_ISREG(st.st_mode) ? "a file" : kind_of(st.st_mode)));
      if (::access(s.c_str(), W_OK | X_OK) != 0) fail(option, "write into folder", s, errno);
      return;
    }
    if (errno != ENOENT) fail(option, "write into folder", s, errno);
    if (p.empty() || p == p.root_path()) return;
    p = p.parent_path();
  }
}

void write_file_atomic(const std::string& path, const std::string& content, const std::string& option) {
  check_output_file(option, path);
  const fs::path target(path);
  const std::string tmp = temp_name(target);
  write_new_file(tmp, content, option, path);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    fail(option, "write", path, e);
  }
  sync_dir(target.parent_path());
}

void write_files_atomic(const std::string& dir, const std::vector<OutputFile>& files, const std::string& option) {
  for (const auto& f : files) check_plain_name(f.name);
  check_output_dir(option, dir);
  const fs::path target = fs::path(dir).lexically_normal();
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0) {
    // The folder exists: every file as a temporary inside it first, then renamed over the targets.
    if (!S_ISDIR(st.st_mode))
      throw UsageError(fmt::format("{}'{}' is {}, not a folder", prefix(option), dir,
                                   S_ISREG(st.st_mode) ? "a file" : kind_of(st.st_mode)));
    for (const auto& f : files) {
      const std::string shown = (target / f.name).string();
      struct stat fst {};
      if (::lstat(shown.c_str(), &fst) == 0 && !S_ISREG(fst.st_mode))
        throw UsageError(fmt::format("{}'{}' is {}; it would be replaced by a file", prefix(option), shown, kind_of(fst.st_mode)));
    }
    std::vector<std::string> temps;
    try {
      for (const auto& f : files) {
        const std::string shown = (target / f.name).string();
        const std::string tmp = temp_name(target / f.name);
        write_new_file(tmp, f.content, option, shown);
        temps.push_back(tmp);
      }
    } catch (...) {
      for (const auto& t : temps) ::unlink(t.c_str());
      throw;
    }
    for (std::size_t i = 0; i < files.size(); ++i) {
      const std::string shown = (target / files[i].name).string();
      if (::rename(temps[i].c_str(), shown.c_str()) != 0) {
        const int e = errno;
        for (std::size_t j = i; j < temps.size(); ++j) ::unlink(temps[j].c_str());
        fail(option, "write", shown, e);
      }
    }
    sync_dir(target);
    return;
  }

  // A new folder: missing parents are created (and removed again on failure), the files are
  // written into a temporary folder beside the target, which is then renamed into place.
  std::vector<fs::path> created;
  auto undo_parents = [&] {
    for (auto it = created.rbegin(); it != created.rend(); ++it) ::rmdir(it->c_str());
  };
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  {
    std::vector<fs::path> missing;
    for (fs::path p = parent; !p.empty() && ::stat(p.c_str(), &st) != 0; p = p.parent_path()) {
      missing.push_back(p);
      if (p == p.root_path()) break;
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      if (::mkdir(it->c_str(), 0777) != 0 && errno != EEXIST) {
        const int e = errno;
        undo_parents();
        fail(option, "create folder", it->string(), e);
      }
      created.push_back(*it);
    }
  }
  const std::string tmpdir = temp_name(target);
  if (::mkdir(tmpdir.c_str(), 0777) != 0) {
    const int e = errno;
    undo_parents();
    fail(option, "create folder", target.string(), e);
  }
  try {
    for (const auto& f : files)
      write_new_file((fs::path(tmpdir) / f.name).string(), f.content, option, (target / f.name).string());
    sync_dir(tmpdir);
    if (::rename(tmpdir.c_str(), target.c_str()) != 0) fail(option, "create folder", target.string(), errno);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmpdir, ec);
    undo_parents();
    throw;
  }
  sync_dir(parent);
}

}  // namespace trainsim
