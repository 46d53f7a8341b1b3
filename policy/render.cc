#include "policy/render.h"

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "policy/capabilities.h"
#include "policy/image_ref.h"
#include "policy/json_writer.h"
#include "policy/namespace_rules.h"
#include "policy/shown_value.h"

namespace coolify::policy {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;
// What `podman run --health-cmd` uses for a duration or count left unset, so a request
// behaves as the same request on Podman's command line.
constexpr uint32_t kDefaultHealthIntervalSeconds = 30;
constexpr uint32_t kDefaultHealthTimeoutSeconds = 30;
constexpr uint32_t kDefaultHealthRetries = 3;
// A typical spec's size, so the text is allocated once.
constexpr size_t kTypicalBytes = 4096;

using google::protobuf::RepeatedPtrField;

void Strings(JsonWriter& w, const RepeatedPtrField<std::string>& list) {
  w.BeginArray();
  for (const std::string& s : list) w.String(s);
  w.EndArray();
}

void Map(JsonWriter& w, const RepeatedPtrField<v1::KeyValue>& pairs) {
  w.BeginObject();
  for (const v1::KeyValue& kv : pairs) w.Member(kv.key(), kv.value());
  w.EndObject();
}

void Namespace(JsonWriter& w, std::string_view key, std::string_view mode) {
  w.Key(key);
  w.BeginObject();
  w.Member("nsmode", mode);
  w.EndObject();
}

void EmptyArray(JsonWriter& w, std::string_view key) {
  w.Key(key);
  w.BeginArray();
  w.EndArray();
}

const char* RestartPolicyName(v1::RestartPolicy policy) {
  switch (policy) {
    case v1::RESTART_POLICY_ON_FAILURE:
      return "on-failure";
    case v1::RESTART_POLICY_ALWAYS:
      return "always";
    case v1::RESTART_POLICY_UNLESS_STOPPED:
      return "unless-stopped";
    default:
      return "no";
  }
}

// A bit per capability in KnownCapabilities() order; *all is set by "ALL".
uint64_t CapabilityBits(const RepeatedPtrField<std::string>& spellings, bool* all) {
  uint64_t bits = 0;
  for (const std::string& spelling : spellings) {
    const int index = CapabilityIndex(spelling);
    if (index == kAllCapabilitiesIndex) *all = true;
    if (index >= 0 && index < kAllCapabilitiesIndex) bits |= uint64_t{1} << index;
  }
  return bits;
}

// The effective capability set, in kernel order: defaults (unless dropped wholesale)
// minus cap_drop, plus cap_add.
void EffectiveCapabilities(JsonWriter& w, const v1::ContainerSpec& spec, const v1::Policy& policy) {
  bool drop_all = policy.restrictions().drop_all_capabilities();
  bool add_all = false;
  const uint64_t dropped = CapabilityBits(spec.cap_drop(), &drop_all);
  const uint64_t added = CapabilityBits(spec.cap_add(), &add_all);
  const uint64_t defaults = drop_all ? 0 : DefaultCapabilityBits() & ~dropped;
  const absl::Span<const std::string_view> known = KnownCapabilities();
  std::string name = "CAP_";
  w.Key("cap_add");
  w.BeginArray();
  for (size_t i = 0; i < known.size(); ++i) {
    if (add_all || ((defaults | added) & (uint64_t{1} << i)) != 0) {
      name.resize(4);
      name.append(known[i]);
      w.String(name);
    }
  }
  w.EndArray();
}

void ResourceLimits(JsonWriter& w, const v1::Resources& asked, const v1::ResourceCaps& caps) {
  const uint64_t memory =
      asked.memory_bytes() != 0 ? asked.memory_bytes() : caps.max_memory_bytes();
  const uint64_t cpu = asked.cpu_millis() != 0 ? asked.cpu_millis() : caps.max_cpu_millis();
  const uint64_t pids = asked.pids_limit() != 0 ? asked.pids_limit() : caps.max_pids();
  w.Key("resource_limits");
  w.BeginObject();
  if (memory != 0) {
    w.Key("memory");
    w.BeginObject();
    w.Member("limit", memory);
    w.EndObject();
  }
  if (cpu != 0) {
    w.Key("cpu");
    w.BeginObject();
    // millis/1000 CPUs of each period: quota = millis * period / 1000.
    w.Member("quota", static_cast<int64_t>(cpu) * kCpuPeriodMicros / 1000);
    w.Member("period", kCpuPeriodMicros);
    w.EndObject();
  }
  if (pids != 0) {
    w.Key("pids");
    w.BeginObject();
    w.Member("limit", pids);
    w.EndObject();
  }
  w.EndObject();
}

void HealthConfig(JsonWriter& w, const v1::Healthcheck& h) {
  const auto or_default = [](uint32_t value, uint32_t fallback) {
    return value != 0 ? value : fallback;
  };
  w.Key("healthconfig");
  w.BeginObject();
  w.Key("Test");
  Strings(w, h.test());
  if (h.test(0) != "NONE") {  // "NONE" disables the image's healthcheck; nothing to time.
    w.Member("Interval", int64_t{or_default(h.interval_seconds(), kDefaultHealthIntervalSeconds)} *
                             kNanosPerSecond);
    w.Member("Timeout", int64_t{or_default(h.timeout_seconds(), kDefaultHealthTimeoutSeconds)} *
                            kNanosPerSecond);
    w.Member("StartPeriod", int64_t{h.start_period_seconds()} * kNanosPerSecond);
    w.Member("Retries", or_default(h.retries(), kDefaultHealthRetries));
  }
  w.EndObject();
}

void MountOptions(JsonWriter& w, std::string_view key, std::initializer_list<const char*> fixed,
                  bool read_only) {
  w.Key(key);
  w.BeginArray();
  for (const char* o : fixed) w.String(o);
  w.String(read_only ? "ro" : "rw");
  w.EndArray();
}

}  // namespace

