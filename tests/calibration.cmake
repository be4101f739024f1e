# Calibration from measured kernel profiles (issue 4): Kineto import, classifier, profile format.
trainsim_add_test(test_calibration SOURCES test_kineto.cpp LABELS quick)
# Layer-order shape inference of the trace's dense FP8 GEMMs (needs the committed profile).
trainsim_add_test(test_shapes SOURCES test_shapes.cpp LABELS quick)
# Held-out accuracy of every GPU's calibration and the calibrated link efficiencies (issue 11).
trainsim_add_test(test_heldout SOURCES test_heldout.cpp LABELS validation)
