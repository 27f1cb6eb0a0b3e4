# The libFuzzer targets: one fuzz/<name>.cc each, run 60 s each by ctest (tests/fuzz).
set(TESTLOOPER_FUZZERS fuzz_definitions fuzz_worker_protocol fuzz_http fuzz_webhooks fuzz_aws_xml
    fuzz_docker_filter fuzz_worker_jobs)
if(CMAKE_SCRIPT_MODE_FILE)
  string(REPLACE ";" " " list "${TESTLOOPER_FUZZERS}")
  message("${list}")
endif()
