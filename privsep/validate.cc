#include "privsep/validate.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "services/commands/verbs.h"
#include "services/http/status.h"

namespace coolify::privsep {
namespace {

// Received values can be anything, so errors show at most this many bytes of them,
// C-escaped: an error message must never carry control characters or megabytes into
// a log line.
constexpr size_t kMaxShownBytes = 64;

// This absl is built with its own string_view type, which std::string_view does not
// convert to implicitly.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string Quote(std::string_view value) {
  return absl::StrCat("\"", absl::CHexEscape(AbslView(value.substr(0, kMaxShownBytes))), "\"",
                      value.size() > kMaxShownBytes ? "..." : "");
}

// Each refusal carries the field it names as its payload (services/http/status.h), so
// whoever answers for it never reads the field back out of the text.
absl::Status FieldError(absl::string_view path, absl::string_view field,
                        absl::string_view detail) {
  const std::string name = absl::StrCat(path, ".", field);
  return http::InvalidField(name, std::string_view(detail.data(), detail.size()));
}

// A grammar violation: `field: "value" is not <what>`.
absl::Status GrammarError(std::string_view field, std::string_view value,
                          absl::string_view what) {
  return http::InvalidField(field, absl::StrCat(Quote(value), " is not ", what));
}

bool IsLowerOrDigit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

constexpr char kIpv4What[] = "a dotted-quad IPv4 address without leading zeros";

// The address in host byte order. inet_pton alone would do for the grammar today, but
// comparing with inet_ntop's canonical spelling pins it down whatever libc accepts.
absl::StatusOr<uint32_t> ParseIpv4(std::string_view field, std::string_view value) {
  if (value.size() > INET_ADDRSTRLEN - 1) return GrammarError(field, value, kIpv4What);
  const std::string text(value);  // inet_pton needs a terminated string.
  in_addr addr{};
  char canonical[INET_ADDRSTRLEN];
  if (inet_pton(AF_INET, text.c_str(), &addr) != 1 ||
      inet_ntop(AF_INET, &addr, canonical, sizeof canonical) == nullptr ||
      text != canonical) {
    return GrammarError(field, value, kIpv4What);
  }
  return ntohl(addr.s_addr);
}

absl::Status ValidateHealthReport(const HealthReport& report, const std::string& path) {
  if (!Role_IsValid(report.role())) {
    return FieldError(path, "role", absl::StrCat(report.role(), " is not a Role"));
  }
  if (report.role() == ROLE_UNSPECIFIED) {
    return FieldError(path, "role", "ROLE_UNSPECIFIED (0) is not allowed");
  }
  if (report.pid() <= 0) {
    return FieldError(path, "pid", absl::StrCat(report.pid(), " is not positive"));
  }
  if (report.seccomp_mode() > 2) {
    return FieldError(path, "seccomp_mode",
                      absl::StrCat(report.seccomp_mode(),
                                   " is not 0 (disabled), 1 (strict) or 2 (filter)"));
  }
  if (report.landlock_abi() < 0) {
    return FieldError(path, "landlock_abi",
                      absl::StrCat(report.landlock_abi(), " is negative"));
  }
  return absl::OkStatus();
}

absl::Status ValidateHealthRound(const HealthRound& round, const std::string& path) {
  if (round.reports_size() < 1 || round.reports_size() > kMaxHealthReports) {
    return FieldError(path, "reports",
                      absl::StrCat(round.reports_size(), " reports, want 1..",
                                   kMaxHealthReports));
  }
  absl::flat_hash_map<int, int> index_of_role;
  for (int i = 0; i < round.reports_size(); ++i) {
    const HealthReport& report = round.reports(i);
    const std::string report_path = absl::StrCat(path, ".reports[", i, "]");
    if (absl::Status s = ValidateHealthReport(report, report_path); !s.ok()) return s;
    const auto [it, inserted] = index_of_role.emplace(report.role(), i);
    if (!inserted) {
      return FieldError(report_path, "role",
                        absl::StrCat(Role_Name(report.role()), " repeats reports[",
                                     it->second, "]"));
    }
  }
  return absl::OkStatus();
}

// The envelope every request shares: {protocol_version, request_id, oneof op}.
template <typename Request>
absl::Status ValidateRequestEnvelope(const Request& request) {
  const std::string& type = Request::descriptor()->name();
  if (request.protocol_version() != kProtocolVersion) {
    return FieldError(type, "protocol_version",
                      absl::StrCat(request.protocol_version(), " is not ", kProtocolVersion));
  }
  if (request.request_id() == 0) return FieldError(type, "request_id", "0 is reserved");
  if (request.role() != kRecipient<Request>) {
    return FieldError(type, "role",
                      absl::StrCat(Role_Name(request.role()), " (", request.role(), ") is not ",
                                   Role_Name(kRecipient<Request>), ": a request meant for another process"));
  }
  if (request.op_case() == Request::OP_NOT_SET) return FieldError(type, "op", "not set");
  return absl::OkStatus();
}

// The envelope every reply shares: {request_id, status}.
template <typename Reply>
absl::Status ValidateReplyEnvelope(const Reply& reply) {
  const std::string& type = Reply::descriptor()->name();
  if (reply.request_id() == 0) return FieldError(type, "request_id", "0 is reserved");
  constexpr int kMaxCode = static_cast<int>(absl::StatusCode::kUnauthenticated);
  if (reply.status().code() < 0 || reply.status().code() > kMaxCode) {
    return FieldError(type, "status.code",
                      absl::StrCat(reply.status().code(), " is not an absl::StatusCode (0..",
                                   kMaxCode, ")"));
  }
  return absl::OkStatus();
}

// The replies of the three helpers share {oneof result { HealthReport health }}.
template <typename Reply>
absl::Status ValidateHelperReply(const Reply& reply) {
  if (absl::Status s = ValidateReplyEnvelope(reply); !s.ok()) return s;
  if (reply.has_health()) {
    return ValidateHealthReport(reply.health(),
                                absl::StrCat(Reply::descriptor()->name(), ".health"));
  }
  return absl::OkStatus();
}

}  // namespace

