#include "policy/policy_file.h"

#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "policy/capabilities.h"
#include "policy/embedded_policies.h"
#include "policy/host_path.h"
#include "policy/image_ref.h"
#include "policy/namespace_rules.h"
#include "policy/shown_value.h"
#include "privsep/validate.h"

namespace coolify::policy {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::TextFormat;

constexpr size_t kMaxPolicyBytes = 1 << 20;
constexpr size_t kMaxNameBytes = 64;

// A validation failure: where (field names from the root, each with its index or -1
// for a singular field) and what.
struct PolicyError {
  std::vector<std::pair<std::string, int>> path;
  std::string message;

  std::string PathText() const {
    std::string text;
    for (const auto& [field, index] : path) {
      absl::StrAppend(&text, text.empty() ? "" : ".", field);
      if (index >= 0) absl::StrAppend(&text, "[", index, "]");
    }
    return text;
  }
};

using Path = std::vector<std::pair<std::string, int>>;

Path At(Path base, std::string field, int index = -1) {
  base.emplace_back(std::move(field), index);
  return base;
}

std::optional<PolicyError> Fail(Path path, std::string message) {
  return PolicyError{std::move(path), std::move(message)};
}

bool IsLowerName(std::string_view s, size_t max_bytes) {
  if (s.empty() || s.size() > max_bytes) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-'))) return false;
  }
  return true;
}

// Container-side names (networks, drivers, option keys) may hold upper case.
bool IsName(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-'))) return false;
  }
  return true;
}

// Checks a repeated string field: each entry by `valid`, none twice.
template <typename Valid>
std::optional<PolicyError> CheckList(const Path& base, const std::string& field,
                                     const google::protobuf::RepeatedPtrField<std::string>& list,
                                     Valid valid, std::string_view what) {
  absl::flat_hash_set<std::string_view> seen;
  for (int i = 0; i < list.size(); ++i) {
    if (!valid(list[i])) {
      return Fail(At(base, field, i), absl::StrCat(Quoted(list[i]), " is not ", AbslView(what)));
    }
    if (!seen.insert(list[i]).second) {
      return Fail(At(base, field, i), absl::StrCat(Quoted(list[i]), " repeats"));
    }
  }
  return std::nullopt;
}

std::optional<PolicyError> CheckCapabilities(const v1::Policy& policy) {
  absl::flat_hash_set<std::string_view> seen;
  for (int i = 0; i < policy.allowed_capabilities_size(); ++i) {
    const std::string& cap = policy.allowed_capabilities(i);
    absl::StatusOr<std::string> canonical = CanonicalCapability(cap);
    if (!canonical.ok())
      return Fail(At({}, "allowed_capabilities", i), std::string(canonical.status().message()));
    if (*canonical != cap) {
      return Fail(At({}, "allowed_capabilities", i),
                  absl::StrCat(Quoted(cap), " must be written ", Quoted(*canonical)));
    }
    if (!seen.insert(cap).second)
      return Fail(At({}, "allowed_capabilities", i), absl::StrCat(Quoted(cap), " repeats"));
  }
  return std::nullopt;
}

std::optional<PolicyError> CheckHostPaths(const v1::Policy& policy) {
  absl::flat_hash_set<std::string_view> seen;
  for (int i = 0; i < policy.host_paths_size(); ++i) {
    const std::string& prefix = policy.host_paths(i).prefix();
    const Path path = At(At({}, "host_paths", i), "prefix");
    absl::StatusOr<std::string> canonical = CanonicalizeLexically(prefix);
    if (!canonical.ok()) return Fail(path, std::string(canonical.status().message()));
    if (*canonical != prefix) {
      return Fail(path, absl::StrCat(Quoted(prefix), " must be written ", Quoted(*canonical)));
    }
    if (!seen.insert(prefix).second) return Fail(path, absl::StrCat(Quoted(prefix), " repeats"));
  }
  return std::nullopt;
}

