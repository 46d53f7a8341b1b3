// The audit tool as a user runs it: the adversarial catalogue through `check` (exit
// codes and verdict JSON), and `render`, `lint`, `explain` and usage errors.
//
// Arguments: the tool's path, then the catalogue's files.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "boost/json.hpp"
#include "gtest/gtest.h"
#include "policy/catalogue.h"

namespace coolify::policy {
namespace {

namespace json = boost::json;

std::string g_tool;
std::vector<std::string> g_paths;

struct ToolRun {
  int exit_code = -1;
  std::string out;
};

// Runs the tool with `args` (no shell metacharacters) and stdin from `stdin_path`.
ToolRun RunTool(const std::string& args, const std::string& stdin_path = "/dev/null") {
  const std::string command = g_tool + " " + args + " < " + stdin_path + " 2>/dev/null";
  ToolRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) run.out.append(buffer, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string TempFile(const std::string& name, const std::string& content) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(tmp != nullptr ? tmp : "/tmp") + "/" + name;
  std::ofstream(path) << content;
  return path;
}

TEST(CoolifyPolicyCheckTest, CatalogueExitCodesAndVerdicts) {
  const absl::StatusOr<std::vector<CatalogueCase>> cases = LoadCatalogue(g_paths);
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_GE(cases->size(), 40u);
  for (const CatalogueCase& c : *cases) {
    SCOPED_TRACE(c.name);
    std::string args = "check --profile " + c.profile;
    if (!c.caller_namespace.empty()) args += " --namespace " + c.caller_namespace;
    const std::string request = TempFile(c.name + ".json", c.request);
    const ToolRun run = RunTool(args, request);
    json::value out;
    ASSERT_NO_THROW(out = json::parse(run.out)) << run.out;
    if (c.outcome == CatalogueCase::Outcome::kInvalid) {
      EXPECT_EQ(run.exit_code, 2);
      EXPECT_NE(json::value_to<std::string>(out.at("error")).find(c.error_contains),
                std::string::npos)
          << run.out;
      continue;
    }
    const bool allowed = c.outcome == CatalogueCase::Outcome::kAllowed;
    EXPECT_EQ(run.exit_code, allowed ? 0 : 1) << run.out;
    EXPECT_EQ(out.at("allowed"), allowed);
    std::set<std::pair<std::string, std::string>> got;
    for (const json::value& v : out.at("violations").as_array()) {
      got.emplace(json::value_to<std::string>(v.at("rule")),
                  json::value_to<std::string>(v.at("field")));
      EXPECT_TRUE(v.as_object().contains("value"));
      EXPECT_FALSE(json::value_to<std::string>(v.at("reason")).empty());
    }
    EXPECT_EQ(got, c.violations);
  }
}

TEST(CoolifyPolicyRenderTest, AllowedRendersDeniedShowsTheVerdict) {
  const std::string allowed = TempFile("allowed.json", R"({"image": "nginx", "name": "web"})");
  ToolRun run = RunTool("render", allowed);
  EXPECT_EQ(run.exit_code, 0);
  const json::value spec = json::parse(run.out);
  EXPECT_EQ(spec.at("name"), "web");
  EXPECT_EQ(spec.at("privileged"), false);
  EXPECT_EQ(spec.at("no_new_privileges"), true);

  const std::string denied = TempFile("denied.json", R"({"image": "nginx", "privileged": true})");
  run = RunTool("render", denied);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(json::parse(run.out).at("allowed"), false);

  run = RunTool("render --policy policy/restricted.textproto", allowed);
  EXPECT_EQ(run.exit_code, 1);
}

TEST(CoolifyPolicyLintTest, ExitCodes) {
  ToolRun run = RunTool("lint policy/baseline.textproto");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("note    host_paths[0].prefix = /data/coolify/volumes"), std::string::npos)
      << run.out;
  const std::string risky = TempFile("risky.textproto", R"pb(
    name: "risky"
    allow_privileged: true
    allowed_capabilities: "ALL"
    host_paths { prefix: "/etc" read_only: true }
    namespaces { namespace: "*" default_network: "n" networks: "n" }
  )pb");
  run = RunTool("lint " + risky);
  EXPECT_EQ(run.exit_code, 1);
  for (const char* expected :
       {"danger  allow_privileged = true", "danger  allowed_capabilities[0] = ALL",
        "danger  host_paths[0].prefix = /etc", "danger  namespaces[0].networks = n"}) {
    EXPECT_NE(run.out.find(expected), std::string::npos) << expected << "\n" << run.out;
  }
  const std::string invalid =
      TempFile("invalid.textproto", "name: \"x\"\nallow_everything: true\n");
  EXPECT_EQ(RunTool("lint " + invalid).exit_code, 2);
}

TEST(CoolifyPolicyExplainTest, PrintsTheTable) {
  const ToolRun run = RunTool("explain policy/restricted.textproto");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_NE(run.out.find("capabilities held"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("none (all dropped)"), std::string::npos) << run.out;
}

TEST(CoolifyPolicyUsageTest, BadInvocationsExit2) {
  EXPECT_EQ(RunTool("").exit_code, 2);
  EXPECT_EQ(RunTool("frobnicate").exit_code, 2);
  EXPECT_EQ(RunTool("check --caller root").exit_code, 2);
  EXPECT_EQ(RunTool("check --policy").exit_code, 2);
  EXPECT_EQ(RunTool("check --policy policy/baseline.textproto --profile restricted").exit_code, 2);
  EXPECT_EQ(RunTool("check --profile permissive").exit_code, 2);
  EXPECT_EQ(RunTool("lint").exit_code, 2);
  EXPECT_EQ(RunTool("explain a b").exit_code, 2);
  // Empty stdin is no request.
  const ToolRun run = RunTool("check");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_TRUE(json::parse(run.out).as_object().contains("error"));
}

}  // namespace
}  // namespace coolify::policy

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TOOL CATALOGUE_FILE...\n", argv[0]);
    return 2;
  }
  coolify::policy::g_tool = argv[1];
  coolify::policy::g_paths.assign(argv + 2, argv + argc);
  return RUN_ALL_TESTS();
}
