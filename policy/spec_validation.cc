#include "policy/spec_validation.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "policy/capabilities.h"
#include "policy/host_path.h"
#include "policy/image_ref.h"
#include "policy/shown_value.h"
#include "privsep/validate.h"
#include "services/http/status.h"

namespace coolify::policy {
namespace {

using google::protobuf::RepeatedPtrField;
using v1::ContainerSpec;
using v1::KeyValue;

constexpr size_t kMaxNameBytes = 128;
constexpr size_t kMaxAliasBytes = 63;
constexpr size_t kMaxKeyBytes = 256;
constexpr size_t kMaxEnvValueBytes = 32 * 1024;
constexpr size_t kMaxTextBytes = 4 * 1024;
constexpr size_t kMaxRuntimeBytes = 64;
constexpr size_t kMaxUserPartBytes = 32;
constexpr size_t kMaxSysctlValueBytes = 256;
// Up to this many entries, duplicates are found by comparing pairs; beyond, by hashing.
constexpr int kLinearDuplicateScan = 16;

// A field's path ("networks[2].aliases[0]"), spelled out only when an error needs it:
// valid requests, the common case, build no strings.
struct Field {
  std::string_view name;
  int index = -1;
  std::string_view member = {};
  int member_index = -1;

  Field At(int i) const { return Field{name, i, member, member_index}; }
  Field Member(std::string_view m, int i = -1) const { return Field{name, index, m, i}; }

  std::string Path() const {
    std::string path(name);
    if (index >= 0) absl::StrAppend(&path, "[", index, "]");
    if (!member.empty()) absl::StrAppend(&path, ".", AbslView(member));
    if (member_index >= 0) absl::StrAppend(&path, "[", member_index, "]");
    return path;
  }
};

// Carries the field as its payload (services/http/status.h): the gatekeeper's 400 names
// it from there.
absl::Status FieldError(const Field& field, absl::string_view detail) {
  return http::InvalidField(field.Path(), std::string_view(detail.data(), detail.size()));
}

absl::Status GrammarError(const Field& field, std::string_view value, std::string_view what) {
  return FieldError(field, absl::StrCat(Quoted(value), " is not ", AbslView(what)));
}

absl::Status CountError(const Field& field, int count, int max) {
  return FieldError(field, absl::StrCat(count, " entries, at most ", max, " allowed"));
}

absl::Status RepeatError(const Field& field, std::string_view value) {
  return FieldError(field, absl::StrCat(Quoted(value), " repeats"));
}

// The index of the first entry equal to an earlier one, or -1.
template <typename Get>
int FirstRepeat(int n, Get get) {
  if (n <= kLinearDuplicateScan) {
    for (int i = 1; i < n; ++i) {
      for (int j = 0; j < i; ++j) {
        if (get(i) == get(j)) return i;
      }
    }
    return -1;
  }
  absl::flat_hash_set<std::string_view> seen;
  seen.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (!seen.insert(get(i)).second) return i;
  }
  return -1;
}

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool IsLowerOrDigit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [A-Za-z0-9][A-Za-z0-9_.-]*, at most max_bytes.
bool IsName(std::string_view s, size_t max_bytes) {
  if (s.empty() || s.size() > max_bytes || !IsAlnum(s[0])) return false;
  for (char c : s) {
    if (!IsAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

// A DNS domain name: dot-separated labels of [A-Za-z0-9-], none empty, none starting or
// ending with "-", each at most 63 bytes, 253 in all. It goes into the container's
// resolv.conf "search" line, so nothing else (no space, no newline) may reach it.
bool IsDomainName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (size_t start = 0; start <= s.size();) {
    const size_t dot = std::min(s.find('.', start), s.size());
    const std::string_view label = s.substr(start, dot - start);
    start = dot + 1;
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!IsAlnum(c) && c != '-') return false;
    }
  }
  return true;
}

absl::Status CheckName(const Field& field, std::string_view value, size_t max_bytes) {
  if (IsName(value, max_bytes)) return absl::OkStatus();
  return GrammarError(
      field, value,
      absl::StrCat("a name ([A-Za-z0-9][A-Za-z0-9_.-]*, at most ", max_bytes, " bytes)"));
}

absl::Status CheckText(const Field& field, std::string_view value, size_t max_bytes) {
  if (value.size() > max_bytes) {
    return FieldError(field, absl::StrCat(value.size(), " bytes, at most ", max_bytes));
  }
  if (value.find('\0') != std::string_view::npos) {
    return FieldError(field, absl::StrCat(Quoted(value), " holds a NUL byte"));
  }
  return absl::OkStatus();
}

// A credential travels inside a header (X-Registry-Auth, then the registry's
// Authorization): no control character, so none can end a line on the way.
absl::Status CheckCredential(const Field& field, std::string_view value) {
  if (absl::Status s = CheckText(field, value, kMaxTextBytes); !s.ok()) return s;
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) return FieldError(field, "holds a control character");
  }
  return absl::OkStatus();
}

