#include "services/front/broker_link.h"

#include <chrono>
#include <deque>
#include <random>

#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "grpcpp/grpcpp.h"
#include "privsep/log.h"
#include "services/commands/stream_limits.h"
#include "services/http/status.h"

namespace coolify::front {

// One open stream: the writer thread's queue, fed from the io_context.
struct BrokerLink::Session {
  std::mutex mu;
  std::condition_variable ready;
  std::deque<v1::ClientMsg> queue;
  bool closed = false;

  void Enqueue(v1::ClientMsg message) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (closed) return;  // the stream ended; the broker already answered 503
      queue.push_back(std::move(message));
    }
    ready.notify_one();
  }
  void Close() {
    {
      std::lock_guard<std::mutex> lock(mu);
      closed = true;
    }
    ready.notify_all();
  }
  // The next message to write; nullopt once closed, or (*timed_out set) when `until`
  // passed with nothing to write.
  std::optional<v1::ClientMsg> Next(std::chrono::steady_clock::time_point until, bool* timed_out) {
    std::unique_lock<std::mutex> lock(mu);
    *timed_out = !ready.wait_until(lock, until, [this] { return closed || !queue.empty(); });
    if (closed || *timed_out) return std::nullopt;
    v1::ClientMsg message = std::move(queue.front());
    queue.pop_front();
    return message;
  }
};

BrokerLink::BrokerLink(boost::asio::io_context& io, BrokerLinkOptions options, BrokerExecutor executor)
    : io_(io), options_(std::move(options)), executor_(std::move(executor)) {
  enrolling_ = !options_.enrollment_token.empty();
  token_ = options_.token;
}

void BrokerLink::ReplaceToken(const std::string& token) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    token_ = token;
  }
  v1::ClientMsg renew;
  renew.mutable_renew_token()->set_token(token);
  Send(std::move(renew));
}

std::shared_ptr<grpc::Channel> BrokerLink::Dial() const {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetMaxReceiveMessageSize(commands::kMaxStreamMessageBytes);
  // A fresh connection per attempt: the reconnect policy is ours alone (with jitter),
  // never a shared subchannel still waiting out gRPC's own backoff.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options_.root_pem.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = options_.root_pem;
    credentials = grpc::SslCredentials(tls);
    // The address is already resolved; the certificate is still checked against the name.
    if (!options_.server_name.empty()) args.SetSslTargetNameOverride(options_.server_name);
  }
  // "ipv4:" skips gRPC's name resolver entirely: nothing reads /etc/resolv.conf.
  return grpc::CreateCustomChannel("ipv4:" + options_.address, credentials, args);
}

BrokerLink::~BrokerLink() { Stop(); }

void BrokerLink::Send(v1::ClientMsg message) {
  std::shared_ptr<Session> session;
  {
    std::lock_guard<std::mutex> lock(mu_);
    session = session_;
  }
  if (session) session->Enqueue(std::move(message));
}

std::string BrokerLink::CentralToken() {
  std::lock_guard<std::mutex> lock(mu_);
  return token_;
}

void BrokerLink::Start() { thread_ = std::thread([this] { Run(); }); }

void BrokerLink::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (current_ != nullptr) current_->TryCancel();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Duration BrokerLink::Backoff(const BrokerLinkOptions& options, int attempt, double random01) {
  absl::Duration delay = options.initial_backoff;
  for (int i = 0; i < attempt && delay < options.max_backoff; ++i) delay *= 2;
  delay = std::min(delay, options.max_backoff);
  // Full jitter: anywhere in [0, delay], so a fleet cut off at once comes back spread over
  // the whole window rather than in a wave at its middle. Never a fixed lockout: a refusal
  // (even an authentication one) is retried on the same schedule.
  return delay * std::clamp(random01, 0.0, 1.0);
}

void BrokerLink::Run() {
  std::mt19937_64 random(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int attempt = 0;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    absl::Duration up = RunOnce();
    if (up >= options_.healthy_after) attempt = 0;
    absl::Duration delay = Backoff(options_, attempt, unit(random));
    ++attempt;
    std::unique_lock<std::mutex> lock(mu_);
    if (wake_.wait_for(lock, absl::ToChronoNanoseconds(delay), [this] { return stopping_; })) return;
  }
}

