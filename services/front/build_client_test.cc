#include "services/front/build_client.h"

#include "gtest/gtest.h"

namespace coolify::front {
namespace {

constexpr char kHex[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

privsep::BuildFinished Finished(const std::string& file, const std::string& text, const std::string& note = "") {
  privsep::BuildFinished f;
  f.set_request_id("b-1");
  f.set_outcome_file(file);
  f.set_outcome(text);
  f.set_note(note);
  return f;
}

TEST(BuildResponse, ResultJsonIs200WithTheNameTheGatekeeperGave) {
  // The build claims another name in result.json; only the hand-over's counts.
  std::string json = std::string(R"({"request_id":"b-1","image_id":")") + kHex + R"(","digest":"sha256:)" + kHex +
                     R"(","tags":["localhost/busybox:latest"],"durations":{"total_ms":"1200"}})";
  privsep::BuildFinished finished = Finished("result.json", json);
  finished.set_image_archive(true);
  finished.set_image_name("localhost/web/site:v1");
  std::string asked;
  int given = -1;
  ImageLoader load = [&](const std::string& name, int archive) -> absl::StatusOr<privsep::PodmanImageLoaded> {
    asked = name;
    given = archive;
    privsep::PodmanImageLoaded loaded;
    loaded.set_image_id(std::string(64, 'e'));
    loaded.set_name(name);
    return loaded;
  };
  v1::Response r = BuildResponse(finished, 7, load);
  EXPECT_EQ(asked, "localhost/web/site:v1");
  EXPECT_EQ(given, 7);
  EXPECT_EQ(r.request_id(), "b-1");
  EXPECT_EQ(r.result().code(), 200u);
  const auto& f = r.result().data().struct_value().fields();
  EXPECT_EQ(f.at("image_id").string_value(), std::string(64, 'e'));
  EXPECT_EQ(f.at("tags").list_value().values_size(), 1);
  EXPECT_EQ(f.at("tags").list_value().values(0).string_value(), "localhost/web/site:v1");
  EXPECT_EQ(f.at("durations").struct_value().fields().at("total_ms").number_value(), 1200);
  EXPECT_EQ(f.at("registry_ref").string_value(), "localhost/web/site:v1");
  EXPECT_EQ(f.at("duration_ms").number_value(), 1200);

  // Refused by the gatekeeper: 422, in the export stage; no archive at all: 500.
  ImageLoader refuse = [](const std::string&, int) -> absl::StatusOr<privsep::PodmanImageLoaded> {
    return absl::InvalidArgumentError("image archive refused: index.json holds annotations");
  };
  r = BuildResponse(finished, 7, refuse);
  EXPECT_EQ(r.result().code(), 422u);
  EXPECT_EQ(r.result().message(), "image hand-over: image archive refused: index.json holds annotations");
  EXPECT_EQ(r.result().data().struct_value().fields().at("stage").string_value(), "export");
  r = BuildResponse(Finished("result.json", json), -1, load);
  EXPECT_EQ(r.result().code(), 500u);
  EXPECT_EQ(r.result().message(), "the build left no image archive");
}

TEST(BuildResponse, ErrorJsonKeepsItsCodeAndReason) {
  v1::Response r = BuildResponse(Finished(
      "error.json", R"({"request_id":"b-1","phase":"clone","reason":"ref \"x\" not found in https://h/r","code":404})"));
  EXPECT_EQ(r.result().code(), 404u);
  EXPECT_EQ(r.result().message(), "ref \"x\" not found in https://h/r");
  EXPECT_EQ(r.result().data().struct_value().fields().at("stage").string_value(), "clone");
}

TEST(BuildResponse, TimedOutIs504) {
  v1::Response r = BuildResponse(Finished(
      "error.json", R"({"request_id":"b-1","phase":"build","reason":"cancelled","code":499})", "timed out after 1h"));
  EXPECT_EQ(r.result().code(), 504u);
  EXPECT_EQ(r.result().message(), "timed out after 1h");
  r = BuildResponse(Finished("error.json", R"({"request_id":"b-1","phase":"build","reason":"cancelled","code":499})",
                             "cancelled"));
  EXPECT_EQ(r.result().code(), 499u);
}

TEST(BuildResponse, NoOutcomeFileIs500) {
  v1::Response r = BuildResponse(Finished("", ""));
  EXPECT_EQ(r.result().code(), 500u);
  EXPECT_EQ(r.result().message(), "builder exited without result file");
  r = BuildResponse(Finished("", "", "timed out after 1h"));
  EXPECT_EQ(r.result().message(), "builder exited without result file (timed out after 1h)");
}

TEST(BuildResponse, WhatABuildForgedIs502) {
  // Unparseable, unknown fields, another build's outcome, a bad image id.
  for (auto [file, text] : std::vector<std::pair<std::string, std::string>>{
           {"result.json", "not json"},
           {"result.json", R"({"request_id":"b-1","image_id":"x","digest":"sha256:00","tags":["a"]})"},
           {"result.json", std::string(R"({"request_id":"b-2","image_id":")") + kHex + R"(","digest":"sha256:)" +
                               kHex + R"(","tags":["a"]})"},
           {"error.json", R"({"request_id":"b-1","phase":"clone","reason":"x","code":200})"},
           {"error.json", R"({"request_id":"b-1","phase":"clone","reason":"x","code":404,"admin":true})"},
       }) {
    v1::Response r = BuildResponse(Finished(file, text));
    EXPECT_EQ(r.result().code(), 502u) << text;
  }
}

