# The sanitizer build's check that no testlooper process (a local worker the server started,
# a `rebuild` run by a test, ...) left a sanitizer report: ctest's fixture "sanitizer_reports"
# clears DIR before the server tests and fails after them when DIR holds a report, printing each.
# Usage: cmake -DDIR=<build>/sanitizer-reports -DMODE=clear|check -P sanitizer_reports.cmake
if(MODE STREQUAL "clear")
  file(REMOVE_RECURSE ${DIR})
  file(MAKE_DIRECTORY ${DIR})
  return()
endif()
file(GLOB reports ${DIR}/report.*)
if(NOT reports)
  message("no sanitizer report in ${DIR}")
  return()
endif()
foreach(report IN LISTS reports)
  file(READ ${report} text)
  message("==== ${report}\n${text}")
endforeach()
list(LENGTH reports count)
message(FATAL_ERROR "${count} sanitizer report(s) in ${DIR}")
