# trainsim sweep (issue 6, points 6 and 8): cartesian product, SQLite store, resume, --best, CSV.
trainsim_add_test(test_sweep SOURCES test_sweep.cpp LABELS quick)

# Many processes (issue 13 item 4): mpirun -np 2 and 3 on this machine, a rank killed mid-sweep.
# Built always; it says "MPI tests skipped: ..." (and CTest counts it skipped) where trainsim has
# no MPI (TRAINSIM_MPI) or mpirun (MPIEXEC_EXECUTABLE, from FindMPI) was not found.
trainsim_add_test(test_sweep_mpi SOURCES test_sweep_mpi.cpp LABELS quick mpi)
set(_trainsim_mpiexec "")
if(TRAINSIM_WITH_MPI AND MPIEXEC_EXECUTABLE)
  set(_trainsim_mpiexec "${MPIEXEC_EXECUTABLE}")
endif()
target_compile_definitions(test_sweep_mpi PRIVATE TRAINSIM_MPIEXEC="${_trainsim_mpiexec}")
set_tests_properties(test_sweep_mpi PROPERTIES SKIP_REGULAR_EXPRESSION "MPI tests skipped:" TIMEOUT 600)

# Sweeps without leaks (issue 13 item 5): base keys a point makes invalid (docs/sweep.md).
trainsim_add_test(test_sweep_base SOURCES test_sweep_base.cpp LABELS quick)