std::optional<PolicyError> CheckDevices(const v1::Policy& policy) {
  absl::flat_hash_set<std::string_view> seen;
  for (int i = 0; i < policy.allowed_devices_size(); ++i) {
    const v1::DeviceRule& rule = policy.allowed_devices(i);
    const Path base = At({}, "allowed_devices", i);
    absl::StatusOr<std::string> canonical = CanonicalizeLexically(rule.host_path());
    if (!canonical.ok())
      return Fail(At(base, "host_path"), std::string(canonical.status().message()));
    if (*canonical != rule.host_path() || !IsUnderPrefix(*canonical, "/dev") ||
        *canonical == "/dev") {
      return Fail(At(base, "host_path"),
                  absl::StrCat(Quoted(rule.host_path()), " is not a canonical path below /dev"));
    }
    if (!seen.insert(rule.host_path()).second) {
      return Fail(At(base, "host_path"), absl::StrCat(Quoted(rule.host_path()), " repeats"));
    }
    const std::string& perms = rule.permissions();
    for (size_t j = 0; j < perms.size(); ++j) {
      if ((perms[j] != 'r' && perms[j] != 'w' && perms[j] != 'm') || perms.find(perms[j]) != j) {
        return Fail(At(base, "permissions"),
                    absl::StrCat(Quoted(perms), " is not a subset of \"rwm\""));
      }
    }
  }
  return std::nullopt;
}

std::optional<PolicyError> CheckDrivers(
    const std::string& field, const google::protobuf::RepeatedPtrField<v1::DriverRule>& rules) {
  absl::flat_hash_set<std::string_view> drivers;
  for (int i = 0; i < rules.size(); ++i) {
    const Path base = At({}, field, i);
    if (!IsName(rules[i].driver())) {
      return Fail(At(base, "driver"),
                  absl::StrCat(Quoted(rules[i].driver()), " is not a driver name"));
    }
    if (!drivers.insert(rules[i].driver()).second) {
      return Fail(At(base, "driver"), absl::StrCat(Quoted(rules[i].driver()), " repeats"));
    }
    absl::flat_hash_set<std::string_view> keys;
    for (int j = 0; j < rules[i].options_size(); ++j) {
      const std::string& key = rules[i].options(j).key();
      if (!IsName(key)) {
        return Fail(At(At(base, "options", j), "key"),
                    absl::StrCat(Quoted(key), " is not an option key"));
      }
      if (!keys.insert(key).second) {
        return Fail(At(At(base, "options", j), "key"), absl::StrCat(Quoted(key), " repeats"));
      }
    }
  }
  return std::nullopt;
}

std::optional<PolicyError> CheckNamespaces(const v1::Policy& policy) {
  // Patterns are checked expanded with a stand-in name: any namespace name yields a
  // network name exactly when this one does.
  constexpr std::string_view kProbe = "x";
  absl::flat_hash_set<std::string_view> seen;
  for (int i = 0; i < policy.namespaces_size(); ++i) {
    const v1::NamespaceRule& rule = policy.namespaces(i);
    const Path base = At({}, "namespaces", i);
    if (rule.namespace_() != kAnyNamespace &&
        !privsep::ValidateNamespaceName("namespace", rule.namespace_()).ok()) {
      return Fail(At(base, "namespace"),
                  absl::StrCat(Quoted(rule.namespace_()), " is not a namespace name or \"*\""));
    }
    if (!seen.insert(rule.namespace_()).second) {
      return Fail(At(base, "namespace"), absl::StrCat(Quoted(rule.namespace_()), " repeats"));
    }
    const std::string_view name =
        rule.namespace_() == kAnyNamespace ? kProbe : std::string_view(rule.namespace_());
    const auto is_pattern = [&](const std::string& p) { return IsName(ExpandNamespace(p, name)); };
    if (auto e =
            CheckList(base, "networks", rule.networks(), is_pattern, "a network name pattern")) {
      return e;
    }
    if (auto e = CheckList(base, "network_prefixes", rule.network_prefixes(), is_pattern,
                           "a network name pattern")) {
      return e;
    }
    if (rule.default_network().empty()) return Fail(At(base, "default_network"), "required");
    if (!NetworkAllowed(rule, name, ExpandNamespace(rule.default_network(), name))) {
      return Fail(At(base, "default_network"),
                  absl::StrCat(Quoted(rule.default_network()),
                               " is not among the rule's networks or prefixes"));
    }
    for (int j = 0; j < rule.host_ports_size(); ++j) {
      const v1::PortRange& r = rule.host_ports(j);
      if (r.first() < 1 || r.last() > 65535 || r.first() > r.last()) {
        return Fail(At(base, "host_ports", j),
                    absl::StrCat(r.first(), "..", r.last(), " is not a range within 1..65535"));
      }
    }
    if (std::optional<PolicyError> e = CheckList(
            base, "host_ips", rule.host_ips(),
            [](const std::string& ip) { return privsep::ValidateIpv4("host_ips", ip).ok(); },
            "an IPv4 address");
        e) {
      return e;
    }
    if (std::optional<PolicyError> e = CheckList(
            base, "resolvers", rule.resolvers(),
            [](const std::string& ip) { return privsep::ValidateIpv4("resolvers", ip).ok(); },
            "an IPv4 address");
        e) {
      return e;
    }
  }
  return std::nullopt;
}

