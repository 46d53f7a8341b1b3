// The broker's state: which hosts are connected (Streams) and which requests are in
// flight or answered (Pending), and every transition between them. Transport-free: the
// gRPC side registers streams and delivers responses, the Unix-socket side dispatches
// and polls, a timer calls Sweep. All methods are thread-safe; replies are called
// outside the lock, from whichever thread caused them.
//
// Streams: host_id -> {the stream, the credential's caps, the Hello's capabilities and
// builder capacity}. A second stream of one host replaces the first atomically: the old
// stream is closed and its waiting requests end 503, so one host never has two.
//
// Pending: request_id -> Waiting | Landed, at most pending_max entries of both kinds
// (more is 503), and at most pending_per_host coold-lane requests waiting on one host,
// so one host that never answers cannot take the map from the others; a request_id in
// it cannot be used again (409). A coold-lane request still waiting after
// dispatch_timeout ends 504; a build after build_timeout. A coold-lane answer is handed
// to its caller and kept for landed_ttl in Answered (bounded by answered_max, oldest
// out first), so a client's retry with the same request_id gets the same answer again
// instead of running the command a second time; a build's result lands and stays
// landed_ttl, served to every poller.
#ifndef COOLD_SERVICES_BROKER_HUB_H_
#define COOLD_SERVICES_BROKER_HUB_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/agent.pb.h"
#include "services/commands/dispatch_codec.h"

namespace coolify::broker {

// The way down to one connected host, implemented by the gRPC stream.
class HostStream {
 public:
  virtual ~HostStream() = default;
  // Queues `message` for the host; false when the stream is closing or its queue is full.
  virtual bool Send(v1::ServerMsg message) = 0;
  // Ends the stream, telling the host why.
  virtual void Close(const std::string& reason) = 0;
};

struct HostHello {
  std::string host_id;
  absl::flat_hash_set<std::string> token_caps;  // the credential's "caps"
  absl::Time token_expires;
  std::string token_jti;
  absl::flat_hash_set<int> capabilities;  // v1::Capability values from Hello
  uint32_t builder_capacity = 0;
};

using Reply = std::function<void(commands::Envelope)>;

struct HubOptions {
  size_t pending_max = 10000;
  size_t pending_per_host = 1000;
  size_t answered_max = 10000;
  absl::Duration dispatch_timeout = absl::Seconds(10);
  absl::Duration landed_ttl = absl::Seconds(30);
  absl::Duration build_timeout = absl::Hours(2);
  // How long past its token's exp a stream stays open without a renewal (the tokens'
  // clock-skew allowance).
  absl::Duration token_grace = absl::Seconds(30);
  // The seed's bound on a long-poll (GET /v1/build/result/:id?timeout_ms=): a longer
  // timeout_ms is accepted and clamped to it, so a client that asks for more gets 408
  // with the build's progress after it and polls again.
  absl::Duration max_poll = absl::Seconds(30);
};

struct HubStats {
  size_t hosts = 0;
  size_t pending = 0;
  uint64_t dispatched = 0;
  uint64_t replaced = 0;
  uint64_t stray_responses = 0;
  uint64_t replayed = 0;         // a repeated request_id answered from Answered
  uint64_t refused_host_quota = 0;
  uint64_t renewed = 0;       // credentials replaced on a live stream
  uint64_t expired = 0;       // streams closed at their token's exp, no renewal having come
  uint64_t cut_off = 0;       // streams closed by a revocation
  uint64_t reconnects = 0;    // streams registered for a host registered before
};

// The largest answer body kept for a repeated request_id; a larger one is not kept and
// its repeat is 409.
inline constexpr size_t kMaxKeptAnswerBytes = 16 * 1024;

// Progress lines kept per build, and the bytes of one line.
inline constexpr size_t kMaxProgressLines = 50;
inline constexpr size_t kMaxProgressLineBytes = 1024;

class Hub {
 public:
  explicit Hub(HubOptions options) : options_(options) {}

  // Makes `stream` the host's stream, closing the one it replaces. Returns the
  // registration's generation, which later calls name.
  uint64_t Register(HostHello hello, std::shared_ptr<HostStream> stream);
  // The stream of generation `generation` ended; its waiting requests end 503.
  void Unregister(const std::string& host_id, uint64_t generation);
  // A Response from the host on generation `generation`. Ignored (and counted) when the
  // request is unknown, already landed, or was sent to another host or stream.
  void OnResponse(const std::string& host_id, uint64_t generation, const v1::Response& response);
  // A progress line of a build this host runs: the newest kMaxProgressLines are kept with
  // the build and shown to pollers whose wait times out (408), so a long-poller sees the
  // build move. Ignored like a stray response when the build is not this host's.
  void OnBuildEvent(const std::string& host_id, uint64_t generation, const v1::BuildEvent& event);

