// coold-netlink. The firewall writer: the one coold process with CAP_NET_ADMIN. It acts only
// on validated messages from the front end (fd 3) and writes its snapshots beneath the two
// directories the monitor opened for it (fd 4: COOLD_RULES_PATH's, fd 5:
// COOLD_BRIDGE_RULES_PATH's; argv[1] and argv[2] name the files).
#include "privsep/channel.h"
#include "privsep/child.h"
#include "privsep/log.h"
#include "privsep/spawn.h"
#include "proto/privsep.pb.h"
#include "services/netlink/firewall_service.h"

namespace coolify::netlink {
namespace {

constexpr int kRulesDirFd = privsep::kFirstPassedFd + 1;
constexpr int kBridgeDirFd = privsep::kFirstPassedFd + 2;

int Main(int argc, char** argv) {
  SetLogRole("netlink");
  if (argc != 3) {
    LogError("usage: coold-netlink RULES_NAME BRIDGE_RULES_NAME (started by coold)");
    return 2;
  }
  privsep::UniqueFd proc_status =
      privsep::EnterChildSandbox(privsep::ROLE_NETLINK, /*passed_fds=*/1, {kRulesDirFd, kBridgeDirFd});
  privsep::Channel front{privsep::UniqueFd(privsep::kFirstPassedFd)};

  absl::StatusOr<FirewallWriter> writer = FirewallWriter::Open();
  if (!writer.ok()) {
    LogError("netfilter socket: %s", writer.status().ToString());
    return 1;
  }
  FirewallService firewall(*std::move(writer), SnapshotTarget{kRulesDirFd, argv[1]},
                           SnapshotTarget{kBridgeDirFd, argv[2]});
  if (absl::Status started = firewall.Start(); !started.ok()) {
    LogError("firewall: %s", started.ToString());
    return 1;
  }

  return privsep::ServeChannel<privsep::NetlinkRequest, privsep::NetlinkReply>(
      front, [&](const privsep::NetlinkRequest& request) {
        if (request.op_case() != privsep::NetlinkRequest::kHealth) return firewall.Handle(request);
        privsep::NetlinkReply reply;
        privsep::AnswerHealth(privsep::ROLE_NETLINK, proc_status.get(), &reply);
        return reply;
      });
}

}  // namespace
}  // namespace coolify::netlink

int main(int argc, char** argv) { return coolify::netlink::Main(argc, argv); }