// Rule fields are checked again by the firewall writer's own parser, which turns them into
// the canonical tuple it acts on (services/netlink/firewall_rule.h); here only what the
// channel itself bounds: counts and ids.
absl::Status Validate(const NetlinkRequest& request) {
  if (absl::Status s = ValidateRequestEnvelope(request); !s.ok()) return s;
  switch (request.op_case()) {
    case NetlinkRequest::kAllow:
      if (!request.allow().has_rule()) return FieldError("NetlinkRequest", "allow.rule", "not set");
      if (!request.allow().id().empty()) return ValidateCallerRuleId("NetlinkRequest.allow.id", request.allow().id());
      break;
    case NetlinkRequest::kDelete:
      return ValidateFirewallRuleId("NetlinkRequest.delete.id", request.delete_().id());
    case NetlinkRequest::kStage:
      if (request.stage().rules_size() == 0 || request.stage().rules_size() > kMaxRulesPerFrame) {
        return FieldError("NetlinkRequest", "stage.rules",
                          absl::StrCat(request.stage().rules_size(), " rules; 1..", kMaxRulesPerFrame,
                                       " per frame"));
      }
      break;
    case NetlinkRequest::kCommit:
      if (request.commit().mode() == FIREWALL_COMMIT_MODE_UNSPECIFIED) {
        return FieldError("NetlinkRequest", "commit.mode", "not set");
      }
      break;
    case NetlinkRequest::kList:
      if (!request.list().namespace_().empty()) {
        return ValidateNamespaceName("NetlinkRequest.list.namespace", request.list().namespace_());
      }
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

// The verb's fields are the gatekeeper's to judge (policy/spec_validation.h); here only
// that a call names a verb the registry gives the gatekeeper (services/commands/verbs.h).
absl::Status Validate(const PodmanRequest& request) {
  if (absl::Status s = ValidateRequestEnvelope(request); !s.ok()) return s;
  if (request.has_call()) {
    const commands::Verb* verb = commands::VerbOf(request.call().command());
    if (verb == nullptr || verb->server != commands::Server::kPodman) {
      return FieldError("PodmanRequest", "call.command",
                        absl::StrCat("verb ", request.call().command().verb_case(), " is not a Podman verb"));
    }
  }
  // Its grammar is the gatekeeper's to judge against its own namespaces.
  if (request.has_image_load() && (request.image_load().name().empty() || request.image_load().name().size() > 255)) {
    return FieldError("PodmanRequest", "image_load.name", "1..255 bytes");
  }
  return absl::OkStatus();
}
namespace {

// A build's request id names its work directory and cgroup: [A-Za-z0-9_-], 1..64.
absl::Status ValidateBuildRequestId(std::string_view field, std::string_view value) {
  bool ok = !value.empty() && value.size() <= 64;
  for (char c : value) {
    if (!IsLowerOrDigit(c) && !(c >= 'A' && c <= 'Z') && c != '-' && c != '_') ok = false;
  }
  if (!ok) return GrammarError(field, value, "1..64 of [A-Za-z0-9_-]");
  return absl::OkStatus();
}

// The builder checks every field's grammar; here only what keeps a frame sane.
absl::Status ValidateBuildSpec(const BuildSpec& spec) {
  if (absl::Status s = ValidateBuildRequestId("BuildLauncherRequest.start.spec.request_id", spec.request_id());
      !s.ok()) {
    return s;
  }
  if (spec.kind() == BUILD_KIND_UNSPECIFIED) return FieldError("BuildLauncherRequest", "start.spec.kind", "not set");
  struct Field {
    const char* name;
    const std::string& value;
    size_t max;
  } fields[] = {{"repo_url", spec.repo_url(), 2048},        {"git_ref", spec.git_ref(), 255},
                {"subdirectory", spec.subdirectory(), 1024}, {"target_image", spec.target_image(), 255},
                {"base_image", spec.base_image(), 255},      {"dockerfile_path", spec.dockerfile_path(), 1024},
                {"output_dir", spec.output_dir(), 1024}};
  for (const Field& f : fields) {
    if (f.value.size() > f.max) {
      return FieldError("BuildLauncherRequest", absl::StrCat("start.spec.", f.name), "too long");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Validate(const BuildLauncherRequest& request) {
  if (absl::Status s = ValidateRequestEnvelope(request); !s.ok()) return s;
  switch (request.op_case()) {
    case BuildLauncherRequest::kStart:
      return ValidateBuildSpec(request.start().spec());
    case BuildLauncherRequest::kCancel:
      return ValidateBuildRequestId("BuildLauncherRequest.cancel.request_id", request.cancel().request_id());
    default:
      return absl::OkStatus();
  }
}

absl::Status Validate(const BuildStreamFrame& frame) {
  switch (frame.frame_case()) {
    case BuildStreamFrame::kProgress: {
      const BuildProgress& p = frame.progress();
      if (absl::Status s = ValidateBuildRequestId("BuildStreamFrame.progress.request_id", p.request_id()); !s.ok()) {
        return s;
      }
      if (p.event_lines_size() > kMaxBuildLinesPerFrame || (p.event_lines_size() < 1 && p.dropped_lines() == 0)) {
        return FieldError("BuildStreamFrame", "progress.event_lines", "1..64 lines per frame (0 with dropped_lines)");
      }
      for (const std::string& line : p.event_lines()) {
        if (line.size() > static_cast<size_t>(kMaxBuildLineBytes)) {
          return FieldError("BuildStreamFrame", "progress.event_lines", "a line longer than 16 KiB");
        }
      }
      return absl::OkStatus();
    }
    case BuildStreamFrame::kFinished: {
      const BuildFinished& f = frame.finished();
      if (absl::Status s = ValidateBuildRequestId("BuildStreamFrame.finished.request_id", f.request_id()); !s.ok()) {
        return s;
      }
      if (f.outcome_file() != "" && f.outcome_file() != "result.json" && f.outcome_file() != "error.json") {
        return FieldError("BuildStreamFrame", "finished.outcome_file", "not result.json or error.json");
      }
      if (f.outcome_file().empty() != f.outcome().empty()) {
        return FieldError("BuildStreamFrame", "finished.outcome", "present exactly when outcome_file is");
      }
      if (f.outcome().size() > static_cast<size_t>(kMaxBuildOutcomeBytes)) {
        return FieldError("BuildStreamFrame", "finished.outcome", "larger than 32 KiB");
      }
      if (f.image_archive() && f.outcome_file() != "result.json") {
        return FieldError("BuildStreamFrame", "finished.image_archive", "only with result.json");
      }
      if (f.image_archive() != !f.image_name().empty() || f.image_name().size() > 255) {
        return FieldError("BuildStreamFrame", "finished.image_name", "1..255 bytes exactly with image_archive");
      }
      if (f.note().size() > 256) return FieldError("BuildStreamFrame", "finished.note", "longer than 256 bytes");
      for (char c : f.note()) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          return FieldError("BuildStreamFrame", "finished.note", "holds control characters");
        }
      }
      return absl::OkStatus();
    }
    case BuildStreamFrame::FRAME_NOT_SET:
      break;
  }
  return FieldError("BuildStreamFrame", "frame", "missing");
}

absl::Status Validate(const MonitorRequest& request) {
  if (absl::Status s = ValidateRequestEnvelope(request); !s.ok()) return s;
  if (request.has_health_round()) {
    return ValidateHealthRound(request.health_round(), "MonitorRequest.health_round");
  }
  if (request.has_dns_sockets()) {
    return ValidateNamespaceName("MonitorRequest.dns_sockets.namespace_name", request.dns_sockets().namespace_name());
  }
  if (request.has_host_proof() && request.host_proof().nonce().size() != 32) {
    return FieldError("MonitorRequest", "host_proof.nonce", "must be 32 bytes");
  }
  if (request.has_host_jwt_write()) {
    const std::string& jwt = request.host_jwt_write().jwt();
    size_t dots = 0;
    for (char c : jwt) {
      dots += c == '.';
      if (!IsLowerOrDigit(c) && !(c >= 'A' && c <= 'Z') && c != '-' && c != '_' && c != '.') {
        return FieldError("MonitorRequest", "host_jwt_write.jwt", "not a compact JWS (base64url and dots)");
      }
    }
    if (jwt.empty() || jwt.size() > 8192 || dots != 2) {
      return FieldError("MonitorRequest", "host_jwt_write.jwt", "not a compact JWS of at most 8 KiB");
    }
  }
  if (request.has_host_token()) {
    if (request.host_token().caps_size() > 64) {
      return FieldError("MonitorRequest", "host_token.caps", "at most 64 capabilities");
    }
    for (const std::string& cap : request.host_token().caps()) {
      if (cap.empty() || cap.size() > 64) return FieldError("MonitorRequest", "host_token.caps", "1 to 64 characters each");
      for (char c : cap) {
        if (!IsLowerOrDigit(c) && c != '.' && c != '_') {
          return GrammarError("MonitorRequest.host_token.caps", cap, "a dotted verb or \"builder\" ([a-z0-9._])");
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Validate(const NetlinkReply& reply) {
  if (absl::Status s = ValidateHelperReply(reply); !s.ok()) return s;
  switch (reply.result_case()) {
    case NetlinkReply::kAllowed:
      return ValidateFirewallRuleId("NetlinkReply.allowed.id", reply.allowed().id());
    case NetlinkReply::kPage:
      if (reply.page().entries_size() > kMaxRulesPerFrame) {
        return FieldError("NetlinkReply", "page.entries", "more than one frame's worth");
      }
      for (const FirewallEntry& entry : reply.page().entries()) {
        if (absl::Status s = ValidateFirewallRuleId("NetlinkReply.page.entries.id", entry.id()); !s.ok()) {
          return s;
        }
      }
      break;
    case NetlinkReply::kChanges:
      if (reply.changes().ids_size() + reply.changes().added_size() + reply.changes().removed_size() >
          kMaxRulesPerFrame) {
        return FieldError("NetlinkReply", "changes", "more than one frame's worth");
      }
      for (const auto* ids : {&reply.changes().ids(), &reply.changes().added(), &reply.changes().removed()}) {
        for (const std::string& id : *ids) {
          if (absl::Status s = ValidateFirewallRuleId("NetlinkReply.changes", id); !s.ok()) return s;
        }
      }
      break;
    default:
      break;
  }
  return absl::OkStatus();
}
absl::Status Validate(const PodmanReply& reply) {
  if (absl::Status s = ValidateHelperReply(reply); !s.ok()) return s;
  if (reply.has_image_loaded()) {
    const std::string& id = reply.image_loaded().image_id();
    bool hex = id.size() == 64;
    for (char c : id) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!hex) return FieldError("PodmanReply", "image_loaded.image_id", "not 64 hex digits");
    if (reply.image_loaded().name().empty() || reply.image_loaded().name().size() > 255) {
      return FieldError("PodmanReply", "image_loaded.name", "1..255 bytes");
    }
  }
  if (reply.has_response()) {
    if (reply.response().body().size() > static_cast<size_t>(kMaxBodyBytesPerFrame)) {
      return FieldError("PodmanReply", "response.body", "more than one frame's worth");
    }
    if (reply.response().http_status() < 100 || reply.response().http_status() > 599) {
      return FieldError("PodmanReply", "response.http_status", "not an HTTP status");
    }
    if (reply.response().stream() &&
        (reply.response().http_status() != 200 || reply.response().more() || !reply.response().body().empty())) {
      return FieldError("PodmanReply", "response.stream", "a stream is a bare 200 with no body and no more");
    }
  }
  return absl::OkStatus();
}
absl::Status Validate(const BuildLauncherReply& reply) { return ValidateHelperReply(reply); }

absl::Status Validate(const PodmanStreamFrame& frame) {
  switch (frame.frame_case()) {
    case PodmanStreamFrame::kStdoutData:
    case PodmanStreamFrame::kStderrData:
    case PodmanStreamFrame::kEvent: {
      const size_t size = frame.has_stdout_data()   ? frame.stdout_data().size()
                          : frame.has_stderr_data() ? frame.stderr_data().size()
                                                    : frame.event().size();
      if (size > static_cast<size_t>(kMaxBodyBytesPerFrame)) {
        return FieldError("PodmanStreamFrame", "data", "more than one frame's worth");
      }
      return absl::OkStatus();
    }
    case PodmanStreamFrame::kEnd:
      if (frame.end().code() < 0 || frame.end().code() > 16) {
        return FieldError("PodmanStreamFrame", "end.code", "not a status code");
      }
      return absl::OkStatus();
    case PodmanStreamFrame::FRAME_NOT_SET:
      break;
  }
  return FieldError("PodmanStreamFrame", "frame", "missing");
}
absl::Status Validate(const MonitorReply& reply) { return ValidateReplyEnvelope(reply); }

absl::Status Validate(const HealthReport& report) {
  return ValidateHealthReport(report, "HealthReport");
}

absl::Status Validate(const HealthRound& round) {
  return ValidateHealthRound(round, "HealthRound");
}

absl::Status ValidateHostId(std::string_view field, std::string_view value) {
  constexpr char kWhat[] =
      "a host id (1..64 of [a-z0-9-], not starting or ending with '-')";
  if (value.empty() || value.size() > 64 || value.front() == '-' || value.back() == '-') {
    return GrammarError(field, value, kWhat);
  }
  for (char c : value) {
    if (!IsLowerOrDigit(c) && c != '-') return GrammarError(field, value, kWhat);
  }
  return absl::OkStatus();
}

absl::Status ValidateNamespaceName(std::string_view field, std::string_view value) {
  constexpr char kWhat[] = "a namespace name ([a-z][a-z0-9-]{0,30})";
  if (value.empty() || value.size() > 31 || value.front() < 'a' || value.front() > 'z') {
    return GrammarError(field, value, kWhat);
  }
  for (char c : value) {
    if (!IsLowerOrDigit(c) && c != '-') return GrammarError(field, value, kWhat);
  }
  return absl::OkStatus();
}

absl::Status ValidateIpv4(std::string_view field, std::string_view value) {
  return ParseIpv4(field, value).status();
}

absl::Status ValidateIpv4Cidr(std::string_view field, std::string_view value) {
  constexpr char kWhat[] = "an IPv4 CIDR (address/0..32, no host bits set)";
  const size_t slash = value.find('/');
  if (slash == std::string_view::npos) return GrammarError(field, value, kWhat);
  const std::string_view prefix_text = value.substr(slash + 1);
  if (prefix_text.empty() || prefix_text.size() > 2 ||
      (prefix_text.size() == 2 && prefix_text[0] == '0')) {
    return GrammarError(field, value, kWhat);
  }
  int prefix = 0;
  for (char c : prefix_text) {
    if (c < '0' || c > '9') return GrammarError(field, value, kWhat);
    prefix = prefix * 10 + (c - '0');
  }
  if (prefix > 32) return GrammarError(field, value, kWhat);
  const absl::StatusOr<uint32_t> address = ParseIpv4(field, value.substr(0, slash));
  if (!address.ok()) return GrammarError(field, value, kWhat);
  // Shifting a 32-bit value by 32 is undefined, hence the special case.
  const uint32_t host_mask = prefix == 32 ? 0 : ~uint32_t{0} >> prefix;
  if ((*address & host_mask) != 0) {
    return GrammarError(field, value, "a network address: host bits are set");
  }
  return absl::OkStatus();
}

absl::Status ValidatePort(std::string_view field, int64_t value) {
  if (value < 1 || value > 65535) {
    return http::InvalidField(field, absl::StrCat(value, " is not a port (1..65535)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRequestId(std::string_view field, std::string_view value) {
  constexpr char kWhat[] = "a request id (1..64 of [A-Za-z0-9._-])";
  if (value.empty() || value.size() > 64) return GrammarError(field, value, kWhat);
  for (char c : value) {
    const bool ok = IsLowerOrDigit(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' ||
                    c == '-';
    if (!ok) return GrammarError(field, value, kWhat);
  }
  return absl::OkStatus();
}

bool IsDerivedRuleId(std::string_view value) {
  bool ok = value.size() == 12;
  for (char c : value) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  return ok;
}

namespace {
constexpr char kCallerIdWhat[] =
    "a rule id: a letter, then at most 63 of A-Z a-z 0-9 _ . : -, and not 12 hex digits";
}  // namespace

absl::Status ValidateCallerRuleId(std::string_view field, std::string_view value) {
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  bool ok = !value.empty() && value.size() <= 64 && alpha(value[0]) && !IsDerivedRuleId(value);
  for (char c : value) {
    ok = ok && (alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' || c == '-');
  }
  if (!ok) return GrammarError(field, value, kCallerIdWhat);
  return absl::OkStatus();
}

absl::Status ValidateFirewallRuleId(std::string_view field, std::string_view value) {
  if (IsDerivedRuleId(value) || ValidateCallerRuleId(field, value).ok()) return absl::OkStatus();
  return GrammarError(field, value, "12 lower-case hex digits, or a caller's rule id (a letter, then at most 63 of A-Z a-z 0-9 _ . : -)");
}

}  // namespace coolify::privsep
