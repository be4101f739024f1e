trainsim_add_test(test_memo SOURCES test_memo.cpp LABELS "quick")
