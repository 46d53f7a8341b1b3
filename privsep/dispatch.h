// The serving side of a privsep channel as a declared table, in the manner of OpenSSH's
// monitor (mon_dispatch_proto20 and friends): one row per op of the request envelope's
// `oneof op`, saying
//
//   - the phases the op is allowed in (a bit set; the child starts in its first phase and
//     a row may move it to another once its handler ran),
//   - whether it may come only once in the life of the channel,
//   - exactly how many descriptors travel with it (SCM_RIGHTS),
//   - its validator, run after the envelope's Validate() (validate.h), and
//   - its handler, named after the op (AnswerHealth, AnswerAllow, ...).
//
// A child serves its channel with its table and nothing else. The first frame that the
// table does not admit (fails the strict decode or a validator, comes with the wrong
// number of descriptors, names an op outside the table or outside its phases, repeats a
// once-only op, or is meant for another role) ends the child: it logs one line naming the
// reason and exits with kRefusedExit, the monitor sees a child die and stops coold, and
// systemd restarts it. A compromised front end gets no second frame.
//
// A well-formed request that policy denies is not a bad frame: its handler answers it
// with an error status and the child serves on.
#ifndef COOLD_PRIVSEP_DISPATCH_H_
#define COOLD_PRIVSEP_DISPATCH_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "privsep/channel.h"
#include "privsep/log.h"
#include "privsep/unique_fd.h"
#include "privsep/validate.h"

namespace coolify::privsep {

// The exit status of a child that refused a frame (distinct from 1, a closed channel or
// a failed start, and 126, a failed privilege drop).
inline constexpr int kRefusedExit = 3;

// A set of phases: bit n is phase n. Each child numbers its own phases from 0, the phase
// it starts in.
using PhaseSet = uint32_t;
constexpr PhaseSet Phases(std::initializer_list<int> phases) {
  PhaseSet set = 0;
  for (int p : phases) set |= PhaseSet{1} << p;
  return set;
}

template <typename Request, typename Reply>
class DispatchTable {
 public:
  using Op = typename Request::OpCase;

  // One admitted request, as its handler sees it.
  struct Call {
    std::vector<UniqueFd> fds;        // exactly the row's count, in the order sent
    std::vector<UniqueFd> reply_fds;  // attached to the reply, closed once it is sent
    int next_phase;                   // the row's `then` (or the current phase); the
                                      // handler may change it
    // Runs once the reply is sent (or failed to send): what the handler leaves for after
    // its answer, such as its log line, does not keep the front end waiting.
    std::function<void()> after_reply;
  };
  using Validator = std::function<absl::Status(const Request&)>;
  using Handler = std::function<Reply(const Request&, Call&)>;

  static constexpr int kSamePhase = -1;

  struct Row {
    Op op;
    PhaseSet phases;
    bool once;
    int fds;
    Validator validate;  // nullptr: the envelope's Validate() says all there is
    Handler handle;
    int then = kSamePhase;
  };

  DispatchTable(const char* child, int first_phase, std::vector<Row> rows)
      : child_(child), phase_(first_phase), rows_(std::move(rows)) {}

  int phase() const { return phase_; }

  // Receives one request and answers it. OK once the reply is sent; UnavailableError
  // when the peer closed its end; any other error is the reason the request was refused
  // (the channel is cut off by then) or the reply could not be sent.
  absl::Status ServeOne(Channel& channel) {
    Server<Request, Reply> server(channel);
    std::vector<UniqueFd> fds;
    absl::StatusOr<Request> request = server.Next(&fds);
    if (!request.ok()) {
      failure_ = channel.rejected() > 0 ? Failure::kRefused : Failure::kReceive;
      return request.status();
    }
    const Row* row = nullptr;
    absl::Status admitted = Admit(*request, fds.size(), &row);
    if (!admitted.ok()) {
      failure_ = Failure::kRefused;
      return channel.Reject(std::move(admitted));
    }
    if (row->once) seen_once_.insert(static_cast<int>(row->op));
    Call call{std::move(fds), {}, row->then == kSamePhase ? phase_ : row->then, {}};
    Reply reply = row->handle(*request, call);
    reply.set_request_id(request->request_id());
    phase_ = call.next_phase;
    std::vector<int> raw;
    for (const UniqueFd& fd : call.reply_fds) raw.push_back(fd.get());
    absl::Status sent = server.Reply(reply, raw);
    if (call.after_reply) call.after_reply();
    if (!sent.ok()) failure_ = Failure::kSend;
    return sent;
  }