absl::Status CheckArgs(const Field& field, const RepeatedPtrField<std::string>& args) {
  if (args.size() > kMaxArgs) return CountError(field, args.size(), kMaxArgs);
  for (int i = 0; i < args.size(); ++i) {
    if (absl::Status s = CheckText(field.At(i), args[i], kMaxEnvValueBytes); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// The lexically canonical form of an absolute path field.
absl::StatusOr<std::string> CanonicalPath(const Field& field, std::string_view value) {
  absl::StatusOr<std::string> canonical = CanonicalizeLexically(value);
  if (!canonical.ok()) return FieldError(field, canonical.status().message());
  return canonical;
}

absl::Status CheckPath(const Field& field, std::string_view value) {
  return CanonicalPath(field, value).status();
}

bool IsEnvKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyBytes) return false;
  for (char c : key) {
    if (c <= ' ' || c > '~' || c == '=') return false;
  }
  return true;
}

bool IsLabelKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyBytes || !IsAlnum(key[0])) return false;
  for (char c : key) {
    if (!IsAlnum(c) && c != '_' && c != '.' && c != '/' && c != '-') return false;
  }
  return true;
}

// Environment variables, labels and driver options: pairs with unique keys.
absl::Status CheckPairs(const Field& field, const RepeatedPtrField<KeyValue>& pairs, int max,
                        bool env) {
  if (pairs.size() > max) return CountError(field, pairs.size(), max);
  for (int i = 0; i < pairs.size(); ++i) {
    const std::string& key = pairs[i].key();
    if (env ? !IsEnvKey(key) : !IsLabelKey(key)) {
      return GrammarError(field.At(i).Member("key"), key,
                          env ? "an environment variable name (printable ASCII, no \"=\")"
                              : "a key ([A-Za-z0-9][A-Za-z0-9_./-]*, at most 256 bytes)");
    }
    if (absl::Status s = CheckText(field.At(i).Member("value"), pairs[i].value(),
                                   env ? kMaxEnvValueBytes : kMaxTextBytes);
        !s.ok()) {
      return s;
    }
  }
  const int repeat =
      FirstRepeat(pairs.size(), [&](int i) { return std::string_view(pairs[i].key()); });
  if (repeat >= 0) return RepeatError(field.At(repeat).Member("key"), pairs[repeat].key());
  return absl::OkStatus();
}

// name [a-z_][a-z0-9_-]{0,31} or an id 0..4294967294 (4294967295 is (uid_t)-1).
bool IsUserPart(std::string_view part) {
  if (part.empty() || part.size() > kMaxUserPartBytes) return false;
  if (part[0] >= '0' && part[0] <= '9') {
    uint32_t id = 0;
    return part.find_first_not_of("0123456789") == std::string_view::npos &&
           absl::SimpleAtoi(AbslView(part), &id) && id != 4294967295u;
  }
  if (!(part[0] == '_' || (part[0] >= 'a' && part[0] <= 'z'))) return false;
  for (char c : part) {
    if (!IsLowerOrDigit(c) && c != '_' && c != '-') return false;
  }
  return true;
}

