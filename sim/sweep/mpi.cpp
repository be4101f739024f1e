#include "sweep/mpi.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <stdexcept>

#include <fmt/format.h>

#include "core/error.hpp"

#ifdef TRAINSIM_HAVE_MPI
// The C API only (OpenMPI and MPICH would otherwise pull in their deprecated C++ bindings).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace trainsim::sweep {

namespace {

Ranks g_ranks;
int g_stage_depth = 0;        // inside this many nested stages
bool g_end_received = false;  // a rank other than 0 has received rank 0's end-of-command header

// The launcher's process count and rank variables, in the order they are looked for.
struct LauncherVars {
  const char* size;
  const char* rank;
};
constexpr LauncherVars kLaunchers[] = {{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"}, {"PMI_SIZE", "PMI_RANK"}};

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 0 || n > (1 << 24)) return fallback;
  return static_cast<int>(n);
}

const LauncherVars* launcher() {
  for (const auto& l : kLaunchers)
    if (env_int(l.size, 0) > 0) return &l;
  return nullptr;
}

// Stage headers broadcast by rank 0: "S" (a stage begins) or "E<status>" (the command ends).
constexpr char kStage = 'S', kEnd = 'E';

#ifdef TRAINSIM_HAVE_MPI
// Sends in flight, each with the bytes it reads until it completes.
struct Pending {
  MPI_Request request = MPI_REQUEST_NULL;
  std::string bytes;
};
std::deque<Pending>& pending() {
  static std::deque<Pending> p;
  return p;
}
void progress_sends() {
  auto& p = pending();
  while (!p.empty()) {
    int done = 0;
    MPI_Test(&p.front().request, &done, MPI_STATUS_IGNORE);
    if (!done) break;
    p.pop_front();
  }
}
int lowest_failing_rank(bool failed) {
  int mine = failed ? g_ranks.rank : g_ranks.size, first = g_ranks.size;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return first;
}
#else
int lowest_failing_rank(bool failed) { return failed ? 0 : 1; }
#endif

}  // namespace

const Ranks& ranks() { return g_ranks; }

bool mpi_built() {
#ifdef TRAINSIM_HAVE_MPI
  return true;
#else
  return false;
#endif
}

int launcher_size() {
  const LauncherVars* l = launcher();
  return l ? env_int(l->size, 1) : 1;
}

int launcher_rank() {
  const LauncherVars* l = launcher();
  return l ? env_int(l->rank, 0) : 0;
}

std::string launcher_variable() {
  const LauncherVars* l = launcher();
  return l ? l->size : "";
}

MpiSession::MpiSession(int& argc, char**& argv, const std::string& command, bool command_distributes) {
  const int n = launcher_size();
  if (n <= 1) return;
  const std::string how = fmt::format("{}={}", launcher_variable(), n);
  if (!command_distributes)
    throw UsageError(fmt::format(
        "'trainsim {}' was started as {} processes by an MPI launcher ({}), but only 'trainsim sweep' and 'trainsim plan' share their work "
        "between processes: each process would do all of it; run it as one process (without mpirun)",
        command, n, how));
  if (!mpi_built())
    throw UsageError(fmt::format(
        "started as {} processes by an MPI launcher ({}), but this trainsim was built without MPI, so each process "
        "would do all of the work; rebuild it with MPI (scripts/install-deps.sh installs libopenmpi-dev; cmake "
        "-DTRAINSIM_MPI=ON), or run one process (--jobs N evaluates on N threads)",
        n, how));
#ifdef TRAINSIM_HAVE_MPI
  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    throw UsageError(fmt::format("started by an MPI launcher ({}), but MPI_Init failed", how));
  initialised_ = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_ranks.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_ranks.size);
  if (provided < MPI_THREAD_FUNNELED || g_ranks.size != n) {
    // Every process sees the same, so all of them stop here, before any stage.
    const int size = g_ranks.size;
    MPI_Finalize();
    initialised_ = false;
    g_ranks = Ranks{};
    if (provided < MPI_THREAD_FUNNELED)
      throw UsageError("this MPI library does not allow threads beside the one that calls MPI (MPI_THREAD_FUNNELED)");
    throw UsageError(fmt::format(
        "started as {} processes by an MPI launcher ({}), but MPI sees {} process(es): the launcher belongs to another "
        "MPI than the one this trainsim was built with; use that MPI's mpirun",
        n, how, size));
  }
#else
  (void)argc;
  (void)argv;
#endif
}

MpiSession::~MpiSession() {
  if (!finished_) finish(0, "");
}

bool MpiSession::quiet() const { return !g_ranks.root(); }

int MpiSession::fail(int status, const std::string& text) {
  if (!initialised_) {
    // Without MPI; or refused before MPI_Init, when only the launcher's rank 0 prints.
    if (launcher_rank() == 0 && !text.empty()) std::fputs(text.c_str(), stderr);
    finished_ = true;
    return status;
  }
  finish(status, text);
  // Rank 0 reports the failure and its status is the job's; the others, having ended in step
  // with it, leave with 0 (a failing one could make the launcher end rank 0 before it reports).
  return g_ranks.root() ? status : 0;
}

