// Semantic validation of privsep messages and the field grammars they use.
//
// DecodeFrame (channel.h) guarantees a message is well formed: no unknown fields, no
// enum value outside its type. The validators here add what the schema cannot say:
// which values make sense. Every process validates every message it receives before
// acting on it, so a compromised peer can send only messages that a correct peer
// could have sent.
//
// Every error is absl::InvalidArgumentError whose text starts with the path of the
// offending field ("MonitorRequest.health_round.reports[1].pid: ...") and quotes the
// offending value escaped and cut to 64 bytes, so errors are safe to log verbatim.
#ifndef COOLD_PRIVSEP_VALIDATE_H_
#define COOLD_PRIVSEP_VALIDATE_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "proto/privsep.pb.h"

namespace coolify::privsep {

// The only protocol_version a request envelope may carry.
inline constexpr uint32_t kProtocolVersion = 1;

// Rules per firewall frame (stage, list page), and ids per page of a commit's changes:
// 500 of the largest rule, or of the longest id, fit in 64 KiB.
inline constexpr int kMaxRulesPerFrame = 500;

// Bytes of a Podman answer per frame; a larger answer travels in pieces.
inline constexpr int kMaxBodyBytesPerFrame = 60 * 1024;

// The build stream: event lines per frame, bytes per line (an events.ndjson line), and
// bytes of a result.json or error.json.
inline constexpr int kMaxBuildLinesPerFrame = 64;
inline constexpr int kMaxBuildLineBytes = 16 * 1024;
inline constexpr int kMaxBuildOutcomeBytes = 32 * 1024;

// A health round holds one report per role, with room for roles still to come.
inline constexpr int kMaxHealthReports = 8;

// The process each request envelope is meant for; its `role` field must say so.
template <typename Request>
inline constexpr Role kRecipient = ROLE_UNSPECIFIED;
template <>
inline constexpr Role kRecipient<NetlinkRequest> = ROLE_NETLINK;
template <>
inline constexpr Role kRecipient<PodmanRequest> = ROLE_PODMAN;
template <>
inline constexpr Role kRecipient<BuildLauncherRequest> = ROLE_BUILD;
template <>
inline constexpr Role kRecipient<MonitorRequest> = ROLE_MONITOR;

// Requests: protocol_version == kProtocolVersion, request_id != 0, role ==
// kRecipient<Request> (a request meant for another process is refused), op set, and the
// op's payload valid.
absl::Status Validate(const NetlinkRequest& request);
absl::Status Validate(const PodmanRequest& request);
absl::Status Validate(const BuildLauncherRequest& request);
absl::Status Validate(const MonitorRequest& request);

// Replies: request_id != 0, status.code an absl::StatusCode (0..16), and the result's
// payload (if any) valid.
absl::Status Validate(const NetlinkReply& reply);
absl::Status Validate(const PodmanReply& reply);
absl::Status Validate(const BuildLauncherReply& reply);
absl::Status Validate(const MonitorReply& reply);
// A frame of a streamed Podman answer: one of its kinds set, data within one frame's worth.
absl::Status Validate(const PodmanStreamFrame& frame);
// A frame of the build stream: a build request id, 1..kMaxBuildLinesPerFrame event lines
// of at most kMaxBuildLineBytes (none when it only counts dropped lines), or an outcome of a known file name within a frame.
absl::Status Validate(const BuildStreamFrame& frame);

// role a Role other than ROLE_UNSPECIFIED, pid > 0, seccomp_mode 0 (off), 1 (strict)
// or 2 (filter), landlock_abi >= 0.
absl::Status Validate(const HealthReport& report);

// 1..kMaxHealthReports reports, each valid, no two with the same role.
absl::Status Validate(const HealthRound& round);

// Field grammars. `field` names the field in the error; `value` is what was received.

// host-id = 1*64( %x61-7A / DIGIT / "-" ), first and last character not "-".
absl::Status ValidateHostId(std::string_view field, std::string_view value);

// namespace-name = %x61-7A *30( %x61-7A / DIGIT / "-" )   (lower-case letter first,
// at most 31 characters; fits a network namespace or interface-name prefix).
absl::Status ValidateNamespaceName(std::string_view field, std::string_view value);

// ipv4 = dec-octet 3( "." dec-octet ), dec-octet = "0" / %x31-39 *2DIGIT, value <= 255.
// No leading zeros, no other spellings inet_aton would take ("10.1", "0x0a.0.0.1").
absl::Status ValidateIpv4(std::string_view field, std::string_view value);

// ipv4-cidr = ipv4 "/" prefix, prefix = "0" / %x31-39 [DIGIT], value <= 32, and the
// address has no bits set past the prefix ("10.0.0.0/8", not "10.0.0.1/8").
absl::Status ValidateIpv4Cidr(std::string_view field, std::string_view value);

// port = 1..65535.
absl::Status ValidatePort(std::string_view field, int64_t value);

// request-id = 1*64( ALPHA / DIGIT / "." / "_" / "-" ).
absl::Status ValidateRequestId(std::string_view field, std::string_view value);

// firewall-rule-id = derived-id / caller-id
// derived-id       = 12( DIGIT / %x61-66 )   (the first 12 hex digits of a sha256)
// caller-id        = ALPHA *63( ALPHA / DIGIT / "_" / "." / ":" / "-" ), not a derived-id
// Either is a rule's comment in the kernel and a word of the snapshots, so neither may
// hold a space, a quote or anything iptables-restore or nft would read as syntax.
absl::Status ValidateFirewallRuleId(std::string_view field, std::string_view value);

// A caller-id (above): the name a caller gives a rule instead of the derived id.
absl::Status ValidateCallerRuleId(std::string_view field, std::string_view value);

// Whether `value` is a derived-id (above).
bool IsDerivedRuleId(std::string_view value);

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_VALIDATE_H_
