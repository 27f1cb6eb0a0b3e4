// list_pins, apply_edits and pin_update_message (definitions/pins.h) with the in-memory reader.
#include "definitions/pins.h"

#include <gtest/gtest.h>

#include <string>

#include "memory_source_reader.h"

namespace testlooper::definitions {
namespace {

const std::string kA(40, 'a');
const std::string kB(40, 'b');
const std::string kC(40, 'c');
const std::string kCommit(40, '1');

// The text each pin's location points at.
std::string at(const MemorySourceReader::Files& files, const PinLocation& pin) {
  return files.at(pin.file).substr(pin.offset, pin.length);
}

TEST(ListPins, FindsEveryFormQuotedOrNotFlowOrBlockAnyKeyOrder) {
  MemorySourceReader reader;
  MemorySourceReader::Files files = {{"testlooper.yml",
                                      "looper_version: 5\n"
                                      "repos:\n"
                                      "  plain: lib/" +
                                          kA +
                                          "  # a fixed reference\n"
                                          "  quoted: \"lib/" +
                                          kB +
                                          "\"\n"
                                          "  # the pin below follows lib's main\n"
                                          "  pin: {branch: main, auto: true, reference: 'lib/" +
                                          kA +
                                          "'}  # after\n"
                                          "  block:\n"
                                          "    auto: false\n"
                                          "    branch: dev\n"
                                          "    reference: other/HEAD\n"
                                          "  imported: {import: plain/x}\n"}};
  reader.add_commit("app", kCommit, files);
  auto pins = list_pins(reader, "app", kCommit);
  ASSERT_TRUE(pins.ok()) << pins.error().to_string();
  ASSERT_EQ(pins->size(), 4u);
  EXPECT_EQ((*pins)[0].name, "plain");
  EXPECT_FALSE((*pins)[0].branch.has_value());
  EXPECT_EQ((*pins)[1].name, "quoted");
  EXPECT_EQ((*pins)[2].name, "pin");
  EXPECT_EQ((*pins)[2].branch, "main");
  EXPECT_TRUE((*pins)[2].auto_update);
  EXPECT_EQ((*pins)[3].name, "block");
  EXPECT_EQ((*pins)[3].branch, "dev");
  EXPECT_FALSE((*pins)[3].auto_update);
  EXPECT_EQ((*pins)[3].commit, "HEAD");
  EXPECT_EQ((*pins)[3].repo, "other");
  for (const auto& pin : *pins) {
    EXPECT_EQ(pin.file, "testlooper.yml");
    EXPECT_EQ(at(files, pin), pin.commit) << pin.name;
  }
  // `pin` repeats `plain`'s text on another line: its own place is found, not plain's.
  EXPECT_NE((*pins)[2].offset, (*pins)[0].offset);
}

TEST(ListPins, FollowsSameRepoIncludesAndSurvivesABadOne) {
  MemorySourceReader reader;
  MemorySourceReader::Files files = {
      {"testlooper.yml",
       "looper_version: 5\n"
       "includes: [./ci/pins.yml, ./missing.yml, ./ci/broken.yml, lib/x.yml]\n"
       "environments: {e: {bad: [}\n"},  // not valid YAML: nothing in it is listed
      {"ci/pins.yml", "includes: [../more.json]\nrepos:\n  lib: {reference: lib/" + kA +
                          ", branch: main, auto: true}\n"},
      {"more.json",
       "{\"repos\": {\"other\": {\"reference\": \"other/" + kC + "\", \"branch\": \"main\"}}}"},
      {"ci/broken.yml", "repos: [\n"}};
  // The root file itself is broken here, so start from a good root that includes the rest.
  files["testlooper.yml"] =
      "looper_version: 5\n"
      "includes: [./ci/pins.yml, ./missing.yml, ./ci/broken.yml, lib/x.yml]\n";
  reader.add_commit("app", kCommit, files);
  auto pins = list_pins(reader, "app", kCommit);
  ASSERT_TRUE(pins.ok()) << pins.error().to_string();
  ASSERT_EQ(pins->size(), 2u);
  EXPECT_EQ((*pins)[0].name, "lib");
  EXPECT_EQ((*pins)[0].file, "ci/pins.yml");
  EXPECT_EQ(at(files, (*pins)[0]), kA);
  EXPECT_EQ((*pins)[1].name, "other");
  EXPECT_EQ((*pins)[1].file, "more.json");
  EXPECT_EQ(at(files, (*pins)[1]), kC);
}

TEST(ListPins, AMalformedEntryHidesNotTheOthers) {
  MemorySourceReader reader;
  MemorySourceReader::Files files = {
      {"testlooper.yml",
       "looper_version: 5\nrepos:\n  bad: {reference: lib/nope, branch: main}\n"
       "  good: {reference: lib/" +
           kB +
           ", branch: main, auto: true}\n"
           "tests: {t: {no_such_key: 1}}\n"}};
  reader.add_commit("app", kCommit, files);
  auto pins = list_pins(reader, "app", kCommit);
  ASSERT_TRUE(pins.ok());
  ASSERT_EQ(pins->size(), 1u);
  EXPECT_EQ((*pins)[0].name, "good");
  EXPECT_EQ(at(files, (*pins)[0]), kB);
}

TEST(ListPins, AnUnknownCommitIsAnError) {
  MemorySourceReader reader;
  reader.add_commit("app", kCommit, {});
  EXPECT_TRUE(list_pins(reader, "app", kCommit).ok());
  EXPECT_FALSE(list_pins(reader, "app", kA).ok());
}

TEST(ApplyEdits, ReplacesInAnyOrderAndRefusesOverlaps) {
  auto out = apply_edits("0123456789", {{7, 2, "xy"}, {1, 1, "AB"}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "0AB23456xy9");
  EXPECT_FALSE(apply_edits("0123", {{1, 2, ""}, {2, 1, ""}}).ok());
  EXPECT_FALSE(apply_edits("0123", {{3, 2, ""}}).ok());
}

TEST(PinUpdateMessage, OneAndSeveralPins) {
  const std::string log = "commit " + kA + "\nAuthor: A <a@b>\nDate:   x\n\n    subject\n";
  EXPECT_EQ(pin_update_message({{"lib", "lib", "main", kA, log}}),
            "Update pin lib to " + kA + "\n\nNew commit in pinned branch lib/main:\n    commit " +
                kA + "\n    Author: A <a@b>\n    Date:   x\n\n        subject\n");
  const std::string two =
      pin_update_message({{"a", "ra", "main", kA, log}, {"b", "rb", "dev", kB, log}});
  EXPECT_EQ(two.substr(0, two.find('\n')), "Update pins a to " + kA + ", b to " + kB);
  EXPECT_NE(two.find("\nNew commit in pinned branch rb/dev:\n"), std::string::npos);
}

}  // namespace
}  // namespace testlooper::definitions
