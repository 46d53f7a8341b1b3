#include "policy/lint.h"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy/host_path.h"
#include "policy/namespace_rules.h"

namespace coolify::policy {
namespace {

struct Explained {
  std::string_view name;
  std::string_view why;
};

// Capabilities that are known container escapes or host-wide powers.
constexpr Explained kEscapeCapabilities[] = {
    {"SYS_ADMIN",
     "mount, namespaces, BPF and dozens of other root-only operations: the classic container "
     "escape."},
    {"SYS_MODULE", "loads kernel modules: arbitrary code in the host kernel."},
    {"SYS_PTRACE",
     "traces and injects into any process it can see, and weakens seccomp's protection against "
     "it."},
    {"SYS_RAWIO", "raw I/O ports and memory: reads and writes host hardware directly."},
    {"DAC_READ_SEARCH",
     "open_by_handle_at reads any file on a bind-mounted filesystem (the \"shocker\" escape)."},
    {"NET_ADMIN",
     "reconfigures interfaces, routes and firewall rules of the network namespace, on the host "
     "network the host's."},
    {"BPF", "loads BPF programs, a large kernel attack surface."},
    {"PERFMON", "kernel performance monitoring: side channels and kernel address leaks."},
    {"SYS_BOOT", "reboots the host (kexec)."},
    {"SYS_TIME", "sets the host's clock: time is not namespaced."},
    {"MAC_ADMIN", "changes the mandatory access control policy (AppArmor, SELinux)."},
    {"MAC_OVERRIDE", "bypasses mandatory access control."},
    {"SYSLOG", "reads and clears the kernel log, leaking kernel addresses."},
    {"LINUX_IMMUTABLE", "changes immutable and append-only flags, defeating tamper-evident logs."},
    {"AUDIT_CONTROL", "changes the kernel audit configuration of the whole host."},
    {"SYS_PACCT", "switches process accounting of the whole host."},
    {"WAKE_ALARM", "sets host wake-up alarms."},
    {"BLOCK_SUSPEND", "blocks host suspend."},
};

// Host directories that hold the host's identity, credentials, sockets or the container
// store. A prefix inside one of them, or one that contains one, hands them out.
constexpr std::string_view kSensitivePaths[] = {
    "/etc",  "/root", "/home", "/run",  "/var/run", "/var/lib/containers", "/var/lib/docker",
    "/proc", "/sys",  "/dev",  "/boot",
};

constexpr std::string_view kKnownRuntimes[] = {"runc", "crun", "runsc", "kata", "krun", "youki"};

// Device names that expose memory, disks or the hypervisor.
constexpr std::string_view kRawDevicePrefixes[] = {
    "/dev/mem", "/dev/kmem",   "/dev/port", "/dev/sd",  "/dev/hd",
    "/dev/vd",  "/dev/xvd",    "/dev/nvme", "/dev/dm-", "/dev/loop",
    "/dev/md",  "/dev/mapper", "/dev/disk", "/dev/kvm", "/dev/vhost",
};

// Sysctl families that are not namespaced: a container setting one sets it for the host.
constexpr std::string_view kHostWideSysctlPrefixes[] = {"vm.", "fs.", "kernel.", "dev.", "abi."};
// ... except these kernel.* ones, which the IPC namespace isolates.
constexpr std::string_view kNamespacedKernelSysctlPrefixes[] = {"kernel.shm", "kernel.msg",
                                                                "kernel.sem"};

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

class Findings {
 public:
  void Add(Severity severity, std::string rule, std::string value, std::string explanation) {
    findings_.push_back(
        Finding{severity, std::move(rule), std::move(value), std::move(explanation)});
  }
  std::vector<Finding> Take() {
    std::stable_sort(findings_.begin(), findings_.end(),
                     [](const Finding& a, const Finding& b) { return a.severity < b.severity; });
    return std::move(findings_);
  }