void MpiSession::finish(int status, const std::string& text) {
  finished_ = true;
  if (!initialised_) return;
#ifdef TRAINSIM_HAVE_MPI
  const auto abort_job = [&] {
    if (!text.empty()) std::fputs(fmt::format("rank {} of {}: {}", g_ranks.rank, g_ranks.size, text).c_str(), stderr);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status != 0 ? status : 1);
  };
  // An error that escaped a stage: the other ranks may be waiting inside it for this one.
  if (g_stage_depth > 0) abort_job();
  if (g_ranks.root()) {
    if (!text.empty()) std::fputs(text.c_str(), stderr);
    std::string end = fmt::format("{}{}", kEnd, status);
    detail::broadcast(end, 0);
  } else if (!g_end_received) {
    std::string header;
    detail::broadcast(header, 0);
    // Rank 0 starts a stage this rank will not take part in (this rank failed alone, or its
    // command ended early): nothing else would end it.
    if (header.empty() || header[0] != kEnd) abort_job();
  }
  detail::flush();
  MPI_Finalize();
#else
  (void)status;
  (void)text;
#endif
}

namespace detail {

void stage_begin() {
  if (!g_ranks.distributed()) return;
  std::string header(1, kStage);
  broadcast(header, 0);
  if (!g_ranks.root() && !header.empty() && header[0] == kEnd) {
    // Rank 0 ended the command (it failed between stages): so does this rank, quietly.
    g_end_received = true;
    const int status = std::atoi(header.c_str() + 1);
    throw_error_class(status, fmt::format("rank 0 ended the command with exit status {}", status));
  }
  ++g_stage_depth;
}

void stage_end() {
  if (g_ranks.distributed() && g_stage_depth > 0) --g_stage_depth;
}

int error_class(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const InputError&) {
    return 2;
  } catch (const PlanDoesNotFit&) {
    return 3;
  } catch (const InternalError&) {
    return 70;
  } catch (...) {
    return 1;
  }
}

std::string error_message(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown error";
  }
}

void throw_error_class(int cls, const std::string& message) {
  switch (cls) {
    case 2: throw UsageError(message);
    case 3: throw PlanDoesNotFit(message);
    case 70: throw InternalError(message);
    default: throw std::runtime_error(message);
  }
}

#ifdef TRAINSIM_HAVE_MPI
void send(int dest, int tag, std::string bytes) {
  TS_ASSERT(bytes.size() < (std::size_t{1} << 31), "MPI message over 2 GiB");
  auto& p = pending();
  p.push_back(Pending{MPI_REQUEST_NULL, std::move(bytes)});
  Pending& m = p.back();  // a deque: references stay valid as more are pushed
  MPI_Isend(m.bytes.data(), static_cast<int>(m.bytes.size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD, &m.request);
  progress_sends();
}

std::optional<Message> poll(int source) {
  progress_sends();
  int flag = 0;
  MPI_Status st;
  MPI_Iprobe(source < 0 ? MPI_ANY_SOURCE : source, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
  if (!flag) return std::nullopt;
  int count = 0;
  MPI_Get_count(&st, MPI_BYTE, &count);
  Message m;
  m.source = st.MPI_SOURCE;
  m.tag = st.MPI_TAG;
  m.bytes.resize(static_cast<std::size_t>(count));
  MPI_Recv(m.bytes.data(), count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return m;
}

void flush() {
  for (auto& m : pending()) MPI_Wait(&m.request, MPI_STATUS_IGNORE);
  pending().clear();
}

void broadcast(std::string& bytes, int root) {
  std::uint64_t n = bytes.size();
  MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD);
  TS_ASSERT(n < (std::uint64_t{1} << 31), "MPI broadcast over 2 GiB");
  bytes.resize(n);
  if (n > 0) MPI_Bcast(bytes.data(), static_cast<int>(n), MPI_BYTE, root, MPI_COMM_WORLD);
}
#else
void send(int, int, std::string) { TS_ASSERT(false, "MPI send without MPI"); }
std::optional<Message> poll(int) {
  TS_ASSERT(false, "MPI poll without MPI");
  return std::nullopt;
}
void flush() {}
void broadcast(std::string&, int) { TS_ASSERT(false, "MPI broadcast without MPI"); }
#endif

}  // namespace detail

namespace detail {
void agree(const std::function<void()>& f) {
  if (!g_ranks.distributed()) {
    f();
    return;
  }
  std::exception_ptr err;
  try {
    f();
  } catch (...) {
    err = std::current_exception();
  }
  const int first = lowest_failing_rank(err != nullptr);
  if (first >= g_ranks.size) return;
  // The first failing rank's error, to every rank: its class, then its message.
  std::string what;
  if (g_ranks.rank == first) what = fmt::format("{}\n{}", error_class(err), error_message(err));
  broadcast(what, first);
  if (g_ranks.rank == first) std::rethrow_exception(err);
  const auto nl = what.find('\n');
  const int cls = std::atoi(what.substr(0, nl).c_str());
  const std::string msg = nl == std::string::npos ? what : what.substr(nl + 1);
  throw_error_class(cls, first == 0 ? msg : fmt::format("rank {}: {}", first, msg));
}
}  // namespace detail

std::vector<std::string> all_ranks_share(const std::string& mine) {
  if (!g_ranks.distributed()) return {mine};
  std::vector<std::string> all(static_cast<std::size_t>(g_ranks.size));
  detail::stage_begin();
  for (int r = 0; r < g_ranks.size; ++r) {
    std::string& b = all[static_cast<std::size_t>(r)];
    if (r == g_ranks.rank) b = mine;
    detail::broadcast(b, r);
  }
  detail::stage_end();
  return all;
}

void all_ranks_agree(const std::function<void()>& f) {
  if (!g_ranks.distributed()) {
    f();
    return;
  }
  detail::stage_begin();
  try {
    detail::agree(f);
  } catch (...) {
    detail::stage_end();
    throw;
  }
  detail::stage_end();
}

}  // namespace trainsim::sweep
