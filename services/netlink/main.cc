// coold-netlink. The firewall writer: the one coold process with CAP_NET_ADMIN. It acts only
// on requests from the front end (fd 3) that its dispatch table admits, and writes its
// snapshots beneath the two directories the monitor opened for it (fd 4:
// COOLD_RULES_PATH's, fd 5: COOLD_BRIDGE_RULES_PATH's; argv[1] and argv[2] name the files).
// argv[3..7] are what an allow may name (firewall_policy.h), from the monitor's
// configuration: MGMT_IP DESTINATIONS SOURCES PORTS PUBLIC_PORTS.
#include "privsep/channel.h"
#include "privsep/child.h"
#include "privsep/dispatch.h"
#include "privsep/log.h"
#include "privsep/spawn.h"
#include "proto/privsep.pb.h"
#include "services/netlink/firewall_service.h"

namespace coolify::netlink {
namespace {

using privsep::NetlinkReply;
using privsep::NetlinkRequest;
using privsep::Phases;
using Table = privsep::DispatchTable<NetlinkRequest, NetlinkReply>;

constexpr int kRulesDirFd = privsep::kFirstPassedFd + 1;
constexpr int kBridgeDirFd = privsep::kFirstPassedFd + 2;

// The writer's phases. The front end's first request is its health round; a staged set
// (FirewallStage, possibly several frames) admits only more stages, its commit or its
// abort, so nothing else can slip between a set's frames and its batch. A commit whose
// changes take more than its reply admits only the requests for their pages until the
// last is read.
enum Phase { kHandshake = 0, kServing = 1, kStaging = 2, kPaging = 3 };

int Main(int argc, char** argv) {
  SetLogRole("netlink");
  if (argc != 8) {
    LogError("usage: coold-netlink RULES_NAME BRIDGE_RULES_NAME MGMT_IP DESTINATIONS SOURCES PORTS PUBLIC_PORTS "
             "(started by coold)");
    return 2;
  }
  absl::StatusOr<FirewallPolicy> policy = ParseFirewallPolicy(argv[3], argv[4], argv[5], argv[6], argv[7]);
  if (!policy.ok()) {
    LogError("firewall policy: %s", policy.status().ToString());
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
                           SnapshotTarget{kBridgeDirFd, argv[2]}, *policy);
  LogInfo("firewall policy: %s", DescribeFirewallPolicy(*policy));
  if (absl::Status started = firewall.Start(); !started.ok()) {
    LogError("firewall: %s", started.ToString());
    return 1;
  }

  auto answer_health = [&](const NetlinkRequest&, Table::Call&) {
    NetlinkReply reply;
    privsep::AnswerHealth(privsep::ROLE_NETLINK, proc_status.get(), &reply);
    return reply;
  };
  auto op = [&firewall](NetlinkReply (FirewallService::*answer)(const NetlinkRequest&)) {
    return [&firewall, answer](const NetlinkRequest& request, Table::Call&) { return (firewall.*answer)(request); };
  };
  auto paged = [&firewall](NetlinkReply (FirewallService::*answer)(const NetlinkRequest&)) {
    return [&firewall, answer](const NetlinkRequest& request, Table::Call& call) {
      NetlinkReply reply = (firewall.*answer)(request);
      if (reply.has_changes() && !reply.changes().done()) call.next_phase = kPaging;
      return reply;
    };
  };
  // Validate(NetlinkRequest) has checked every op's fields by the time a row is looked
  // up; the rule grammar itself is the writer's own parser's (firewall_rule.h), which
  // answers a rule it refuses with INVALID_ARGUMENT rather than ending the writer.
  //  op                      phases                          once   fds validator handler                              then
  Table table("netlink", kHandshake, {
      {NetlinkRequest::kHealth, Phases({kHandshake, kServing}), false, 0, nullptr, answer_health,                          kServing},
      {NetlinkRequest::kAllow,  Phases({kServing}),             false, 0, nullptr, op(&FirewallService::AnswerAllow)},
      {NetlinkRequest::kDelete, Phases({kServing}),             false, 0, nullptr, op(&FirewallService::AnswerDelete)},
      {NetlinkRequest::kList,   Phases({kServing}),             false, 0, nullptr, op(&FirewallService::AnswerList)},
      {NetlinkRequest::kStage,  Phases({kServing, kStaging}),   false, 0, nullptr, op(&FirewallService::AnswerStage),  kStaging},
      // A commit with nothing staged is a reconcile to the empty set (or an empty bulk).
      {NetlinkRequest::kCommit, Phases({kServing, kStaging}),   false, 0, nullptr, paged(&FirewallService::AnswerCommit), kServing},
      {NetlinkRequest::kAbort,  Phases({kStaging}),             false, 0, nullptr, op(&FirewallService::AnswerAbort),     kServing},
      {NetlinkRequest::kChanges, Phases({kPaging}),             false, 0, nullptr, paged(&FirewallService::AnswerChangesPage), kServing},
  });
  return table.Serve(front);
}

}  // namespace
}  // namespace coolify::netlink

int main(int argc, char** argv) { return coolify::netlink::Main(argc, argv); }
