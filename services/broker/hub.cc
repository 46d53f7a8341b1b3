#include "services/broker/hub.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "privsep/log.h"

namespace coolify::broker {
namespace {

using commands::Envelope;
using commands::ErrorEnvelope;

bool TokenAllows(const HostHello& hello, const v1::Command& command) {
  for (const std::string& name : commands::VerbNames(command)) {
    if (hello.token_caps.contains(name)) return true;
  }
  return false;
}

// A host may build when it advertises the capability and its credential grants it.
bool CanBuild(const HostHello& hello) {
  return hello.capabilities.contains(v1::CAPABILITY_BUILDER) && hello.token_caps.contains("builder") &&
         hello.builder_capacity > 0;
}

}  // namespace

void Hub::Deliver(Delivery& out) {
  for (auto& [reply, envelope] : out) reply(std::move(envelope));
  out.clear();
}

uint64_t Hub::Register(HostHello hello, std::shared_ptr<HostStream> stream) {
  Delivery out;
  std::shared_ptr<HostStream> replaced;
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    generation = next_generation_++;
    const std::string host_id = hello.host_id;
    if (!seen_hosts_.insert(host_id).second) ++counters_.reconnects;
    auto it = hosts_.find(host_id);
    if (it != hosts_.end()) {
      replaced = std::move(it->second.stream);
      FailHostLocked(host_id, it->second.generation, "host stream replaced by a newer one", absl::Now(), out);
      ++counters_.replaced;
    }
    Host& host = hosts_[host_id];
    host.hello = std::move(hello);
    host.stream = std::move(stream);
    host.generation = generation;
    host.active_builds = 0;
    // The host's builds still waiting belong to this stream now: their results come on it.
    for (auto& [id, entry] : pending_) {
      if (entry.lane == Lane::kBuild && !entry.landed && entry.host_id == host_id) {
        entry.generation = generation;
        ++host.active_builds;
      }
    }
  }
  if (replaced) replaced->Close("replaced by a newer stream of the same host");
  Deliver(out);
  return generation;
}

void Hub::Unregister(const std::string& host_id, uint64_t generation) {
  Delivery out;
  {
    absl::MutexLock lock(&mu_);
    auto it = hosts_.find(host_id);
    if (it != hosts_.end() && it->second.generation == generation) hosts_.erase(it);
    FailHostLocked(host_id, generation, "host stream dropped", absl::Now(), out);
  }
  Deliver(out);
}

void Hub::FailHostLocked(const std::string& host_id, uint64_t generation, const std::string& why, absl::Time now,
                         Delivery& out) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    Entry& entry = it->second;
    if (entry.landed || entry.lane == Lane::kBuild || entry.host_id != host_id || entry.generation != generation) {
      ++it;
      continue;
    }
    LandLocked(it->first, entry, ErrorEnvelope(it->first, 503, why), now, out);
    if (entry.delivered) {
      pending_.erase(it++);
    } else {
      ++it;
    }
  }
}

void Hub::LandLocked(const std::string& request_id, Entry& entry, Envelope result, absl::Time now, Delivery& out) {
  // A coold-lane answer handed to its waiting caller is done: keeping it would only fill
  // the pending map (at thousands of dispatches a second, 30 s of them is far beyond
  // BROKER_PENDING_MAX). The caller erases it after this returns.
  if (entry.lane == Lane::kCoold) {
    ReleaseHostSlotLocked(entry.host_id);
    // Whatever the caller is told now is what a repeat of the request_id is told: the
    // host may have run the command even when the answer is a 503 or 504.
    RememberLocked(request_id, entry.host_id, result, now);
  }
  if (entry.lane == Lane::kCoold && !entry.waiters.empty()) entry.delivered = true;
  entry.landed = true;
  entry.landed_at = now;
  entry.result = std::move(result);
  for (Waiter& waiter : entry.waiters) out.emplace_back(std::move(waiter.reply), entry.result);
  entry.waiters.clear();
  if (entry.lane == Lane::kBuild) {
    auto host = hosts_.find(entry.host_id);
    if (host != hosts_.end() && host->second.generation == entry.generation && host->second.active_builds > 0) {
      --host->second.active_builds;
    }
  }
}

void Hub::OnResponse(const std::string& host_id, uint64_t generation, const v1::Response& response) {
  Delivery out;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(response.request_id());
    // A host answers only what was sent to it on this stream, once.
    if (it == pending_.end() || it->second.landed || it->second.host_id != host_id ||
        it->second.generation != generation) {
      ++counters_.stray_responses;
      return;
    }
    Envelope result = it->second.lane == Lane::kCoold ? commands::CommandEnvelope(it->first, response.result())
                                                      : commands::BuildEnvelope(it->first, response.result());
    LandLocked(it->first, it->second, std::move(result), absl::Now(), out);
    if (it->second.delivered) pending_.erase(it);
  }
  Deliver(out);
}

