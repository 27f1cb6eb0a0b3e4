add_executable(stats_bench ${CMAKE_CURRENT_SOURCE_DIR}/stats_bench.cc)
target_link_libraries(stats_bench PRIVATE tl_stats benchmark::benchmark)