absl::Status CheckUser(const Field& field, std::string_view user) {
  if (user.empty()) return absl::OkStatus();
  const size_t colon = user.find(':');
  const bool ok = colon == std::string_view::npos
                      ? IsUserPart(user)
                      : IsUserPart(user.substr(0, colon)) && IsUserPart(user.substr(colon + 1));
  if (ok) return absl::OkStatus();
  return GrammarError(field, user, "a user (name or id, optionally \":\" group name or id)");
}

bool IsRuntimeName(std::string_view name) {
  if (name.empty() || name.size() > kMaxRuntimeBytes || !IsLowerOrDigit(name[0])) return false;
  for (char c : name) {
    if (!IsLowerOrDigit(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

bool IsSysctlKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyBytes || !(key[0] >= 'a' && key[0] <= 'z')) return false;
  size_t segments = 1;
  size_t segment_bytes = 0;
  for (const char c : key) {
    if (c == '.') {
      if (segment_bytes == 0) return false;
      ++segments;
      segment_bytes = 0;
      continue;
    }
    // The first segment is a subsystem ("net", "kernel"): no "-" in it.
    if (!IsLowerOrDigit(c) && c != '_' && !(c == '-' && segments > 1)) return false;
    ++segment_bytes;
  }
  return segments >= 2 && segment_bytes > 0;
}

bool IsPrintableValue(std::string_view value, size_t max_bytes) {
  if (value.empty() || value.size() > max_bytes) return false;
  for (char c : value) {
    if (c < ' ' || c > '~') return false;
  }
  return true;
}

bool IsDevicePermissions(std::string_view permissions) {
  if (permissions.size() > 3) return false;
  for (size_t i = 0; i < permissions.size(); ++i) {
    const char c = permissions[i];
    if ((c != 'r' && c != 'w' && c != 'm') || permissions.find(c) != i) return false;
  }
  return true;
}

absl::Status CheckCapabilities(const Field& field, const RepeatedPtrField<std::string>& caps) {
  if (caps.size() > kMaxCapabilities) return CountError(field, caps.size(), kMaxCapabilities);
  for (int i = 0; i < caps.size(); ++i) {
    if (CapabilityIndex(caps[i]) == kNoCapability) {
      return FieldError(field.At(i), CanonicalCapability(caps[i]).status().message());
    }
  }
  return absl::OkStatus();
}

absl::Status CheckNetworks(const ContainerSpec& spec) {
  const Field field{"networks"};
  if (spec.networks_size() > kMaxNetworks)
    return CountError(field, spec.networks_size(), kMaxNetworks);
  for (int i = 0; i < spec.networks_size(); ++i) {
    const v1::NetworkAttachment& n = spec.networks(i);
    if (absl::Status s = CheckName(field.At(i).Member("network"), n.network(), kMaxNameBytes);
        !s.ok()) {
      return s;
    }
    if (n.aliases_size() > kMaxAliases) {
      return CountError(field.At(i).Member("aliases"), n.aliases_size(), kMaxAliases);
    }
    for (int j = 0; j < n.aliases_size(); ++j) {
      if (absl::Status s =
              CheckName(field.At(i).Member("aliases", j), n.aliases(j), kMaxAliasBytes);
          !s.ok()) {
        return s;
      }
    }
  }
  const int repeat = FirstRepeat(
      spec.networks_size(), [&](int i) { return std::string_view(spec.networks(i).network()); });
  if (repeat >= 0)
    return RepeatError(field.At(repeat).Member("network"), spec.networks(repeat).network());
  return absl::OkStatus();
}

// Mount destinations: absolute, not the container's root itself, no two alike.
absl::Status CheckMounts(const ContainerSpec& spec) {
  const Field volumes{"volumes"};
  const Field binds{"binds"};
  if (spec.volumes_size() > kMaxMounts) return CountError(volumes, spec.volumes_size(), kMaxMounts);
  if (spec.binds_size() > kMaxMounts) return CountError(binds, spec.binds_size(), kMaxMounts);
  std::vector<std::pair<std::string, Field>> destinations;
  destinations.reserve(static_cast<size_t>(spec.volumes_size() + spec.binds_size()));
  const auto destination = [&](const Field& field, std::string_view value) -> absl::Status {
    absl::StatusOr<std::string> canonical = CanonicalPath(field, value);
    if (!canonical.ok()) return canonical.status();
    if (*canonical == "/") return FieldError(field, "cannot mount over the container's root");
    destinations.emplace_back(*std::move(canonical), field);
    return absl::OkStatus();
  };
  for (int i = 0; i < spec.volumes_size(); ++i) {
    if (absl::Status s =
            CheckName(volumes.At(i).Member("volume"), spec.volumes(i).volume(), kMaxNameBytes);
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            destination(volumes.At(i).Member("destination"), spec.volumes(i).destination());
        !s.ok()) {
      return s;
    }
  }
  for (int i = 0; i < spec.binds_size(); ++i) {
    if (absl::Status s = CheckPath(binds.At(i).Member("source"), spec.binds(i).source()); !s.ok()) {
      return s;
    }
    if (absl::Status s =
            destination(binds.At(i).Member("destination"), spec.binds(i).destination());
        !s.ok()) {
      return s;
    }
  }
  const int repeat = FirstRepeat(static_cast<int>(destinations.size()),
                                 [&](int i) { return std::string_view(destinations[i].first); });
  if (repeat >= 0) {
    return FieldError(destinations[repeat].second, absl::StrCat(Quoted(destinations[repeat].first),
                                                                " is already a mount destination"));
  }
  return absl::OkStatus();
}

absl::Status CheckPorts(const ContainerSpec& spec) {
  const Field field{"ports"};
  if (spec.ports_size() > kMaxPorts) return CountError(field, spec.ports_size(), kMaxPorts);
  for (int i = 0; i < spec.ports_size(); ++i) {
    const v1::PortMapping& p = spec.ports(i);
    if (!p.host_ip().empty() && !privsep::ValidateIpv4("", p.host_ip()).ok()) {
      return GrammarError(field.At(i).Member("host_ip"), p.host_ip(),
                          "a dotted-quad IPv4 address without leading zeros");
    }
    if (p.host_port() < 1 || p.host_port() > 65535) {
      return FieldError(field.At(i).Member("host_port"),
                        absl::StrCat(p.host_port(), " is not in 1..65535"));
    }
    if (p.container_port() < 1 || p.container_port() > 65535) {
      return FieldError(field.At(i).Member("container_port"),
                        absl::StrCat(p.container_port(), " is not in 1..65535"));
    }
    if (!v1::PortProtocol_IsValid(p.protocol())) {
      return FieldError(field.At(i).Member("protocol"),
                        absl::StrCat(p.protocol(), " is not a PortProtocol"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckResources(const v1::Resources& r) {
  if (r.memory_bytes() != 0 &&
      (r.memory_bytes() < kMinMemoryBytes || r.memory_bytes() > kMaxMemoryBytes)) {
    return FieldError(
        Field{"resources", -1, "memory_bytes"},
        absl::StrCat(r.memory_bytes(), " is outside ", kMinMemoryBytes, "..", kMaxMemoryBytes));
  }
  if (r.cpu_millis() != 0 && (r.cpu_millis() < kMinCpuMillis || r.cpu_millis() > kMaxCpuMillis)) {
    return FieldError(
        Field{"resources", -1, "cpu_millis"},
        absl::StrCat(r.cpu_millis(), " is outside ", kMinCpuMillis, "..", kMaxCpuMillis));
  }
  if (r.pids_limit() > kMaxPids) {
    return FieldError(Field{"resources", -1, "pids_limit"},
                      absl::StrCat(r.pids_limit(), " is outside 1..", kMaxPids));
  }
  return absl::OkStatus();
}

absl::Status CheckHealthcheck(const v1::Healthcheck& h) {
  const bool any_set = h.test_size() > 0 || h.interval_seconds() != 0 || h.timeout_seconds() != 0 ||
                       h.retries() != 0 || h.start_period_seconds() != 0;
  if (!any_set) return absl::OkStatus();
  const Field test{"healthcheck", -1, "test"};
  if (h.test_size() == 0) return FieldError(test, "required with a healthcheck");
  if (absl::Status s = CheckArgs(test, h.test()); !s.ok()) return s;
  const std::string& kind = h.test(0);
  const bool shape_ok = (kind == "CMD" && h.test_size() >= 2) ||
                        (kind == "CMD-SHELL" && h.test_size() == 2) ||
                        (kind == "NONE" && h.test_size() == 1);
  if (!shape_ok) {
    return FieldError(test, "must be [\"CMD\", arg...], [\"CMD-SHELL\", command] or [\"NONE\"]");
  }
  const std::pair<std::string_view, uint32_t> durations[] = {
      {"interval_seconds", h.interval_seconds()},
      {"timeout_seconds", h.timeout_seconds()},
      {"start_period_seconds", h.start_period_seconds()},
  };
  for (const auto& [member, seconds] : durations) {
    if (seconds > kMaxHealthSeconds) {
      return FieldError(Field{"healthcheck", -1, member},
                        absl::StrCat(seconds, " is over ", kMaxHealthSeconds));
    }
  }
  if (h.retries() > kMaxHealthRetries) {
    return FieldError(Field{"healthcheck", -1, "retries"},
                      absl::StrCat(h.retries(), " is over ", kMaxHealthRetries));
  }
  return absl::OkStatus();
}

absl::Status CheckDevices(const ContainerSpec& spec) {
  const Field field{"devices"};
  if (spec.devices_size() > kMaxDevices) return CountError(field, spec.devices_size(), kMaxDevices);
  for (int i = 0; i < spec.devices_size(); ++i) {
    const v1::Device& d = spec.devices(i);
    if (absl::Status s = CheckPath(field.At(i).Member("host_path"), d.host_path()); !s.ok())
      return s;
    if (!d.container_path().empty()) {
      if (absl::Status s = CheckPath(field.At(i).Member("container_path"), d.container_path());
          !s.ok()) {
        return s;
      }
    }
    if (!IsDevicePermissions(d.permissions())) {
      return GrammarError(field.At(i).Member("permissions"), d.permissions(),
                          "a subset of \"rwm\"");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSysctls(const ContainerSpec& spec) {
  const Field field{"sysctls"};
  if (spec.sysctls_size() > kMaxSysctls) return CountError(field, spec.sysctls_size(), kMaxSysctls);
  for (int i = 0; i < spec.sysctls_size(); ++i) {
    const KeyValue& kv = spec.sysctls(i);
    if (!IsSysctlKey(kv.key())) {
      return GrammarError(field.At(i).Member("key"), kv.key(),
                          "a sysctl name (dotted, lower case: \"net.ipv4.tcp_syncookies\")");
    }
    if (!IsPrintableValue(kv.value(), kMaxSysctlValueBytes)) {
      return GrammarError(field.At(i).Member("value"), kv.value(),
                          "a sysctl value (1..256 printable ASCII bytes)");
    }
  }
  const int repeat = FirstRepeat(spec.sysctls_size(),
                                 [&](int i) { return std::string_view(spec.sysctls(i).key()); });
  if (repeat >= 0) return RepeatError(field.At(repeat).Member("key"), spec.sysctls(repeat).key());
  return absl::OkStatus();
}

absl::Status CheckOptionalNamespace(std::string_view value) {
  if (value.empty()) return absl::OkStatus();
  return privsep::ValidateNamespaceName("namespace", value);
}

absl::Status CheckImage(const Field& field, std::string_view reference) {
  if (reference.empty()) return FieldError(field, "required");
  absl::StatusOr<ImageRef> ref = ParseImageRef(reference);
  return ref.ok() ? absl::OkStatus() : FieldError(field, ref.status().message());
}

// Runs each check in turn and returns the first failure.
template <typename... Checks>
absl::Status FirstError(Checks&&... checks) {
  absl::Status result;
  ((result.ok() ? (void)(result = checks()) : (void)0), ...);
  return result;
}

}  // namespace

absl::Status ValidateContainerSpec(const ContainerSpec& spec) {
  return FirstError(
      [&] {
        return spec.name().empty() ? absl::OkStatus()
                                   : CheckName(Field{"name"}, spec.name(), kMaxNameBytes);
      },
      [&] { return CheckImage(Field{"image"}, spec.image()); },
      [&] { return CheckArgs(Field{"command"}, spec.command()); },
      [&] { return CheckArgs(Field{"entrypoint"}, spec.entrypoint()); },
      [&] { return CheckPairs(Field{"env"}, spec.env(), kMaxEnv, /*env=*/true); },
      [&] { return CheckPairs(Field{"labels"}, spec.labels(), kMaxLabels, /*env=*/false); },
      [&] { return CheckUser(Field{"user"}, spec.user()); },
      [&] {
        return spec.workdir().empty() ? absl::OkStatus()
                                      : CheckPath(Field{"workdir"}, spec.workdir());
      },
      [&] { return CheckNetworks(spec); }, [&] { return CheckMounts(spec); },
      [&] { return CheckPorts(spec); },
      [&] {
        const Field field{"dns"};
        if (spec.dns_size() > kMaxDns) return CountError(field, spec.dns_size(), kMaxDns);
        for (int i = 0; i < spec.dns_size(); ++i) {
          if (!privsep::ValidateIpv4("", spec.dns(i)).ok()) {
            return GrammarError(field.At(i), spec.dns(i),
                                "a dotted-quad IPv4 address without leading zeros");
          }
        }
        return absl::OkStatus();
      },
      [&] {
        const Field field{"dns_search"};
        if (spec.dns_search_size() > kMaxDnsSearch) {
          return CountError(field, spec.dns_search_size(), kMaxDnsSearch);
        }
        for (int i = 0; i < spec.dns_search_size(); ++i) {
          if (!IsDomainName(spec.dns_search(i))) {
            return GrammarError(field.At(i), spec.dns_search(i),
                                "a domain name (labels of A-Z a-z 0-9 -, dot-separated)");
          }
        }
        return absl::OkStatus();
      },
      [&] {
        if (!v1::RestartPolicy_IsValid(spec.restart_policy())) {
          return FieldError(Field{"restart_policy"},
                            absl::StrCat(spec.restart_policy(), " is not a RestartPolicy"));
        }
        const Field retries{"restart_max_retries"};
        if (spec.restart_max_retries() != 0 &&
            spec.restart_policy() != v1::RESTART_POLICY_ON_FAILURE) {
          return FieldError(retries, "only with RESTART_POLICY_ON_FAILURE");
        }
        if (spec.restart_max_retries() > kMaxRestartRetries) {
          return FieldError(
              retries, absl::StrCat(spec.restart_max_retries(), " is over ", kMaxRestartRetries));
        }
        return absl::OkStatus();
      },
      [&] { return CheckResources(spec.resources()); },
      [&] { return CheckHealthcheck(spec.healthcheck()); },
      [&] { return CheckCapabilities(Field{"cap_add"}, spec.cap_add()); },
      [&] { return CheckCapabilities(Field{"cap_drop"}, spec.cap_drop()); },
      [&] {
        if (spec.runtime().empty() || IsRuntimeName(spec.runtime())) return absl::OkStatus();
        return GrammarError(Field{"runtime"}, spec.runtime(),
                            "a runtime name ([a-z0-9][a-z0-9_.-]*, never a path)");
      },
      [&] { return CheckDevices(spec); }, [&] { return CheckSysctls(spec); },
      [&] { return CheckOptionalNamespace(spec.namespace_()); },
      [&] {
        if (spec.host_network() && spec.networks_size() > 0) {
          return FieldError(Field{"networks"}, "cannot be combined with host_network");
        }
        if (spec.host_network() && spec.ports_size() > 0) {
          return FieldError(Field{"ports"}, "cannot be combined with host_network");
        }
        return absl::OkStatus();
      });
}

absl::Status ValidateVolumesCreate(const v1::VolumesCreate& request) {
  return FirstError(
      [&] { return CheckName(Field{"name"}, request.name(), kMaxNameBytes); },
      [&] {
        return request.driver().empty()
                   ? absl::OkStatus()
                   : CheckName(Field{"driver"}, request.driver(), kMaxNameBytes);
      },
      [&] { return CheckPairs(Field{"options"}, request.options(), kMaxOptions, /*env=*/false); },
      [&] { return CheckPairs(Field{"labels"}, request.labels(), kMaxLabels, /*env=*/false); });
}

absl::Status ValidateNetworksCreate(const v1::NetworksCreate& request) {
  return FirstError(
      [&] { return CheckName(Field{"name"}, request.name(), kMaxNameBytes); },
      [&] {
        return request.driver().empty()
                   ? absl::OkStatus()
                   : CheckName(Field{"driver"}, request.driver(), kMaxNameBytes);
      },
      [&] {
        return request.subnet().empty() ? absl::OkStatus()
                                        : privsep::ValidateIpv4Cidr("subnet", request.subnet());
      },
      [&] {
        return request.gateway().empty() ? absl::OkStatus()
                                         : privsep::ValidateIpv4("gateway", request.gateway());
      },
      [&] { return CheckPairs(Field{"labels"}, request.labels(), kMaxLabels, /*env=*/false); },
      [&] { return CheckPairs(Field{"options"}, request.options(), kMaxOptions, /*env=*/false); },
      [&] { return CheckOptionalNamespace(request.namespace_()); });
}

absl::Status ValidateContainersExec(const v1::ContainersExec& request) {
  return FirstError([&] { return CheckName(Field{"id"}, request.id(), kMaxNameBytes); },
                    [&] {
                      if (request.cmd_size() == 0) return FieldError(Field{"cmd"}, "required");
                      return CheckArgs(Field{"cmd"}, request.cmd());
                    },
                    [&] { return CheckPairs(Field{"env"}, request.env(), kMaxEnv, /*env=*/true); },
                    [&] { return CheckUser(Field{"user"}, request.user()); },
                    [&] {
                      return request.workdir().empty()
                                 ? absl::OkStatus()
                                 : CheckPath(Field{"workdir"}, request.workdir());
                    });
}

absl::Status ValidateImagesPull(const v1::ImagesPull& request) {
  return FirstError(
      [&] { return CheckImage(Field{"ref"}, request.ref()); },
      [&] { return CheckCredential(Field{"auth", -1, "username"}, request.auth().username()); },
      [&] { return CheckCredential(Field{"auth", -1, "password"}, request.auth().password()); },
      [&] { return CheckCredential(Field{"auth", -1, "identity_token"}, request.auth().identity_token()); });
}

bool IsNumericNonRootUser(std::string_view user) {
  const std::string_view uid = user.substr(0, user.find(':'));
  if (uid.empty() || uid.find_first_not_of("0123456789") != std::string_view::npos) return false;
  return uid.find_first_not_of('0') != std::string_view::npos;
}

}  // namespace coolify::policy