std::optional<PolicyError> CheckConfinement(const v1::Policy& policy) {
  absl::StatusOr<std::string> seccomp = CanonicalizeLexically(policy.seccomp_profile_path());
  if (!seccomp.ok() || *seccomp != policy.seccomp_profile_path()) {
    return Fail(At({}, "seccomp_profile_path"), absl::StrCat(Quoted(policy.seccomp_profile_path()),
                                                             " is not an absolute canonical path"));
  }
  const std::string& apparmor = policy.apparmor_profile();
  if (!apparmor.empty() && (!IsName(apparmor) || apparmor == "unconfined")) {
    return Fail(At({}, "apparmor_profile"),
                absl::StrCat(Quoted(apparmor), " is not a confining AppArmor profile name"));
  }
  if (policy.user_namespace() != "host" && policy.user_namespace() != "auto") {
    return Fail(At({}, "user_namespace"),
                absl::StrCat(Quoted(policy.user_namespace()), " is not \"host\" or \"auto\""));
  }
  return std::nullopt;
}

std::optional<PolicyError> Check(const v1::Policy& policy) {
  if (!IsLowerName(policy.name(), kMaxNameBytes)) {
    return Fail(At({}, "name"), absl::StrCat(Quoted(policy.name()),
                                             " is not a policy name ([a-z0-9][a-z0-9_.-]*)"));
  }
  if (auto e = CheckCapabilities(policy)) return e;
  if (auto e = CheckHostPaths(policy)) return e;
  if (auto e = CheckList(
          {}, "allowed_runtimes", policy.allowed_runtimes(),
          [](const std::string& r) { return IsLowerName(r, 64); }, "a runtime name")) {
    return e;
  }
  bool default_allowed = false;
  for (const std::string& r : policy.allowed_runtimes())
    default_allowed |= r == policy.default_runtime();
  if (!default_allowed) {
    return Fail(At({}, "default_runtime"),
                absl::StrCat(Quoted(policy.default_runtime()), " is not in allowed_runtimes"));
  }
  if (auto e = CheckDevices(policy)) return e;
  if (auto e = CheckList(
          {}, "allowed_sysctls", policy.allowed_sysctls(),
          [](const std::string& s) {
            return IsLowerName(s, 256) && s.find('.') != std::string::npos &&
                   s.find("..") == std::string::npos && s.back() != '.';
          },
          "a sysctl name")) {
    return e;
  }
  if (auto e = CheckDrivers("volume_drivers", policy.volume_drivers())) return e;
  if (auto e = CheckDrivers("network_drivers", policy.network_drivers())) return e;
  if (auto e = CheckList(
          {}, "allowed_registries", policy.allowed_registries(),
          [](const std::string& r) { return IsRegistryName(r); }, "a lower-case registry name")) {
    return e;
  }
  if (auto e = CheckNamespaces(policy)) return e;
  return CheckConfinement(policy);
}

