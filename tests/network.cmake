# Cluster network, collectives and MoE all-to-all (issue 5).
trainsim_add_test(test_network SOURCES test_network.cpp LABELS quick)
trainsim_add_test(test_alltoall SOURCES test_alltoall.cpp LABELS validation)
