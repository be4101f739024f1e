trainsim_add_test(test_step SOURCES test_step.cpp LABELS "quick;validation")