  // Serves until the peer goes away or a request is refused; logs one line saying which
  // and returns the exit status: 1 for a closed channel, kRefusedExit for a refusal.
  int Serve(Channel& channel) {
    for (;;) {
      absl::Status served = ServeOne(channel);
      if (served.ok()) continue;
      return Stop(served);
    }
  }

  // What went wrong, for the log, given the last ServeOne error. A refusal says the
  // front end may be compromised; a reply this process could not send says nothing of
  // the front end, and is told apart so that an operator is not sent after the wrong
  // process.
  std::string Describe(const absl::Status& why) const {
    if (absl::IsUnavailable(why)) return absl::StrCat("channel closed: ", why.ToString());
    return absl::StrCat(FailureName(), ": ", why.message());
  }

  // The one log line and exit status for a ServeOne error (for children that run their
  // own loop around ServeOne): kRefusedExit for a refusal, 1 otherwise.
  int Stop(const absl::Status& why) const {
    if (absl::IsUnavailable(why)) {
      LogError("channel closed: %s", why.ToString());
      return 1;
    }
    LogError("%s, exiting: %s", FailureName(), why.message());
    return failure_ == Failure::kRefused ? kRefusedExit : 1;
  }

  // Whether the table would admit `request` (already decoded and validated by
  // Validate()) with `fd_count` descriptors in the current phase: the row, or the reason.
  absl::Status Admit(const Request& request, size_t fd_count, const Row** out) const {
    const std::string op_name = OpName(request);
    const Row* row = nullptr;
    for (const Row& r : rows_) {
      if (r.op == request.op_case()) row = &r;
    }
    if (row == nullptr) return absl::PermissionDeniedError(absl::StrCat(child_, ": op ", op_name, " is not served here"));
    if ((row->phases & (PhaseSet{1} << phase_)) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(child_, ": op ", op_name, " is not allowed in phase ", phase_));
    }
    if (row->once && seen_once_.contains(static_cast<int>(row->op))) {
      return absl::FailedPreconditionError(absl::StrCat(child_, ": op ", op_name, " may come only once"));
    }
    if (fd_count != static_cast<size_t>(row->fds)) {
      return absl::InvalidArgumentError(absl::StrCat(child_, ": op ", op_name, " came with ", fd_count,
                                                     " descriptors, carries exactly ", row->fds));
    }
    if (row->validate) {
      if (absl::Status s = row->validate(request); !s.ok()) return s;
    }
    *out = row;
    return absl::OkStatus();
  }

 private:
  const char* FailureName() const {
    switch (failure_) {
      case Failure::kReceive:
        return "could not read from the front end";
      case Failure::kSend:
        return "could not send a reply to the front end";
      case Failure::kRefused:
        break;
    }
    return "refused a request from the front end";
  }

  static std::string OpName(const Request& request) {
    const google::protobuf::FieldDescriptor* field =
        Request::descriptor()->FindFieldByNumber(static_cast<int>(request.op_case()));
    return field == nullptr ? absl::StrCat(static_cast<int>(request.op_case())) : field->name();
  }

  const char* child_;
  int phase_;
  std::vector<Row> rows_;
  absl::flat_hash_set<int> seen_once_;
  enum class Failure { kRefused, kReceive, kSend };
  Failure failure_ = Failure::kRefused;  // where the last failed ServeOne failed
};

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_DISPATCH_H_
