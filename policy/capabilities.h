// Linux capability names as requests spell them and as the policy and the Podman spec
// write them.
//
// A request may spell a capability any way Podman or Docker would take it: with or
// without the CAP_ prefix, in any ASCII case, with surrounding whitespace
// ("CAP_SYS_ADMIN", "sys_admin", " Sys_Admin\t"), or "ALL" in any case. Every spelling
// canonicalizes to one form, upper case without the prefix ("SYS_ADMIN", "ALL"), and the
// policy compares only canonical forms, so no spelling can slip past an allowlist.
#ifndef COOLD_POLICY_CAPABILITIES_H_
#define COOLD_POLICY_CAPABILITIES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace coolify::policy {

// The pseudo-capability that stands for every capability.
inline constexpr std::string_view kAllCapabilities = "ALL";

// CapabilityIndex's answer for "ALL" and for what is no capability.
inline constexpr int kAllCapabilitiesIndex = 64;
inline constexpr int kNoCapability = -1;

// The index into KnownCapabilities() of the capability `spelling` names (the kernel's
// number), kAllCapabilitiesIndex for "ALL", kNoCapability otherwise. The same rules as
// CanonicalCapability, without allocating: the engine and the renderer compare
// capabilities as bits.
int CapabilityIndex(std::string_view spelling);

// The canonical form of `spelling`: "ALL", or a capability the Linux kernel defines
// (CAP_CHOWN .. CAP_CHECKPOINT_RESTORE) without its prefix. InvalidArgument for
// anything else, including names with inner whitespace or non-ASCII letters.
absl::StatusOr<std::string> CanonicalCapability(std::string_view spelling);

// Every capability the kernel defines, canonical, in kernel number order.
absl::Span<const std::string_view> KnownCapabilities();

// Podman's default set (containers.conf default_capabilities as Podman 4 ships it): what
// a container holds when it asks for nothing. The renderer writes it explicitly, so a
// host's containers.conf cannot add to it.
absl::Span<const std::string_view> DefaultCapabilities();

// DefaultCapabilities() as bits: bit i is KnownCapabilities()[i].
uint64_t DefaultCapabilityBits();

}  // namespace coolify::policy

#endif  // COOLD_POLICY_CAPABILITIES_H_
