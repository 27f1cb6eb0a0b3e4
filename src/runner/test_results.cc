#include "runner/test_results.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>
#include <system_error>

#include "core/case_message.h"

namespace testlooper::runner {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kSummaryFile[] = "testSummary.json";

TestCaseResult case_from_object(const std::string& name, const json& value) {
  TestCaseResult result;
  result.name = name;
  result.success = value.value("success", false);
  result.elapsed = value.value("elapsed", 0.0);
  result.start_timestamp = value.value("startTimestamp", 0.0);
  if (const auto message = value.find("message"); message != value.end() && message->is_string()) {
    result.message = message->get<std::string>();
  }
  if (const auto logs = value.find("logs"); logs != value.end() && logs->is_array()) {
    for (const json& log : *logs) {
      if (log.is_string()) result.logs.push_back(log.get<std::string>());
    }
  }
  return result;
}

Result<TestCaseResult> case_from_entry(const std::string& name, const json& value) {
  if (value.is_boolean()) return TestCaseResult{name, value.get<bool>(), 0, 0, {}, {}};
  if (value.is_object() && value.contains("success") && value["success"].is_boolean()) {
    return case_from_object(name, value);
  }
  return Error{kSummaryFile, "test '" + name + "': expected true/false or {\"success\": ...}"};
}

double attribute_seconds(const pugi::xml_node& node, const char* name) {
  return node.attribute(name).as_double(0.0);
}

bool skipped(const pugi::xml_node& testcase) {
  const std::string result = testcase.attribute("result").as_string();
  const std::string status = testcase.attribute("status").as_string();
  return testcase.child("skipped") || result == "skipped" || status == "notrun" ||
         status == "skipped";
}

std::string case_name(const pugi::xml_node& testcase) {
  const std::string classname = testcase.attribute("classname").as_string();
  const std::string name = testcase.attribute("name").as_string();
  return classname.empty() ? name : classname + "." + name;
}

// What a <failure>/<error> (or a rerun's) says: its message attribute, then its text (the stack
// trace, the assertion's output) when that adds anything.
std::string failure_message(const pugi::xml_node& failure) {
  std::string message = failure.attribute("message").as_string();
  std::string text;
  for (const pugi::xml_node child : failure.children()) {
    if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata)
      text += child.value();
  }
  const size_t first = text.find_first_not_of(" \t\r\n");
  text = first == std::string::npos
             ? ""
             : text.substr(first, text.find_last_not_of(" \t\r\n") + 1 - first);
  if (text.empty() || text == message) return message;
  return message.empty() ? text : message + "\n" + text;
}

void add_junit_case(const pugi::xml_node& testcase, std::vector<TestCaseResult>& out) {
  const std::string name = case_name(testcase);
  if (skipped(testcase)) {
    const pugi::xml_node why = testcase.child("skipped");
    out.push_back({name, true, 0, 0, {}, why ? failure_message(why) : "", true});
    return;
  }
  const double elapsed = attribute_seconds(testcase, "time");
  for (const char* rerun : {"flakyFailure", "flakyError", "rerunFailure", "rerunError"}) {
    for (const pugi::xml_node attempt : testcase.children(rerun)) {
      out.push_back(
          {name, false, attribute_seconds(attempt, "time"), 0, {}, failure_message(attempt)});
    }
  }
  pugi::xml_node failure = testcase.child("failure");
  if (!failure) failure = testcase.child("error");
  out.push_back({name, !failure, elapsed, 0, {}, failure ? failure_message(failure) : ""});
}

std::string signature(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  const auto mtime = fs::last_write_time(path, ec).time_since_epoch().count();
  return std::to_string(size) + ":" + std::to_string(mtime);
}

std::string read_whole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A name safe as one path component (and as a segment of core/case_message.h's log names).
std::string component(const std::string& name) {
  std::string out;
  for (const char c : name.substr(0, 200))
    out += (isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_') ? c : '_';
  return out.empty() || out[0] == '.' ? "_" + out : out;
}

}  // namespace

Result<std::vector<TestCaseResult>> parse_test_summary(std::string_view text) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Error{kSummaryFile, "not valid JSON"};
  std::vector<TestCaseResult> results;
  if (doc.is_object()) {
    for (const auto& [name, value] : doc.items()) {
      Result<TestCaseResult> result = case_from_entry(name, value);
      if (!result.ok()) return result.error();
      results.push_back(std::move(result).value());
    }
    return results;
  }
  if (!doc.is_array()) return Error{kSummaryFile, "expected an object or a list"};
  for (const json& entry : doc) {
    if (!entry.is_object() || !entry.contains("testName") || !entry["testName"].is_string()) {
      return Error{kSummaryFile, "list entries need a string 'testName'"};
    }
    Result<TestCaseResult> result = case_from_entry(entry["testName"].get<std::string>(), entry);
    if (!result.ok()) return result.error();
    results.push_back(std::move(result).value());
  }
  return results;
}

std::optional<std::vector<TestCaseResult>> parse_junit_xml(std::string_view xml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return std::nullopt;
  const pugi::xml_node root = doc.document_element();
  const std::string root_name = root.name();
  if (root_name != "testsuites" && root_name != "testsuite") return std::nullopt;
  std::vector<TestCaseResult> results;
  for (const pugi::xpath_node& node : root.select_nodes("descendant-or-self::testcase")) {
    add_junit_case(node.node(), results);
  }
  return results;
}

TestResultCollector::TestResultCollector(fs::path output_dir, fs::path record_dir)
    : output_dir_(std::move(output_dir)), record_dir_(std::move(record_dir)) {}

Status TestResultCollector::collect() {
  Status summary = collect_summary();
  collect_junit();
  return summary;
}

Status TestResultCollector::collect_summary() {
  const fs::path path = output_dir_ / kSummaryFile;
  std::error_code ec;
  if (!fs::exists(path, ec)) return {};
  const std::string text = read_whole(path);
  Result<std::vector<TestCaseResult>> parsed = parse_test_summary(text);
  if (parsed.ok()) {
    for (TestCaseResult& result : *parsed) {
      result.logs = keep_logs(result.name, result.logs);
      results_.push_back(std::move(result));
    }
  }
  fs::remove(path, ec);
  if (!parsed.ok()) return parsed.error();
  return {};
}

void TestResultCollector::collect_junit() {
  std::error_code ec;
  fs::recursive_directory_iterator it(output_dir_, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file() || it->path().extension() != ".xml") continue;
    const std::string key = it->path().string();
    const std::string seen = signature(it->path());
    if (seen_reports_[key] == seen) continue;
    seen_reports_[key] = seen;
    std::optional<std::vector<TestCaseResult>> cases = parse_junit_xml(read_whole(it->path()));
    if (!cases) continue;
    results_.insert(results_.end(), cases->begin(), cases->end());
  }
}

std::vector<std::string> TestResultCollector::keep_logs(const std::string& test,
                                                        const std::vector<std::string>& logs) {
  std::vector<std::string> kept;
  for (const std::string& log : logs) {
    if (kept.size() == kMaxCaseLogs) break;
    const fs::path source = fs::path(log).is_absolute() ? fs::path(log) : output_dir_ / log;
    const fs::path rel = fs::path("test_logs") / component(test) /
                         (std::to_string(kept_logs_++) + "-" + component(source.filename()));
    std::error_code ec;
    fs::create_directories((record_dir_ / rel).parent_path(), ec);
    if (!ec) fs::copy_file(source, record_dir_ / rel, ec);
    if (!ec && is_case_log_name(rel.string())) kept.push_back(rel.string());
  }
  return kept;
}

}  // namespace testlooper::runner
