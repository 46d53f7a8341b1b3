// Field validation of requests before the policy looks at them: the 400-class checks.
//
// A request that fails here is malformed (a relative path, a port 0, an unknown
// capability name, an image reference outside the grammar, more entries than any real
// container needs) and is answered 400 with the message; only a well-formed request is
// evaluated against the policy, whose denials are 403 (engine.h). Keeping the two apart
// tells a caller whether to fix its request or to ask the operator.
//
// Every error is absl::InvalidArgumentError whose text starts with the path of the
// offending field ("binds[2].source: ...") and shows the received value escaped and cut
// (shown_value.h). The grammars:
//
//   container, volume, network name   [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 bytes
//   network alias                     same grammar, at most 63 bytes
//   image / pull reference            image_ref.h
//   env key                           1..256 printable ASCII bytes, no "=" or space
//   label, option key                 [A-Za-z0-9][A-Za-z0-9_./-]*, at most 256 bytes
//   user                              ( name / id ) [ ":" ( name / id ) ],
//                                     name [a-z_][a-z0-9_-]{0,31}, id 0..4294967294
//   paths                             absolute, at most 4095 bytes, no NUL
//   ports                             1..65535, host_ip "" or a dotted-quad IPv4 address
//   capability                        capabilities.h
//   runtime                           [a-z0-9][a-z0-9_.-]*, at most 64 bytes (a name,
//                                     never a path)
//   sysctl key                        [a-z][a-z0-9_]*( "." [a-z0-9_-]+ )+
//   device permissions                a subset of "rwm", each letter at most once
//   text values                       no NUL; env values at most 32 KiB, others 4 KiB
//
// Counts are capped (kMax* below) so one request cannot make the gatekeeper or Podman
// do unbounded work.
#ifndef COOLD_POLICY_SPEC_VALIDATION_H_
#define COOLD_POLICY_SPEC_VALIDATION_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "proto/commands.pb.h"

namespace coolify::policy {

inline constexpr int kMaxArgs = 256;  // command, entrypoint, exec cmd, healthcheck
inline constexpr int kMaxEnv = 1024;
inline constexpr int kMaxLabels = 256;
inline constexpr int kMaxNetworks = 16;
inline constexpr int kMaxAliases = 16;
inline constexpr int kMaxMounts = 64;  // volumes and binds, each
inline constexpr int kMaxPorts = 256;
inline constexpr int kMaxDns = 3;            // what resolv.conf honours
inline constexpr int kMaxDnsSearch = 6;      // search domains glibc's resolver has always honoured
inline constexpr int kMaxCapabilities = 64;  // cap_add and cap_drop, each
inline constexpr int kMaxDevices = 32;
inline constexpr int kMaxSysctls = 64;
inline constexpr int kMaxOptions = 32;  // volume and network driver options
inline constexpr uint32_t kMaxRestartRetries = 1000;
inline constexpr uint32_t kMaxHealthSeconds = 86400;
inline constexpr uint32_t kMaxHealthRetries = 100;
// Podman refuses less than 6 MiB of memory and a CPU quota under 1 ms per 100 ms.
inline constexpr uint64_t kMinMemoryBytes = uint64_t{6} << 20;
inline constexpr uint64_t kMaxMemoryBytes = uint64_t{16} << 40;
inline constexpr uint64_t kMinCpuMillis = 10;
inline constexpr uint64_t kMaxCpuMillis = 1024 * 1000;
inline constexpr uint64_t kMaxPids = 4194304;  // the kernel's PID_MAX_LIMIT

// Besides each field's grammar: image required; host_network excludes networks and
// ports; no two mounts share a destination; no key repeats in env, labels or sysctls;
// restart_max_retries only with RESTART_POLICY_ON_FAILURE; enum values known;
// healthcheck.test is ["CMD", arg...], ["CMD-SHELL", command] or ["NONE"] when a
// healthcheck is given.
absl::Status ValidateContainerSpec(const v1::ContainerSpec& spec);

// name required; driver "" (local) or a name; option keys unique.
absl::Status ValidateVolumesCreate(const v1::VolumesCreate& request);

// name required; driver "" (bridge) or a name; subnet "" or an IPv4 CIDR, gateway "" or
// an IPv4 address; namespace "" or a namespace name; option keys unique.
absl::Status ValidateNetworksCreate(const v1::NetworksCreate& request);

// id a container name or id; cmd 1..kMaxArgs arguments; env, user, workdir as in
// ValidateContainerSpec.
absl::Status ValidateContainersExec(const v1::ContainersExec& request);

// ref an image reference; auth fields at most 4 KiB.
absl::Status ValidateImagesPull(const v1::ImagesPull& request);

// Whether `user`'s user part is a numeric uid other than 0 ("1000", "1000:0"). A user
// name, and "" (the image's own user), may be root. Precondition: `user` follows the
// user grammar.
bool IsNumericNonRootUser(std::string_view user);

}  // namespace coolify::policy

#endif  // COOLD_POLICY_SPEC_VALIDATION_H_
