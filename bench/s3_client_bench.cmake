add_executable(s3_client_bench ${CMAKE_CURRENT_SOURCE_DIR}/s3_client_bench.cc)
target_link_libraries(s3_client_bench PRIVATE tl_fleet)
