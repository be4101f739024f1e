# DualPipeV (issue 15): the reference op order, the turn of the V, bubble and memory closed forms.
trainsim_add_test(test_schedule_dualpipev SOURCES test_schedule_dualpipev.cpp LABELS validation)
trainsim_add_test(test_dualpipev_plan SOURCES test_dualpipev_plan.cpp LABELS validation)
