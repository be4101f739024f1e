# trainsim sweep (issue 6, points 6 and 8): cartesian product, SQLite store, resume, --best, CSV.
trainsim_add_test(test_sweep SOURCES test_sweep.cpp LABELS quick)
