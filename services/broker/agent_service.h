// The gRPC side of the broker: coolify.v1.Agent/Stream, one bidirectional stream per
// connected coold.
//
// A stream opens with "authorization: Bearer <jwt>" or "authorization: Enroll <one-time
// token>" (UNAUTHENTICATED otherwise, before any message is read).
//
// Bearer: the JWT is central's (a kid of BROKER_JWT_KEYS) or the host's own (kid
// "host:<id>", verified with the key recorded at enrollment); either way for our
// audience, within the lifetime, not revoked (by jti, or its host), its caps within the
// host's enrollment grant when one is recorded. The first message must be a Hello whose
// host_id is the token's sub (PERMISSION_DENIED otherwise). When the host has an
// enrolled key the broker then sends a Challenge and admits the stream only on a Proof
// signed with that key: a token alone, replayed by someone else, never becomes the host
// and never displaces its stream. Without an enrolled key the stream is admitted on the
// token (refused under BROKER_REQUIRE_ENROLLMENT=1).
//
// Enroll (rate-limited per source and in total): the Hello names the host and carries
// the public key it generated; the token must be pending for that host; the host proves
// the key the same way; the token is consumed and the key and grant recorded in one
// transaction. Two hosts racing with one token: one wins, the other is refused.
//
// Admitted, the stream is registered in the Hub (replacing an earlier stream of the
// host) and told so (Admitted). ServerMsgs go down through a bounded queue (one write in
// flight, as gRPC requires); Responses coming up are handed to the Hub, which accepts
// only answers to what it sent on that stream. A TokenRenewal on the live stream is
// checked like the first token (and must name the same sub); accepted, it replaces the
// stream's caps and expiry without interrupting anything in flight.
#ifndef COOLD_SERVICES_BROKER_AGENT_SERVICE_H_
#define COOLD_SERVICES_BROKER_AGENT_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "proto/agent.grpc.pb.h"
#include "services/broker/hub.h"
#include "services/broker/identity_store.h"
#include "services/broker/jwt.h"

namespace coolify::broker {

// Messages queued for one host beyond the one being written; more is refused (503).
inline constexpr size_t kMaxQueuedPerHost = 1024;
// The largest builder_capacity a Hello may claim.
inline constexpr uint32_t kMaxBuilderCapacity = 256;

struct AgentServiceStats {
  std::atomic<uint64_t> refused_credentials{0};
  std::atomic<uint64_t> refused_hellos{0};
  std::atomic<uint64_t> streams_opened{0};
  std::atomic<uint64_t> refused_renewals{0};
  std::atomic<uint64_t> refused_proofs{0};
  std::atomic<uint64_t> refused_enrollments{0};
};

struct AgentServiceOptions {
  // Refuse every host without an enrolled key, whatever token it shows
  // (BROKER_REQUIRE_ENROLLMENT=1).
  bool require_enrollment = false;
  // The peer's address from gRPC's name for it (the listener hands gRPC each connection
  // as a descriptor, which gRPC names "fd:N"). Unset: gRPC's name as it is.
  std::function<std::string(const std::string&)> peer_address;
};

// What a presented token proves, once every rule above is checked; Unauthenticated or
// PermissionDenied naming the rule otherwise.
absl::StatusOr<HostClaims> CheckHostToken(const JwtVerifier& verifier, const IdentityStore& store,
                                          std::string_view token, absl::Time now);

class AgentService final : public v1::Agent::CallbackService {
 public:
  AgentService(Hub& hub, const JwtVerifier& verifier, IdentityStore& store, AgentServiceOptions options = {})
      : hub_(hub), verifier_(verifier), store_(store), options_(options) {}

  grpc::ServerBidiReactor<v1::ClientMsg, v1::ServerMsg>* Stream(grpc::CallbackServerContext* context) override;

  const AgentServiceStats& stats() const { return stats_; }

 private:
  Hub& hub_;
  const JwtVerifier& verifier_;
  IdentityStore& store_;
  const AgentServiceOptions options_;
  AgentServiceStats stats_;
};

}  // namespace coolify::broker

#endif  // COOLD_SERVICES_BROKER_AGENT_SERVICE_H_
