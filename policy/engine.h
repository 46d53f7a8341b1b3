// The deny filter: evaluates a request against the host policy.
//
// Each Evaluate* first validates the request's fields (spec_validation.h); a malformed
// request is InvalidArgument (answer 400). A well-formed one gets a Verdict listing
// every rule it breaks, each with the field, the value as received and the policy rule
// (answer 403 naming them); no violation means allowed. The policy must be complete
// and valid (policy_file.h: ParsePolicy, LoadPolicyFile, EmbeddedPolicy).
//
// Container create (Evaluate) is denied for:
//   privileged                        unless allow_privileged
//   cap_add beyond the default set    each capability, in any spelling, unless in
//                                     allowed_capabilities ("ALL" only if listed);
//                                     with drop_all_capabilities there is no default set
//   binds                             source outside host_paths, compared canonical
//                                     (host_path.h), lexically and, with a resolver,
//                                     after symlinks; writable under a read-only prefix
//   host_network                      unless allow_host_network
//   devices                           a host path not in allowed_devices, or more
//                                     permissions than listed ("" means "rw")
//   runtime                           outside allowed_runtimes ("" is default_runtime)
//   sysctls                           outside kSafeSysctls and allowed_sysctls; any
//                                     net.* with host_network
//   namespace                         another than the caller's, one the host does not
//                                     have, or one no rule governs
//   networks, ports                   outside the namespace's rule (namespace_rules.h)
//   ports                             on the management IP; on 0.0.0.0 ("") for port 53
//                                     or a port of reserved_host_ports (coold's own)
//   dns                               an address outside the namespace rule's resolvers
//   workdir (create and exec)         under /proc, /sys or /dev (lexically)
//   image                             a registry outside allowed_registries
//   resources                         above resource_caps
//   user, read_only_root              restrictions.require_non_root_user /
//                                     require_read_only_root
//
// Beyond the listed fields, nothing a request can say loosens a container: host PID,
// IPC, UTS, cgroup and user namespaces, joining another container's namespaces,
// seccomp, AppArmor and SELinux choices, unmasking, procfs options and OCI hook
// annotations have no field in ContainerSpec, and the renderer (render.h) writes each
// of them explicitly.
#ifndef COOLD_POLICY_ENGINE_H_
#define COOLD_POLICY_ENGINE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "policy/host_path.h"
#include "proto/commands.pb.h"
#include "proto/policy.pb.h"

namespace coolify::policy {

// Kubernetes' safe sysctls: namespaced per container and unable to affect the host or
// other containers.
// DNS: every namespace's listener is on <gateway>:53.
inline constexpr uint32_t kDnsPort = 53;

inline constexpr std::string_view kSafeSysctls[] = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
};

// One broken rule.
struct Violation {
  std::string field;   // the request field: "cap_add[1]", "binds[0].source"
  std::string value;   // its value as received, escaped and cut (shown_value.h)
  std::string rule;    // the policy field that decides: "allowed_capabilities"
  std::string reason;  // one sentence for the caller
};

struct Verdict {
  bool allowed() const { return violations.empty(); }
  std::vector<Violation> violations;
};

// Who asks, as the gatekeeper knows it (never from the request itself).
struct CallerContext {
  // The namespace the caller is confined to; "" when it may act in any namespace.
  std::string namespace_name;
  // The host's namespaces (COOLD_NAMESPACES). A request's namespace must be one of
  // them; empty skips that check (the audit tool when not told the host's list).
  std::vector<std::string> host_namespaces;
  // The host's management IP (COOLD_HOST_MGMT_IP) and the host ports coold itself
  // listens on (the REST API's); "" and empty when not known (the audit tool).
  std::string management_ip;
  std::vector<uint32_t> reserved_host_ports;
  // Resolves bind sources on the filesystem (host_path.h); nullptr checks them
  // lexically only. The gatekeeper always passes a PinningHostPathResolver.
  HostPathResolver* host_paths = nullptr;
};

// Container create. A request without a namespace belongs to kDefaultNamespace
// (namespace_rules.h).
absl::StatusOr<Verdict> Evaluate(const v1::ContainerSpec& spec, const v1::Policy& policy,
                                 const CallerContext& caller);

// Volume create: the driver ("" is "local") must be in volume_drivers, each option's
// key among the driver's options and its value among the option's values (if listed).
absl::StatusOr<Verdict> EvaluateVolumeCreate(const v1::VolumesCreate& request,
                                             const v1::Policy& policy);

// Network create: the driver ("" is "bridge") and options as for volumes, in
// network_drivers; the namespace as for containers; the name must be one the
// namespace's rule allows its containers to join.
absl::StatusOr<Verdict> EvaluateNetworkCreate(const v1::NetworksCreate& request,
                                              const v1::Policy& policy,
                                              const CallerContext& caller);

// Exec: never privileged (ContainersExec has no such field, and RenderExecConfig writes
// "Privileged": false); with require_non_root_user, the user must be "" (the
// container's own, checked at create) or a numeric non-root uid. Unless
// allow_exec_as_root, the user the process runs as (the request's, else
// `container_user`, the container's own as Podman's inspect says) must be a numeric uid
// other than 0: a name, and "", may be root.
absl::StatusOr<Verdict> EvaluateExec(const v1::ContainersExec& request, const v1::Policy& policy,
                                     std::string_view container_user);

// What the gatekeeper read back of an existing container: the labels it wrote at create
// (namespace_rules.h), each absent when the container has no such label.
struct ContainerRecord {
  std::string id;  // as the request named it, for the answer
  std::optional<std::string> owner;
  std::optional<std::string> namespace_name;
};

// A container's bind mounts again, at its start: Podman binds by path at every start, so
// a source that was a plain directory at create may since have had a component swapped
// for a symlink by anything that can write on its way. Each source (as Podman holds it:
// the canonical path the gatekeeper rendered) must still pass the host-path rules and,
// resolved through caller.host_paths, still be exactly itself (rule "host_paths.changed"
// when it now leads elsewhere). `binds` holds source, destination and read_only only.
absl::StatusOr<Verdict> EvaluateBindsAtStart(const std::vector<v1::BindMount>& binds, const v1::Policy& policy,
                                             const CallerContext& caller);

// Any verb on an existing container, acting in `requested_namespace` ("" = default):
// the container must carry kOwnerValue and that namespace (rules "ownership",
// "namespace"). One with neither label is refused (rule "adopt_unlabelled") unless
// adopt_unlabelled, which treats it as coold's in the default namespace.
// InvalidArgument for a namespace outside the namespace grammar.
absl::StatusOr<Verdict> EvaluateContainerAccess(const ContainerRecord& container,
                                                std::string_view requested_namespace,
                                                const v1::Policy& policy);

// Image pull: the reference's registry, once fully qualified, must be in
// allowed_registries when the policy lists any.
absl::StatusOr<Verdict> EvaluateImagePull(const v1::ImagesPull& request, const v1::Policy& policy);

}  // namespace coolify::policy

#endif  // COOLD_POLICY_ENGINE_H_
