add_executable(planner_bench ${CMAKE_CURRENT_SOURCE_DIR}/planner_bench.cc)
target_link_libraries(planner_bench PRIVATE tl_planner benchmark::benchmark)
