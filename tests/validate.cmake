# The validation suite (issue 9): the whole suite run with a hand calculation of each family's
# metric, the model files against their sources' figures, the reference result (validation);
# bad input to `trainsim validate` and to case tables (quick).
trainsim_add_test(test_validate SOURCES test_validate.cpp LABELS "validation")
trainsim_add_test(test_validate_input SOURCES test_validate_input.cpp LABELS "quick")
