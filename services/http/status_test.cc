#include "services/http/status.h"

#include "gtest/gtest.h"

namespace coolify::http {
namespace {

TEST(HttpStatusOf, OneCodeIsOneStatusAndAPayloadOverridesIt) {
  EXPECT_EQ(HttpStatusOf(absl::OkStatus()), 200u);
  EXPECT_EQ(HttpStatusOf(absl::InvalidArgumentError("x")), 400u);
  EXPECT_EQ(HttpStatusOf(absl::PermissionDeniedError("x")), 403u);
  EXPECT_EQ(HttpStatusOf(absl::NotFoundError("x")), 404u);
  EXPECT_EQ(HttpStatusOf(absl::FailedPreconditionError("x")), 409u);
  EXPECT_EQ(HttpStatusOf(absl::ResourceExhaustedError("x")), 413u);
  EXPECT_EQ(HttpStatusOf(absl::UnimplementedError("x")), 501u);
  EXPECT_EQ(HttpStatusOf(absl::UnavailableError("x")), 503u);
  EXPECT_EQ(HttpStatusOf(absl::InternalError("x")), 500u);
  EXPECT_EQ(HttpStatusOf(MethodNotAllowed("PUT", "/p", "GET")), 405u);
  EXPECT_EQ(HttpStatusOf(WithHttpStatus(absl::ResourceExhaustedError("full"), 507)), 507u);
}

// The field is what the status carries, never a guess from its text.
TEST(FieldOf, IsThePayloadOnly) {
  EXPECT_EQ(FieldOf(InvalidField("rules[3].src", "bad")), "rules[3].src");
  EXPECT_EQ(InvalidField("src", "bad").message(), "src: bad");
  EXPECT_EQ(FieldOf(absl::InvalidArgumentError("src: bad")), "");
  EXPECT_EQ(FieldOf(absl::OkStatus()), "");
}

TEST(UpstreamFailure, KeepsTheRequestsRefusalsAndIsABadGatewayOtherwise) {
  const absl::Status missing = UpstreamFailure("podman", absl::NotFoundError("no such container"));
  EXPECT_EQ(HttpStatusOf(missing), 404u);
  EXPECT_EQ(missing.message(), "no such container");
  const absl::Status invalid = UpstreamFailure("podman", InvalidField("ref", "bad"));
  EXPECT_EQ(HttpStatusOf(invalid), 400u);
  EXPECT_EQ(FieldOf(invalid), "ref");
  const absl::Status down = UpstreamFailure("podman", absl::UnavailableError("connect: refused"));
  EXPECT_EQ(HttpStatusOf(down), 503u);
  EXPECT_EQ(down.message(), "podman unavailable: connect: refused");
  for (const absl::Status& own : {absl::InternalError("boom"), absl::UnimplementedError("boom"),
                                  absl::ResourceExhaustedError("boom"), absl::DeadlineExceededError("boom")}) {
    const absl::Status failed = UpstreamFailure("podman", own);
    EXPECT_EQ(HttpStatusOf(failed), 502u) << own;
    EXPECT_EQ(failed.message(), "podman: boom");
  }
}

}  // namespace
}  // namespace coolify::http
