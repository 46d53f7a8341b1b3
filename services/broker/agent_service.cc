#include "services/broker/agent_service.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/alarm.h"
#include "privsep/log.h"
#include "services/identity/host_key.h"

namespace coolify::broker {
namespace {

using Reactor = grpc::ServerBidiReactor<v1::ClientMsg, v1::ServerMsg>;

// A stream refused before it started: finished at once with `status`.
class Refusal : public Reactor {
 public:
  explicit Refusal(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// The write side of one stream, shared with the Hub. gRPC allows one write in flight
// and Finish only once, after the last write: this class keeps both rules. It never
// calls into gRPC while holding its lock, because gRPC may run a completion inline.
class Outbox : public HostStream {
 public:
  explicit Outbox(Reactor* reactor) : reactor_(reactor) {}

  bool Send(v1::ServerMsg message) override {
    Reactor* reactor;
    {
      absl::MutexLock lock(&mu_);
      if (ending_ || reactor_ == nullptr) return false;
      if (writing_) {
        if (queue_.size() >= kMaxQueuedPerHost) return false;
        queue_.push_back(std::move(message));
        return true;
      }
      writing_ = true;
      current_ = std::move(message);
      reactor = reactor_;
    }
    reactor->StartWrite(&current_);
    return true;
  }

  void Close(const std::string& reason) override { End(grpc::Status(grpc::StatusCode::ABORTED, reason)); }

  // Ends the stream with `status` once the write in flight, if any, is done.
  void End(const grpc::Status& status) {
    Reactor* reactor;
    {
      absl::MutexLock lock(&mu_);
      if (ending_ || reactor_ == nullptr) return;
      reactor = reactor_;
      ending_ = true;
      status_ = status;
      queue_.clear();
      if (writing_) return;  // OnWriteDone finishes.
    }
    reactor->Finish(status);
  }

  void OnWriteDone(bool ok) {
    grpc::Status finish;
    bool write_next = false;
    Reactor* reactor;
    {
      absl::MutexLock lock(&mu_);
      reactor = reactor_;
      if (!ok && !ending_) {
        ending_ = true;
        status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed");
        queue_.clear();
      }
      if (ending_) {
        writing_ = false;
        finish = status_;
      } else if (!queue_.empty()) {
        current_ = std::move(queue_.front());
        queue_.pop_front();
        write_next = true;
      } else {
        writing_ = false;
        return;
      }
    }
    if (write_next) {
      reactor->StartWrite(&current_);
    } else {
      reactor->Finish(finish);
    }
  }

  void Detach() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    ending_ = true;
  }

 private:
  absl::Mutex mu_;
  Reactor* reactor_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::ServerMsg> queue_ ABSL_GUARDED_BY(mu_);
  v1::ServerMsg current_;  // the message being written: set only while no write is in flight
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

// How long an authenticated stream may take from its opening to its admission (Hello,
// and the proof of possession when asked): without this, a token holder could park
// streams that hold memory and never become a host.
constexpr std::chrono::seconds kAdmissionDeadline{10};

class StreamReactor : public Reactor {
 public:
  // `enrollment_token` is set for an "Enroll" stream, whose claims are empty until the
  // Hello names the host.
  StreamReactor(Hub& hub, const JwtVerifier& verifier, IdentityStore& store, const AgentServiceOptions& options,
                AgentServiceStats& stats, HostClaims claims, std::string enrollment_token, std::string peer)
      : hub_(hub), verifier_(verifier), store_(store), options_(options), stats_(stats), claims_(std::move(claims)),
        enrollment_token_(std::move(enrollment_token)), peer_(std::move(peer)),
        outbox_(std::make_shared<Outbox>(this)), admitted_(std::make_shared<std::atomic<bool>>(false)) {
    // The callback holds only shared state, never this reactor, which may be gone by then.
    admission_alarm_.Set(std::chrono::system_clock::now() + kAdmissionDeadline,
                         [outbox = outbox_, admitted = admitted_](bool fired) {
                           if (fired && !admitted->load()) {
                             outbox->End(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                                      "no Hello (and proof of possession) within 10 s"));
                           }
                         });
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      outbox_->End(grpc::Status::OK);  // the host closed its side, or the call broke
      return;
    }
    grpc::Status refused = Handle();
    if (!refused.ok()) {
      outbox_->End(refused);
      return;
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override { outbox_->OnWriteDone(ok); }

  void OnDone() override {
    outbox_->Detach();
    if (phase_ == Phase::kAdmitted) {
      hub_.Unregister(claims_.host_id, generation_);
      LogInfo("host %s disconnected (%s)", claims_.host_id, peer_);
    }
    delete this;
  }

 private:
  enum class Phase { kHello, kProof, kAdmitted };

  grpc::Status Handle() {
    switch (phase_) {
      case Phase::kHello:
        if (!in_.has_hello()) {
          ++stats_.refused_hellos;
          return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the first message must be Hello");
        }
        return Hello(in_.hello());
      case Phase::kProof:
        if (!in_.has_proof()) {
          ++stats_.refused_proofs;
          return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the answer to a Challenge must be a Proof");
        }
        return Proof(in_.proof());
      case Phase::kAdmitted:
        break;
    }
    switch (in_.body_case()) {
      case v1::ClientMsg::kResponse:
        hub_.OnResponse(claims_.host_id, generation_, in_.response());
        return grpc::Status::OK;
      case v1::ClientMsg::kBuildEvent:
        hub_.OnBuildEvent(claims_.host_id, generation_, in_.build_event());
        return grpc::Status::OK;
      case v1::ClientMsg::kRenewToken:
        Renew(in_.renew_token().token());
        return grpc::Status::OK;
      default:
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unexpected message after Hello");
    }
  }

  grpc::Status RefuseHello(grpc::StatusCode code, const std::string& why) {
    ++stats_.refused_hellos;
    LogWarn("refused Hello from %s: %s", peer_, why);
    return grpc::Status(code, why);
  }

  grpc::Status Hello(const v1::Hello& hello) {
    const bool enrolling = !enrollment_token_.empty();
    if (enrolling) {
      // The host names itself; the enrollment token must have been issued for that name.
      if (!ValidateHostId(hello.host_id()).ok()) {
        return RefuseHello(grpc::StatusCode::INVALID_ARGUMENT, "Hello host_id is not a host id");
      }
      if (absl::Status s = store_.CheckEnrollment(enrollment_token_, hello.host_id(), absl::Now()); !s.ok()) {
        ++stats_.refused_enrollments;
        return RefuseHello(grpc::StatusCode::PERMISSION_DENIED,
                           absl::StrCat("enrollment of ", hello.host_id(), " refused: ", s.message()));
      }
      absl::StatusOr<std::string> pem = identity::P256PublicPemFromDer(hello.public_key());
      if (!pem.ok()) {
        ++stats_.refused_enrollments;
        return RefuseHello(grpc::StatusCode::INVALID_ARGUMENT,
                           absl::StrCat("enrollment of ", hello.host_id(), " refused: ", pem.status().message()));
      }
      claims_.host_id = hello.host_id();
      proof_key_pem_ = *std::move(pem);
    } else if (hello.host_id() != claims_.host_id) {
      LogWarn("Hello from %s names host_id \"%s\", not the token's sub \"%s\"", peer_,
              absl::CHexEscape(hello.host_id().substr(0, 64)), claims_.host_id);
      return RefuseHello(grpc::StatusCode::PERMISSION_DENIED, "Hello host_id is not the token's sub");
    }
    registered_.host_id = claims_.host_id;
    for (int capability : hello.capabilities()) {
      if (!v1::Capability_IsValid(capability) || capability == v1::CAPABILITY_UNSPECIFIED) {
        return RefuseHello(grpc::StatusCode::INVALID_ARGUMENT, "Hello names an unknown capability");
      }
      registered_.capabilities.insert(capability);
    }
    if (hello.builder_capacity() > kMaxBuilderCapacity) {
      return RefuseHello(grpc::StatusCode::INVALID_ARGUMENT, "Hello builder_capacity out of range");
    }
    registered_.builder_capacity = hello.builder_capacity();
    capabilities_count_ = hello.capabilities_size();

    if (!enrolling) {
      std::optional<HostRecord> host = store_.FindHost(claims_.host_id);
      if (host && host->enrolled()) {
        proof_key_pem_ = host->public_key_pem;
      } else if (options_.require_enrollment) {
        ++stats_.refused_enrollments;
        return RefuseHello(grpc::StatusCode::PERMISSION_DENIED,
                           absl::StrCat("host ", claims_.host_id, " is not enrolled (BROKER_REQUIRE_ENROLLMENT=1)"));
      } else {
        return Admit(/*enrolled=*/false, {});
      }
    }
    // A token alone never makes a stream a host's: the host signs a fresh nonce with the
    // key on record (or, enrolling, the key it just presented).
    nonce_.resize(identity::kNonceBytes);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce_.data()), static_cast<int>(nonce_.size())) != 1) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "no randomness for a challenge");
    }
    v1::ServerMsg challenge;
    challenge.mutable_challenge()->set_nonce(nonce_);
    outbox_->Send(std::move(challenge));
    phase_ = Phase::kProof;
    return grpc::Status::OK;
  }

  grpc::Status Proof(const v1::Proof& proof) {
    absl::Status verified =
        identity::VerifyEs256(proof_key_pem_, identity::ProofInput(claims_.host_id, nonce_), proof.signature());
    if (!verified.ok()) {
      ++stats_.refused_proofs;
      LogWarn("refused stream of host %s from %s: proof of possession failed: %s", claims_.host_id, peer_,
              std::string(verified.message()));
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("proof of possession failed: ", verified.message()));
    }
    if (enrollment_token_.empty()) {
      // Looked up again: the host may have been revoked while it answered.
      std::optional<HostRecord> host = store_.FindHost(claims_.host_id);
      if (!host || !host->enrolled()) return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "host revoked");
      return Admit(/*enrolled=*/true, host->caps);
    }
    absl::StatusOr<HostRecord> host =
        store_.RedeemEnrollment(enrollment_token_, claims_.host_id, proof_key_pem_, absl::Now());
    if (!host.ok()) {
      ++stats_.refused_enrollments;
      LogWarn("refused enrollment of host %s from %s: %s", claims_.host_id, peer_, std::string(host.status().message()));
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("enrollment refused: ", host.status().message()));
    }
    LogInfo("host %s enrolled from %s with its own key; grant: %s", claims_.host_id, peer_,
            absl::StrJoin(host->caps, " "));
    // No token yet: the stream may carry the grant until a token of the host's own (or
    // central's) renews it, within one token lifetime.
    claims_.caps = absl::flat_hash_set<std::string>(host->caps.begin(), host->caps.end());
    claims_.expires = absl::Now() + verifier_.policy().max_lifetime;
    return Admit(/*enrolled=*/true, host->caps);
  }

  grpc::Status Admit(bool enrolled, const std::vector<std::string>& grant) {
    registered_.token_caps = claims_.caps;
    registered_.token_expires = claims_.expires;
    registered_.token_jti = claims_.jti;
    generation_ = hub_.Register(std::move(registered_), outbox_);
    phase_ = Phase::kAdmitted;
    admitted_->store(true);
    admission_alarm_.Cancel();
    ++stats_.streams_opened;
    v1::ServerMsg admitted;
    admitted.mutable_admitted()->set_host_id(claims_.host_id);
    for (const std::string& cap : grant) admitted.mutable_admitted()->add_caps(cap);
    admitted.mutable_admitted()->set_enrolled(enrolled);
    outbox_->Send(std::move(admitted));
    LogInfo("host %s connected from %s (%s, %d capabilities, builder capacity %d)", claims_.host_id, peer_,
            !enrollment_token_.empty() ? "enrolled now"
            : enrolled                 ? absl::StrCat("key proven, token ", claims_.kid)
                                       : absl::StrCat("token ", claims_.kid, ", no enrolled key"),
            capabilities_count_, registered_.builder_capacity);
    return grpc::Status::OK;
  }

  // A fresh token on the live stream. Refused, the stream goes on with the token it has
  // (which ends it at its exp); accepted, the Hub checks commands against the new caps.
  void Renew(const std::string& token) {
    v1::ServerMsg verdict;
    absl::StatusOr<HostClaims> renewed = CheckHostToken(verifier_, store_, token, absl::Now());
    if (renewed.ok() && renewed->host_id != claims_.host_id) {
      renewed = absl::PermissionDeniedError("renewal token is for another host");
    }
    if (renewed.ok() && !hub_.Renew(claims_.host_id, generation_, renewed->caps, renewed->expires, renewed->jti)) {
      renewed = absl::UnavailableError("stream is no longer the host's");
    }
    if (!renewed.ok()) {
      ++stats_.refused_renewals;
      LogWarn("refused token renewal of host %s (%s): %s", claims_.host_id, peer_, std::string(renewed.status().message()));
      verdict.mutable_token_verdict()->set_reason(std::string(renewed.status().message()));
    } else {
      verdict.mutable_token_verdict()->set_accepted(true);
      verdict.mutable_token_verdict()->set_expires_unix(absl::ToUnixSeconds(renewed->expires));
    }
    outbox_->Send(std::move(verdict));
  }

  Hub& hub_;
  const JwtVerifier& verifier_;
  IdentityStore& store_;
  const AgentServiceOptions& options_;
  AgentServiceStats& stats_;
  HostClaims claims_;
  const std::string enrollment_token_;
  const std::string peer_;
  std::shared_ptr<Outbox> outbox_;
  std::shared_ptr<std::atomic<bool>> admitted_;
  grpc::Alarm admission_alarm_;
  v1::ClientMsg in_;
  // Touched only by reads, which gRPC runs one at a time.
  Phase phase_ = Phase::kHello;
  HostHello registered_;
  int capabilities_count_ = 0;
  std::string proof_key_pem_;  // the key the proof must verify with
  std::string nonce_;
  uint64_t generation_ = 0;
};

