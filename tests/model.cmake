trainsim_add_test(test_model SOURCES test_model_math.cpp test_memory.cpp LABELS "quick;validation")
trainsim_add_test(test_describe_cli SOURCES test_describe_cli.cpp LABELS quick)
trainsim_add_test(test_layer_split SOURCES test_layer_split.cpp LABELS "quick;validation")
