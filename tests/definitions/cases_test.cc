// The data-driven runner over tests/definitions/cases/*.yml (see cases/README.md): each case
// lays out repos in memory, resolves the main repo's last commit and compares the `check --json`
// document with the case's `expect` (a subset match) or its `error` (exact).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "definitions/definitions.h"
#include "definitions/definitions_json.h"
#include "memory_source_reader.h"

namespace testlooper::definitions {
namespace {

using nlohmann::json;

json yaml_to_json(const YAML::Node& y) {
  switch (y.Type()) {
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& i : y) out.push_back(yaml_to_json(i));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : y) out[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = y.Scalar();
      if (y.Tag() == "?") {
        if (s == "true" || s == "false") return s == "true";
        if (s == "null" || s == "~") return nullptr;
        try {
          size_t used = 0;
          const long long v = std::stoll(s, &used);
          if (used == s.size()) return v;
          const double d = std::stod(s, &used);
          if (used == s.size()) return d;
        } catch (...) {
        }
      }
      return s;
    }
    default:
      return nullptr;
  }
}

// Every key of `expected` is in `actual` with a matching value; lists match item by item.
void expect_subset(const json& expected, const json& actual, const std::string& where) {
  if (expected.is_object()) {
    ASSERT_TRUE(actual.is_object()) << where << ": expected an object, got " << actual.dump();
    for (const auto& [k, v] : expected.items()) {
      ASSERT_TRUE(actual.contains(k)) << where << ": missing key '" << k << "' in " << actual.dump();
      expect_subset(v, actual[k], where + "." + k);
    }
  } else if (expected.is_array()) {
    ASSERT_TRUE(actual.is_array()) << where << ": expected a list, got " << actual.dump();
    ASSERT_EQ(expected.size(), actual.size()) << where << ": " << actual.dump();
    for (size_t i = 0; i < expected.size(); ++i) {
      expect_subset(expected[i], actual[i], where + "[" + std::to_string(i) + "]");
    }
  } else if (expected.is_number() && actual.is_number()) {
    EXPECT_DOUBLE_EQ(expected.get<double>(), actual.get<double>()) << where;
  } else {
    EXPECT_EQ(expected, actual) << where;
  }
}

MemorySourceReader::Files files_of(const YAML::Node& node) {
  MemorySourceReader::Files files;
  for (const auto& kv : node) files[kv.first.as<std::string>()] = kv.second.as<std::string>();
  return files;
}

std::string main_sha(size_t index) { return std::string(40, "0123456789abcdef"[index % 16]); }

class DefinitionCase : public testing::TestWithParam<std::string> {};

TEST_P(DefinitionCase, ResolvesAsExpected) {
  const YAML::Node c = YAML::LoadFile(GetParam());
  MemorySourceReader reader;
  if (c["repos"]) {
    for (const auto& kv : c["repos"]) {
      reader.add_commit(kv.first.as<std::string>(), kv.second["sha"].as<std::string>(),
                        files_of(kv.second["files"]));
    }
  }
  std::vector<YAML::Node> commits;
  if (c["commits"]) {
    for (const auto& commit : c["commits"]) commits.push_back(commit["files"]);
  } else {
    commits.push_back(c["files"]);
  }
  for (size_t i = 0; i < commits.size(); ++i) reader.add_commit("main", main_sha(i + 1), files_of(commits[i]));
  auto resolved = resolve_commit(reader, "main", main_sha(commits.size()));
  ASSERT_TRUE(resolved.ok()) << resolved.error().to_string();
  const json actual = json::parse(commit_to_json(*resolved));
  if (c["error"]) {
    EXPECT_EQ(actual["error"], json(c["error"].as<std::string>()));
    EXPECT_TRUE(actual["objects"].empty());
  } else {
    EXPECT_EQ(actual["error"], json(nullptr)) << actual["error"];
  }
  if (c["expect"]) expect_subset(yaml_to_json(c["expect"]), actual, "$");
}

std::vector<std::string> all_cases() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(TL_CASES_DIR)) {
    if (e.path().extension() == ".yml") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string case_name(const testing::TestParamInfo<std::string>& info) {
  std::string name = std::filesystem::path(info.param).stem().string();
  for (char& ch : name) {
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Cases, DefinitionCase, testing::ValuesIn(all_cases()), case_name);

}  // namespace
}  // namespace testlooper::definitions
