# trainsim-profile (issue 4, point 7): the GPU-free record-to-profile conversion. The library
# comes from profiles/cupti/convert.cmake, included by the top-level CMakeLists.txt before tests/.
if(TARGET trainsim_profile_convert)
  trainsim_add_test(test_profile_convert SOURCES test_profile_convert.cpp LABELS quick)
  target_link_libraries(test_profile_convert PRIVATE trainsim_profile_convert)
endif()
