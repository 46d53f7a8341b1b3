// What every coold child does: enter its role's sandbox as the first act of main(), report
// its own confinement, and serve one request channel.
#ifndef COOLD_PRIVSEP_CHILD_H_
#define COOLD_PRIVSEP_CHILD_H_

#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "privsep/channel.h"
#include "privsep/dispatch.h"
#include "privsep/log.h"
#include "privsep/unique_fd.h"
#include "proto/privsep.pb.h"

namespace coolify::privsep {

// Enters the sandbox of `role`, keeping the `passed_fds` descriptors the monitor laid out
// from fd 3. Returns a descriptor on this process's /proc status, opened before the sandbox
// because Landlock forbids opening it afterwards. Never returns on failure.
// `passed_dirs` are directory descriptors among them that the role's Landlock list grants
// access beneath ("@passed-directories").
UniqueFd EnterChildSandbox(Role role, int passed_fds, std::vector<int> passed_dirs = {});

// This process's confinement as the kernel reports it (through the descriptor above).
absl::StatusOr<HealthReport> SelfHealth(Role role, int proc_status_fd);

// Answers a health request in `reply`: this process's report, or the error reading it.
template <typename Reply>
void AnswerHealth(Role role, int proc_status_fd, Reply* reply) {
  absl::StatusOr<HealthReport> health = SelfHealth(role, proc_status_fd);
  if (health.ok()) {
    *reply->mutable_health() = *std::move(health);
  } else {
    reply->mutable_status()->set_code(static_cast<int>(health.status().code()));
    reply->mutable_status()->set_message(std::string(health.status().message()));
  }
}

// Serves `channel` until the peer goes away or sends a frame that fails the strict decode
// or its validator (fatal, as in dispatch.h): each validated request goes to `handle`,
// whose reply is sent back with the request's id. A handler that also takes a
// `std::vector<UniqueFd>*` may fill it with descriptors to attach to its reply (they are
// closed here once sent). Returns the exit status. Children with a DispatchTable
// (dispatch.h) serve through it instead.
template <typename Request, typename Reply, typename Handler>
int ServeChannel(Channel& channel, Handler handle) {
  Server<Request, Reply> server(channel);
  for (;;) {
    absl::StatusOr<Request> request = server.Next(nullptr);
    if (!request.ok()) {
      if (absl::IsUnavailable(request.status())) {
        LogError("channel closed: %s", request.status().ToString());
        return 1;
      }
      LogError("refused a request from the front end, exiting: %s", request.status().message());
      return kRefusedExit;
    }
    std::vector<UniqueFd> reply_fds;
    Reply reply;
    if constexpr (std::is_invocable_v<Handler, const Request&, std::vector<UniqueFd>*>) {
      reply = handle(*request, &reply_fds);
    } else {
      reply = handle(*request);
    }
    reply.set_request_id(request->request_id());
    std::vector<int> raw;
    for (const UniqueFd& fd : reply_fds) raw.push_back(fd.get());
    if (absl::Status sent = server.Reply(reply, raw); !sent.ok()) {
      LogError("reply: %s", sent.ToString());
      return 1;
    }
  }
}

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_CHILD_H_
