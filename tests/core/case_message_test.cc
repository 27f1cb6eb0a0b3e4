#include "core/case_message.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace testlooper {
namespace {

TEST(CapText, KeepsShortTextAndMarksACut) {
  EXPECT_EQ(cap_text("short", 4096), "short");
  const std::string cut = cap_text(std::string(10000, 'x'), 4096);
  EXPECT_LE(cut.size(), 4096u);
  EXPECT_EQ(cut.substr(0, 4000), std::string(4000, 'x'));
  EXPECT_EQ(cut.substr(cut.rfind('\n')),
            "\n[... " + std::to_string(10000 - cut.rfind('\n')) + " bytes not kept]");
}

TEST(CapText, IsIdempotentEvenBelowTheMarkersRoom) {
  for (const size_t cap : {size_t{0}, size_t{10}, size_t{60}, size_t{4096}}) {
    const std::string once = cap_text(std::string(9000, 'z'), cap);
    EXPECT_EQ(cap_text(once, cap), once) << cap;
  }
}

TEST(CapText, NeverSplitsACharacterAndReplacesInvalidBytes) {
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "é";  // 2 bytes each
  const std::string cut = cap_text(text, 4095);
  const std::string kept = cut.substr(0, cut.rfind('\n'));
  EXPECT_EQ(kept.size() % 2, 0u);
  EXPECT_EQ(cap_text("a\xff"
                     "b\xc3",
                     100),
            "a?b?");
  EXPECT_EQ(cap_text("\xed\xa0\x80", 100), "???");  // a surrogate is not UTF-8
}

TEST(CapCaseMessages, SpendsTheRunsBudgetInOrder) {
  struct Case {
    std::string message;
  };
  std::vector<Case> cases(100, Case{std::string(5000, 'm')});
  cases[3].message.clear();
  cap_case_messages(cases);
  size_t total = 0;
  for (const Case& c : cases) total += c.message.size();
  EXPECT_LE(total, kMaxRunCaseMessageBytes + 100 * kMinTextCap);
  EXPECT_EQ(cases[3].message, "");
  EXPECT_LE(cases[0].message.size(), kMaxCaseMessageBytes);
  // Past the budget: the marker and what fits beside it in kMinTextCap.
  EXPECT_LE(cases[99].message.size(), kMinTextCap);
  EXPECT_NE(cases[99].message.find("bytes not kept]"), std::string::npos);
}

TEST(CaseLogName, IsTestLogsDirFile) {
  EXPECT_TRUE(is_case_log_name("test_logs/pkg.C.bad/0-out.log"));
  for (const char* bad :
       {"test_logs/../x", "test_logs/a/..", "test_logs/a/b/c", "/test_logs/a/b", "test_logs/a",
        "logs/a/b", "test_logs//b", "test_logs/.a/b", "test_logs/a/b c", "test_logs/a/b%2F"}) {
    EXPECT_FALSE(is_case_log_name(bad)) << bad;
  }
  EXPECT_FALSE(is_case_log_segment(std::string(256, 'a')));
  EXPECT_TRUE(is_case_log_segment(std::string(255, 'a')));
}

}  // namespace
}  // namespace testlooper