absl::StatusOr<std::string> RenderSpecGenerator(const v1::ContainerSpec& spec,
                                                const v1::Policy& policy,
                                                HostPathResolver* host_paths) {
  JsonWriter w(kTypicalBytes);
  w.BeginObject();

  // ---- identity and process
  if (!spec.name().empty()) w.Member("name", spec.name());
  absl::StatusOr<ImageRef> image = ParseImageRef(spec.image());
  if (!image.ok()) return image.status();
  w.Member("image", image->Qualified());
  if (spec.command_size() > 0) {
    w.Key("command");
    Strings(w, spec.command());
  }
  if (spec.entrypoint_size() > 0) {
    w.Key("entrypoint");
    Strings(w, spec.entrypoint());
  }
  w.Key("env");
  Map(w, spec.env());
  w.Key("labels");
  w.BeginObject();
  for (const v1::KeyValue& kv : spec.labels()) w.Member(kv.key(), kv.value());
  // Last, so that nothing before them can stand in for them (Evaluate refused a request
  // that names either key).
  w.Member(kOwnerLabel, kOwnerValue);
  w.Member(kNamespaceLabel, spec.namespace_().empty() ? kDefaultNamespace : spec.namespace_());
  w.EndObject();
  if (!spec.user().empty()) w.Member("user", spec.user());
  if (!spec.workdir().empty())
    w.Member("work_dir", CanonicalizeLexically(spec.workdir()).value_or(""));
  w.Member("env_host", false);
  w.Member("httpproxy", false);
  w.Member("systemd", "false");
  w.Member("restart_policy", RestartPolicyName(spec.restart_policy()));
  if (spec.restart_policy() == v1::RESTART_POLICY_ON_FAILURE && spec.restart_max_retries() != 0) {
    w.Member("restart_tries", spec.restart_max_retries());
  }
  if (spec.healthcheck().test_size() > 0) HealthConfig(w, spec.healthcheck());

  // ---- network
  if (spec.host_network()) {
    Namespace(w, "netns", "host");
  } else {
    Namespace(w, "netns", "bridge");
    w.Key("Networks");
    w.BeginObject();
    if (spec.networks_size() == 0) {
      const std::string_view name =
          spec.namespace_().empty() ? kDefaultNamespace : spec.namespace_();
      const v1::NamespaceRule* rule = FindNamespaceRule(policy, name);
      if (rule == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat("no policy rule supplies a network for namespace ", AbslView(name)));
      }
      w.Key(ExpandNamespace(rule->default_network(), name));
      w.BeginObject();
      w.EndObject();
    }
    for (const v1::NetworkAttachment& n : spec.networks()) {
      w.Key(n.network());
      w.BeginObject();
      w.Key("aliases");
      Strings(w, n.aliases());
      w.EndObject();
    }
    w.EndObject();
  }
  w.Key("portmappings");
  w.BeginArray();
  for (const v1::PortMapping& p : spec.ports()) {
    w.BeginObject();
    w.Member("host_ip",
             p.host_ip().empty() ? std::string_view("0.0.0.0") : std::string_view(p.host_ip()));
    w.Member("host_port", p.host_port());
    w.Member("container_port", p.container_port());
    w.Member("protocol", p.protocol() == v1::PORT_PROTOCOL_UDP ? "udp" : "tcp");
    w.EndObject();
  }
  w.EndArray();
  w.Member("publish_image_ports", false);
  if (spec.dns_size() > 0) {
    w.Key("dns_server");
    Strings(w, spec.dns());
  }
  if (spec.dns_search_size() > 0) {
    w.Key("dns_search");
    Strings(w, spec.dns_search());
  }
  w.Member("use_image_resolve_conf", false);
  w.Member("use_image_hosts", false);

  // ---- storage
  w.Key("volumes");
  w.BeginArray();
  for (const v1::NamedVolumeMount& v : spec.volumes()) {
    w.BeginObject();
    w.Member("Name", v.volume());
    w.Member("Dest", CanonicalizeLexically(v.destination()).value_or(""));
    MountOptions(w, "Options", {"nosuid", "nodev"}, v.read_only());
    w.EndObject();
  }
  w.EndArray();
  w.Key("mounts");
  w.BeginArray();
  for (const v1::BindMount& b : spec.binds()) {
    std::string source = CanonicalizeLexically(b.source()).value_or("");
    if (host_paths != nullptr) {
      absl::StatusOr<std::string> resolved = host_paths->Resolve(source);
      if (!resolved.ok()) return resolved.status();
      source = *std::move(resolved);
    }
    w.BeginObject();
    w.Member("destination", CanonicalizeLexically(b.destination()).value_or(""));
    w.Member("type", "bind");
    w.Member("source", source);
    MountOptions(w, "options", {"rbind", "nosuid", "nodev"}, b.read_only());
    w.EndObject();
  }
  w.EndArray();
  w.Member("read_only_filesystem", spec.read_only_root());

  // ---- confinement
  w.Member("privileged", spec.privileged() && policy.allow_privileged());
  w.Key("cap_drop");
  w.BeginArray();
  w.String("ALL");
  w.EndArray();
  EffectiveCapabilities(w, spec, policy);
  w.Member("no_new_privileges", true);
  w.Member("seccomp_policy", "default");
  w.Member("seccomp_profile_path", policy.seccomp_profile_path());
  if (!policy.apparmor_profile().empty()) w.Member("apparmor_profile", policy.apparmor_profile());
  EmptyArray(w, "selinux_opts");
  EmptyArray(w, "mask");
  EmptyArray(w, "unmask");
  EmptyArray(w, "procfs_opts");
  w.Key("annotations");
  w.BeginObject();
  w.EndObject();
  w.Member("oci_runtime", spec.runtime().empty() ? policy.default_runtime() : spec.runtime());
  w.Key("devices");
  w.BeginArray();
  for (const v1::Device& d : spec.devices()) {
    const std::string host = CanonicalizeLexically(d.host_path()).value_or("");
    const std::string container =
        d.container_path().empty() ? host : CanonicalizeLexically(d.container_path()).value_or("");
    w.BeginObject();
    w.Member("path", absl::StrCat(host, ":", container, ":",
                                  d.permissions().empty() ? "rw" : d.permissions()));
    w.EndObject();
  }
  w.EndArray();
  w.Key("sysctl");
  Map(w, spec.sysctls());
  Namespace(w, "pidns", "private");
  Namespace(w, "ipcns", "private");
  Namespace(w, "utsns", "private");
  Namespace(w, "cgroupns", "private");
  Namespace(w, "userns", policy.user_namespace());

  // ---- resources
  ResourceLimits(w, spec.resources(), policy.resource_caps());
  w.EndObject();
  return w.Take();
}

std::string RenderExecConfig(const v1::ContainersExec& request) {
  JsonWriter w;
  w.BeginObject();
  w.Member("AttachStdout", true);
  w.Member("AttachStderr", true);
  w.Key("Cmd");
  Strings(w, request.cmd());
  w.Key("Env");
  w.BeginArray();
  for (const v1::KeyValue& kv : request.env()) w.String(absl::StrCat(kv.key(), "=", kv.value()));
  w.EndArray();
  w.Member("Tty", request.tty());
  w.Member("Privileged", false);
  if (!request.user().empty()) w.Member("User", request.user());
  if (!request.workdir().empty()) w.Member("WorkingDir", request.workdir());
  w.EndObject();
  return w.Take();
}

}  // namespace coolify::policy
