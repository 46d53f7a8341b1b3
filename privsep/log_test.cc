#include "privsep/log.h"

#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace coolify {
namespace {

TEST(EventTextTest, PlainValuesStandBare) {
  EXPECT_EQ(EventText("dispatch", {{"verb", "containers.create"}, {"status", 201}, {"duration_ms", 12}}),
            "event=dispatch verb=containers.create status=201 duration_ms=12");
}

TEST(EventTextTest, ValuesThatCouldForgeAFieldOrALineAreQuoted) {
  EXPECT_EQ(EventText("e", {{"a", ""}}), "event=e a=\"\"");
  EXPECT_EQ(EventText("e", {{"a", "two words"}}), "event=e a=\"two words\"");
  EXPECT_EQ(EventText("e", {{"a", "x status=200"}}), "event=e a=\"x status=200\"");
  EXPECT_EQ(EventText("e", {{"a", "say \"hi\"\\"}}), "event=e a=\"say \\\"hi\\\"\\\\\"");
  EXPECT_EQ(EventText("e", {{"a", "one\ntwo\r\t"}}), "event=e a=\"one\\ntwo\\r\\t\"");
  EXPECT_EQ(EventText("e", {{"a", std::string("nul\0bell\x07", 9)}}), "event=e a=\"nul\\x00bell\\x07\"");
  EXPECT_EQ(EventText("e", {{"a", "caf\xc3\xa9"}}), "event=e a=\"caf\\xc3\\xa9\"");
}

TEST(RedactUrlCredentialsTest, EveryUrlLosesItsUserinfoAndNothingElse) {
  EXPECT_EQ(RedactUrlCredentials("git clone of https://deploy:tok3n@git.example/s.git failed"),
            "git clone of https://***@git.example/s.git failed");
  EXPECT_EQ(RedactUrlCredentials("a http://u@h/x and git://v:w@h2:9418/y?q=a@b"),
            "a http://***@h/x and git://***@h2:9418/y?q=a@b");
  EXPECT_EQ(RedactUrlCredentials("'https://u:p@h'"), "'https://***@h'");
  EXPECT_EQ(RedactUrlCredentials("https://h/path@not-userinfo mail a@b.c"), "https://h/path@not-userinfo mail a@b.c");
  EXPECT_EQ(RedactUrlCredentials("no url here"), "no url here");
  EXPECT_EQ(RedactUrlCredentials("https://"), "https://");
}

TEST(EventTextTest, ALoggedUrlKeepsNoCredentials) {
  LogEvent(LogLevel::kWarn, "probe", {{"reason", "git clone of https://u:secret-99@h/r.git failed"}});
  std::vector<std::string> lines = RecentLogLines(1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].find("secret-99"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("https://***@h/r.git"), std::string::npos) << lines[0];
}

TEST(EventTextTest, TheLineReachesTheRecentLines) {
  LogEvent(LogLevel::kInfo, "probe", {{"k", "v w"}});
  std::vector<std::string> lines = RecentLogLines(1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("INFO: event=probe k=\"v w\""), std::string::npos) << lines[0];
}

// The prefix names the process that wrote the line: the id is kept between lines, and a
// forked child's lines carry its own.
TEST(LogLineTest, ThePrefixCarriesTheWritersPid) {
  SetLogRole("test");
  LogInfo("parent %d", 1);
  std::vector<std::string> lines = RecentLogLines(1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind(absl::StrCat("test[", getpid(), "] INFO: parent 1"), 0), 0u) << lines[0];
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    LogInfo("child %d", 2);
    std::vector<std::string> seen = RecentLogLines(1);
    _exit(seen.size() == 1 && seen[0].rfind(absl::StrCat("test[", getpid(), "] INFO: child 2"), 0) == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child's line named another pid";
  LogInfo("parent %d", 3);
  lines = RecentLogLines(1);
  EXPECT_EQ(lines[0].rfind(absl::StrCat("test[", getpid(), "] INFO: parent 3"), 0), 0u) << lines[0];
}

}  // namespace
}  // namespace coolify
