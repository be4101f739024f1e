# Calibration from measured kernel profiles (issue 4): Kineto import, classifier, profile format.
trainsim_add_test(test_calibration SOURCES test_kineto.cpp LABELS quick)
