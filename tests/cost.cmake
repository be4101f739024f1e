trainsim_add_test(test_cost SOURCES test_training_run.cpp LABELS "quick;validation")
