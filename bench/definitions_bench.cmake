add_executable(definitions_bench ${CMAKE_CURRENT_SOURCE_DIR}/definitions_bench.cc)
target_include_directories(definitions_bench PRIVATE ${CMAKE_SOURCE_DIR}/tests/definitions)
target_link_libraries(definitions_bench PRIVATE tl_definitions tl_git benchmark::benchmark)