 private:
  std::vector<Finding> findings_;
};

void LintCapabilities(const v1::Policy& policy, Findings* out) {
  for (int i = 0; i < policy.allowed_capabilities_size(); ++i) {
    const std::string& cap = policy.allowed_capabilities(i);
    const std::string rule = absl::StrCat("allowed_capabilities[", i, "]");
    if (cap == "ALL") {
      out->Add(Severity::kDanger, rule, cap,
               "every capability, including SYS_ADMIN and SYS_MODULE: a container may become root "
               "on the host.");
      continue;
    }
    const auto escape = std::find_if(std::begin(kEscapeCapabilities), std::end(kEscapeCapabilities),
                                     [&](const Explained& e) { return e.name == cap; });
    if (escape != std::end(kEscapeCapabilities)) {
      out->Add(Severity::kDanger, rule, cap, std::string(escape->why));
    } else if (cap == "NET_RAW") {
      out->Add(Severity::kWarning, rule, cap,
               "raw sockets: spoofing and sniffing of other containers on the same bridge.");
    } else if (cap != "AUDIT_WRITE" && cap != "MKNOD" && cap != "NET_BIND_SERVICE") {
      out->Add(Severity::kWarning, rule, cap,
               "a capability beyond Kubernetes' baseline set; make sure a workload needs it.");
    }
  }
}

void LintHostPaths(const v1::Policy& policy, Findings* out) {
  for (int i = 0; i < policy.host_paths_size(); ++i) {
    const v1::HostPathRule& rule = policy.host_paths(i);
    const std::string field = absl::StrCat("host_paths[", i, "].prefix");
    const std::string& prefix = rule.prefix();
    if (prefix == "/") {
      out->Add(Severity::kDanger, field, prefix,
               "the host's whole filesystem: credentials, the Podman socket, container storage.");
      continue;
    }
    std::vector<std::string> touched;
    for (std::string_view sensitive : kSensitivePaths) {
      if (IsUnderPrefix(prefix, sensitive) || IsUnderPrefix(sensitive, prefix)) {
        touched.emplace_back(sensitive);
      }
    }
    if (!touched.empty()) {
      out->Add(Severity::kDanger, field, prefix,
               absl::StrCat("overlaps ", absl::StrJoin(touched, ", "),
                            ", which hold the host's credentials, sockets, kernel interfaces or "
                            "container storage",
                            rule.read_only() ? " (even read-only, secrets leak)." : "."));
    } else if (!rule.read_only()) {
      out->Add(Severity::kNote, field, prefix,
               "writable: Podman mounts bind sources by path at every start, so no container may "
               "write to a directory on the way to another container's source (bind leaves, not "
               "their parents).");
    }
  }
}

void LintRuntimes(const v1::Policy& policy, Findings* out) {
  for (int i = 0; i < policy.allowed_runtimes_size(); ++i) {
    const std::string& runtime = policy.allowed_runtimes(i);
    if (std::find(std::begin(kKnownRuntimes), std::end(kKnownRuntimes), runtime) ==
        std::end(kKnownRuntimes)) {
      out->Add(Severity::kWarning, absl::StrCat("allowed_runtimes[", i, "]"), runtime,
               "not a runtime coold knows (runc, crun, runsc, kata, krun, youki): whatever "
               "binary Podman finds under this name runs every such container as root.");
    }
  }
}

void LintDevices(const v1::Policy& policy, Findings* out) {
  for (int i = 0; i < policy.allowed_devices_size(); ++i) {
    const v1::DeviceRule& rule = policy.allowed_devices(i);
    const std::string field = absl::StrCat("allowed_devices[", i, "]");
    const bool raw =
        std::any_of(std::begin(kRawDevicePrefixes), std::end(kRawDevicePrefixes),
                    [&](std::string_view p) { return StartsWith(rule.host_path(), p); });
    if (raw) {
      out->Add(Severity::kDanger, field, rule.host_path(),
               "raw memory, disk or hypervisor access: reads and writes beneath every "
               "filesystem and process boundary.");
    } else {
      out->Add(Severity::kWarning, field, rule.host_path(),
               "a device node is a direct line into a kernel driver; make sure workloads need it.");
    }
    if (rule.permissions().find('m') != std::string::npos) {
      out->Add(Severity::kWarning, absl::StrCat(field, ".permissions"), rule.permissions(),
               "\"m\" lets a container create device nodes for this device.");
    }
  }
}

void LintSysctls(const v1::Policy& policy, Findings* out) {
  for (int i = 0; i < policy.allowed_sysctls_size(); ++i) {
    const std::string& key = policy.allowed_sysctls(i);
    const std::string field = absl::StrCat("allowed_sysctls[", i, "]");
    const bool host_wide =
        std::any_of(std::begin(kHostWideSysctlPrefixes), std::end(kHostWideSysctlPrefixes),
                    [&](std::string_view p) { return StartsWith(key, p); }) &&
        std::none_of(std::begin(kNamespacedKernelSysctlPrefixes),
                     std::end(kNamespacedKernelSysctlPrefixes),
                     [&](std::string_view p) { return StartsWith(key, p); });
    if (host_wide) {
      out->Add(Severity::kDanger, field, key,
               "not namespaced: a container setting it changes the whole host.");
    } else {
      out->Add(Severity::kWarning, field, key,
               "outside Kubernetes' safe set; some namespaced sysctls still let a container "
               "exhaust shared kernel resources.");
    }
  }
}

void LintDrivers(const v1::Policy& policy, Findings* out) {
  for (int i = 0; i < policy.volume_drivers_size(); ++i) {
    const v1::DriverRule& rule = policy.volume_drivers(i);
    if (rule.driver() != "local") {
      out->Add(Severity::kWarning, absl::StrCat("volume_drivers[", i, "]"), rule.driver(),
               "a volume plugin runs with the host's privileges; review what it mounts.");
    }
    for (int j = 0; j < rule.options_size(); ++j) {
      const std::string& key = rule.options(j).key();
      if (rule.driver() == "local" && (key == "device" || key == "type" || key == "o")) {
        out->Add(Severity::kDanger, absl::StrCat("volume_drivers[", i, "].options[", j, "]"), key,
                 "with \"device\", \"type\" and \"o\" a local volume mounts any host path or "
                 "disk (o=bind,device=/etc): a host-path bind that bypasses host_paths.");
      }
    }
  }
  for (int i = 0; i < policy.network_drivers_size(); ++i) {
    const std::string& driver = policy.network_drivers(i).driver();
    if (driver == "macvlan" || driver == "ipvlan") {
      out->Add(Severity::kDanger, absl::StrCat("network_drivers[", i, "]"), driver,
               "puts containers on a host interface's layer 2, outside the bridge and the mesh "
               "firewall.");
    } else if (driver != "bridge") {
      out->Add(Severity::kWarning, absl::StrCat("network_drivers[", i, "]"), driver,
               "a driver other than bridge; review how it reaches the host's networks.");
    }
  }
}

void LintNamespaces(const v1::Policy& policy, Findings* out) {
  for (int i = 0; i < policy.namespaces_size(); ++i) {
    const v1::NamespaceRule& rule = policy.namespaces(i);
    if (rule.namespace_() != kAnyNamespace) continue;
    const std::string base = absl::StrCat("namespaces[", i, "]");
    for (const std::string& n : rule.networks()) {
      if (n.find(kNamespacePlaceholder) == std::string::npos) {
        out->Add(Severity::kDanger, absl::StrCat(base, ".networks"), n,
                 "one network for every namespace: tenants share a bridge.");
      }
    }
    for (const std::string& p : rule.network_prefixes()) {
      if (p.find(kNamespacePlaceholder) == std::string::npos) {
        out->Add(Severity::kDanger, absl::StrCat(base, ".network_prefixes"), p,
                 "one prefix for every namespace: tenants can join each other's networks.");
      }
    }
    for (const v1::PortRange& r : rule.host_ports()) {
      out->Add(r.first() < 1024 ? Severity::kDanger : Severity::kWarning,
               absl::StrCat(base, ".host_ports"), absl::StrCat(r.first(), "-", r.last()),
               "every namespace may publish these host ports, first come first served, "
               "bypassing the proxy and the mesh firewall.");
    }
  }
}

}  // namespace

const char* SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kDanger:
      return "danger";
    case Severity::kWarning:
      return "warning";
    case Severity::kNote:
      return "note";
  }
  return "note";
}

