#include "services/front/firewall_client.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "privsep/validate.h"
#include "services/http/status.h"

namespace coolify::front {

using privsep::NetlinkReply;
using privsep::NetlinkRequest;

namespace {

// The writer's refusal, with the field it names (sent beside the text).
absl::Status Refusal(const privsep::Status& status) {
  absl::Status refusal(static_cast<absl::StatusCode>(status.code()), status.message());
  return status.field().empty() ? refusal : http::WithField(refusal, status.field());
}

}  // namespace

absl::StatusOr<NetlinkReply> FirewallClient::Call(const NetlinkRequest& request) {
  absl::StatusOr<NetlinkReply> reply = client_.Call(request);
  if (!reply.ok()) return reply.status();
  if (reply->status().code() != 0) return Refusal(reply->status());
  return reply;
}

absl::StatusOr<privsep::FirewallAllowed> FirewallClient::Allow(const v1::FirewallRule& rule, const std::string& id) {
  if (!id.empty()) {
    if (absl::Status valid = privsep::ValidateCallerRuleId("id", id); !valid.ok()) return valid;
  }
  NetlinkRequest request;
  *request.mutable_allow()->mutable_rule() = rule;
  request.mutable_allow()->set_id(id);
  absl::StatusOr<NetlinkReply> reply = Call(request);
  if (!reply.ok()) return reply.status();
  if (!reply->has_allowed()) return absl::InternalError("firewall writer answered allow without an id");
  return reply->allowed();
}

// The writer treats a request that fails its validator as a compromised front end (it
// exits, and the monitor stops coold), so what the channel validator checks is checked
// here first and refused as bad input.

absl::Status FirewallClient::Delete(const std::string& id) {
  if (absl::Status valid = privsep::ValidateFirewallRuleId("id", id); !valid.ok()) return valid;
  NetlinkRequest request;
  request.mutable_delete_()->set_id(id);
  return Call(request).status();
}

absl::StatusOr<std::vector<privsep::FirewallEntry>> FirewallClient::List(const std::string& namespace_filter) {
  if (!namespace_filter.empty()) {
    if (absl::Status valid = privsep::ValidateNamespaceName("namespace", namespace_filter); !valid.ok()) return valid;
  }
  std::vector<privsep::FirewallEntry> entries;
  uint32_t offset = 0;
  for (;;) {
    NetlinkRequest request;
    request.mutable_list()->set_namespace_(namespace_filter);
    request.mutable_list()->set_offset(offset);
    absl::StatusOr<NetlinkReply> reply = Call(request);
    if (!reply.ok()) return reply.status();
    if (!reply->has_page()) return absl::InternalError("firewall writer answered list without a page");
    for (const auto& entry : reply->page().entries()) entries.push_back(entry);
    if (reply->page().done()) return entries;
    // A page that does not advance would loop forever; the writer must make progress.
    if (reply->page().next_offset() <= offset) return absl::InternalError("firewall list did not advance");
    offset = reply->page().next_offset();
  }
}

absl::StatusOr<privsep::FirewallChanges> FirewallClient::StageAndCommit(const std::vector<v1::FirewallRule>& rules,
                                                                        privsep::FirewallCommitMode mode) {
  for (size_t start = 0; start < rules.size(); start += privsep::kMaxRulesPerFrame) {
    NetlinkRequest request;
    size_t end = std::min(rules.size(), start + privsep::kMaxRulesPerFrame);
    for (size_t i = start; i < end; ++i) *request.mutable_stage()->add_rules() = rules[i];
    absl::StatusOr<NetlinkReply> sent = client_.Call(request);
    absl::Status staged = sent.status();
    if (sent.ok() && sent->status().code() != 0) {
      staged = Refusal(sent->status());
    }
    if (!staged.ok()) {
      // The writer admits an abort only while a set is staged (main.cc's table): after a
      // stage it answered, or after earlier frames, but not when the first frame never
      // left this process.
      if (sent.ok() || start > 0) {
        NetlinkRequest abort;
        abort.mutable_abort();
        // The stage error is the one worth reporting; an abort failure ends the channel anyway.
        (void)Call(abort);
      }
      return staged;
    }
  }
  return Commit(mode);
}

absl::StatusOr<privsep::FirewallChanges> FirewallClient::Commit(privsep::FirewallCommitMode mode) {
  NetlinkRequest commit;
  commit.mutable_commit()->set_mode(mode);
  absl::StatusOr<NetlinkReply> reply = Call(commit);
  if (!reply.ok()) return reply.status();
  privsep::FirewallChanges changes;
  for (;;) {
    if (!reply->has_changes()) return absl::InternalError("firewall writer answered commit without changes");
    const privsep::FirewallChanges& page = reply->changes();
    changes.mutable_ids()->MergeFrom(page.ids());
    changes.mutable_added()->MergeFrom(page.added());
    changes.mutable_removed()->MergeFrom(page.removed());
    if (page.done()) return changes;
    // The writer admits nothing but these pages until the last is read, so a page that
    // does not advance would stall the firewall for good.
    const uint32_t offset = static_cast<uint32_t>(changes.ids_size() + changes.added_size() + changes.removed_size());
    if (page.next_offset() != offset) return absl::InternalError("firewall changes did not advance");
    NetlinkRequest next;
    next.mutable_changes()->set_offset(offset);
    reply = Call(next);
    if (!reply.ok()) return reply.status();
  }
}

absl::StatusOr<privsep::FirewallChanges> FirewallClient::Bulk(const std::vector<v1::FirewallRule>& rules) {
  if (rules.empty()) return http::InvalidField("rules", "empty");
  return StageAndCommit(rules, privsep::FIREWALL_COMMIT_MODE_BULK);
}

absl::StatusOr<privsep::FirewallChanges> FirewallClient::Reconcile(const std::vector<v1::FirewallRule>& rules) {
  // An empty desired set is legitimate (remove every rule) but has no stage to send.
  if (rules.empty()) return Commit(privsep::FIREWALL_COMMIT_MODE_RECONCILE);
  return StageAndCommit(rules, privsep::FIREWALL_COMMIT_MODE_RECONCILE);
}

}  // namespace coolify::front
