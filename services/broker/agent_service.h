// The gRPC side of the broker: coolify.v1.Agent/Stream, one bidirectional stream per
// connected coold.
//
// A stream is admitted only with a valid host JWT in "authorization: Bearer <jwt>"
// (UNAUTHENTICATED otherwise, before any message is read): signed by a trusted key, for
// our audience, not revoked (by jti, or its host), its caps within the host's enrollment
// grant when one is recorded. Its first message must be a Hello whose host_id is the
// token's sub (PERMISSION_DENIED otherwise); then it is registered in the Hub, replacing
// any earlier stream of that host. ServerMsgs go down through a bounded queue (one write
// in flight, as gRPC requires); Responses coming up are handed to the Hub, which accepts
// only answers to what it sent on that stream. A TokenRenewal on the live stream is
// checked like the first token (and must name the same sub); accepted, it replaces the
// stream's caps and expiry without interrupting anything in flight.
#ifndef COOLD_SERVICES_BROKER_AGENT_SERVICE_H_
#define COOLD_SERVICES_BROKER_AGENT_SERVICE_H_

#include <atomic>
#include <cstdint>

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
};

// What a presented token proves, once every rule above is checked; Unauthenticated or
// PermissionDenied naming the rule otherwise.
absl::StatusOr<HostClaims> CheckHostToken(const JwtVerifier& verifier, const IdentityStore& store,
                                          std::string_view token, absl::Time now);

class AgentService final : public v1::Agent::CallbackService {
 public:
  AgentService(Hub& hub, const JwtVerifier& verifier, const IdentityStore& store)
      : hub_(hub), verifier_(verifier), store_(store) {}

  grpc::ServerBidiReactor<v1::ClientMsg, v1::ServerMsg>* Stream(grpc::CallbackServerContext* context) override;

  const AgentServiceStats& stats() const { return stats_; }

 private:
  Hub& hub_;
  const JwtVerifier& verifier_;
  const IdentityStore& store_;
  AgentServiceStats stats_;
};

}  // namespace coolify::broker

#endif  // COOLD_SERVICES_BROKER_AGENT_SERVICE_H_
