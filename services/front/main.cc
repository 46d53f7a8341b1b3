// coold-front: the unprivileged network front end (see front.h).
#include <vector>

#include "absl/strings/str_cat.h"
#include "privsep/child.h"
#include "privsep/log.h"
#include "privsep/spawn.h"
#include "services/front/front.h"

// argv (privsep::ParseFrontArgs): the TCP ports it may connect to, then, with the SQLite
// store, the store's file name in the directory on fd 7.
int main(int argc, char** argv) {
  using namespace coolify;
  using privsep::Channel;
  using privsep::kFirstPassedFd;
  using privsep::UniqueFd;
  SetLogRole("front");
  privsep::FrontArgs args = privsep::ParseFrontArgs(argc, argv);
  const bool endpoint_dir = !args.endpoint_db_name.empty();
  const int endpoint_dir_fd = kFirstPassedFd + 4;
  UniqueFd proc_status = privsep::EnterChildSandbox(privsep::ROLE_FRONT, /*passed_fds=*/endpoint_dir ? 5 : 4,
                                                    endpoint_dir ? std::vector<int>{endpoint_dir_fd} : std::vector<int>{},
                                                    args.tcp_connect_ports);
  Channel monitor{UniqueFd(kFirstPassedFd)};
  Channel netlink{UniqueFd(kFirstPassedFd + 1)};
  Channel podman{UniqueFd(kFirstPassedFd + 2)};
  Channel build{UniqueFd(kFirstPassedFd + 3)};
  absl::Mutex monitor_mu;
  front::FrontChannels channels{monitor, netlink, podman, build, monitor_mu};
  absl::StatusOr<front::Startup> startup = front::RequestStartup(monitor);
  if (!startup.ok()) {
    LogError("startup: %s", startup.status().ToString());
    return 1;
  }
  if (absl::Status health = front::RunHealthRound(channels, proc_status.get()); !health.ok()) {
    LogError("health round: %s", health.ToString());
    return 1;
  }
  if (endpoint_dir) {
    // SQLite opens the database and its companions by path; this one leads through the
    // descriptor to the directory the monitor prepared (and Landlock allows).
    startup->endpoint_db_path = absl::StrCat("/proc/self/fd/", endpoint_dir_fd, "/", args.endpoint_db_name);
  }
  return front::Serve(channels, *std::move(startup), proc_status.get());
}