void Hub::OnBuildEvent(const std::string& host_id, uint64_t generation, const v1::BuildEvent& event) {
  absl::MutexLock lock(&mu_);
  auto it = pending_.find(event.request_id());
  if (it == pending_.end() || it->second.lane != Lane::kBuild || it->second.landed ||
      it->second.host_id != host_id || it->second.generation != generation) {
    ++counters_.stray_responses;
    return;
  }
  std::deque<v1::BuildEvent>& progress = it->second.progress;
  if (progress.size() >= kMaxProgressLines) progress.pop_front();
  progress.push_back(event);
  v1::BuildEvent& kept = progress.back();
  kept.clear_request_id();  // the entry's key says it
  if (kept.phase().size() > 32) kept.mutable_phase()->resize(32);
  if (kept.line().size() > kMaxProgressLineBytes) kept.mutable_line()->resize(kMaxProgressLineBytes);
}

// Sends run outside the lock: a stream's Send calls into gRPC, and nothing that calls
// into gRPC may hold the lock a gRPC completion (OnResponse, Unregister) takes. The entry
// goes into the map first, so an answer can never arrive before it.
bool Hub::SendOrWithdraw(const std::shared_ptr<HostStream>& stream, v1::ServerMsg message, uint64_t generation) {
  const std::string id = message.request_id();
  if (stream->Send(std::move(message))) return true;
  Delivery out;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(id);
    // Unless the stream's end already answered it, the request was never sent: withdraw it.
    if (it != pending_.end() && !it->second.landed && it->second.generation == generation) {
      if (it->second.lane == Lane::kBuild) {
        auto host = hosts_.find(it->second.host_id);
        if (host != hosts_.end() && host->second.generation == generation && host->second.active_builds > 0) {
          --host->second.active_builds;
        }
      } else {
        ReleaseHostSlotLocked(it->second.host_id);  // never sent: a retry may run it
      }
      for (Waiter& waiter : it->second.waiters) {
        out.emplace_back(std::move(waiter.reply),
                         ErrorEnvelope(id, 503, absl::StrCat("host ", it->second.host_id, " stream is gone or saturated")));
      }
      pending_.erase(it);
    }
  }
  Deliver(out);
  return false;
}

void Hub::Dispatch(commands::Dispatch dispatch, Reply reply) {
  const std::string id = dispatch.request_id;
  Envelope refused;
  std::shared_ptr<HostStream> stream;
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    auto host = hosts_.find(dispatch.host_id);
    if (host == hosts_.end()) {
      refused = ErrorEnvelope(id, 404, absl::StrCat("host ", dispatch.host_id, " is not connected"));
    } else if (!TokenAllows(host->second.hello, dispatch.command)) {
      refused = ErrorEnvelope(id, 403, absl::StrCat("verb ", dispatch.type, " is not allowed for host ",
                                                    dispatch.host_id, "'s credential"));
    } else if (!host->second.hello.capabilities.contains(commands::RequiredCapability(dispatch.command))) {
      // central degrades on this wording ("primitive <verb> is not supported by host").
      refused = ErrorEnvelope(id, 501, absl::StrCat("primitive ", dispatch.type, " is not supported by host ",
                                                    dispatch.host_id));
    } else if (pending_.contains(id)) {
      refused = ErrorEnvelope(id, 409, absl::StrCat("request_id ", id, " is already in use"));
    } else if (auto answered = answered_.find(id); answered != answered_.end()) {
      if (answered->second.kept && answered->second.host_id == dispatch.host_id) {
        refused = answered->second.result;
        ++counters_.replayed;
      } else {
        refused = ErrorEnvelope(id, 409, absl::StrCat("request_id ", id, " was answered already"));
      }
    } else if (pending_.size() >= options_.pending_max) {
      refused = ErrorEnvelope(id, 503, "broker at its pending-request limit");
    } else if (waiting_by_host_[dispatch.host_id] >= options_.pending_per_host) {
      refused = ErrorEnvelope(id, 503, absl::StrCat("host ", dispatch.host_id, " has ", options_.pending_per_host,
                                                    " requests waiting already"));
      ++counters_.refused_host_quota;
    } else {
      absl::Time now = absl::Now();
      Entry& entry = pending_[id];
      entry.lane = Lane::kCoold;
      entry.host_id = dispatch.host_id;
      entry.generation = host->second.generation;
      entry.created = now;
      entry.waiters.push_back(Waiter{std::move(reply), now + options_.dispatch_timeout});
      ++waiting_by_host_[dispatch.host_id];
      ++counters_.dispatched;
      stream = host->second.stream;
      generation = host->second.generation;
    }
  }
  if (!stream) {
    reply(std::move(refused));
    return;
  }
  v1::ServerMsg message;
  message.set_request_id(id);
  *message.mutable_command() = std::move(dispatch.command);
  SendOrWithdraw(stream, std::move(message), generation);
}