// Enrollment attempts per source address and in total: a token bucket each (seed 003's
// rate limit), so a flood of guesses costs the broker a few map lookups per second.
class EnrollmentLimiter {
 public:
  bool Allow(const std::string& source, absl::Time now) {
    absl::MutexLock lock(&mu_);
    if (per_source_.size() > 10000) per_source_.clear();  // bounded; a reset only forgives
    return Take(total_, kTotalBurst, kTotalPerMinute, now) && Take(per_source_[source], kSourceBurst, kSourcePerMinute, now);
  }

 private:
  struct Bucket {
    double tokens = -1;
    absl::Time at;
  };
  static constexpr double kSourceBurst = 5, kSourcePerMinute = 5, kTotalBurst = 60, kTotalPerMinute = 60;
  static bool Take(Bucket& b, double burst, double per_minute, absl::Time now) {
    if (b.tokens < 0) {
      b.tokens = burst;
      b.at = now;
    }
    b.tokens = std::min(burst, b.tokens + absl::ToDoubleMinutes(now - b.at) * per_minute);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
  absl::Mutex mu_;
  Bucket total_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Bucket> per_source_ ABSL_GUARDED_BY(mu_);
};

EnrollmentLimiter& Limiter() {
  static EnrollmentLimiter* limiter = new EnrollmentLimiter();
  return *limiter;
}

// "ipv4:1.2.3.4:5678" -> "ipv4:1.2.3.4": the source, whatever port it used.
std::string SourceOf(const std::string& peer) { return peer.substr(0, peer.rfind(':')); }

}  // namespace

