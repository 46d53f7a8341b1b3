#include "services/broker/identity_api.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/json.hpp"
#include "policy/api_json.h"
#include "privsep/log.h"
#include "proto/agent.pb.h"
#include "services/broker/jwt.h"
#include "services/http/status.h"

namespace coolify::broker {
namespace {

namespace bhttp = boost::beast::http;

constexpr char kHostsPrefix[] = "/v1/hosts/";
constexpr char kRevokeSuffix[] = "/revoke";
constexpr size_t kMaxIdentityBody = 16 * 1024;
constexpr absl::Duration kDefaultEnrollmentTtl = absl::Hours(1);

http::Response Json(unsigned status, const boost::json::object& body) {
  http::Response response;
  response.status = status;
  response.body = boost::json::serialize(body);
  return response;
}

http::Response Error(const absl::Status& status) {
  return http::ErrorResponse(http::HttpStatusOf(status), std::string(status.message()));
}

bool ValidCap(const std::string& cap) {
  if (cap.empty() || cap.size() > 64) return false;
  for (char c : cap) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '.' && c != '_') return false;
  }
  return true;
}

// A value safe inside single quotes of a POSIX shell command line: every character
// here is from a fixed grammar (URL, host id, base64url), refused otherwise.
bool ShellSafe(const std::string& text) {
  for (char c : text) {
    if (!absl::ascii_isalnum(c) && std::string_view(":/._-@%+=,~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace

bool IdentityApi::Serves(const std::string& path) {
  return path == "/v1/tokens/revoke" || path == "/v1/hosts" || path == "/v1/identity/stats" ||
         absl::StartsWith(path, kHostsPrefix);
}

void IdentityApi::Handle(const http::Request& request, http::Responder respond) {
  const std::string& path = request.path;
  auto only = [&](bhttp::verb verb, const char* name) -> bool {
    if (request.method == verb) return true;
    respond(http::ErrorResponse(405, absl::StrCat("method ", request.method_text, " not allowed on ", path, "; use ",
                                                  name)));
    return false;
  };
  if (!request.query.empty()) {
    respond(http::ErrorResponse(400, absl::StrCat(request.query[0].first, ": unknown query parameter")));
    return;
  }
  if (path == "/v1/tokens/revoke") {
    if (only(bhttp::verb::post, "POST")) respond(Revoke(request));
    return;
  }
  if (path == "/v1/hosts") {
    if (only(bhttp::verb::get, "GET")) respond(List());
    return;
  }
  if (path == "/v1/identity/stats") {
    if (!only(bhttp::verb::get, "GET")) return;
    boost::json::object counters = options_.stats ? options_.stats() : boost::json::object();
    counters["revocations_kept"] = store_.revoked_count();
    counters["hosts_known"] = store_.ListHosts().size();
    respond(Json(200, counters));
    return;
  }
  if (path == "/v1/hosts/enroll") {
    if (only(bhttp::verb::post, "POST")) respond(Enroll(request));
    return;
  }
  std::string rest = path.substr(sizeof(kHostsPrefix) - 1);
  if (absl::EndsWith(rest, kRevokeSuffix)) {
    std::string host_id = rest.substr(0, rest.size() - (sizeof(kRevokeSuffix) - 1));
    if (auto s = ValidateHostId(host_id); !s.ok()) {
      respond(http::ErrorResponse(404, absl::StrCat("no route ", path)));
      return;
    }
    if (only(bhttp::verb::post, "POST")) respond(RevokeHost(host_id, /*forget=*/false));
    return;
  }
  if (auto s = ValidateHostId(rest); !s.ok()) {
    respond(http::ErrorResponse(404, absl::StrCat("no route ", path)));
    return;
  }
  if (only(bhttp::verb::delete_, "DELETE")) respond(RevokeHost(rest, /*forget=*/true));
}

http::Response IdentityApi::Revoke(const http::Request& request) {
  v1::TokenRevocation body;
  if (auto s = policy::ParseStrictJson(request.body, &body, kMaxIdentityBody); !s.ok()) return Error(s);
  if (!ValidJti(body.jti())) return http::ErrorResponse(400, "jti: 1 to 128 of A-Z a-z 0-9 . _ : -", "jti");
  if (body.expires_at() < 0 || body.expires_at() > 100000000000) {
    return http::ErrorResponse(400, "expires_at: unix seconds", "expires_at");
  }
  std::optional<absl::Time> expires;
  if (body.expires_at() > 0) expires = absl::FromUnixSeconds(body.expires_at());
  absl::StatusOr<absl::Time> kept = store_.RevokeToken(body.jti(), expires, absl::Now());
  if (!kept.ok()) return Error(kept.status());
  bool cut = hub_.CutOffToken(body.jti(), "host token revoked");
  LogInfo("token %s revoked (kept until %d)%s", body.jti(), absl::ToUnixSeconds(*kept),
          cut ? "; the stream holding it is closed" : "");
  return Json(200, {{"jti", body.jti()}, {"kept_until", absl::ToUnixSeconds(*kept)}, {"cut_off", cut}});
}

http::Response IdentityApi::Enroll(const http::Request& request) {
  v1::HostEnrollment body;
  if (auto s = policy::ParseStrictJson(request.body, &body, kMaxIdentityBody); !s.ok()) return Error(s);
  if (auto s = ValidateHostId(body.host_id()); !s.ok()) return http::ErrorResponse(400, std::string(s.message()), "host_id");
  std::vector<std::string> caps;
  for (const std::string& cap : body.caps()) {
    if (!ValidCap(cap)) return http::ErrorResponse(400, "caps: each a dotted verb or \"builder\"", "caps");
    caps.push_back(cap);
  }
  absl::Duration ttl = body.ttl_seconds() == 0 ? kDefaultEnrollmentTtl : absl::Seconds(body.ttl_seconds());
  absl::StatusOr<Enrollment> enrollment = store_.CreateEnrollment(body.host_id(), std::move(caps), ttl, absl::Now());
  if (!enrollment.ok()) return Error(enrollment.status());
  boost::json::object out = {{"host_id", body.host_id()},
                             {"enrollment_token", enrollment->token},
                             {"expires_at", absl::ToUnixSeconds(enrollment->expires_at)}};
  if (!options_.public_url.empty() && !options_.installer_url.empty() && ShellSafe(options_.public_url) &&
      ShellSafe(options_.installer_url) && ShellSafe(body.host_id())) {
    // The token rides in the environment of the piped shell, not in its argv.
    out["install_command"] = absl::StrCat("curl -fsSL '", options_.installer_url, "' | COOLD_ENROLLMENT_TOKEN='",
                                          enrollment->token, "' sh -s -- --broker-url '", options_.public_url,
                                          "' --host-id '", body.host_id(), "'");
  }
  LogInfo("enrollment of host %s opened until %d", body.host_id(), absl::ToUnixSeconds(enrollment->expires_at));
  return Json(201, out);
}

http::Response IdentityApi::List() {
  boost::json::array hosts;
  for (const HostRecord& host : store_.ListHosts()) {
    boost::json::array caps;
    for (const std::string& cap : host.caps) caps.emplace_back(cap);
    boost::json::object one = {{"host_id", host.host_id},
                               {"caps", std::move(caps)},
                               {"enrolled", host.enrolled()},
                               {"connected", hub_.Connected(host.host_id)}};
    one["enrolled_at"] = host.enrolled_at ? boost::json::value(absl::ToUnixSeconds(*host.enrolled_at)) : nullptr;
    one["revoked_at"] = host.revoked_at ? boost::json::value(absl::ToUnixSeconds(*host.revoked_at)) : nullptr;
    hosts.push_back(std::move(one));
  }
  return Json(200, {{"hosts", std::move(hosts)}});
}

http::Response IdentityApi::RevokeHost(const std::string& host_id, bool forget) {
  absl::Status done = forget ? store_.DeleteHost(host_id, absl::Now()) : store_.RevokeHost(host_id, absl::Now());
  if (!done.ok()) return Error(done);
  // The store first: a stream reconnecting after the cut finds the host refused.
  bool cut = hub_.CutOff(host_id, forget ? "host deleted" : "host revoked");
  LogInfo("host %s %s%s", host_id, forget ? "deleted" : "revoked", cut ? "; its stream is closed" : "");
  if (forget) {
    http::Response response;
    response.status = 204;
    return response;
  }
  return Json(200, {{"host_id", host_id}, {"revoked", true}, {"cut_off", cut}});
}

}  // namespace coolify::broker