Envelope Hub::DispatchBuild(commands::BuildDispatch dispatch) {
  const std::string id = dispatch.request_id;
  std::shared_ptr<HostStream> stream;
  uint64_t generation = 0;
  std::string host_id;
  {
    absl::MutexLock lock(&mu_);
    Host* target = nullptr;
    if (!dispatch.host_id.empty()) {
      auto host = hosts_.find(dispatch.host_id);
      if (host == hosts_.end()) return ErrorEnvelope(id, 404, absl::StrCat("host ", dispatch.host_id, " is not connected"));
      if (!host->second.hello.token_caps.contains("builder")) {
        return ErrorEnvelope(id, 403, absl::StrCat("builds are not allowed for host ", dispatch.host_id, "'s credential"));
      }
      if (!CanBuild(host->second.hello)) {
        return ErrorEnvelope(id, 501, absl::StrCat("host ", dispatch.host_id, " does not advertise builder"));
      }
      target = &host->second;
    } else {
      // Least loaded first: the lowest share of its capacity in use; ties to the larger
      // capacity, then the host id, so the choice is deterministic.
      double best = std::numeric_limits<double>::infinity();
      for (auto& [candidate_id, host] : hosts_) {
        if (!CanBuild(host.hello)) continue;
        double load = static_cast<double>(host.active_builds) / host.hello.builder_capacity;
        if (target == nullptr || load < best ||
            (load == best && (host.hello.builder_capacity > target->hello.builder_capacity ||
                              (host.hello.builder_capacity == target->hello.builder_capacity &&
                               candidate_id < target->hello.host_id)))) {
          best = load;
          target = &host;
        }
      }
      if (target == nullptr) return ErrorEnvelope(id, 503, "no connected host advertises builder");
    }
    if (pending_.contains(id)) return ErrorEnvelope(id, 409, absl::StrCat("request_id ", id, " is already in use"));
    if (answered_.contains(id)) return ErrorEnvelope(id, 409, absl::StrCat("request_id ", id, " was answered already"));
    if (pending_.size() >= options_.pending_max) return ErrorEnvelope(id, 503, "broker at its pending-request limit");
    Entry& entry = pending_[id];
    entry.lane = Lane::kBuild;
    entry.host_id = target->hello.host_id;
    entry.generation = target->generation;
    entry.created = absl::Now();
    ++target->active_builds;
    ++counters_.dispatched;
    stream = target->stream;
    generation = target->generation;
    host_id = target->hello.host_id;
  }
  v1::ServerMsg message;
  message.set_request_id(id);
  *message.mutable_build() = std::move(dispatch.build);
  if (!SendOrWithdraw(stream, std::move(message), generation)) {
    return ErrorEnvelope(id, 503, absl::StrCat("host ", host_id, " stream is gone or saturated"));
  }
  return Envelope{202, absl::StrCat("{\"request_id\":\"", id, "\"}")};  // id is [A-Za-z0-9_.-]
}

void Hub::BuildResult(const std::string& request_id, absl::Duration timeout, Reply reply) {
  Envelope now_answer;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(request_id);
    if (it == pending_.end() || it->second.lane != Lane::kBuild) {
      now_answer = ErrorEnvelope(request_id, 404, absl::StrCat("no build ", request_id, " is known"));
    } else if (it->second.landed) {
      now_answer = it->second.result;
    } else {
      it->second.waiters.push_back(Waiter{std::move(reply), absl::Now() + std::min(timeout, options_.max_poll)});
      return;
    }
  }
  reply(std::move(now_answer));
}

Envelope Hub::CancelBuild(const std::string& request_id) {
  std::shared_ptr<HostStream> stream;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(request_id);
    if (it == pending_.end() || it->second.lane != Lane::kBuild) {
      return ErrorEnvelope(request_id, 404, absl::StrCat("no build ", request_id, " is known"));
    }
    if (!it->second.landed) {
      auto host = hosts_.find(it->second.host_id);
      if (host != hosts_.end() && host->second.generation == it->second.generation) stream = host->second.stream;
    }
  }
  if (stream) {
    v1::ServerMsg message;
    message.set_request_id(request_id);
    message.mutable_cancel()->set_request_id(request_id);
    // A full queue drops the cancel; the build still ends by its own timeout.
    if (!stream->Send(std::move(message))) LogWarn("cancel of %s not delivered: host stream saturated", request_id);
  }
  return Envelope{204, ""};
}

