#include "policy/image_ref.h"

#include "gtest/gtest.h"

namespace coolify::policy {
namespace {

std::string Qualified(std::string_view reference) {
  const absl::StatusOr<ImageRef> ref = ParseImageRef(reference);
  return ref.ok() ? ref->Qualified() : std::string(ref.status().message());
}

TEST(ImageRefTest, QualifiesAsDockerAndPodmanDo) {
  EXPECT_EQ(Qualified("nginx"), "docker.io/library/nginx:latest");
  EXPECT_EQ(Qualified("nginx:alpine"), "docker.io/library/nginx:alpine");
  EXPECT_EQ(Qualified("library/nginx:1.25"), "docker.io/library/nginx:1.25");
  EXPECT_EQ(Qualified("bitnami/redis"), "docker.io/bitnami/redis:latest");
  EXPECT_EQ(Qualified("docker.io/nginx"), "docker.io/library/nginx:latest");
  EXPECT_EQ(Qualified("index.docker.io/nginx"), "docker.io/library/nginx:latest");
  EXPECT_EQ(Qualified("localhost/tenant/web:v2"), "localhost/tenant/web:v2");
  EXPECT_EQ(Qualified("localhost:5000/web"), "localhost:5000/web:latest");
  EXPECT_EQ(Qualified("GHCR.IO/org/app:1"), "ghcr.io/org/app:1");
  EXPECT_EQ(Qualified("registry.example.com:5000/a/b/c:t_1.2-x"),
            "registry.example.com:5000/a/b/c:t_1.2-x");
  const std::string digest = "sha256:" + std::string(64, 'a');
  EXPECT_EQ(Qualified("nginx@" + digest), "docker.io/library/nginx@" + digest);
  EXPECT_EQ(Qualified("nginx:1@" + digest), "docker.io/library/nginx:1@" + digest);
  EXPECT_EQ(Qualified("my_app__x.y-z"), "docker.io/library/my_app__x.y-z:latest");
}

TEST(ImageRefTest, RegistryIsTheFirstComponentOnlyWhenItLooksLikeOne) {
  EXPECT_EQ(ParseImageRef("quay.io/org/app")->registry, "quay.io");
  EXPECT_EQ(ParseImageRef("localhost/app")->registry, "localhost");
  EXPECT_EQ(ParseImageRef("host:1/app")->registry, "host:1");
  EXPECT_EQ(ParseImageRef("org/app")->registry, "docker.io");
  EXPECT_EQ(ParseImageRef("Org/app")->registry, "org");
}

TEST(ImageRefTest, RefusesOutsideTheGrammar) {
  for (const char* bad : {"",
                          "NGINX",
                          "nginx:",
                          ":tag",
                          "nginx@sha256:abc",
                          "nginx@md5:",
                          "a//b",
                          "/nginx",
                          "nginx/",
                          "-nginx",
                          "ng..inx",
                          "ng___inx",
                          "reg.io:/x",
                          "reg.io:123456/x",
                          "-reg.io/x",
                          "nginx:-tag",
                          "nginx:ta g",
                          "ng inx",
                          "nginx\n",
                          "docker.io/../etc",
                          "a:b:c"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(ParseImageRef(bad).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(ParseImageRef(std::string(256, 'a')).ok());
  EXPECT_FALSE(ParseImageRef("nginx:" + std::string(129, 't')).ok());
  EXPECT_TRUE(ParseImageRef("nginx:" + std::string(128, 't')).ok());
}

TEST(ImageRefTest, RegistryNames) {
  EXPECT_TRUE(IsRegistryName("docker.io"));
  EXPECT_TRUE(IsRegistryName("localhost"));
  EXPECT_TRUE(IsRegistryName("registry.example.com:5000"));
  EXPECT_FALSE(IsRegistryName("Docker.io"));
  EXPECT_FALSE(IsRegistryName(""));
  EXPECT_FALSE(IsRegistryName("a..b"));
  EXPECT_FALSE(IsRegistryName("a:"));
  EXPECT_FALSE(IsRegistryName("a/b"));
}

}  // namespace
}  // namespace coolify::policy
