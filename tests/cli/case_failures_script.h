// A test suite that fails in the ways a real one does (issue 16 item 7): a JUnit report with a
// <failure> (message and stack), an <error>, a case whose name and text hold HTML, a skipped case
// saying why, a passing case; and a testSummary.json whose cases carry a "message" (one far over
// the 4 KiB cap) and a log file named relative to $TEST_OUTPUT_DIR. Shared by the `run` and the
// server tests.
#pragma once

namespace testlooper::testing {

// The repo's file holding the script (run as `bash $TEST_INPUTS/src/cases.sh`).
inline constexpr const char* kCaseScriptPath = "cases.sh";

inline constexpr const char* kCaseScript = R"(set -e
cat > "$TEST_OUTPUT_DIR/junit.xml" <<'XML'
<testsuites><testsuite name="s">
<testcase classname="pkg.C" name="ok" time="0.1"/>
<testcase classname="pkg.C" name="bad" time="0.2"><failure message="expected 1, got 2">at C.java:10
at C.java:20</failure></testcase>
<testcase classname="pkg.C" name="boom"><error message="NullPointerException"/></testcase>
<testcase classname="pkg.C" name="later"><skipped message="not on Linux"/></testcase>
<testcase classname="pkg.C" name="&lt;i&gt;html" time="0.3"><failure><![CDATA[<b>not bold</b>]]></failure></testcase>
</testsuite></testsuites>
XML
mkdir -p "$TEST_OUTPUT_DIR/logs"
echo "the log of S::fails" > "$TEST_OUTPUT_DIR/logs/fails.log"
long=$(head -c 10000 /dev/zero | tr '\0' x)
printf '[{"testName": "S::fails", "success": false, "message": "assertion failed\\nline 2\\nline 3\\nline 4\\nline 5\\nline 6\\nline 7", "logs": ["logs/fails.log"]}, {"testName": "S::long", "success": false, "message": "%s"}, {"testName": "S::fine", "success": true}]' "$long" > "$TEST_OUTPUT_DIR/testSummary.json"
)";

// A test running that script (host environment, one run).
inline constexpr const char* kCaseDefinitions = R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  cases/linux:
    dependencies: {src: HEAD}
    command: 'bash $TEST_INPUTS/src/cases.sh'
)";

}  // namespace testlooper::testing
