# Robustness (issue 14): generic Kineto import across schema versions and devices, bad-input
# regressions, nothing half-written, shared sweep databases.
trainsim_add_test(test_trace_import SOURCES test_trace_import.cpp LABELS quick)
trainsim_add_test(test_sweep_shared SOURCES test_sweep_shared.cpp LABELS quick)
trainsim_add_test(test_bad_input SOURCES test_bad_input.cpp LABELS quick)
