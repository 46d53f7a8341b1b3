// coold-podman. The Podman-socket gatekeeper: the one coold process that can reach podman.sock.
// It acts only on validated messages from the front end (fd 3).
#include "privsep/channel.h"
#include "privsep/child.h"
#include "privsep/log.h"
#include "privsep/spawn.h"
#include "proto/privsep.pb.h"

namespace coolify::privsep {
namespace {

int Main() {
  SetLogRole("podman");
  UniqueFd proc_status = EnterChildSandbox(ROLE_PODMAN, /*passed_fds=*/1);
  Channel front{UniqueFd(kFirstPassedFd)};
  return ServeChannel<PodmanRequest, PodmanReply>(front, [&](const PodmanRequest& request) {
    PodmanReply reply;
    switch (request.op_case()) {
      case PodmanRequest::kHealth:
        AnswerHealth(ROLE_PODMAN, proc_status.get(), &reply);
        break;
      case PodmanRequest::OP_NOT_SET:
        // Refused by Validate() before dispatch.
        break;
    }
    return reply;
  });
}

}  // namespace
}  // namespace coolify::privsep

int main() { return coolify::privsep::Main(); }
