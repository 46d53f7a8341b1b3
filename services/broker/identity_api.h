// The identity routes of the broker's Unix socket (central's side; the socket's mode and
// group are the access control, as for the dispatch routes):
//
//   POST   /v1/tokens/revoke        {"jti", "expires_at"?: unix seconds}
//                                   200 {"jti","kept_until","cut_off"}: the token is refused
//                                   from now on, and the stream holding it is closed at once
//   POST   /v1/hosts/enroll         {"host_id", "caps": [...], "ttl_seconds"?: 1..604800 (3600)}
//                                   201 {"host_id","enrollment_token","expires_at","install_command"}
//                                   (also re-enrollment of a known host: its state stays)
//   GET    /v1/hosts                200 {"hosts":[{"host_id","caps","enrolled","enrolled_at",
//                                   "revoked_at","connected"}]}
//   POST   /v1/hosts/:id/revoke     200: the host's stream is closed at once (its requests
//                                   waiting end 503), its key and tokens refused from now on
//   DELETE /v1/hosts/:id            204: revoked as above, its key and grant forgotten (a
//                                   new enrollment is the only way back)
//   GET    /v1/identity/stats       200 {counter: value}: every refusal of a credential,
//                                   Hello, proof, enrollment or renewal, streams opened,
//                                   renewed, expired, cut off and replaced, late or
//                                   duplicate answers from hosts, revocations kept
#ifndef COOLD_SERVICES_BROKER_IDENTITY_API_H_
#define COOLD_SERVICES_BROKER_IDENTITY_API_H_

#include <functional>
#include <string>

#include "boost/json.hpp"
#include "services/broker/hub.h"
#include "services/broker/identity_store.h"
#include "services/http/server.h"

namespace coolify::broker {

struct IdentityApiOptions {
  // What the install command of an enrollment names: where coold dials and where the
  // installer script is fetched from (README: BROKER_PUBLIC_URL, BROKER_INSTALLER_URL).
  std::string public_url;
  std::string installer_url;
  // The counters GET /v1/identity/stats shows, read when asked.
  std::function<boost::json::object()> stats;
};

class IdentityApi {
 public:
  IdentityApi(Hub& hub, IdentityStore& store, IdentityApiOptions options)
      : hub_(hub), store_(store), options_(std::move(options)) {}

  // True for the paths above (whatever the method); Handle answers them.
  static bool Serves(const std::string& path);
  void Handle(const http::Request& request, http::Responder respond);

 private:
  http::Response Revoke(const http::Request& request);
  http::Response Enroll(const http::Request& request);
  http::Response List();
  http::Response RevokeHost(const std::string& host_id, bool forget);

  Hub& hub_;
  IdentityStore& store_;
  const IdentityApiOptions options_;
};

}  // namespace coolify::broker

#endif  // COOLD_SERVICES_BROKER_IDENTITY_API_H_
