#include "services/broker/agent_service.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/alarm.h"
#include "privsep/log.h"

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

// How long an authenticated stream may stay open without its Hello: without this, a
// token holder could park streams that hold memory and never become a host.
constexpr std::chrono::seconds kHelloDeadline{10};

class StreamReactor : public Reactor {
 public:
  StreamReactor(Hub& hub, const JwtVerifier& verifier, const IdentityStore& store, AgentServiceStats& stats,
                HostClaims claims, std::string peer)
      : hub_(hub), verifier_(verifier), store_(store), stats_(stats), claims_(std::move(claims)), peer_(std::move(peer)),
        outbox_(std::make_shared<Outbox>(this)), said_hello_(std::make_shared<std::atomic<bool>>(false)) {
    // The callback holds only shared state, never this reactor, which may be gone by then.
    hello_alarm_.Set(std::chrono::system_clock::now() + kHelloDeadline,
                     [outbox = outbox_, said_hello = said_hello_](bool fired) {
                       if (fired && !said_hello->load()) {
                         outbox->End(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no Hello within 10 s"));
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
    if (registered_) {
      hub_.Unregister(claims_.host_id, generation_);
      LogInfo("host %s disconnected (%s)", claims_.host_id, peer_);
    }
    delete this;
  }

 private:
  grpc::Status Handle() {
    if (!registered_) {
      if (!in_.has_hello()) {
        ++stats_.refused_hellos;
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the first message must be Hello");
      }
      return Hello(in_.hello());
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

  grpc::Status Hello(const v1::Hello& hello) {
    if (hello.host_id() != claims_.host_id) {
      ++stats_.refused_hellos;
      LogWarn("refused Hello from %s: host_id \"%s\" is not the token's sub \"%s\"", peer_,
              absl::CHexEscape(hello.host_id().substr(0, 64)), claims_.host_id);
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "Hello host_id is not the token's sub");
    }
    HostHello registered;
    registered.host_id = claims_.host_id;
    registered.token_caps = claims_.caps;
    registered.token_expires = claims_.expires;
    registered.token_jti = claims_.jti;
    for (int capability : hello.capabilities()) {
      if (!v1::Capability_IsValid(capability) || capability == v1::CAPABILITY_UNSPECIFIED) {
        ++stats_.refused_hellos;
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Hello names an unknown capability");
      }
      registered.capabilities.insert(capability);
    }
    if (hello.builder_capacity() > kMaxBuilderCapacity) {
      ++stats_.refused_hellos;
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Hello builder_capacity out of range");
    }
    registered.builder_capacity = hello.builder_capacity();
    generation_ = hub_.Register(std::move(registered), outbox_);
    registered_ = true;
    said_hello_->store(true);
    hello_alarm_.Cancel();
    ++stats_.streams_opened;
    LogInfo("host %s connected from %s (key %s, %d capabilities, builder capacity %d)", claims_.host_id, peer_,
            claims_.kid, hello.capabilities_size(), hello.builder_capacity());
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
  const IdentityStore& store_;
  AgentServiceStats& stats_;
  const HostClaims claims_;
  const std::string peer_;
  std::shared_ptr<Outbox> outbox_;
  std::shared_ptr<std::atomic<bool>> said_hello_;
  grpc::Alarm hello_alarm_;
  v1::ClientMsg in_;
  bool registered_ = false;  // touched only by reads, which gRPC runs one at a time
  uint64_t generation_ = 0;
};

}  // namespace

absl::StatusOr<HostClaims> CheckHostToken(const JwtVerifier& verifier, const IdentityStore& store,
                                          std::string_view token, absl::Time now) {
  absl::StatusOr<HostClaims> claims = verifier.Verify(token, now);
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
  const auto& metadata = context->client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    std::string value(it->second.data(), it->second.size());
    if (absl::StartsWith(value, "Bearer ")) token = value.substr(7);
  }
  if (token.empty()) {
    ++stats_.refused_credentials;
    LogWarn("refused stream from %s: no bearer token", context->peer());
    return new Refusal(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "host token required"));
  }
  absl::StatusOr<HostClaims> claims = CheckHostToken(verifier_, store_, token, absl::Now());
  if (!claims.ok()) {
    ++stats_.refused_credentials;
    LogWarn("refused stream from %s: %s", context->peer(), std::string(claims.status().message()));
    return new Refusal(grpc::Status(absl::IsPermissionDenied(claims.status()) ? grpc::StatusCode::PERMISSION_DENIED
                                                                             : grpc::StatusCode::UNAUTHENTICATED,
                                    std::string(claims.status().message())));
  }
  return new StreamReactor(hub_, verifier_, store_, stats_, *std::move(claims), context->peer());
}

}  // namespace coolify::broker