absl::Duration BrokerLink::RunOnce() {
  grpc::ClientContext context;
  v1::ClientMsg hello;
  *hello.mutable_hello() = options_.hello;
  if (enrolling_) {
    context.AddMetadata("authorization", "Enroll " + options_.enrollment_token);
    hello.mutable_hello()->set_public_key(options_.public_key_der);
  } else if (std::string central = CentralToken(); !central.empty() || !options_.mint_token) {
    context.AddMetadata("authorization", "Bearer " + central);
  } else {
    absl::StatusOr<std::string> own = options_.mint_token();
    if (!own.ok()) {
      LogError("cannot make this host's token: %s", own.status().ToString());
      return absl::ZeroDuration();
    }
    context.AddMetadata("authorization", "Bearer " + *own);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::ZeroDuration();
    current_ = &context;
  }
  absl::Time opened = absl::Now();
  std::unique_ptr<v1::Agent::Stub> stub = v1::Agent::NewStub(Dial());
  auto stream = stub->Stream(&context);
  auto session = std::make_shared<Session>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    session_ = session;
  }
  bool said_hello = stream->Write(hello);
  std::thread writer;
  if (said_hello) {
    ++connects_;
    LogInfo("broker stream open to %s as host %s", options_.address, options_.hello.host_id());
    writer = std::thread([this, &stream, session] {
      // The host's own token is renewed here, on the stream that is open, well before the
      // broker would close it at exp; central's tokens are renewed by central.
      auto next_renewal = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(options_.renew_every);
      for (;;) {
        bool timed_out = false;
        std::optional<v1::ClientMsg> message = session->Next(next_renewal, &timed_out);
        if (timed_out) {
          next_renewal = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(options_.renew_every);
          if (enrolling_ || !CentralToken().empty() || !options_.mint_token) continue;
          absl::StatusOr<std::string> own = options_.mint_token();
          if (!own.ok()) {
            LogError("cannot renew this host's token: %s", own.status().ToString());
            continue;
          }
          message.emplace();
          message->mutable_renew_token()->set_token(*own);
        }
        if (!message || !stream->Write(*message)) break;
      }
    });
    v1::ServerMsg message;
    while (stream->Read(&message)) {
      if (message.has_challenge()) {
        absl::StatusOr<std::string> signature = options_.prove ? options_.prove(message.challenge().nonce())
                                                               : absl::FailedPreconditionError("this host holds no host key");
        if (!signature.ok()) {
          LogError("broker asked for proof of possession: %s", signature.status().ToString());
          continue;
        }
        v1::ClientMsg proof;
        proof.mutable_proof()->set_signature(*signature);
        session->Enqueue(std::move(proof));
        continue;
      }
      if (message.has_admitted()) {
        LogInfo("broker admitted this host as %s (%s)", message.admitted().host_id(),
                enrolling_ ? "enrolled now" : message.admitted().enrolled() ? "key proven" : "token only");
        if (enrolling_) {
          absl::Status kept = options_.on_enrolled ? options_.on_enrolled() : absl::OkStatus();
          if (!kept.ok()) LogError("enrolled, but the host key was not kept: %s", kept.ToString());
          enrolling_ = false;
        }
        continue;
      }
      if (message.has_token_verdict()) {
        if (message.token_verdict().accepted()) {
          LogInfo("broker accepted the renewed token (expires %d)", message.token_verdict().expires_unix());
        } else {
          LogWarn("broker refused the renewed token: %s", message.token_verdict().reason());
        }
        continue;
      }
      // Run where every other command runs; answer through the writer.
      boost::asio::post(io_, [this, session, message]() {
        std::optional<v1::CommandResult> result = executor_(message);
        if (!result) return;
        v1::ClientMsg reply;
        reply.mutable_response()->set_request_id(message.request_id());
        *reply.mutable_response()->mutable_result() = *std::move(result);
        // The broker ends the whole connection on a message over its limit, and every
        // command in flight on it with the connection; an answer that large is refused
        // here instead, on its own.
        if (const size_t bytes = reply.ByteSizeLong(); bytes > commands::kMaxStreamMessageBytes) {
          const absl::Status too_large = absl::ResourceExhaustedError(
              absl::StrCat("the answer is ", bytes, " bytes, over the ", commands::kMaxStreamMessageBytes,
                           " bytes a message on the broker stream may carry; ask for less (one namespace, one "
                           "container)"));
          LogWarn("request %s: %s", message.request_id(), too_large.message());
          v1::CommandResult* refused = reply.mutable_response()->mutable_result();
          refused->Clear();
          refused->set_code(http::HttpStatusOf(too_large));
          refused->set_message(std::string(too_large.message()));
        }
        session->Enqueue(std::move(reply));
      });
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    session_.reset();
  }
  session->Close();
  if (writer.joinable()) writer.join();
  grpc::Status status = stream->Finish();
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = nullptr;
  }
  LogWarn("broker stream to %s ended: %s%s", options_.address, status.ok() ? "closed" : status.error_message(),
          status.ok() ? "" : absl::StrCat(" (code ", static_cast<int>(status.error_code()), ")"));
  return absl::Now() - opened;
}

}  // namespace coolify::front
