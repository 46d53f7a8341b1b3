// The Hub's bounds, driven directly with a recording stream and explicit times.
#include "services/broker/hub.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coolify::broker {
namespace {

using ::testing::HasSubstr;

class RecordingStream : public HostStream {
 public:
  bool Send(v1::ServerMsg message) override {
    sent.push_back(std::move(message));
    return true;
  }
  void Close(const std::string&) override {}
  std::vector<v1::ServerMsg> sent;
};

HostHello Builder(const std::string& id) {
  HostHello hello;
  hello.host_id = id;
  hello.token_caps = {"builder"};
  hello.token_expires = absl::InfiniteFuture();
  hello.capabilities = {v1::CAPABILITY_BUILDER};
  hello.builder_capacity = 1;
  return hello;
}

TEST(HubTest, ALongPollIsClampedToThirtySeconds) {
  Hub hub(HubOptions{});
  auto stream = std::make_shared<RecordingStream>();
  hub.Register(Builder("builder-1"), stream);
  commands::BuildDispatch dispatch;
  dispatch.request_id = "b-1";
  dispatch.build.set_request_id("b-1");
  dispatch.build.set_repo_url("https://example.com/site.git");
  ASSERT_EQ(hub.DispatchBuild(dispatch).http_status, 202u);

  std::vector<commands::Envelope> answers;
  const absl::Time asked = absl::Now();
  hub.BuildResult("b-1", absl::Minutes(5), [&](commands::Envelope e) { answers.push_back(std::move(e)); });
  hub.Sweep(asked + absl::Seconds(29));
  EXPECT_TRUE(answers.empty());
  hub.Sweep(asked + absl::Seconds(31));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].http_status, 408u);
  EXPECT_THAT(answers[0].body, HasSubstr("result poll timed out"));
}

}  // namespace
}  // namespace coolify::broker
