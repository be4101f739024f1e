# Engine, task graph and pipeline schedules (issue 3).
trainsim_add_test(test_engine SOURCES test_engine.cpp LABELS quick)
trainsim_add_test(test_schedule SOURCES test_schedule.cpp LABELS validation)
trainsim_add_test(test_schedule_dualpipe SOURCES test_schedule_dualpipe.cpp LABELS validation)
trainsim_add_test(test_schedule_cli SOURCES test_schedule_cli.cpp LABELS quick)