namespace {

// A token the host signed with its own key: header kid "host:<host id>", verified with
// the key recorded at enrollment, under the same policy as central's tokens.
absl::StatusOr<HostClaims> VerifyHostSigned(const JwtVerifier& central, const IdentityStore& store,
                                            std::string_view token, const std::string& kid, absl::Time now) {
  const std::string host_id = kid.substr(sizeof(identity::kHostKidPrefix) - 1);
  std::optional<HostRecord> host = store.FindHost(host_id);
  if (!host || !host->enrolled()) {
    return absl::UnauthenticatedError(absl::StrCat("host token refused: kid ", kid.substr(0, 140),
                                                   " names no enrolled host"));
  }
  JwtVerifier own;
  TokenPolicy policy = central.policy();
  policy.caps_required = false;
  own.set_policy(policy);
  if (absl::Status s = own.AddAnyKey(kid, host->public_key_pem); !s.ok()) return s;
  absl::StatusOr<HostClaims> claims = own.Verify(token, now);
  if (claims.ok() && claims->host_id != host_id) {
    return absl::UnauthenticatedError("host token refused: a host's own token must name itself as sub");
  }
  // Without caps the host claims nothing: what it was granted applies.
  if (claims.ok() && claims->caps.empty()) claims->caps.insert(host->caps.begin(), host->caps.end());
  return claims;
}

}  // namespace

