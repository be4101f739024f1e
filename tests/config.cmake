trainsim_add_test(test_config SOURCES test_config.cpp test_units.cpp LABELS quick)
trainsim_add_test(test_scenario_sections SOURCES test_scenario_sections.cpp LABELS quick)