  // The stream of generation `generation` presented a fresh credential: from now on its
  // commands are checked against `caps` and it lives until `expires`. False when that
  // stream is no longer the host's.
  bool Renew(const std::string& host_id, uint64_t generation, absl::flat_hash_set<std::string> caps,
             absl::Time expires, std::string jti);
  // Closes the host's stream at once: its waiting coold-lane requests end 503 now, new
  // ones find no host (404). False when the host had no stream.
  bool CutOff(const std::string& host_id, const std::string& why);
  // The same for whichever stream holds the token `jti`.
  bool CutOffToken(const std::string& jti, const std::string& why);

  // POST /v1/coold/dispatch: `reply` is called once, with the host's answer or the error.
  void Dispatch(commands::Dispatch dispatch, Reply reply);
  // POST /v1/build/dispatch: 202 {"request_id"} or an error envelope.
  commands::Envelope DispatchBuild(commands::BuildDispatch dispatch);
  // GET /v1/build/result/:id: `reply` once, with the result, or 408 after `timeout`.
  void BuildResult(const std::string& request_id, absl::Duration timeout, Reply reply);
  // POST /v1/build/:id/cancel: 204, or 404 for a request that is not a known build.
  commands::Envelope CancelBuild(const std::string& request_id);

  // Ends what is overdue at `now`; the broker calls it every 100 ms.
  void Sweep(absl::Time now);

  HubStats stats() const;
  bool Connected(const std::string& host_id) const;
  const HubOptions& options() const { return options_; }

 private:
  enum class Lane { kCoold, kBuild };
  struct Waiter {
    Reply reply;
    absl::Time deadline;
  };
  struct Entry {
    Lane lane = Lane::kCoold;
    std::string host_id;
    uint64_t generation = 0;
    absl::Time created;
    bool landed = false;
    bool delivered = false;  // a coold-lane answer its caller received: erased at once
    absl::Time landed_at;
    commands::Envelope result;
    std::vector<Waiter> waiters;
    std::deque<v1::BuildEvent> progress;  // builds: the newest lines, oldest first
  };
  struct Host {
    HostHello hello;
    std::shared_ptr<HostStream> stream;
    uint64_t generation = 0;
    uint32_t active_builds = 0;
  };
  using Delivery = std::vector<std::pair<Reply, commands::Envelope>>;
  // A coold-lane answer its caller received, kept for a repeat of its request_id.
  struct Answered {
    std::string host_id;
    absl::Time at;
    bool kept = false;  // false: the body was too large to keep; a repeat is 409
    commands::Envelope result;
  };

  // Keeps `result`, the answer delivered for request `id` of `host_id`.
  void RememberLocked(const std::string& id, const std::string& host_id, const commands::Envelope& result,
                      absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One coold-lane request of `host_id` stopped waiting.
  void ReleaseHostSlotLocked(const std::string& host_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Lands `entry` with `result` and queues its waiters' replies into `out`.
  void LandLocked(const std::string& request_id, Entry& entry, commands::Envelope result, absl::Time now,
                  Delivery& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Lands every waiting coold-lane request of the host's generation with 503. Builds
  // stay: coold adopts a running build after a restart and reports it on its next stream
  // (Register hands them to it); the build timeout bounds a host that never returns.
  void FailHostLocked(const std::string& host_id, uint64_t generation, const std::string& why, absl::Time now,
                      Delivery& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void Deliver(Delivery& out);
  // Sends `message` (whose entry is already pending) outside the lock; when the stream
  // refuses it, withdraws the entry and answers its waiters 503. False when refused.
  bool SendOrWithdraw(const std::shared_ptr<HostStream>& stream, v1::ServerMsg message, uint64_t generation);

  const HubOptions options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Host> hosts_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Entry> pending_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> waiting_by_host_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Answered> answered_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<absl::Time, std::string>> answered_order_ ABSL_GUARDED_BY(mu_);  // oldest first
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  // Every host that ever had a stream here, to count reconnects: one entry per host of
  // the fleet, whose tokens the broker admitted.
  absl::flat_hash_set<std::string> seen_hosts_ ABSL_GUARDED_BY(mu_);
  HubStats counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace coolify::broker

#endif  // COOLD_SERVICES_BROKER_HUB_H_
