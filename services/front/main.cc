// coold-front: the unprivileged network front end (see front.h).
#include "privsep/child.h"
#include "privsep/log.h"
#include "privsep/spawn.h"
#include "services/front/front.h"

int main() {
  using namespace coolify;
  using privsep::Channel;
  using privsep::kFirstPassedFd;
  using privsep::UniqueFd;
  SetLogRole("front");
  UniqueFd proc_status = privsep::EnterChildSandbox(privsep::ROLE_FRONT, /*passed_fds=*/4);
  Channel monitor{UniqueFd(kFirstPassedFd)};
  Channel netlink{UniqueFd(kFirstPassedFd + 1)};
  Channel podman{UniqueFd(kFirstPassedFd + 2)};
  Channel build{UniqueFd(kFirstPassedFd + 3)};
  front::FrontChannels channels{monitor, netlink, podman, build};
  absl::StatusOr<front::Startup> startup = front::RequestStartup(monitor);
  if (!startup.ok()) {
    LogError("startup: %s", startup.status().ToString());
    return 1;
  }
  if (absl::Status health = front::RunHealthRound(channels, proc_status.get()); !health.ok()) {
    LogError("health round: %s", health.ToString());
    return 1;
  }
  return front::Serve(channels, *std::move(startup));
}
