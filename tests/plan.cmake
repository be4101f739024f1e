# trainsim plan (issue 13): the plan space against the config reader, the fast estimate against
# hand calculations and the step simulator, the search and its reports (quick: a few seconds).
trainsim_add_test(test_plan SOURCES test_plan.cpp LABELS quick)
# The DeepSeek-V3 plan report against reports/deepseek-v3-plan (a reproducibility golden; about
# half a minute).
trainsim_add_test(test_plan_report SOURCES test_plan_report.cpp LABELS slow)
