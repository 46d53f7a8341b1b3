// coolify-policy: the deny filter's audit tool. It runs the gatekeeper's own code
// (policy_file, engine, render, lint, explain) on requests and policies, so what it says
// is what coold would do.
//
//   coolify-policy check  [OPTIONS] < request.json   verdict JSON; exit 0 allowed,
//                                                     1 denied, 2 bad input
//   coolify-policy render [OPTIONS] < request.json   the SpecGenerator coold would send
//                                                     (exit 0), or the verdict (exit 1)
//   coolify-policy lint FILE                          risky allowances; exit 1 if any is
//                                                     a danger, 2 if FILE is invalid
//   coolify-policy explain FILE                       the effective policy as a table
//
// OPTIONS:
//   --policy FILE             the policy to apply (default: the embedded baseline)
//   --profile NAME            an embedded profile instead: baseline or restricted
//   --namespace NAME          the namespace the caller is confined to
//   --host-namespaces A,B     the host's namespaces (default: not checked)
//   --host-root DIR           resolve bind sources below DIR as the gatekeeper does
//                             below "/" (default: lexical checks only)
#include <algorithm>
#include <cstdio>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/json.hpp"
#include "policy/api_json.h"
#include "policy/engine.h"
#include "policy/explain.h"
#include "policy/host_path.h"
#include "policy/lint.h"
#include "policy/policy_file.h"
#include "policy/pretty_json.h"
#include "policy/render.h"

namespace coolify::policy {
namespace {

constexpr int kExitAllowed = 0;
constexpr int kExitDenied = 1;
constexpr int kExitBadInput = 2;

constexpr char kUsage[] =
    "usage: coolify-policy check|render [--policy FILE | --profile NAME] [--namespace NAME]\n"
    "                                   [--host-namespaces A,B]\n"
    "                                   [--host-root DIR] < request.json\n"
    "       coolify-policy lint FILE\n"
    "       coolify-policy explain FILE\n";

struct Options {
  std::string policy_file;
  std::string profile;
  std::string namespace_name;
  std::vector<std::string> host_namespaces;
  std::string host_root;
};

int Usage(std::string_view problem) {
  std::fprintf(stderr, "coolify-policy: %.*s\n%s", static_cast<int>(problem.size()), problem.data(),
               kUsage);
  return kExitBadInput;
}

// Bad input: the reason on stdout as JSON (for scripts) and on stderr (for people).
int BadInput(const absl::Status& status) {
  boost::json::object error;
  error.emplace("error", std::string(status.message()));
  std::fputs(PrettyJson(error).c_str(), stdout);
  std::fprintf(stderr, "coolify-policy: %s\n", std::string(status.message()).c_str());
  return kExitBadInput;
}

std::optional<Options> ParseOptions(const std::vector<std::string_view>& args,
                                    std::string* problem) {
  Options options;
  constexpr std::string_view kFlags[] = {"--policy", "--profile", "--namespace", "--host-namespaces",
                                         "--host-root"};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    if (std::find(std::begin(kFlags), std::end(kFlags), flag) == std::end(kFlags)) {
      *problem = absl::StrCat("unknown option ", std::string(flag));
      return std::nullopt;
    }
    if (i + 1 >= args.size()) {
      *problem = absl::StrCat("missing value after ", std::string(flag));
      return std::nullopt;
    }
    const std::string value(args[++i]);
    if (flag == "--policy") {
      options.policy_file = value;
    } else if (flag == "--profile") {
      options.profile = value;
    } else if (flag == "--namespace") {
      options.namespace_name = value;
    } else if (flag == "--host-namespaces") {
      options.host_namespaces = absl::StrSplit(value, ',', absl::SkipEmpty());
    } else {
      options.host_root = value;
    }
  }
  if (!options.policy_file.empty() && !options.profile.empty()) {
    *problem = "--policy and --profile exclude each other";
    return std::nullopt;
  }
  return options;
}

absl::StatusOr<v1::Policy> PolicyFor(const Options& options) {
  if (!options.policy_file.empty()) return LoadPolicyFile(options.policy_file);
  return EmbeddedPolicy(options.profile.empty() ? kBaselineProfile : options.profile);
}

absl::StatusOr<std::string> ReadStdin() {
  std::string body;
  char buffer[65536];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, stdin)) > 0) {
    body.append(buffer, n);
    if (body.size() > kMaxBodyBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("request larger than ", kMaxBodyBytes, " bytes"));
    }
  }
  if (std::ferror(stdin)) return absl::FailedPreconditionError("cannot read standard input");
  return body;
}

