trainsim_add_test(test_step SOURCES test_step.cpp LABELS "quick;validation")
trainsim_add_test(test_run SOURCES test_run.cpp LABELS "quick")
trainsim_add_test(test_reference_report SOURCES test_reference_report.cpp LABELS "validation")
trainsim_add_test(test_compare SOURCES test_compare.cpp LABELS "quick")
