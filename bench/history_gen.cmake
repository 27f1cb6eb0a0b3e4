find_package(SQLite3 REQUIRED)
add_executable(history_gen ${CMAKE_CURRENT_SOURCE_DIR}/history_gen.cc)
target_link_libraries(history_gen PRIVATE tl_store tl_definitions SQLite::SQLite3)
