// The front end's side of the firewall channel: each call is one request (or, for sets
// larger than a frame, a run of stages and a commit) to coold-netlink, the only process
// that can write the kernel's firewall.
#ifndef COOLD_SERVICES_FRONT_FIREWALL_CLIENT_H_
#define COOLD_SERVICES_FRONT_FIREWALL_CLIENT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "privsep/channel.h"
#include "proto/commands.pb.h"
#include "proto/privsep.pb.h"

namespace coolify::front {

class FirewallClient {
 public:
  explicit FirewallClient(privsep::Channel& channel) : client_(channel) {}

  // `id`: the caller's name for the rule (privsep::ValidateCallerRuleId), "" = derived.
  absl::StatusOr<privsep::FirewallAllowed> Allow(const v1::FirewallRule& rule, const std::string& id = "");
  absl::Status Delete(const std::string& id);
  // Every entry, or those of one namespace, however many pages that takes.
  absl::StatusOr<std::vector<privsep::FirewallEntry>> List(const std::string& namespace_filter);
  // All or nothing: the writer applies the whole set in one batch or nothing at all.
  absl::StatusOr<privsep::FirewallChanges> Bulk(const std::vector<v1::FirewallRule>& rules);
  // Makes the table exactly `rules`, reporting what was added and removed.
  absl::StatusOr<privsep::FirewallChanges> Reconcile(const std::vector<v1::FirewallRule>& rules);

 private:
  absl::StatusOr<privsep::NetlinkReply> Call(const privsep::NetlinkRequest& request);
  // The commit and every page of its changes.
  absl::StatusOr<privsep::FirewallChanges> Commit(privsep::FirewallCommitMode mode);
  absl::StatusOr<privsep::FirewallChanges> StageAndCommit(const std::vector<v1::FirewallRule>& rules,
                                                          privsep::FirewallCommitMode mode);

  privsep::Client<privsep::NetlinkRequest, privsep::NetlinkReply> client_;
};

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_FIREWALL_CLIENT_H_
