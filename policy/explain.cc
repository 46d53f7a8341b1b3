#include "policy/explain.h"

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy/capabilities.h"
#include "policy/engine.h"
#include "policy/namespace_rules.h"

namespace coolify::policy {
namespace {

using Rows = std::vector<std::pair<std::string, std::string>>;

std::string JoinOrNone(const std::vector<std::string>& items, std::string_view none) {
  return items.empty() ? std::string(none) : absl::StrJoin(items, ", ");
}

template <typename List>
std::vector<std::string> Strings(const List& list) {
  return std::vector<std::string>(list.begin(), list.end());
}

std::string Capped(uint64_t value, std::string_view unit) {
  if (value == 0) return "no cap";
  return absl::StrCat(value, std::string(unit));
}

std::string Drivers(const google::protobuf::RepeatedPtrField<v1::DriverRule>& rules) {
  std::vector<std::string> out;
  for (const v1::DriverRule& rule : rules) {
    std::vector<std::string> options;
    for (const v1::OptionRule& o : rule.options()) {
      options.push_back(o.values().empty()
                            ? o.key()
                            : absl::StrCat(o.key(), "=", absl::StrJoin(o.values(), "|")));
    }
    out.push_back(absl::StrCat(rule.driver(), " (options: ", JoinOrNone(options, "none"), ")"));
  }
  return JoinOrNone(out, "none");
}

// One rule in a sentence. Patterns are shown expanded for a named namespace and as
// written ("{namespace}") for the "*" rule.
std::string Namespace(const v1::NamespaceRule& rule) {
  const auto expand_one = [&](const std::string& pattern) {
    return rule.namespace_() == kAnyNamespace ? pattern
                                              : ExpandNamespace(pattern, rule.namespace_());
  };
  const auto expand = [&](const google::protobuf::RepeatedPtrField<std::string>& patterns) {
    std::vector<std::string> out;
    for (const std::string& p : patterns) out.push_back(expand_one(p));
    return out;
  };
  std::vector<std::string> ports;
  for (const v1::PortRange& r : rule.host_ports()) {
    ports.push_back(r.first() == r.last() ? absl::StrCat(r.first())
                                          : absl::StrCat(r.first(), "-", r.last()));
  }
  return absl::StrCat(
      "joins ", expand_one(rule.default_network()), " by default; may join ",
      JoinOrNone(expand(rule.networks()), "no fixed network"), " and networks starting with ",
      JoinOrNone(expand(rule.network_prefixes()), "nothing"), "; publishes host ports ",
      JoinOrNone(ports, "none"),
      ports.empty() ? ""
                    : absl::StrCat(" on ", JoinOrNone(Strings(rule.host_ips()), "no address")));
}

}  // namespace

std::string ExplainPolicy(const v1::Policy& policy) {
  Rows rows;
  rows.emplace_back("policy", policy.name());
  rows.emplace_back("privileged containers", policy.allow_privileged() ? "ALLOWED" : "denied");
  rows.emplace_back("host network", policy.allow_host_network() ? "ALLOWED" : "denied");
  rows.emplace_back("exec as root", policy.allow_exec_as_root() ? "ALLOWED" : "denied");
  rows.emplace_back("unlabelled containers",
                    policy.adopt_unlabelled() ? "adopted (default namespace)" : "untouchable");
  std::vector<std::string> defaults;
  if (!policy.restrictions().drop_all_capabilities()) {
    for (std::string_view c : DefaultCapabilities()) defaults.emplace_back(c);
  }
  rows.emplace_back("capabilities held", JoinOrNone(defaults, "none (all dropped)"));
  rows.emplace_back("capabilities addable",
                    JoinOrNone(Strings(policy.allowed_capabilities()), "none"));
  std::vector<std::string> paths;
  for (const v1::HostPathRule& r : policy.host_paths()) {
    paths.push_back(absl::StrCat(r.prefix(), r.read_only() ? " (read-only)" : " (read-write)"));
  }
  rows.emplace_back("host paths", JoinOrNone(paths, "none"));
  rows.emplace_back("runtimes", absl::StrCat(absl::StrJoin(policy.allowed_runtimes(), ", "),
                                             " (default ", policy.default_runtime(), ")"));
  std::vector<std::string> devices;
  for (const v1::DeviceRule& d : policy.allowed_devices()) {
    devices.push_back(
        absl::StrCat(d.host_path(), " (", d.permissions().empty() ? "rw" : d.permissions(), ")"));
  }
  rows.emplace_back("devices", JoinOrNone(devices, "none"));
  rows.emplace_back("sysctls", absl::StrCat("the safe set (", std::size(kSafeSysctls), ")",
                                            policy.allowed_sysctls().empty() ? "" : " and ",
                                            absl::StrJoin(policy.allowed_sysctls(), ", ")));
  rows.emplace_back("volume drivers", Drivers(policy.volume_drivers()));
  rows.emplace_back("network drivers", Drivers(policy.network_drivers()));
  rows.emplace_back("registries", JoinOrNone(Strings(policy.allowed_registries()), "any"));
  for (const v1::NamespaceRule& rule : policy.namespaces()) {
    rows.emplace_back(rule.namespace_() == kAnyNamespace
                          ? std::string("namespace * (any other)")
                          : absl::StrCat("namespace ", rule.namespace_()),
                      Namespace(rule));
  }
  rows.emplace_back("max memory", Capped(policy.resource_caps().max_memory_bytes(), " bytes"));
  rows.emplace_back("max cpu", Capped(policy.resource_caps().max_cpu_millis(), " millicpus"));
  rows.emplace_back("max pids", Capped(policy.resource_caps().max_pids(), ""));
  const v1::Restrictions& r = policy.restrictions();
  rows.emplace_back("non-root user",
                    r.require_non_root_user() ? "required (numeric uid)" : "not required");
  rows.emplace_back("read-only root", r.require_read_only_root() ? "required" : "not required");
  rows.emplace_back("seccomp profile", policy.seccomp_profile_path());
  rows.emplace_back("apparmor profile", policy.apparmor_profile().empty()
                                            ? "Podman's default"
                                            : policy.apparmor_profile());
  rows.emplace_back("user namespace", policy.user_namespace());
  rows.emplace_back("always written",
                    "no_new_privileges, private pid/ipc/uts/cgroup namespaces, "
                    "no unmask, no procfs options, no annotations");

  size_t width = 0;
  for (const auto& [key, value] : rows) width = std::max(width, key.size());
  std::string out;
  for (const auto& [key, value] : rows) {
    absl::StrAppend(&out, key, std::string(width - key.size() + 2, ' '), value, "\n");
  }
  return out;
}

}  // namespace coolify::policy
