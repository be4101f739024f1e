# Fitted kernel cost models, transfer rules, calibration file (issue 4 points 3, 5, 6) and the
# replay target on DeepSeek's H800 trace (point 4).
trainsim_add_test(test_calibration_fit SOURCES test_fit.cpp test_cost_model.cpp LABELS quick)
trainsim_add_test(test_replay SOURCES test_replay.cpp LABELS validation)
# Transferred GEMM classes against each GPU's measured maximum matmul throughput (issue 11;
# profiles/mamf.toml): the transfer rule by hand, the ceiling, no prediction above MAMF.
trainsim_add_test(test_transfer_ceiling SOURCES test_transfer_ceiling.cpp LABELS quick)