absl::StatusOr<HostClaims> CheckHostToken(const JwtVerifier& verifier, const IdentityStore& store,
                                          std::string_view token, absl::Time now) {
  absl::StatusOr<ParsedJwt> parsed = ParseJwt(token);
  if (!parsed.ok()) return parsed.status();
  auto kid = parsed->header.fields().find("kid");
  const bool host_signed = kid != parsed->header.fields().end() && kid->second.has_string_value() &&
                           absl::StartsWith(kid->second.string_value(), identity::kHostKidPrefix);
  absl::StatusOr<HostClaims> claims = host_signed
                                          ? VerifyHostSigned(verifier, store, token, kid->second.string_value(), now)
                                          : verifier.Verify(token, now);
  if (!claims.ok()) return claims.status();
  if (store.IsTokenRevoked(claims->jti)) {
    return absl::UnauthenticatedError(absl::StrCat("host token refused: jti ", claims->jti, " is revoked"));
  }
  if (auto s = ValidateHostId(claims->host_id); !s.ok()) {
    return absl::UnauthenticatedError("host token refused: sub is not a host id");
  }
  if (std::optional<HostRecord> host = store.FindHost(claims->host_id)) {
    if (host->revoked_at) {
      return absl::UnauthenticatedError(absl::StrCat("host token refused: host ", claims->host_id, " is revoked"));
    }
    // Capabilities are granted, not claimed: a token may narrow the grant, never widen it.
    for (const std::string& cap : claims->caps) {
      if (std::find(host->caps.begin(), host->caps.end(), cap) == host->caps.end()) {
        return absl::PermissionDeniedError(absl::StrCat("host token refused: cap ", cap,
                                                        " is not in the enrollment grant of ", claims->host_id));
      }
    }
  }
  return claims;
}

