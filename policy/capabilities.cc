#include "policy/capabilities.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "policy/shown_value.h"

namespace coolify::policy {
namespace {

// linux/capability.h, CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40). Listed here rather
// than taken from the build host's headers or libcap, so what a policy means does not
// depend on where coold was built.
constexpr std::string_view kKnown[] = {
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
};

constexpr std::string_view kDefault[] = {
    "CHOWN",   "DAC_OVERRIDE", "FOWNER",  "FSETID", "KILL",       "NET_BIND_SERVICE",
    "SETFCAP", "SETGID",       "SETPCAP", "SETUID", "SYS_CHROOT",
};

constexpr std::string_view kPrefix = "CAP_";

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

int CapabilityIndex(std::string_view spelling) {
  std::string_view trimmed = spelling;
  while (!trimmed.empty() && IsAsciiSpace(trimmed.front())) trimmed.remove_prefix(1);
  while (!trimmed.empty() && IsAsciiSpace(trimmed.back())) trimmed.remove_suffix(1);
  // Longer than "CAP_CHECKPOINT_RESTORE": no capability.
  char buffer[32];
  if (trimmed.size() > sizeof buffer) return kNoCapability;
  // Only ASCII letters are folded: Podman upper-cases with Unicode rules, which map
  // "ſ" (U+017F) to "S", so folding fewer characters here and refusing the rest keeps
  // every accepted spelling meaning the same capability to both.
  for (size_t i = 0; i < trimmed.size(); ++i) {
    const char c = trimmed[i];
    buffer[i] = c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
  }
  std::string_view name(buffer, trimmed.size());
  if (name.substr(0, kPrefix.size()) == kPrefix) name.remove_prefix(kPrefix.size());
  if (name == kAllCapabilities) return kAllCapabilitiesIndex;
  const auto it = std::find(std::begin(kKnown), std::end(kKnown), name);
  return it == std::end(kKnown) ? kNoCapability : static_cast<int>(it - std::begin(kKnown));
}

absl::StatusOr<std::string> CanonicalCapability(std::string_view spelling) {
  const int index = CapabilityIndex(spelling);
  if (index == kAllCapabilitiesIndex) return std::string(kAllCapabilities);
  if (index != kNoCapability) return std::string(kKnown[index]);
  return absl::InvalidArgumentError(absl::StrCat(Quoted(spelling), " is not a Linux capability"));
}

absl::Span<const std::string_view> KnownCapabilities() { return kKnown; }

absl::Span<const std::string_view> DefaultCapabilities() { return kDefault; }

uint64_t DefaultCapabilityBits() {
  static const uint64_t bits = [] {
    uint64_t b = 0;
    for (std::string_view name : kDefault) b |= uint64_t{1} << CapabilityIndex(name);
    return b;
  }();
  return bits;
}

}  // namespace coolify::policy
