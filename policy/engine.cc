#include "policy/engine.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "policy/capabilities.h"
#include "policy/image_ref.h"
#include "policy/namespace_rules.h"
#include "policy/shown_value.h"
#include "policy/spec_validation.h"
#include "privsep/validate.h"

namespace coolify::policy {
namespace {

using google::protobuf::RepeatedPtrField;

// Collects violations; every check runs, so one answer lists everything to fix.
class Findings {
 public:
  void Add(std::string field, std::string_view value, std::string rule, std::string reason) {
    verdict_.violations.push_back(
        Violation{std::move(field), ShownValue(value), std::move(rule), std::move(reason)});
  }
  Verdict Take() { return std::move(verdict_); }

 private:
  Verdict verdict_;
};

std::string Indexed(std::string_view field, int i) {
  return absl::StrCat(AbslView(field), "[", i, "]");
}

bool Contains(const RepeatedPtrField<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool IsSafeSysctl(std::string_view key) {
  return std::find(std::begin(kSafeSysctls), std::end(kSafeSysctls), key) != std::end(kSafeSysctls);
}

void CheckCapabilities(const v1::ContainerSpec& spec, const v1::Policy& policy, Findings* out) {
  if (spec.cap_add_size() == 0) return;
  // Capabilities compare as bits (capabilities.h): the request's spellings and the
  // policy's names map to the same kernel numbers.
  bool all_allowed = false;
  uint64_t allowed = policy.restrictions().drop_all_capabilities() ? 0 : DefaultCapabilityBits();
  for (const std::string& name : policy.allowed_capabilities()) {
    const int index = CapabilityIndex(name);
    if (index == kAllCapabilitiesIndex) all_allowed = true;
    if (index >= 0 && index < kAllCapabilitiesIndex) allowed |= uint64_t{1} << index;
  }
  if (all_allowed) return;
  for (int i = 0; i < spec.cap_add_size(); ++i) {
    // Validation already proved every entry names a capability or "ALL".
    const int index = CapabilityIndex(spec.cap_add(i));
    if (index >= 0 && index < kAllCapabilitiesIndex && (allowed & (uint64_t{1} << index)) != 0) {
      continue;
    }
    out->Add(Indexed("cap_add", i), spec.cap_add(i), "allowed_capabilities",
             index == kAllCapabilitiesIndex
                 ? "adding every capability is not allowed"
                 : absl::StrCat("capability ", AbslView(KnownCapabilities()[index]),
                                " is not allowed on this host"));
  }
}

// The rule `path` (canonical) breaks among the host-path rules, as {rule, what}, or
// nullopt when it is allowed.
std::optional<std::pair<const char*, const char*>> HostPathProblem(const v1::Policy& policy,
                                                                   std::string_view path,
                                                                   bool read_only) {
  bool under_any = false;
  bool writable = false;
  bool writable_root = false;
  for (const v1::HostPathRule& rule : policy.host_paths()) {
    if (!IsUnderPrefix(path, rule.prefix())) continue;
    under_any = true;
    if (rule.read_only()) continue;
    // A writable prefix's own directory is where every other container's bind source
    // under it passes through: a container that may write there can swap another's
    // source for a symlink before that one's next start (Podman binds by path again at
    // every start). Only directories below the root may be bound writable.
    if (path == rule.prefix()) {
      writable_root = true;
    } else {
      writable = true;
    }
  }
  if (!under_any) return std::make_pair("host_paths", "is outside every allowed host path");
  if (!read_only && !writable && writable_root) {
    return std::make_pair("host_paths.writable_root",
                          "is an allowed host path's root, which may only be bound read-only; bind a directory "
                          "below it");
  }
  if (!read_only && !writable) {
    return std::make_pair("host_paths.read_only", "may only be bound read-only");
  }
  return std::nullopt;
}

void CheckBinds(const v1::ContainerSpec& spec, const v1::Policy& policy,
                const CallerContext& caller, Findings* out) {
  for (int i = 0; i < spec.binds_size(); ++i) {
    const v1::BindMount& bind = spec.binds(i);
    const std::string field = absl::StrCat("binds[", i, "].source");
    const std::string canonical = CanonicalizeLexically(bind.source()).value_or("");
    if (auto problem = HostPathProblem(policy, canonical, bind.read_only())) {
      out->Add(field, bind.source(), problem->first,
               absl::StrCat("host path ", Quoted(canonical), " ", problem->second));
      continue;
    }
    if (caller.host_paths == nullptr) continue;
    absl::StatusOr<std::string> resolved = caller.host_paths->Resolve(canonical);
    if (!resolved.ok()) {
      out->Add(field, bind.source(), "host_paths",
               absl::StrCat("host path ", Quoted(canonical),
                            " cannot be resolved: ", resolved.status().message()));
      continue;
    }
    if (auto problem = HostPathProblem(policy, *resolved, bind.read_only())) {
      out->Add(field, bind.source(), problem->first,
               absl::StrCat("host path ", Quoted(canonical), " resolves to ", Quoted(*resolved),
                            ", which ", problem->second));
    }
  }
}

bool PermissionsWithin(std::string_view asked, std::string_view granted) {
  return std::all_of(asked.begin(), asked.end(),
                     [&](char c) { return granted.find(c) != std::string_view::npos; });
}

void CheckDevices(const v1::ContainerSpec& spec, const v1::Policy& policy, Findings* out) {
  for (int i = 0; i < spec.devices_size(); ++i) {
    const v1::Device& device = spec.devices(i);
    const std::string canonical = CanonicalizeLexically(device.host_path()).value_or("");
    const auto rule =
        std::find_if(policy.allowed_devices().begin(), policy.allowed_devices().end(),
                     [&](const v1::DeviceRule& r) { return r.host_path() == canonical; });
    if (rule == policy.allowed_devices().end()) {
      out->Add(absl::StrCat("devices[", i, "].host_path"), device.host_path(), "allowed_devices",
               absl::StrCat("device ", Quoted(canonical), " is not allowed on this host"));
      continue;
    }
    // Both branches are views: a "literal" : std::string conditional would make a
    // temporary string and leave the view dangling.
    const std::string_view asked = device.permissions().empty()
                                       ? std::string_view("rw")
                                       : std::string_view(device.permissions());
    const std::string_view granted = rule->permissions().empty()
                                         ? std::string_view("rw")
                                         : std::string_view(rule->permissions());
    if (!PermissionsWithin(asked, granted)) {
      out->Add(absl::StrCat("devices[", i, "].permissions"), asked, "allowed_devices",
               absl::StrCat("device ", Quoted(canonical), " allows at most \"", AbslView(granted),
                            "\""));
    }
  }
}

void CheckSysctls(const v1::ContainerSpec& spec, const v1::Policy& policy, Findings* out) {
  for (int i = 0; i < spec.sysctls_size(); ++i) {
    const std::string& key = spec.sysctls(i).key();
    const std::string field = absl::StrCat("sysctls[", i, "].key");
    if (!IsSafeSysctl(key) && !Contains(policy.allowed_sysctls(), key)) {
      out->Add(field, key, "allowed_sysctls",
               absl::StrCat("sysctl ", key, " is outside the safe set and the policy's allowlist"));
    } else if (spec.host_network() && key.rfind("net.", 0) == 0) {
      out->Add(
          field, key, "allowed_sysctls",
          absl::StrCat("sysctl ", key, " would change the host's network stack (host network)"));
    }
  }
}

// The namespace checks; returns the rule governing the request's namespace, or nullptr.
const v1::NamespaceRule* CheckNamespace(std::string_view field, std::string_view requested,
                                        const v1::Policy& policy, const CallerContext& caller,
                                        Findings* out) {
  const std::string_view name = requested.empty() ? kDefaultNamespace : requested;
  if (!caller.namespace_name.empty() && caller.namespace_name != name) {
    out->Add(std::string(field), name, "caller_namespace",
             absl::StrCat("the caller may act only in namespace ", caller.namespace_name));
  }
  if (!caller.host_namespaces.empty() &&
      std::find(caller.host_namespaces.begin(), caller.host_namespaces.end(), name) ==
          caller.host_namespaces.end()) {
    out->Add(std::string(field), name, "host_namespaces",
             absl::StrCat("this host has no namespace ", AbslView(name)));
  }
  const v1::NamespaceRule* rule = FindNamespaceRule(policy, name);
  if (rule == nullptr) {
    out->Add(std::string(field), name, "namespaces",
             absl::StrCat("no policy rule governs namespace ", AbslView(name)));
  }
  return rule;
}

// A port published on the wildcard, or on the management IP, is a DNAT rule for every
// packet to that port on that address: it would take coold's own listeners' traffic
// (the REST API on the management IP, DNS on each gateway) before coold's sockets see it.
void CheckReservedPorts(const v1::ContainerSpec& spec, const CallerContext& caller, Findings* out) {
  for (int i = 0; i < spec.ports_size(); ++i) {
    const v1::PortMapping& port = spec.ports(i);
    const bool wildcard = port.host_ip().empty() || port.host_ip() == "0.0.0.0";
    const bool management = !caller.management_ip.empty() && port.host_ip() == caller.management_ip;
    if (management) {
      out->Add(absl::StrCat("ports[", i, "].host_ip"), port.host_ip(), "management_ip",
               "the management IP carries coold's own traffic; no container publishes on it");
      continue;
    }
    if (!wildcard) continue;
    const bool reserved =
        port.host_port() == kDnsPort ||
        std::find(caller.reserved_host_ports.begin(), caller.reserved_host_ports.end(), port.host_port()) !=
            caller.reserved_host_ports.end();
    if (reserved) {
      out->Add(absl::StrCat("ports[", i, "].host_port"), absl::StrCat(port.host_port()), "reserved_host_ports",
               absl::StrCat("host port ", port.host_port(),
                            " on every address (0.0.0.0) covers coold's own listener on the management IP "
                            "or a namespace gateway"));
    }
  }
}

// A container's resolvers are its namespace's own (the rule's `resolvers`): another
// address, the management IP among them, would let a container send its queries, and
// so its view of names, anywhere.
void CheckDns(const v1::ContainerSpec& spec, const v1::NamespaceRule* rule, std::string_view name,
              Findings* out) {
  for (int i = 0; i < spec.dns_size(); ++i) {
    if (rule != nullptr && Contains(rule->resolvers(), spec.dns(i))) continue;
    out->Add(absl::StrCat("dns[", i, "]"), spec.dns(i), "namespaces.resolvers",
             absl::StrCat("namespace ", AbslView(name), " resolves names only through its own resolver"));
  }
}

// The working directory is where the container's first process starts: under /proc (or
// /dev/fd and /sys, which lead there) it can be a descriptor leaked by the runtime
// (/proc/self/fd/N, CVE-2024-21626), a handle on the host's filesystem.
void CheckWorkdir(std::string_view field, std::string_view workdir, Findings* out) {
  if (workdir.empty()) return;
  const std::string canonical = CanonicalizeLexically(workdir).value_or("");
  for (std::string_view root : {"/proc", "/sys", "/dev"}) {
    if (canonical == root || absl::StartsWith(AbslView(canonical), absl::StrCat(AbslView(root), "/"))) {
      out->Add(std::string(field), workdir, "workdir",
               absl::StrCat("a working directory under ", AbslView(root),
                            " can be a descriptor the runtime leaked, outside the container"));
      return;
    }
  }
}

void CheckNetworksAndPorts(const v1::ContainerSpec& spec, const v1::NamespaceRule* rule,
                           std::string_view name, Findings* out) {
  for (int i = 0; i < spec.networks_size(); ++i) {
    const std::string& network = spec.networks(i).network();
    if (rule != nullptr && NetworkAllowed(*rule, name, network)) continue;
    out->Add(absl::StrCat("networks[", i, "].network"), network, "namespaces.networks",
             absl::StrCat("network ", network, " does not belong to namespace ", AbslView(name)));
  }
  for (int i = 0; i < spec.ports_size(); ++i) {
    const v1::PortMapping& port = spec.ports(i);
    if (rule == nullptr || !HostPortAllowed(*rule, port.host_port())) {
      out->Add(absl::StrCat("ports[", i, "].host_port"), absl::StrCat(port.host_port()),
               "namespaces.host_ports",
               absl::StrCat("namespace ", AbslView(name), " may not publish host port ",
                            port.host_port()));
    }
    if (rule == nullptr || !HostIpAllowed(*rule, port.host_ip())) {
      const std::string_view ip =
          port.host_ip().empty() ? std::string_view("0.0.0.0") : std::string_view(port.host_ip());
      out->Add(absl::StrCat("ports[", i, "].host_ip"), ip, "namespaces.host_ips",
               absl::StrCat("namespace ", AbslView(name), " may not publish on ", AbslView(ip)));
    }
  }
}

void CheckRegistry(std::string_view field, std::string_view reference, const v1::Policy& policy,
                   Findings* out) {
  if (policy.allowed_registries().empty()) return;
  const absl::StatusOr<ImageRef> ref = ParseImageRef(reference);
  if (ref.ok() && Contains(policy.allowed_registries(), ref->registry)) return;
  out->Add(
      std::string(field), reference, "allowed_registries",
      absl::StrCat("registry ", ref.ok() ? ref->registry : "", " is not allowed on this host"));
}

void CheckResources(const v1::Resources& asked, const v1::ResourceCaps& caps, Findings* out) {
  const struct {
    const char* field;
    const char* rule;
    uint64_t value;
    uint64_t cap;
  } checks[] = {
      {"resources.memory_bytes", "resource_caps.max_memory_bytes", asked.memory_bytes(),
       caps.max_memory_bytes()},
      {"resources.cpu_millis", "resource_caps.max_cpu_millis", asked.cpu_millis(),
       caps.max_cpu_millis()},
      {"resources.pids_limit", "resource_caps.max_pids", asked.pids_limit(), caps.max_pids()},
  };
  for (const auto& c : checks) {
    if (c.cap != 0 && c.value > c.cap) {
      out->Add(c.field, absl::StrCat(c.value), c.rule,
               absl::StrCat(c.value, " is above this host's cap of ", c.cap));
    }
  }
}

// Checks driver and options of a volume or network create against `rules`.
void CheckDriver(std::string_view driver, const RepeatedPtrField<v1::KeyValue>& options,
                 const RepeatedPtrField<v1::DriverRule>& rules, const char* rule_name,
                 Findings* out) {
  const auto rule = std::find_if(rules.begin(), rules.end(),
                                 [&](const v1::DriverRule& r) { return r.driver() == driver; });
  if (rule == rules.end()) {
    out->Add("driver", driver, rule_name,
             absl::StrCat("driver ", AbslView(driver), " is not allowed on this host"));
    return;
  }
  const std::string options_rule = absl::StrCat(rule_name, ".options");
  for (int i = 0; i < options.size(); ++i) {
    const v1::KeyValue& option = options[i];
    const auto allowed =
        std::find_if(rule->options().begin(), rule->options().end(),
                     [&](const v1::OptionRule& o) { return o.key() == option.key(); });
    if (allowed == rule->options().end()) {
      out->Add(
          absl::StrCat("options[", i, "].key"), option.key(), options_rule,
          absl::StrCat("driver ", AbslView(driver), " may not be given option ", option.key()));
    } else if (!allowed->values().empty() && !Contains(allowed->values(), option.value())) {
      out->Add(absl::StrCat("options[", i, "].value"), option.value(), options_rule,
               absl::StrCat("option ", option.key(), " of driver ", AbslView(driver),
                            " may not take this value"));
    }
  }
}

}  // namespace

absl::StatusOr<Verdict> Evaluate(const v1::ContainerSpec& spec, const v1::Policy& policy,
                                 const CallerContext& caller) {
  if (absl::Status s = ValidateContainerSpec(spec); !s.ok()) return s;
  Findings out;
  const std::string_view name = spec.namespace_().empty() ? kDefaultNamespace : spec.namespace_();
  const v1::NamespaceRule* rule =
      CheckNamespace("namespace", spec.namespace_(), policy, caller, &out);
  if (spec.privileged() && !policy.allow_privileged()) {
    out.Add("privileged", "true", "allow_privileged",
            "privileged containers are not allowed on this host");
  }
  for (int i = 0; i < spec.labels_size(); ++i) {
    const std::string& key = spec.labels(i).key();
    if (key == kOwnerLabel || key == kNamespaceLabel) {
      out.Add(Indexed("labels", i) + ".key", key, "reserved_labels",
              absl::StrCat("label ", key, " is coold's own record of who created the container; "
                                          "only coold writes it"));
    }
  }
  CheckCapabilities(spec, policy, &out);
  CheckBinds(spec, policy, caller, &out);
  if (spec.host_network() && !policy.allow_host_network()) {
    out.Add("host_network", "true", "allow_host_network",
            "this host's policy does not allow the host network");
  }
  CheckDevices(spec, policy, &out);
  if (const std::string& runtime =
          spec.runtime().empty() ? policy.default_runtime() : spec.runtime();
      !Contains(policy.allowed_runtimes(), runtime)) {
    out.Add("runtime", runtime, "allowed_runtimes",
            absl::StrCat("runtime ", runtime, " is not allowed on this host"));
  }
  CheckSysctls(spec, policy, &out);
  CheckNetworksAndPorts(spec, rule, name, &out);
  CheckReservedPorts(spec, caller, &out);
  CheckDns(spec, rule, name, &out);
  CheckWorkdir("workdir", spec.workdir(), &out);
  CheckRegistry("image", spec.image(), policy, &out);
  CheckResources(spec.resources(), policy.resource_caps(), &out);
  if (policy.restrictions().require_non_root_user() && !IsNumericNonRootUser(spec.user())) {
    out.Add("user", spec.user(), "restrictions.require_non_root_user",
            "this host requires an explicit numeric uid other than 0");
  }
  if (policy.restrictions().require_read_only_root() && !spec.read_only_root()) {
    out.Add("read_only_root", "false", "restrictions.require_read_only_root",
            "this host requires a read-only root filesystem");
  }
  return out.Take();
}

absl::StatusOr<Verdict> EvaluateVolumeCreate(const v1::VolumesCreate& request,
                                             const v1::Policy& policy) {
  if (absl::Status s = ValidateVolumesCreate(request); !s.ok()) return s;
  Findings out;
  CheckDriver(request.driver().empty() ? "local" : request.driver(), request.options(),
              policy.volume_drivers(), "volume_drivers", &out);
  return out.Take();
}

absl::StatusOr<Verdict> EvaluateNetworkCreate(const v1::NetworksCreate& request,
                                              const v1::Policy& policy,
                                              const CallerContext& caller) {
  if (absl::Status s = ValidateNetworksCreate(request); !s.ok()) return s;
  Findings out;
  CheckDriver(request.driver().empty() ? "bridge" : request.driver(), request.options(),
              policy.network_drivers(), "network_drivers", &out);
  const std::string_view name =
      request.namespace_().empty() ? kDefaultNamespace : request.namespace_();
  const v1::NamespaceRule* rule =
      CheckNamespace("namespace", request.namespace_(), policy, caller, &out);
  if (rule == nullptr || !NetworkAllowed(*rule, name, request.name())) {
    out.Add(
        "name", request.name(), "namespaces.networks",
        absl::StrCat("network ", request.name(), " does not belong to namespace ", AbslView(name)));
  }
  return out.Take();
}

absl::StatusOr<Verdict> EvaluateExec(const v1::ContainersExec& request, const v1::Policy& policy,
                                     std::string_view container_user) {
  if (absl::Status s = ValidateContainersExec(request); !s.ok()) return s;
  Findings out;
  if (policy.restrictions().require_non_root_user() && !request.user().empty() &&
      !IsNumericNonRootUser(request.user())) {
    out.Add("user", request.user(), "restrictions.require_non_root_user",
            "this host requires exec as the container's user or a numeric uid other than 0");
  }
  CheckWorkdir("workdir", request.workdir(), &out);
  // A name is resolved in the image's /etc/passwd, which its author writes, and the
  // container's own user "" is the image's default, root in most images: only a numeric
  // uid other than 0 proves the process is not root.
  const std::string_view effective = request.user().empty() ? container_user : request.user();
  if (!policy.allow_exec_as_root() && !IsNumericNonRootUser(effective)) {
    out.Add("user", request.user().empty() ? container_user : request.user(), "allow_exec_as_root",
            request.user().empty()
                ? "the container's own user may be root (not a numeric uid other than 0), and this "
                  "host's policy does not allow exec as root; name a numeric uid"
                : "exec as root (or as a user name, which may be root) is not allowed on this host; "
                  "name a numeric uid other than 0");
  }
  return out.Take();
}

absl::StatusOr<Verdict> EvaluateBindsAtStart(const std::vector<v1::BindMount>& binds, const v1::Policy& policy,
                                             const CallerContext& caller) {
  Findings out;
  for (size_t i = 0; i < binds.size(); ++i) {
    const v1::BindMount& bind = binds[i];
    const std::string field = absl::StrCat("binds[", i, "].source");
    absl::StatusOr<std::string> canonical = CanonicalizeLexically(bind.source());
    if (!canonical.ok() || *canonical != bind.source()) {
      out.Add(field, bind.source(), "host_paths.changed",
              absl::StrCat("bind source ", Quoted(bind.source()), " is not a canonical path"));
      continue;
    }
    if (auto problem = HostPathProblem(policy, *canonical, bind.read_only())) {
      out.Add(field, bind.source(), problem->first,
              absl::StrCat("host path ", Quoted(*canonical), " ", problem->second));
      continue;
    }
    if (caller.host_paths == nullptr) continue;
    absl::StatusOr<std::string> resolved = caller.host_paths->Resolve(*canonical);
    if (!resolved.ok()) {
      out.Add(field, bind.source(), "host_paths.changed",
              absl::StrCat("bind source ", Quoted(*canonical), " cannot be resolved any more: ",
                           resolved.status().message()));
    } else if (*resolved != *canonical) {
      out.Add(field, bind.source(), "host_paths.changed",
              absl::StrCat("bind source ", Quoted(*canonical), " now resolves to ", Quoted(*resolved),
                           ": something on its way was replaced by a symlink since the container was created"));
    }
  }
  return out.Take();
}

absl::StatusOr<Verdict> EvaluateContainerAccess(const ContainerRecord& container,
                                                std::string_view requested_namespace,
                                                const v1::Policy& policy) {
  const std::string_view asked = requested_namespace.empty() ? kDefaultNamespace : requested_namespace;
  if (absl::Status s = privsep::ValidateNamespaceName("namespace", asked); !s.ok()) return s;
  Findings out;
  std::string_view belongs_to;
  if (!container.owner.has_value() && !container.namespace_name.has_value()) {
    if (!policy.adopt_unlabelled()) {
      out.Add("id", container.id, "adopt_unlabelled",
              absl::StrCat("container ", container.id,
                           " was not created by coold (it has no ownership labels), and this "
                           "host's policy does not adopt such containers"));
      return out.Take();
    }
    belongs_to = kDefaultNamespace;
  } else if (container.owner != std::string(kOwnerValue) || !container.namespace_name.has_value()) {
    out.Add("id", container.id, "ownership",
            absl::StrCat("container ", container.id, " was not created by coold"));
    return out.Take();
  } else {
    belongs_to = *container.namespace_name;
  }
  if (belongs_to != asked) {
    out.Add("namespace", asked, "namespace",
            absl::StrCat("container ", container.id, " belongs to another namespace than ",
                         AbslView(asked)));
  }
  return out.Take();
}

absl::StatusOr<Verdict> EvaluateImagePull(const v1::ImagesPull& request, const v1::Policy& policy) {
  if (absl::Status s = ValidateImagesPull(request); !s.ok()) return s;
  Findings out;
  CheckRegistry("ref", request.ref(), policy, &out);
  return out.Take();
}

}  // namespace coolify::policy
