// coold's stream to the broker: dials out (never listens), authenticates with the host
// JWT, says Hello {host_id, capabilities, builder_capacity}, runs each command the broker
// sends and answers on the same stream. When the stream ends it dials again after a
// capped exponential backoff with full jitter (so a fleet does not reconnect in
// lockstep); an authentication refusal is logged with the broker's reason and retried on
// the same schedule, never behind a fixed lockout.
//
// gRPC runs its own threads; the front end is single-threaded on an io_context. Each
// ServerMsg is therefore posted onto that io_context, the executor runs there like any
// REST request, and its answer goes back through a queue a writer thread drains.
#ifndef COOLD_SERVICES_FRONT_BROKER_LINK_H_
#define COOLD_SERVICES_FRONT_BROKER_LINK_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "proto/agent.grpc.pb.h"

namespace coolify::front {

struct BrokerLinkOptions {
  std::string address;      // "IPv4:PORT", resolved by the monitor; the front never resolves names
  std::string server_name;  // the name the broker's certificate must carry
  std::string root_pem;     // trusted CA (PEM); empty = plaintext, which config allows on loopback only
  std::string token;        // central's host JWT; "" = the host's own tokens (mint_token)
  // Set while this host is to enroll: the first stream says "Enroll <token>" and its
  // Hello carries public_key_der; once admitted, on_enrolled runs and later streams use
  // the host's own tokens.
  std::string enrollment_token;
  std::string public_key_der;
  std::function<absl::Status()> on_enrolled;
  // A fresh token signed with the host key (the monitor signs): the credential of each
  // dial without central's token, and renewed on the live stream every renew_every.
  std::function<absl::StatusOr<std::string>()> mint_token;
  absl::Duration renew_every = absl::Minutes(5);
  v1::Hello hello;
  // Answers the broker's Challenge: the nonce signed with the host key, which the
  // monitor holds (the front end never does). Unset: a Challenge goes unanswered and the
  // broker refuses the stream. These callbacks run on the link's threads.
  std::function<absl::StatusOr<std::string>(const std::string& nonce)> prove;
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(60);
  // A stream that stayed up this long was healthy: the next failure starts from
  // initial_backoff again.
  absl::Duration healthy_after = absl::Seconds(10);
};

// Runs one ServerMsg on the io_context's thread: the result to send back, or nullopt
// for messages that take no answer (CancelBuild).
using BrokerExecutor = std::function<std::optional<v1::CommandResult>(const v1::ServerMsg&)>;

class BrokerLink {
 public:
  BrokerLink(boost::asio::io_context& io, BrokerLinkOptions options, BrokerExecutor executor);
  ~BrokerLink();
  BrokerLink(const BrokerLink&) = delete;
  BrokerLink& operator=(const BrokerLink&) = delete;

  void Start();
  // Ends the current stream and stops dialing; returns when the link's threads are gone.
  void Stop();

  // Queues `message` on the open stream, from any thread: a build's events and its
  // Response, which come later than the ServerMsg that started it. Dropped when no stream
  // is open (the broker already answered the build 503 when the stream ended).
  void Send(v1::ClientMsg message);

  // Makes `token` (central's, pushed with host.jwt.set and already checked) the link's
  // credential: presented at once on the open stream as a renewal, and on every later
  // dial.
  void ReplaceToken(const std::string& token);

  // Streams opened so far (Hello written).
  uint64_t connects() const { return connects_; }

  // The delay before dial attempt `attempt` (0-based after a failure): min(max, initial *
  // 2^attempt), scaled by a random factor in [0, 1] (full jitter). Public for tests.
  static absl::Duration Backoff(const BrokerLinkOptions& options, int attempt, double random01);

 private:
  struct Session;
  std::shared_ptr<grpc::Channel> Dial() const;
  std::string CentralToken();
  void Run();
  // One stream from dial to end; returns how long it stayed open.
  absl::Duration RunOnce();

  boost::asio::io_context& io_;
  const BrokerLinkOptions options_;
  BrokerExecutor executor_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  grpc::ClientContext* current_ = nullptr;  // guarded by mu_
  std::shared_ptr<Session> session_;         // guarded by mu_; the open stream's queue
  std::string token_;                        // guarded by mu_; central's token, replaced by host.jwt.set
  std::atomic<uint64_t> connects_{0};
  std::atomic<bool> enrolling_{false};
};

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_BROKER_LINK_H_
