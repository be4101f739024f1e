#pragma once
// Many processes on MPI (docs/sweep.md, "Many processes: MPI"): `mpirun -np N trainsim sweep ...`
// runs N copies of trainsim that share one sweep's points. Rank 0 owns the SQLite store, hands
// points out as ranks ask for them (run_sweep, sweep/runner.hpp) and stores each result as it
// arrives; every other rank evaluates points, sends the results back and prints nothing.
//
// MPI is optional at build time (CMake TRAINSIM_MPI=AUTO|ON|OFF). Without it, and without an MPI
// launcher, `ranks()` is {rank 0 of 1} and everything here is a no-op. A process started by a
// launcher (OpenMPI's mpirun sets OMPI_COMM_WORLD_SIZE; MPICH, Intel MPI and srun's PMI set
// PMI_SIZE) as one of several either initialises MPI (a distributing command of an MPI build) or
// is refused before any work: by a build without MPI, since each process would run the whole
// sweep, and for any other command, since each process would do all of its work.
//
// Staying in step. The ranks of a distributed command meet only in collective *stages*:
// `all_ranks_agree` (setup that may fail on some ranks only: reading files, opening the store on
// rank 0), run_sweep, and the end of the command. Every stage begins with rank 0 broadcasting a
// header, "a stage" or "the end, with this exit status", so a rank 0 that fails between stages
// ends the others at their next stage instead of leaving them waiting. A failure inside a stage
// reaches every rank as the same kind of error (the lowest failing rank's: every rank exits with
// one status, and only rank 0 prints it). A rank other than 0 that fails between stages learns
// at the end whether rank 0 is ending too (then all exit normally) or starting another stage
// without it (then it prints its error and ends the job with MPI_Abort); so does any rank whose
// error escapes a stage unhandled. Nothing ever waits for a rank that has left.
//
// MPI calls are made from the main thread only (MPI_THREAD_FUNNELED); worker threads evaluate.

#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace trainsim::sweep {

// This process among the processes of one command.
struct Ranks {
  int rank = 0;
  int size = 1;
  bool root() const { return rank == 0; }
  bool distributed() const { return size > 1; }
};

// {0, 1} unless an MpiSession initialised MPI.
const Ranks& ranks();

// Whether this trainsim was built with MPI.
bool mpi_built();

// What an MPI launcher announced in the environment: the number of processes (1 without a
// launcher) and this one's rank (0 without). `launcher_variable()` names the variable read.
int launcher_size();
int launcher_rank();
std::string launcher_variable();

// main(): initialises MPI when this process is one of several started by an MPI launcher, and
// ends it (the end-of-command stage, then MPI_Finalize) when the command succeeds (destructor)
// or fails (fail()). Throws UsageError, before MPI is initialised, when started as several
// processes and `command_distributes` is false or the build has no MPI.
class MpiSession {
 public:
  MpiSession(int& argc, char**& argv, const std::string& command, bool command_distributes);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // True on ranks other than 0, which print nothing of their own (help, parse errors).
  bool quiet() const;
  // An error reached main(): prints `text` to stderr (rank 0; another rank only when it ends
  // the job), ends MPI and returns `status` on rank 0 and 0 on the others (rank 0 reports the
  // job's status) — or ends the whole job with MPI_Abort(status) when another rank may still be
  // waiting for this one.
  int fail(int status, const std::string& text);

 private:
  void finish(int status, const std::string& text);
  bool initialised_ = false;
  bool finished_ = false;
};

// A collective stage: runs `f` on every rank, then checks whether it threw anywhere. If it did,
// every rank throws the error of the lowest rank that failed: that rank rethrows its own, the
// others an error of the same kind (input error, plan does not fit, internal error, other) with
// its message (prefixed "rank R: " when R is not 0). Without MPI (one rank) it is just f().
void all_ranks_agree(const std::function<void()>& f);

// A collective stage in which every rank contributes bytes and receives every rank's, in rank
// order (`trainsim plan` shares its screening this way). Without MPI: {mine}.
std::vector<std::string> all_ranks_share(const std::string& mine);

namespace detail {
// Stages (see above): stage_begin() receives rank 0's header (throwing, on the other ranks, the
// error rank 0 ended with, if it ended) and marks this rank inside a stage until stage_end().
// Stages nest.
void stage_begin();
void stage_end();
// all_ranks_agree's check inside a stage that has begun (no header of its own); an agreed
// failure is thrown still inside the stage.
void agree(const std::function<void()>& f);

// The exit-status class of an exception (2 input, 3 plan does not fit, 70 internal, 1 other),
// its message, and an exception of that class rebuilt from them.
int error_class(const std::exception_ptr& e);
std::string error_message(const std::exception_ptr& e);
[[noreturn]] void throw_error_class(int cls, const std::string& message);

// Point-to-point messages of MPI_COMM_WORLD, as bytes (only called when ranks().distributed()).
struct Message {
  int source = 0;
  int tag = 0;
  std::string bytes;
};
// Starts sending; the bytes are kept until the send completes (progressed by poll and flush).
void send(int dest, int tag, std::string bytes);
// A message that has arrived (from `source`, or from any rank when -1), received; none if none has.
std::optional<Message> poll(int source = -1);
// Waits until every send of this process has completed.
void flush();
// MPI_Bcast of `bytes` (of any length) from `root`.
void broadcast(std::string& bytes, int root);
}  // namespace detail

}  // namespace trainsim::sweep
