#include "sweep/identity.hpp"

#include <elf.h>
#include <link.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "config/scenario.hpp"
#include "core/error.hpp"
#include "core/input.hpp"

namespace trainsim::sweep {

namespace fs = std::filesystem;

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  TS_ASSERT(ctx != nullptr, "EVP_MD_CTX_new");
  const bool ok = EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, bytes.data(), bytes.size()) == 1 && EVP_DigestFinal_ex(ctx, md, &len) == 1;
  EVP_MD_CTX_free(ctx);
  TS_ASSERT(ok, "SHA-256 (OpenSSL EVP) failed");
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

namespace {

// The NT_GNU_BUILD_ID note of the main executable's loaded segments, as hex ("" if none).
int find_build_id(struct dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') return 0;  // the executable comes first, unnamed
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
    const char* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      ElfW(Nhdr) nh;
      std::memcpy(&nh, p, sizeof nh);
      const char* name = p + sizeof nh;
      const char* desc = name + ((nh.n_namesz + 3) & ~3u);
      const char* next = desc + ((nh.n_descsz + 3) & ~3u);
      if (next > end) break;
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
        for (unsigned j = 0; j < nh.n_descsz; ++j) *out += fmt::format("{:02x}", static_cast<unsigned char>(desc[j]));
        return 1;
      }
      p = next;
    }
  }
  return 1;
}

}  // namespace

const std::string& build_identity() {
  static const std::string id = [] {
    std::string b;
    dl_iterate_phdr(find_build_id, &b);
    if (!b.empty()) return "build-id " + b;
    // No build-id note: the executable's bytes.
    return "exe-sha256 " + sha256_hex(read_input_text("/proc/self/exe", "trainsim executable", std::uint64_t{4} << 30));
  }();
  return id;
}

const std::string& data_identity() {
  static const std::string id = [] {
    const fs::path root = data_dir();
    std::vector<fs::path> files;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root / "profiles", ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_regular_file() && it->path().extension() == ".toml") files.push_back(it->path());
    std::sort(files.begin(), files.end());
    std::string all;
    for (const auto& f : files)
      all += "--- " + fs::relative(f, root).generic_string() + "\n" + read_input_text(f.string(), "data file") + "\n";
    return sha256_hex(all);
  }();
  return id;
}

}  // namespace trainsim::sweep
