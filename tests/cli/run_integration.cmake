# The slow end-to-end tests of `testlooper run` (real git repos, processes, docker), in their
# own binary labelled "slow". Included from tests/runner/CMakeLists.txt; include_guard makes a
# second include (e.g. from tests/cli/CMakeLists.txt) harmless.
include_guard(GLOBAL)
add_executable(run_integration_test ${CMAKE_CURRENT_LIST_DIR}/run_integration.cc
               ${CMAKE_CURRENT_LIST_DIR}/run_docker_integration.cc)
target_include_directories(run_integration_test PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_compile_definitions(run_integration_test PRIVATE TL_BINARY="$<TARGET_FILE:testlooper>")
target_link_libraries(run_integration_test PRIVATE nlohmann_json::nlohmann_json GTest::gtest_main)
add_dependencies(run_integration_test testlooper)
gtest_discover_tests(run_integration_test DISCOVERY_TIMEOUT 30 PROPERTIES LABELS slow TIMEOUT 600
                     RESOURCE_LOCK docker)