grpc::ServerBidiReactor<v1::ClientMsg, v1::ServerMsg>* AgentService::Stream(grpc::CallbackServerContext* context) {
  std::string token;
  std::string enrollment;
  const auto& metadata = context->client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    std::string value(it->second.data(), it->second.size());
    if (absl::StartsWith(value, "Bearer ")) token = value.substr(7);
    if (absl::StartsWith(value, "Enroll ")) enrollment = value.substr(7);
  }
  const std::string peer = options_.peer_address ? options_.peer_address(context->peer()) : context->peer();
  if (!enrollment.empty()) {
    if (!Limiter().Allow(SourceOf(peer), absl::Now())) {
      ++stats_.refused_enrollments;
      LogWarn("refused enrollment from %s: rate limited", peer);
      return new Refusal(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "enrollment attempts rate-limited"));
    }
    if (enrollment.size() > 256) {
      ++stats_.refused_enrollments;
      return new Refusal(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "enrollment token malformed"));
    }
    return new StreamReactor(hub_, verifier_, store_, options_, stats_, HostClaims(), enrollment, peer);
  }
  if (token.empty()) {
    ++stats_.refused_credentials;
    LogWarn("refused stream from %s: no bearer token", peer);
    return new Refusal(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "host token required"));
  }
  absl::StatusOr<HostClaims> claims = CheckHostToken(verifier_, store_, token, absl::Now());
  if (!claims.ok()) {
    ++stats_.refused_credentials;
    LogWarn("refused stream from %s: %s", peer, std::string(claims.status().message()));
    return new Refusal(grpc::Status(absl::IsPermissionDenied(claims.status()) ? grpc::StatusCode::PERMISSION_DENIED
                                                                             : grpc::StatusCode::UNAUTHENTICATED,
                                    std::string(claims.status().message())));
  }
  return new StreamReactor(hub_, verifier_, store_, options_, stats_, *std::move(claims), "", peer);
}

}  // namespace coolify::broker
