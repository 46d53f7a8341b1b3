// The renderer: writes the body of Podman's libpod v4 container create
// (POST /v4.0.0/libpod/containers/create, a SpecGenerator as pkg/specgen/specgen.go
// names its JSON fields) from a request the policy allowed, as JSON text ready to send.
//
// The gatekeeper never forwards a caller's JSON: this constructor is the only source of
// what Podman sees. It writes every security-relevant field explicitly, so no Podman
// default and no containers.conf setting can loosen what the policy decided:
//
//   privileged                 false unless requested and allowed
//   cap_drop / cap_add         ["ALL"], then exactly the effective set: the default set
//                              (capabilities.h; none with drop_all_capabilities) minus
//                              cap_drop, plus cap_add
//   no_new_privileges          true: setuid binaries cannot gain privilege
//   seccomp_policy             "default" (image annotations cannot choose a profile)
//   seccomp_profile_path       the policy's profile
//   apparmor_profile           the policy's profile (omitted when "": Podman's default)
//   selinux_opts, mask, unmask, procfs_opts, annotations, devices, sysctl
//                              exactly what was allowed, [] / {} otherwise
//   pidns, ipcns, utsns, cgroupns
//                              {"nsmode": "private"}
//   userns                     the policy's user_namespace
//   netns                      "bridge" with the Networks map (the namespace's default
//                              network when the request names none), or "host"
//   oci_runtime                the requested runtime or the policy's default
//   image                      the fully qualified reference (image_ref.h)
//   env_host, httpproxy, publish_image_ports, use_image_resolve_conf, use_image_hosts
//                              false: nothing of the host or the image widens the
//                              container's environment, ports or name resolution
//   systemd                    "false": no systemd-mode mounts
//   resource_limits            the request's limits, or the policy's caps where the
//                              request names none
//   labels                     the request's, then kOwnerLabel and kNamespaceLabel
//                              (namespace_rules.h): coold's record of the container
//   mounts                     binds with their canonical (resolved) source and
//                              "rbind", "nosuid", "nodev", "ro"/"rw"
//   volumes                    named volumes with "nosuid", "nodev", "ro"/"rw"
//
// Precondition: Evaluate allowed `spec` under `policy` (with the same resolver). The
// renderer re-checks nothing; it only fails when a resolver cannot resolve a source or
// no namespace rule supplies a default network.
#ifndef COOLD_POLICY_RENDER_H_
#define COOLD_POLICY_RENDER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "policy/host_path.h"
#include "proto/commands.pb.h"
#include "proto/policy.pb.h"

namespace coolify::policy {

// The CPU period written with every CPU quota: 100 ms, the kernel's default.
inline constexpr int64_t kCpuPeriodMicros = 100000;

// The SpecGenerator for `spec`, one JSON object. With `host_paths`, bind sources are
// written as the resolver resolves them (the pinned canonical path); without, lexically
// canonical.
absl::StatusOr<std::string> RenderSpecGenerator(const v1::ContainerSpec& spec,
                                                const v1::Policy& policy,
                                                HostPathResolver* host_paths = nullptr);

// The body of Podman's exec create (POST /containers/{id}/exec) for an exec the policy
// allowed: AttachStdout and AttachStderr true, Cmd, Env ("KEY=value"), Tty, User,
// WorkingDir, and "Privileged": false always.
std::string RenderExecConfig(const v1::ContainersExec& request);

}  // namespace coolify::policy

#endif  // COOLD_POLICY_RENDER_H_