// check and render: the gatekeeper's create path on one request from stdin.
int CheckOrRender(bool render, const std::vector<std::string_view>& args) {
  std::string problem;
  const std::optional<Options> options = ParseOptions(args, &problem);
  if (!options) return Usage(problem);
  const absl::StatusOr<v1::Policy> policy = PolicyFor(*options);
  if (!policy.ok()) return BadInput(policy.status());
  std::unique_ptr<PinningHostPathResolver> resolver;
  if (!options->host_root.empty()) {
    absl::StatusOr<std::unique_ptr<PinningHostPathResolver>> created =
        PinningHostPathResolver::Create(options->host_root);
    if (!created.ok()) return BadInput(created.status());
    resolver = *std::move(created);
  }
  const absl::StatusOr<std::string> body = ReadStdin();
  if (!body.ok()) return BadInput(body.status());
  const absl::StatusOr<v1::ContainerSpec> spec = ParseContainerSpecJson(*body);
  if (!spec.ok()) return BadInput(spec.status());
  CallerContext caller;
  caller.namespace_name = options->namespace_name;
  caller.host_namespaces = options->host_namespaces;
  caller.host_paths = resolver.get();
  const absl::StatusOr<Verdict> verdict = Evaluate(*spec, *policy, caller);
  if (!verdict.ok()) return BadInput(verdict.status());
  if (!render || !verdict->allowed()) {
    std::fputs(PrettyJson(VerdictToJson(*verdict)).c_str(), stdout);
    return verdict->allowed() ? kExitAllowed : kExitDenied;
  }
  const absl::StatusOr<std::string> generator = RenderSpecGenerator(*spec, *policy, resolver.get());
  if (!generator.ok()) return BadInput(generator.status());
  std::fputs(PrettyJson(boost::json::parse(*generator)).c_str(), stdout);
  return kExitAllowed;
}

int Lint(const std::vector<std::string_view>& args) {
  if (args.size() != 1) return Usage("lint takes one policy file");
  const absl::StatusOr<v1::Policy> policy = LoadPolicyFile(args[0]);
  if (!policy.ok()) {
    std::fprintf(stderr, "coolify-policy: %s\n", std::string(policy.status().message()).c_str());
    return kExitBadInput;
  }
  const std::vector<Finding> findings = LintPolicy(*policy);
  bool danger = false;
  for (const Finding& f : findings) {
    danger |= f.severity == Severity::kDanger;
    std::printf("%-7s %s%s%s\n        %s\n", SeverityName(f.severity), f.rule.c_str(),
                f.value.empty() ? "" : " = ", f.value.c_str(), f.explanation.c_str());
  }
  std::printf("%zu finding(s) in %s\n", findings.size(), std::string(args[0]).c_str());
  return danger ? kExitDenied : kExitAllowed;
}

int Explain(const std::vector<std::string_view>& args) {
  if (args.size() != 1) return Usage("explain takes one policy file");
  const absl::StatusOr<v1::Policy> policy = LoadPolicyFile(args[0]);
  if (!policy.ok()) {
    std::fprintf(stderr, "coolify-policy: %s\n", std::string(policy.status().message()).c_str());
    return kExitBadInput;
  }
  std::fputs(ExplainPolicy(*policy).c_str(), stdout);
  return kExitAllowed;
}

}  // namespace
}  // namespace coolify::policy

int main(int argc, char** argv) {
  using namespace coolify::policy;
  if (argc < 2) return Usage("no command");
  const std::string_view command = argv[1];
  const std::vector<std::string_view> args(argv + 2, argv + argc);
  if (command == "check") return CheckOrRender(/*render=*/false, args);
  if (command == "render") return CheckOrRender(/*render=*/true, args);
  if (command == "lint") return Lint(args);
  if (command == "explain") return Explain(args);
  return Usage(absl::StrCat("unknown command ", std::string(command)));
}
