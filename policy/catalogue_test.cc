// The adversarial catalogue (catalogue.h) through the engine: each request parsed as
// the API parses it, evaluated as the gatekeeper evaluates it, and, where allowed,
// rendered with every security field pinned.
#include "policy/catalogue.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "policy/api_json.h"
#include "policy/engine.h"
#include "policy/policy_file.h"
#include "policy/render.h"

namespace coolify::policy {
namespace {

std::vector<std::string> g_paths;

TEST(CatalogueTest, EveryCaseReachesItsVerdict) {
  const absl::StatusOr<std::vector<CatalogueCase>> cases = LoadCatalogue(g_paths);
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_GE(cases->size(), 40u);
  int denied = 0;
  for (const CatalogueCase& c : *cases) {
    SCOPED_TRACE(c.name);
    const absl::StatusOr<v1::Policy> policy = EmbeddedPolicy(c.profile);
    ASSERT_TRUE(policy.ok()) << policy.status();
    CallerContext caller;
    caller.namespace_name = c.caller_namespace;
    absl::StatusOr<Verdict> verdict = absl::InvalidArgumentError("unparsed");
    const absl::StatusOr<v1::ContainerSpec> spec = ParseContainerSpecJson(c.request);
    if (spec.ok()) verdict = Evaluate(*spec, *policy, caller);
    const absl::Status status = spec.ok() ? verdict.status() : spec.status();

    if (c.outcome == CatalogueCase::Outcome::kInvalid) {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
      EXPECT_NE(status.message().find(c.error_contains), absl::string_view::npos) << status;
      continue;
    }
    ASSERT_TRUE(status.ok()) << status;
    std::set<std::pair<std::string, std::string>> got;
    for (const Violation& v : verdict->violations) got.emplace(v.rule, v.field);
    EXPECT_EQ(got, c.violations);
    if (c.outcome == CatalogueCase::Outcome::kDenied) {
      ++denied;
      continue;
    }
    ASSERT_TRUE(verdict->allowed());
    const absl::StatusOr<std::string> text = RenderSpecGenerator(*spec, *policy);
    ASSERT_TRUE(text.ok()) << text.status();
    const boost::json::value rendered = boost::json::parse(*text);
    EXPECT_EQ(rendered.at("privileged"), false);
    EXPECT_EQ(rendered.at("no_new_privileges"), true);
    EXPECT_EQ(rendered.at("cap_drop"), boost::json::array({"ALL"}));
    EXPECT_EQ(rendered.at("pidns").at("nsmode"), "private");
  }
  EXPECT_GE(denied, 30);
}

}  // namespace
}  // namespace coolify::policy

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  coolify::policy::g_paths.assign(argv + 1, argv + argc);
  return RUN_ALL_TESTS();
}
