add_executable(s3_bench ${CMAKE_CURRENT_SOURCE_DIR}/s3_bench.cc)
target_link_libraries(s3_bench PRIVATE tl_fleet)
