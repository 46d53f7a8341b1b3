#include "services/front/front.h"

#include <poll.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "privsep/child.h"
#include "privsep/log.h"
#include "privsep/roles.h"
#include "proto/privsep.pb.h"

namespace coolify::front {
namespace {

using privsep::HealthReport;
using privsep::Role;

// Asks one helper for its health report over its channel.
template <typename Request, typename Reply>
absl::StatusOr<HealthReport> AskHealth(privsep::Channel& channel, Role role) {
  privsep::Client<Request, Reply> client(channel);
  Request request;
  request.mutable_health();
  absl::StatusOr<Reply> reply = client.Call(request);
  if (!reply.ok()) return reply.status();
  if (reply->status().code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply->status().code()), reply->status().message());
  }
  if (!reply->has_health() || reply->health().role() != role) {
    return absl::InternalError(absl::StrCat(privsep::RoleName(role), " answered health with another report"));
  }
  return reply->health();
}

}  // namespace

absl::Status RunHealthRound(FrontChannels channels, int proc_status_fd) {
  privsep::HealthRound round;
  absl::StatusOr<HealthReport> self = privsep::SelfHealth(privsep::ROLE_FRONT, proc_status_fd);
  if (!self.ok()) return self.status();
  *round.add_reports() = *self;
  for (absl::StatusOr<HealthReport> report :
       {AskHealth<privsep::NetlinkRequest, privsep::NetlinkReply>(channels.netlink, privsep::ROLE_NETLINK),
        AskHealth<privsep::PodmanRequest, privsep::PodmanReply>(channels.podman, privsep::ROLE_PODMAN),
        AskHealth<privsep::BuildLauncherRequest, privsep::BuildLauncherReply>(channels.build,
                                                                              privsep::ROLE_BUILD)}) {
    if (!report.ok()) return report.status();
    *round.add_reports() = *report;
  }
  privsep::Client<privsep::MonitorRequest, privsep::MonitorReply> monitor(channels.monitor);
  privsep::MonitorRequest request;
  *request.mutable_health_round() = round;
  absl::StatusOr<privsep::MonitorReply> reply = monitor.Call(request);
  if (!reply.ok()) return reply.status();
  if (reply->status().code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply->status().code()), reply->status().message());
  }
  return absl::OkStatus();
}

int Serve(FrontChannels channels) {
  // Nothing is outstanding between requests, so any event on a channel is either its peer
  // going away or a message nobody asked for: both end coold.
  pollfd fds[4] = {{channels.monitor.fd(), POLLIN, 0},
                   {channels.netlink.fd(), POLLIN, 0},
                   {channels.podman.fd(), POLLIN, 0},
                   {channels.build.fd(), POLLIN, 0}};
  for (;;) {
    int n = poll(fds, 4, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      LogError("poll: %s", strerror(errno));
      return 1;
    }
    for (const pollfd& p : fds) {
      if (p.revents != 0) {
        LogError("unexpected event on channel fd %d; stopping", p.fd);
        return 1;
      }
    }
  }
}

}  // namespace coolify::front