std::vector<Finding> LintPolicy(const v1::Policy& policy) {
  Findings out;
  if (policy.allow_privileged()) {
    out.Add(Severity::kDanger, "allow_privileged", "true",
            "a privileged container has every capability and device and no seccomp or "
            "AppArmor confinement: it is root on the host.");
  }
  if (policy.allow_host_network()) {
    out.Add(Severity::kDanger, "allow_host_network", "true",
            "any container may share the host's network namespace: every host port and "
            "host-local service is theirs.");
  }
  if (policy.allow_exec_as_root()) {
    out.Add(Severity::kWarning, "allow_exec_as_root", "true",
            "exec may run processes as root in any container, with every capability it holds.");
  }
  if (policy.adopt_unlabelled()) {
    out.Add(Severity::kNote, "adopt_unlabelled", "true",
            "the API may stop, exec into and delete containers coold did not create.");
  }
  LintCapabilities(policy, &out);
  LintHostPaths(policy, &out);
  LintRuntimes(policy, &out);
  LintDevices(policy, &out);
  LintSysctls(policy, &out);
  LintDrivers(policy, &out);
  if (policy.allowed_registries().empty()) {
    out.Add(Severity::kNote, "allowed_registries", "", "images may come from any registry.");
  }
  LintNamespaces(policy, &out);
  const std::pair<const char*, uint64_t> caps[] = {
      {"resource_caps.max_memory_bytes", policy.resource_caps().max_memory_bytes()},
      {"resource_caps.max_cpu_millis", policy.resource_caps().max_cpu_millis()},
      {"resource_caps.max_pids", policy.resource_caps().max_pids()},
  };
  for (const auto& [rule, cap] : caps) {
    if (cap == 0) {
      out.Add(Severity::kNote, rule, "0",
              "no cap: a container may take all of it from the others.");
    }
  }
  return out.Take();
}

}  // namespace coolify::policy
