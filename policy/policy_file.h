// Policy files: textproto of coolify.v1.Policy (proto/policy.proto), parsed strictly,
// completed with the schema's documented defaults and validated.
//
// Strict means: an unknown field, a field given twice, a value of the wrong type and
// an extension are all errors, as is any policy that fails ValidatePolicy. Errors read
// "<name>:<line>:<column>: <what>" (line and column from 1), so an invalid policy stops
// coold at start with a message pointing into the file; a validation error about a
// field the file does not spell names the field path instead.
#ifndef COOLD_POLICY_POLICY_FILE_H_
#define COOLD_POLICY_POLICY_FILE_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/policy.pb.h"

namespace coolify::policy {

// The profiles compiled into every binary; EmbeddedPolicy takes their names.
inline constexpr std::string_view kBaselineProfile = "baseline";
inline constexpr std::string_view kRestrictedProfile = "restricted";

// Defaults for fields a policy may leave empty (proto/policy.proto says why).
inline constexpr std::string_view kDefaultRuntimes[] = {"runc", "crun"};
inline constexpr std::string_view kDefaultRuntime = "crun";
inline constexpr std::string_view kDefaultSeccompProfile = "/usr/share/containers/seccomp.json";
inline constexpr std::string_view kDefaultUserNamespace = "host";
// Resource caps of a policy that sets none: no container runs without these limits.
inline constexpr uint64_t kDefaultMaxMemoryBytes = uint64_t{2} << 30;
inline constexpr uint64_t kDefaultMaxPids = 32768;

// Parses `text` (named `name` in errors), applies WithDefaults, then ValidatePolicy.
absl::StatusOr<v1::Policy> ParsePolicy(std::string_view name, std::string_view text);

// ParsePolicy on the file at `path` (at most 1 MiB).
absl::StatusOr<v1::Policy> LoadPolicyFile(std::string_view path);

// ParsePolicy on the embedded policy/<profile>.textproto. NotFound for another profile.
absl::StatusOr<v1::Policy> EmbeddedPolicy(std::string_view profile);

// `policy` with the defaults above in its empty allowed_runtimes, default_runtime,
// seccomp_profile_path and user_namespace. Policies the engine evaluates went through
// this (ParsePolicy does it).
v1::Policy WithDefaults(v1::Policy policy);

// Checks a completed policy (WithDefaults) for what the schema cannot say. Errors are
// InvalidArgument and start with the field path ("host_paths[1].prefix: ..."):
//   - name: [a-z0-9][a-z0-9_.-]*, at most 64 bytes;
//   - capabilities: canonical names (capabilities.h) or "ALL", none twice;
//   - host_paths: absolute, lexically canonical prefixes, none twice;
//   - runtimes: names ([a-z0-9][a-z0-9_.-]*), none twice; default_runtime among them;
//   - devices: canonical paths below /dev, permissions a subset of "rwm";
//   - sysctls: sysctl names, none twice;
//   - drivers: names, none twice; option keys unique per driver;
//   - registries: lower-case registry names (image_ref.h), none twice;
//   - namespaces: a namespace name or "*", none twice; every network pattern and
//     prefix a network name once expanded; default_network set and allowed by its own
//     rule; port ranges within 1..65535 with first <= last; host_ips IPv4 addresses;
//   - seccomp_profile_path: an absolute canonical path; apparmor_profile "" or a
//     profile name other than "unconfined"; user_namespace "host" or "auto".
absl::Status ValidatePolicy(const v1::Policy& policy);

}  // namespace coolify::policy

#endif  // COOLD_POLICY_POLICY_FILE_H_
