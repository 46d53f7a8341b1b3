// coold-build. The build launcher: starts one sandboxed builder per build request.
// It acts only on validated messages from the front end (fd 3).
#include "privsep/channel.h"
#include "privsep/child.h"
#include "privsep/log.h"
#include "privsep/spawn.h"
#include "proto/privsep.pb.h"

namespace coolify::privsep {
namespace {

int Main() {
  SetLogRole("build");
  UniqueFd proc_status = EnterChildSandbox(ROLE_BUILD, /*passed_fds=*/1);
  Channel front{UniqueFd(kFirstPassedFd)};
  return ServeChannel<BuildLauncherRequest, BuildLauncherReply>(front, [&](const BuildLauncherRequest& request) {
    BuildLauncherReply reply;
    switch (request.op_case()) {
      case BuildLauncherRequest::kHealth:
        AnswerHealth(ROLE_BUILD, proc_status.get(), &reply);
        break;
      case BuildLauncherRequest::OP_NOT_SET:
        // Refused by Validate() before dispatch.
        break;
    }
    return reply;
  });
}

}  // namespace
}  // namespace coolify::privsep

int main() { return coolify::privsep::Main(); }