// Where the parsed text spelled the field `error` names, or nullopt when it did not.
std::optional<TextFormat::ParseLocation> Locate(const TextFormat::ParseInfoTree& root,
                                                const PolicyError& error) {
  const TextFormat::ParseInfoTree* tree = &root;
  const Descriptor* type = v1::Policy::descriptor();
  for (size_t i = 0; i < error.path.size(); ++i) {
    const FieldDescriptor* field = type->FindFieldByName(error.path[i].first);
    if (field == nullptr) return std::nullopt;
    const int index = field->is_repeated() ? error.path[i].second : -1;
    if (i + 1 == error.path.size() || field->message_type() == nullptr) {
      const TextFormat::ParseLocation location = tree->GetLocation(field, index);
      if (location.line < 0) return std::nullopt;
      return location;
    }
    const TextFormat::ParseInfoTree* nested = tree->GetTreeForNested(field, index);
    if (nested == nullptr) return std::nullopt;
    tree = nested;
    type = field->message_type();
  }
  return std::nullopt;
}

// Collects the parser's first error with its position.
class FirstErrorCollector final : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (!error_.empty()) return;
    error_ = absl::StrCat(line + 1, ":", column + 1, ": ", message);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

}  // namespace

v1::Policy WithDefaults(v1::Policy policy) {
  if (policy.allowed_runtimes().empty()) {
    for (std::string_view r : kDefaultRuntimes) policy.add_allowed_runtimes(std::string(r));
  }
  if (policy.default_runtime().empty()) policy.set_default_runtime(std::string(kDefaultRuntime));
  if (policy.seccomp_profile_path().empty()) {
    policy.set_seccomp_profile_path(std::string(kDefaultSeccompProfile));
  }
  if (policy.user_namespace().empty())
    policy.set_user_namespace(std::string(kDefaultUserNamespace));
  // No container runs without a memory and a process limit: a policy that sets no cap
  // gets these, which a request that names no limit receives (render.h) and may lower.
  if (policy.resource_caps().max_memory_bytes() == 0) {
    policy.mutable_resource_caps()->set_max_memory_bytes(kDefaultMaxMemoryBytes);
  }
  if (policy.resource_caps().max_pids() == 0) policy.mutable_resource_caps()->set_max_pids(kDefaultMaxPids);
  return policy;
}

absl::Status ValidatePolicy(const v1::Policy& policy) {
  if (std::optional<PolicyError> e = Check(policy)) {
    return absl::InvalidArgumentError(absl::StrCat(e->PathText(), ": ", e->message));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Policy> ParsePolicy(std::string_view name, std::string_view text) {
  if (text.size() > kMaxPolicyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(name), ": larger than ", kMaxPolicyBytes, " bytes"));
  }
  TextFormat::Parser parser;
  FirstErrorCollector errors;
  TextFormat::ParseInfoTree info;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&info);
  parser.AllowUnknownField(false);
  parser.AllowUnknownExtension(false);
  v1::Policy policy;
  if (!parser.ParseFromString(std::string(text), &policy)) {
    return absl::InvalidArgumentError(absl::StrCat(AbslView(name), ":", errors.error()));
  }
  policy = WithDefaults(std::move(policy));
  if (std::optional<PolicyError> e = Check(policy)) {
    if (std::optional<TextFormat::ParseLocation> at = Locate(info, *e)) {
      return absl::InvalidArgumentError(absl::StrCat(AbslView(name), ":", at->line + 1, ":",
                                                     at->column + 1, ": ", e->PathText(), ": ",
                                                     e->message));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(name), ": ", e->PathText(), ": ", e->message));
  }
  return policy;
}

absl::StatusOr<v1::Policy> LoadPolicyFile(std::string_view path) {
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) return absl::NotFoundError(absl::StrCat(AbslView(path), ": cannot open"));
  std::string text;
  text.resize(kMaxPolicyBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return absl::FailedPreconditionError(absl::StrCat(AbslView(path), ": read error"));
  text.resize(static_cast<size_t>(in.gcount()));
  return ParsePolicy(path, text);
}

absl::StatusOr<v1::Policy> EmbeddedPolicy(std::string_view profile) {
  if (profile != kBaselineProfile && profile != kRestrictedProfile) {
    return absl::NotFoundError(absl::StrCat("no embedded policy ", Quoted(profile)));
  }
  const std::string path = absl::StrCat("policy/", AbslView(profile), ".textproto");
  return ParsePolicy(path, embedded::Embedded(path));
}

}  // namespace coolify::policy
