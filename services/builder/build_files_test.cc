#include "services/builder/build_files.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace coolify::build {
namespace {

constexpr char kId[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

TEST(EventLine, RoundTrips) {
  BuildEventRecord record;
  record.set_phase("clone");
  record.set_line("Receiving objects: 100%");
  record.set_unix_ms(1700000000000);
  record.set_duration_ms(12);
  std::string line = EventLine(record);
  ASSERT_EQ(line.back(), '\n');
  line.pop_back();
  absl::StatusOr<BuildEventRecord> parsed = ParseEventLine(line);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->line(), "Receiving objects: 100%");
  EXPECT_EQ(parsed->duration_ms(), 12u);
}

TEST(EventLine, SanitizesWhatATooldPrints) {
  BuildEventRecord record;
  record.set_phase("build");
  record.set_line(std::string("a\x1b[31mred\xff\x01") + std::string(10000, 'x'));
  record.set_unix_ms(1);
  std::string line = EventLine(record);
  line.pop_back();
  absl::StatusOr<BuildEventRecord> parsed = ParseEventLine(line);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->line().substr(0, 10), "a?[31mred?");
  EXPECT_LE(parsed->line().size(), kMaxEventLineBytes);
  EXPECT_EQ(parsed->line().substr(parsed->line().size() - 3), "...");
}

TEST(EventLine, RefusesBadLines) {
  for (const char* bad : {
           "",
           "not json",
           R"({"phase":"clone","line":"x","unix_ms":"1","extra":1})",
           R"({"phase":"deploy","line":"x","unix_ms":"1"})",
           R"({"phase":"clone","line":"x"})",
           R"({"phase":"clone","phase":"build","line":"x","unix_ms":"1"})",
           R"({"phase":"clone","line":"a\u0007b","unix_ms":"1"})",
           R"({"phase":"clone","line":"x","unix_ms":"1","duration_ms":"999999999999"})",
       }) {
    EXPECT_FALSE(ParseEventLine(bad).ok()) << bad;
  }
}

TEST(EventLine, CutsOnUtf8Boundary) {
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "\xc3\xa9";  // é
  std::string cut = SanitizeLine(text, 101);
  EXPECT_LE(cut.size(), 101u);
  EXPECT_EQ(SanitizeLine(cut, 101), cut);  // still valid UTF-8, nothing to replace
}

TEST(ResultFile, RoundTripsAndChecksFields) {
  BuildResultFile result;
  result.set_request_id("b-1");
  result.set_image_id(kId);
  result.set_digest(std::string("sha256:") + kId);
  result.add_tags("localhost/site:v1");
  result.mutable_durations()->set_total_ms(1500);
  absl::StatusOr<BuildResultFile> parsed = ParseResultFile(ResultJson(result));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->durations().total_ms(), 1500u);

  BuildResultFile bad = result;
  bad.set_image_id("../etc");
  EXPECT_FALSE(ParseResultFile(ResultJson(bad)).ok());
  bad = result;
  bad.set_digest("md5:00");
  EXPECT_FALSE(ParseResultFile(ResultJson(bad)).ok());
  bad = result;
  bad.set_request_id("../x");
  EXPECT_FALSE(ParseResultFile(ResultJson(bad)).ok());
  bad = result;
  bad.clear_tags();
  EXPECT_FALSE(ParseResultFile(ResultJson(bad)).ok());
  bad = result;
  bad.add_tags("-rm");
  EXPECT_FALSE(ParseResultFile(ResultJson(bad)).ok());
  EXPECT_FALSE(ParseResultFile(R"({"request_id":"b-1","surprise":true})").ok());
}

TEST(ErrorFile, RoundTripsAndChecksFields) {
  BuildErrorFile error;
  error.set_request_id("b-1");
  error.set_phase("clone");
  error.set_reason("ref \"nope\" not found");
  error.set_code(404);
  ASSERT_TRUE(ParseErrorFile(ErrorJson(error)).ok());
  BuildErrorFile bad = error;
  bad.set_code(200);
  EXPECT_FALSE(ParseErrorFile(ErrorJson(bad)).ok());
  bad = error;
  bad.set_phase("done");
  EXPECT_FALSE(ParseErrorFile(ErrorJson(bad)).ok());
  bad = error;
  bad.clear_reason();
  EXPECT_FALSE(ParseErrorFile(ErrorJson(bad)).ok());
}

TEST(Grammar, RequestIdsAndImages) {
  EXPECT_TRUE(IsRequestId("build-42_a"));
  for (const char* bad : {"", "a/b", "..", "a b", "a\n"}) EXPECT_FALSE(IsRequestId(bad)) << bad;
  EXPECT_FALSE(IsRequestId(std::string(65, 'a')));
  EXPECT_TRUE(IsImageReference("localhost/tenant/web:v2"));
  EXPECT_TRUE(IsImageReference("nginx:alpine"));
  for (const char* bad : {"", "-x", "Upper", "a b", "a\nFROM x"}) EXPECT_FALSE(IsImageReference(bad)) << bad;
}

TEST(WriteFileAtomically, ReplacesWholeFile) {
  char dir[] = "/tmp/build_files_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteFileAtomically(fd, "result.json", "first").ok());
  ASSERT_TRUE(WriteFileAtomically(fd, "result.json", "second").ok());
  std::ifstream in(std::string(dir) + "/result.json");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "second");
  EXPECT_NE(access((std::string(dir) + "/.result.json.tmp").c_str(), F_OK), 0);
  // A symlink planted as the temporary name is not followed.
  ASSERT_EQ(symlink("/etc/passwd", (std::string(dir) + "/.error.json.tmp").c_str()), 0);
  EXPECT_FALSE(WriteFileAtomically(fd, "error.json", "x").ok());
  close(fd);
  EXPECT_EQ(std::system((std::string("rm -rf ") + dir).c_str()), 0);
}

}  // namespace
}  // namespace coolify::build
