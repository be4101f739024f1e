# Answers a planner can forward (issue 12): feasibility, what-ifs and provenance, --set, names and
# lists, model import, one formatter (quick); the configuration reference against the reader
# (quick); an installed trainsim run from another folder (quick: cmake --install into a temp
# prefix, needs the build folder: TRAINSIM_BUILD_DIR).
trainsim_add_test(test_ux SOURCES test_feasibility.cpp test_whatif.cpp test_set.cpp test_discover.cpp
                  test_import_model.cpp test_format.cpp LABELS quick)
trainsim_add_test(test_docs SOURCES test_docs.cpp LABELS quick)
trainsim_add_test(test_install SOURCES test_install.cpp LABELS quick)
set_property(TEST test_install APPEND PROPERTY ENVIRONMENT "TRAINSIM_BUILD_DIR=${PROJECT_BINARY_DIR}")
