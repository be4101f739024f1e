# trainsim-profile's GPU-free half: the op plan (profile_plan) and CUPTI activity records ->
# trainsim profile (JSON Lines).
# Plain C++ (no CUDA headers), built on every machine so that its tests run without a GPU.
# Included from the top-level CMakeLists.txt after add_subdirectory(sim), before tests.
add_library(trainsim_profile_convert STATIC ${CMAKE_CURRENT_LIST_DIR}/profile_convert.cpp
  ${CMAKE_CURRENT_LIST_DIR}/profile_plan.cpp)
target_include_directories(trainsim_profile_convert PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(trainsim_profile_convert PUBLIC trainsim_lib PRIVATE trainsim_warnings)
