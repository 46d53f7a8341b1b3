#include "services/builder/options.h"

#include "gtest/gtest.h"

namespace coolify::build {
namespace {

std::vector<std::string> Good() {
  return {"--work-dir=/var/lib/coolify/builds/b-1", "--request-id=b-1", "--stack=static",
          "--repo=https://example.com/site.git", "--ref=main", "--image=localhost/web/site:v1",
          "--namespace=default", "--namespace=web"};
}

absl::Status Check(std::vector<std::string> args) {
  absl::StatusOr<BuilderOptions> o = ParseBuilderArgs(args);
  if (!o.ok()) return o.status();
  return ValidateBuilderOptions(*o);
}

absl::Status With(const std::string& arg) {
  std::vector<std::string> args = Good();
  args.push_back(arg);
  return Check(args);
}

TEST(BuilderOptions, GoodAndDefaults) {
  absl::StatusOr<BuilderOptions> o = ParseBuilderArgs(Good());
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_TRUE(ValidateBuilderOptions(*o).ok());
  EXPECT_EQ(o->base_image, "nginx:alpine");
  EXPECT_EQ(o->output_dir, "dist");
  EXPECT_FALSE(o->allow_file_urls);
}

TEST(BuilderOptions, BadValuesNameTheFlag) {
  struct Case {
    std::string arg, flag;
  } cases[] = {
      {"--repo=ext::sh -c id", "--repo"},
      {"--repo=-uhttps://x", "--repo"},
      {"--repo=ssh://git@host/x", "--repo"},
      {"--repo=https://ex ample.com/x", "--repo"},
      {"--repo=file:///srv/repo", "--repo"},  // not allowed without --allow-file-urls
      {"--ref=--upload-pack=x", "--ref"},
      {"--ref=a..b", "--ref"},
      {"--ref=main.lock", "--ref"},
      {"--subdirectory=../etc", "--subdirectory"},
      {"--subdirectory=/etc", "--subdirectory"},
      {"--output-dir=a/../../b", "--output-dir"},
      {"--image=Bad", "--image"},
      {"--image=localhost/busybox:latest", "--image"},        // a base image's name
      {"--image=docker.io/library/nginx:alpine", "--image"},  // not under localhost/
      {"--image=localhost/other/site:v1", "--image"},         // not a namespace of this host
      {"--image=localhost/web/site", "--image"},              // no tag
      {"--image=localhost/web/a/b:v1", "--image"},            // nested name
      {"--image=localhost/web/Site:v1", "--image"},
      {"--image=localhost/web/site:-v1", "--image"},
      {"--image=localhost/web/site@sha256:00", "--image"},
      {"--namespace=Web", "--namespace"},
      {"--base-image=x\nRUN rm", "--base-image"},
      {"--dockerfile=Dockerfile", "--dockerfile"},  // static takes none
      {"--storage-root=relative", "--storage-root"},
      {"--storage-driver=btrfs", "--storage-driver"},
      {"--request-id=../x", "--request-id"},
      {"--work-dir=/a/../b", "--work-dir"},
  };
  for (const Case& c : cases) {
    absl::Status s = With(c.arg);
    EXPECT_FALSE(s.ok()) << c.arg;
    EXPECT_NE(std::string(s.message()).find(c.flag), std::string::npos) << c.arg << ": " << s;
  }
}

TEST(BuilderOptions, UnknownAndMalformedFlags) {
  EXPECT_FALSE(With("--network=host").ok());
  EXPECT_FALSE(With("positional").ok());
  EXPECT_FALSE(With("--stack=buildpacks").ok());
  EXPECT_FALSE(Check({"--work-dir=/w", "--request-id=a"}).ok());  // no stack
}

TEST(BuilderOptions, FileUrlsWhenAllowed) {
  std::vector<std::string> args = Good();
  args[3] = "--repo=file:///srv/repo";
  args.push_back("--allow-file-urls");
  EXPECT_TRUE(Check(args).ok());
}

TEST(BuilderOptions, CheckBuilderArgsNamesTheRequestField) {
  struct Case {
    std::string arg, message;
  } cases[] = {
      {"--repo=--upload-pack=touch /tmp/x", "repo_url: "},
      {std::string("--ref=main\0x", 11), "git_ref: "},
      {"--subdirectory=../x", "subdirectory: must not contain .."},
      {"--output-dir=/etc", "output_dir: "},
      {"--image=-x", "target_image: "},
      {"--base-image=--pull", "base_image: "},
      {"--request-id=a/b", "request_id: "},
      {"--storage-driver=btrfs", "--storage-driver: "},  // the host's own flag keeps its name
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = Good();
    args.push_back(c.arg);
    absl::Status s = CheckBuilderArgs(args);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.arg << ": " << s;
    EXPECT_EQ(std::string(s.message()).rfind(c.message, 0), 0u) << c.arg << ": " << s;
  }
  EXPECT_TRUE(CheckBuilderArgs(Good()).ok());
}

TEST(BuilderOptions, TargetImageGrammar) {
  const std::vector<std::string> ns = {"default", "web"};
  absl::StatusOr<TargetImage> t = ParseTargetImage("localhost/web/my-site.v2_x:1.0-rc_1", ns);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->namespace_, "web");
  EXPECT_EQ(t->repository, "localhost/web/my-site.v2_x");
  EXPECT_EQ(t->tag, "1.0-rc_1");
  for (const char* bad : {"localhost/web/-a:v1", "localhost/web/a-:v1", "localhost/web/a--b:v1", "localhost/web/:v1",
                          "localhost/web/a:", "localhost//a:v1", "localhost/web/a:v1:v2", "LOCALHOST/web/a:v1",
                          "localhost/web/a:v 1", "localhost/webx/a:v1"}) {
    absl::StatusOr<TargetImage> b = ParseTargetImage(bad, ns);
    EXPECT_FALSE(b.ok()) << bad;
    if (!b.ok()) {
      EXPECT_EQ(std::string(b.status().message()).rfind("--image: ", 0), 0u) << b.status();
    }
  }
  EXPECT_FALSE(ParseTargetImage("localhost/web/a:v1", {}).ok());  // no namespace configured: nothing is nameable
}

TEST(BuilderOptions, DockerfileStack) {
  std::vector<std::string> args = Good();
  args[2] = "--stack=dockerfile";
  args.push_back("--dockerfile=docker/Prod.Dockerfile");
  EXPECT_TRUE(Check(args).ok());
}

}  // namespace
}  // namespace coolify::build
