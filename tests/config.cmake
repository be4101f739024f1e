trainsim_add_test(test_config SOURCES test_config.cpp test_units.cpp LABELS quick)
