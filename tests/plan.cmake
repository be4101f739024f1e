# trainsim plan (issue 13): the plan space against the config reader, the fast estimate against
# hand calculations and the step simulator, the search and its reports (quick: a few seconds).
trainsim_add_test(test_plan SOURCES test_plan.cpp LABELS quick)