TEST(BuildEventOf, ParsesOrRefuses) {
  absl::StatusOr<v1::BuildEvent> e =
      BuildEventOf("b-1", R"({"phase":"build","line":"STEP 1/2: FROM x","unix_ms":"1700000000000"})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->phase(), "build");
  EXPECT_EQ(e->line(), "STEP 1/2: FROM x");
  EXPECT_EQ(e->unix_ms(), 1700000000000);
  EXPECT_FALSE(BuildEventOf("b-1", R"({"phase":"deploy","line":"x","unix_ms":"1"})").ok());
  EXPECT_FALSE(BuildEventOf("b-1", "garbage").ok());
}

TEST(DroppedLinesEvent, SaysHowManyInThePhaseOfWhatFollows) {
  privsep::BuildProgress p;
  p.set_request_id("b-1");
  p.set_dropped_lines(1234);
  v1::BuildEvent e = DroppedLinesEvent(p);
  EXPECT_EQ(e.request_id(), "b-1");
  EXPECT_EQ(e.phase(), "build");
  EXPECT_EQ(e.line().rfind("1234 progress lines dropped: ", 0), 0u) << e.line();
  EXPECT_GT(e.unix_ms(), 0);
  p.add_event_lines(R"({"phase":"clone","line":"x","unix_ms":"1"})");
  EXPECT_EQ(DroppedLinesEvent(p).phase(), "clone");
}

TEST(ToBuildSpec, CarriesEveryField) {
  v1::BuildRequest r;
  r.set_request_id("b-1");
  r.set_stack(v1::BUILD_STACK_DOCKERFILE);
  r.set_repo_url("https://h/r.git");
  r.set_git_ref("main");
  r.set_subdirectory("app");
  r.set_target_image("localhost/a:v1");
  r.set_dockerfile_path("Dockerfile.prod");
  privsep::BuildSpec spec = ToBuildSpec(r);
  EXPECT_EQ(spec.kind(), privsep::BUILD_KIND_DOCKERFILE);
  EXPECT_EQ(spec.subdirectory(), "app");
  EXPECT_EQ(spec.dockerfile_path(), "Dockerfile.prod");
  r.set_stack(v1::BUILD_STACK_UNSPECIFIED);
  EXPECT_EQ(ToBuildSpec(r).kind(), privsep::BUILD_KIND_UNSPECIFIED);  // refused by the channel validator
}

}  // namespace
}  // namespace coolify::front
