// The firewall writer's request handler: turns validated NetlinkRequests into kernel
// changes (one nf_tables batch each) and durable snapshots, in that order, and answers
// only once both are done.
#ifndef COOLD_SERVICES_NETLINK_FIREWALL_SERVICE_H_
#define COOLD_SERVICES_NETLINK_FIREWALL_SERVICE_H_

#include <vector>

#include "absl/status/status.h"
#include "proto/privsep.pb.h"
#include "services/netlink/firewall_nft.h"
#include "services/netlink/firewall_policy.h"
#include "services/netlink/firewall_snapshot.h"

namespace coolify::netlink {

// Rules a run of stages may hold before its commit.
inline constexpr size_t kMaxStagedRules = 100000;

class FirewallService {
 public:
  // `policy` decides which allows are written (firewall_policy.h); it comes from the
  // writer's own configuration, never from a request.
  FirewallService(FirewallWriter writer, SnapshotTarget iptables, SnapshotTarget bridge, FirewallPolicy policy)
      : writer_(std::move(writer)),
        iptables_(std::move(iptables)),
        bridge_(std::move(bridge)),
        policy_(std::move(policy)) {}

  // Reads the kernel (the source of truth), naming each rule's namespace from the last
  // snapshot, and rewrites the snapshots from it: after a crash between a kernel write
  // and its snapshot, kernel, snapshots and list agree again from here on.
  absl::Status Start();

  // One handler per firewall op of NetlinkRequest, for the writer's dispatch table
  // (main.cc), which has admitted the request already. A refusal (a rule the grammar
  // does not take, one the policy refuses, an unknown id, a kernel error) is the reply's
  // status; a refused allow or staged set writes nothing.
  privsep::NetlinkReply AnswerAllow(const privsep::NetlinkRequest& request);
  privsep::NetlinkReply AnswerDelete(const privsep::NetlinkRequest& request);
  privsep::NetlinkReply AnswerList(const privsep::NetlinkRequest& request);
  privsep::NetlinkReply AnswerStage(const privsep::NetlinkRequest& request);
  // A commit answers with the first page of its changes; while the reply is not `done`,
  // AnswerChangesPage serves the next pages from what this commit recorded.
  privsep::NetlinkReply AnswerCommit(const privsep::NetlinkRequest& request);
  privsep::NetlinkReply AnswerChangesPage(const privsep::NetlinkRequest& request);
  privsep::NetlinkReply AnswerAbort(const privsep::NetlinkRequest& request);

 private:
  absl::Status Allow(const v1::FirewallAllow& request, privsep::FirewallAllowed* allowed);
  absl::Status Delete(const std::string& id);
  absl::Status List(const privsep::FirewallListPage& request, privsep::FirewallPage* page) const;
  absl::Status Stage(const privsep::FirewallStage& stage);
  absl::Status Commit(privsep::FirewallCommitMode mode, privsep::FirewallChanges* changes);
  absl::Status Apply(privsep::FirewallCommitMode mode, const std::vector<Rule>& rules,
                     privsep::FirewallChanges* changes);
  // The page of committed_ from `offset` (kMaxRulesPerFrame ids at most); the last page
  // clears committed_.
  void ChangesPage(uint32_t offset, privsep::FirewallChanges* page);
  absl::Status WriteSnapshots();
  // `status` into `reply` (dropping any result) and the log, when it is an error.
  privsep::NetlinkReply Finish(const privsep::NetlinkRequest& request, const absl::Status& status,
                               privsep::NetlinkReply reply);

  FirewallWriter writer_;
  SnapshotTarget iptables_;
  SnapshotTarget bridge_;
  FirewallPolicy policy_;
  std::vector<Rule> staged_;
  privsep::FirewallChanges committed_;  // the last commit's changes, until their last page is read
};

}  // namespace coolify::netlink

#endif  // COOLD_SERVICES_NETLINK_FIREWALL_SERVICE_H_