void Hub::Sweep(absl::Time now) {
  Delivery out;
  std::vector<std::shared_ptr<HostStream>> expired;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      Entry& entry = it->second;
      if (entry.landed) {
        if (now - entry.landed_at >= options_.landed_ttl) {
          pending_.erase(it++);
          continue;
        }
      } else if (entry.lane == Lane::kCoold && now - entry.created >= options_.dispatch_timeout) {
        LandLocked(it->first, entry,
                   ErrorEnvelope(it->first, 504,
                                 absl::StrCat("host ", entry.host_id, " did not answer within ",
                                              absl::FormatDuration(options_.dispatch_timeout))),
                   now, out);
        if (entry.delivered) {
          pending_.erase(it++);
          continue;
        }
      } else if (entry.lane == Lane::kBuild && now - entry.created >= options_.build_timeout) {
        LandLocked(it->first, entry, ErrorEnvelope(it->first, 504, "build did not finish in time"), now, out);
      } else if (entry.lane == Lane::kBuild) {
        // Pollers whose own timeout passed get 408; the build goes on.
        auto& waiters = entry.waiters;
        for (auto w = waiters.begin(); w != waiters.end();) {
          if (now >= w->deadline) {
            out.emplace_back(std::move(w->reply),
                             commands::PollTimeoutEnvelope(
                                 it->first, std::vector<v1::BuildEvent>(entry.progress.begin(), entry.progress.end())));
            w = waiters.erase(w);
          } else {
            ++w;
          }
        }
      }
      ++it;
    }
    while (!answered_order_.empty() && now - answered_order_.front().first >= options_.landed_ttl) {
      auto it = answered_.find(answered_order_.front().second);
      if (it != answered_.end() && it->second.at == answered_order_.front().first) answered_.erase(it);
      answered_order_.pop_front();
    }
    // A credential that expired while its stream was open, no renewal having come, ends
    // the stream: the host reconnects with a fresh one.
    for (auto& [host_id, host] : hosts_) {
      if (now > host.hello.token_expires + options_.token_grace) {
        expired.push_back(host.stream);
        ++counters_.expired;
      }
    }
  }
  Deliver(out);
  for (auto& stream : expired) stream->Close("host token expired and no renewal came");
}

bool Hub::Renew(const std::string& host_id, uint64_t generation, absl::flat_hash_set<std::string> caps,
                absl::Time expires, std::string jti) {
  absl::MutexLock lock(&mu_);
  auto it = hosts_.find(host_id);
  if (it == hosts_.end() || it->second.generation != generation) return false;
  it->second.hello.token_caps = std::move(caps);
  it->second.hello.token_expires = expires;
  it->second.hello.token_jti = std::move(jti);
  ++counters_.renewed;
  return true;
}

bool Hub::CutOff(const std::string& host_id, const std::string& why) {
  Delivery out;
  std::shared_ptr<HostStream> stream;
  {
    absl::MutexLock lock(&mu_);
    auto it = hosts_.find(host_id);
    if (it == hosts_.end()) return false;
    stream = std::move(it->second.stream);
    uint64_t generation = it->second.generation;
    hosts_.erase(it);
    FailHostLocked(host_id, generation, why, absl::Now(), out);
    ++counters_.cut_off;
  }
  stream->Close(why);
  Deliver(out);
  return true;
}

bool Hub::CutOffToken(const std::string& jti, const std::string& why) {
  std::string host_id;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, host] : hosts_) {
      if (host.hello.token_jti == jti) host_id = id;
    }
  }
  return !host_id.empty() && CutOff(host_id, why);
}

void Hub::RememberLocked(const std::string& id, const std::string& host_id, const Envelope& result, absl::Time now) {
  // Full: the oldest answer goes first (its repeat then runs as a new request).
  while (answered_.size() >= options_.answered_max && !answered_order_.empty()) {
    auto it = answered_.find(answered_order_.front().second);
    if (it != answered_.end() && it->second.at == answered_order_.front().first) answered_.erase(it);
    answered_order_.pop_front();
  }
  Answered& answered = answered_[id];
  answered.host_id = host_id;
  answered.at = now;
  answered.kept = result.body.size() <= kMaxKeptAnswerBytes;
  answered.result = answered.kept ? result : Envelope{};
  answered_order_.emplace_back(now, id);
}

void Hub::ReleaseHostSlotLocked(const std::string& host_id) {
  auto it = waiting_by_host_.find(host_id);
  if (it == waiting_by_host_.end()) return;
  if (--it->second == 0) waiting_by_host_.erase(it);
}

bool Hub::Connected(const std::string& host_id) const {
  absl::MutexLock lock(&mu_);
  return hosts_.contains(host_id);
}

HubStats Hub::stats() const {
  absl::MutexLock lock(&mu_);
  HubStats s = counters_;
  s.hosts = hosts_.size();
  s.pending = pending_.size();
  return s;
}

}  // namespace coolify::broker
