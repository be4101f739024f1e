trainsim_add_test(test_calibration_cli SOURCES test_calibration_cli.cpp LABELS "validation")
