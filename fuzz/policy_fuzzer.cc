// Feeds arbitrary bytes to the gatekeeper's create path, the code that turns a caller's
// JSON into what Podman is sent: ParseContainerSpecJson, Evaluate under both embedded
// profiles (as an API caller and as coold), and RenderSpecGenerator for what is allowed.
//
// Besides "does not crash", it checks the renderer's promises on every allowed request:
// one well-formed JSON object, nothing privileged, every capability dropped before the
// explicit set, no new privileges, private namespaces.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "boost/json.hpp"
#include "google/protobuf/stubs/logging.h"
#include "policy/api_json.h"
#include "policy/engine.h"
#include "policy/policy_file.h"
#include "policy/render.h"

namespace coolify::policy {
namespace {

namespace json = boost::json;

const v1::Policy* g_policies[2];

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "policy_fuzzer: broken promise: %s\n", what);
    std::abort();
  }
}

void EvaluateAndRender(const v1::ContainerSpec& spec, const v1::Policy& policy,
                       const CallerContext& caller) {
  const absl::StatusOr<Verdict> verdict = Evaluate(spec, policy, caller);
  if (!verdict.ok() || !verdict->allowed()) return;
  const absl::StatusOr<std::string> text = RenderSpecGenerator(spec, policy);
  Check(text.ok(), "an allowed spec renders");
  boost::system::error_code ec;
  const json::value rendered = json::parse(*text, ec);
  Check(!ec && rendered.is_object(), "the rendered text is one JSON object");
  Check(rendered.at("privileged") == false || policy.allow_privileged(),
        "privileged only where the policy allows it");
  Check(rendered.at("no_new_privileges") == true, "no_new_privileges");
  Check(rendered.at("cap_drop") == json::array({"ALL"}), "cap_drop [ALL]");
  for (const char* ns : {"pidns", "ipcns", "utsns", "cgroupns"}) {
    Check(rendered.at(ns).at("nsmode") == "private", "private namespaces");
  }
  Check(rendered.at("netns").at("nsmode") == (spec.host_network() ? "host" : "bridge"),
        "host network only when asked and allowed");
}

// Invalid UTF-8 makes protobuf log an error for each string field it meets; only fatal
// messages are worth printing.
void FatalOnlyLogHandler(google::protobuf::LogLevel level, const char* file, int line,
                         const std::string& message) {
  if (level == google::protobuf::LOGLEVEL_FATAL) {
    std::fprintf(stderr, "[libprotobuf FATAL %s:%d] %s\n", file, line, message.c_str());
  }
}

}  // namespace
}  // namespace coolify::policy

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace coolify::policy;
  google::protobuf::SetLogHandler(&FatalOnlyLogHandler);
  const std::string_view profiles[] = {kBaselineProfile, kRestrictedProfile};
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<coolify::v1::Policy> policy = EmbeddedPolicy(profiles[i]);
    if (!policy.ok()) {
      std::fprintf(stderr, "policy_fuzzer: %s\n", std::string(policy.status().message()).c_str());
      std::abort();
    }
    g_policies[i] = new coolify::v1::Policy(*std::move(policy));
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coolify::policy;
  const absl::StatusOr<coolify::v1::ContainerSpec> spec =
      ParseContainerSpecJson(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!spec.ok()) return 0;
  CallerContext api;
  for (const coolify::v1::Policy* policy : g_policies) EvaluateAndRender(*spec, *policy, api);
  return 0;
}
