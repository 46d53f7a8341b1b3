#include "services/netlink/firewall_service.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "privsep/log.h"
#include "privsep/validate.h"
#include "services/http/status.h"
#include "services/netlink/firewall_rule.h"

namespace coolify::netlink {
namespace {

v1::FirewallRule ToProto(const Rule& rule) {
  v1::FirewallRule proto;
  proto.set_namespace_(rule.namespace_name);
  proto.set_src(rule.src.length == 32 ? FormatIpv4Address(rule.src.address) : FormatIpv4Prefix(rule.src));
  proto.set_dst(rule.dst.length == 32 ? FormatIpv4Address(rule.dst.address) : FormatIpv4Prefix(rule.dst));
  proto.set_proto(std::string(ProtocolName(rule.protocol)));
  proto.set_port(rule.port);
  return proto;
}

// The field a refusal names crosses beside its text, never inside it only.
void SetStatus(const absl::Status& status, privsep::NetlinkReply* reply) {
  reply->mutable_status()->set_code(static_cast<int>(status.code()));
  reply->mutable_status()->set_message(std::string(status.message()));
  reply->mutable_status()->set_field(http::FieldOf(status));
}

}  // namespace

absl::Status FirewallService::Start() {
  absl::StatusOr<NamespaceHints> hints = ReadSnapshotNamespaces(iptables_.dir_fd, iptables_.name);
  if (!hints.ok()) {
    // An unreadable snapshot costs only the namespace names; the kernel still decides.
    LogWarn("snapshot %s: %s; rules keep their ids but not their namespaces", iptables_.name,
            hints.status().ToString());
    hints = NamespaceHints();
  }
  absl::StatusOr<LoadReport> report = writer_.Load(*hints);
  if (!report.ok()) return report.status();
  for (const ForeignRule& foreign : report->foreign) {
    LogWarn("rule handle %u in our chain was not written by coold (%s); left alone", foreign.handle,
            foreign.reason);
  }
  LogInfo("firewall: %u rules from the kernel; bridge plane %s", report->rules,
          report->bridge_plane_active ? "active" : "missing (permissive)");
  // Kept, not removed: the kernel is the source of truth, and a rule written under an
  // earlier policy may carry traffic; the operator sees it here, and a reconcile or a
  // delete removes it.
  for (const FirewallEntry& entry : writer_.index()) {
    if (absl::Status allowed = CheckAllowed(policy_, entry.rule); !allowed.ok()) {
      LogWarn("rule %s in the kernel is outside the firewall policy (%s); kept until deleted or reconciled away",
              entry.id, allowed.message());
    }
  }
  return WriteSnapshots();
}

absl::Status FirewallService::WriteSnapshots() {
  return netlink::WriteSnapshots(iptables_, bridge_, writer_.index());
}

absl::Status FirewallService::Allow(const v1::FirewallAllow& request, privsep::FirewallAllowed* allowed) {
  absl::StatusOr<Rule> rule = ValidateRule(request.rule());
  if (!rule.ok()) return rule.status();
  if (absl::Status allowed_by_policy = CheckAllowed(policy_, *rule); !allowed_by_policy.ok()) {
    return allowed_by_policy;
  }
  if (!request.id().empty()) {
    if (absl::Status valid = privsep::ValidateCallerRuleId("id", request.id()); !valid.ok()) return valid;
    rule->caller_id = request.id();
  }
  const bool existed = writer_.index().Find(IdOf(*rule)) != nullptr;
  absl::StatusOr<std::string> id = writer_.Allow(*rule);
  if (!id.ok()) return id.status();
  allowed->set_id(*id);
  allowed->set_created(!existed);
  return existed ? absl::OkStatus() : WriteSnapshots();
}

absl::Status FirewallService::Delete(const std::string& id) {
  if (absl::Status valid = privsep::ValidateFirewallRuleId("id", id); !valid.ok()) return valid;
  if (writer_.index().Find(id) == nullptr) return absl::NotFoundError(absl::StrCat("rule ", id, " not found"));
  if (absl::Status deleted = writer_.Delete(id); !deleted.ok()) return deleted;
  return WriteSnapshots();
}

absl::Status FirewallService::List(const privsep::FirewallListPage& request, privsep::FirewallPage* page) const {
  std::vector<FirewallEntry> entries = writer_.List(request.namespace_());
  const size_t start = std::min<size_t>(request.offset(), entries.size());
  const size_t end = std::min(entries.size(), start + privsep::kMaxRulesPerFrame);
  for (size_t i = start; i < end; ++i) {
    privsep::FirewallEntry* entry = page->add_entries();
    entry->set_id(entries[i].id);
    *entry->mutable_rule() = ToProto(entries[i].rule);
  }
  page->set_next_offset(static_cast<uint32_t>(end));
  page->set_done(end == entries.size());
  return absl::OkStatus();
}

absl::Status FirewallService::Stage(const privsep::FirewallStage& stage) {
  if (staged_.size() + static_cast<size_t>(stage.rules_size()) > kMaxStagedRules) {
    staged_.clear();
    return absl::ResourceExhaustedError(absl::StrCat("rules: more than ", kMaxStagedRules, " in one set"));
  }
  for (int i = 0; i < stage.rules_size(); ++i) {
    absl::StatusOr<Rule> rule = ValidateRule(stage.rules(i));
    if (rule.ok()) {
      if (absl::Status allowed = CheckAllowed(policy_, *rule); !allowed.ok()) rule = allowed;
    }
    if (!rule.ok()) {
      // Name the rule by its place in the whole set, as the caller sent it; the set is
      // dropped, so its commit writes nothing.
      const size_t index = staged_.size();
      staged_.clear();
      absl::Status placed(rule.status().code(), absl::StrCat("rules[", index, "].", rule.status().message()));
      const std::string field = http::FieldOf(rule.status());
      return field.empty() ? placed : http::WithField(placed, absl::StrCat("rules[", index, "].", field));
    }
    staged_.push_back(*std::move(rule));
  }
  return absl::OkStatus();
}

absl::Status FirewallService::Commit(privsep::FirewallCommitMode mode, privsep::FirewallChanges* changes) {
  std::vector<Rule> rules = std::move(staged_);
  staged_.clear();
  committed_.Clear();
  absl::Status done = Apply(mode, rules, &committed_);
  if (!done.ok()) {
    committed_.Clear();
    return done;
  }
  ChangesPage(0, changes);
  return absl::OkStatus();
}

absl::Status FirewallService::Apply(privsep::FirewallCommitMode mode, const std::vector<Rule>& rules,
                                    privsep::FirewallChanges* changes) {
  if (mode == privsep::FIREWALL_COMMIT_MODE_BULK) {
    absl::flat_hash_set<std::string> before;
    for (const FirewallEntry& entry : writer_.index()) before.insert(entry.id);
    absl::StatusOr<std::vector<std::string>> ids = writer_.Bulk(rules);
    if (!ids.ok()) return ids.status();
    for (const std::string& id : *ids) {
      changes->add_ids(id);
      if (!before.contains(id)) changes->add_added(id);
    }
  } else {
    absl::StatusOr<ApplyResult> result = writer_.Reconcile(rules);
    if (!result.ok()) return result.status();
    for (const std::string& id : result->added) changes->add_added(id);
    for (const std::string& id : result->removed) changes->add_removed(id);
  }
  if (changes->added_size() == 0 && changes->removed_size() == 0) return absl::OkStatus();
  return WriteSnapshots();
}

void FirewallService::ChangesPage(uint32_t offset, privsep::FirewallChanges* page) {
  const size_t total =
      static_cast<size_t>(committed_.ids_size() + committed_.added_size() + committed_.removed_size());
  const size_t start = std::min<size_t>(offset, total);
  const size_t end = std::min(total, start + privsep::kMaxRulesPerFrame);
  size_t list_start = 0;  // where the current list begins in the one sequence
  for (auto [from, to] : {std::pair{&committed_.ids(), page->mutable_ids()},
                          std::pair{&committed_.added(), page->mutable_added()},
                          std::pair{&committed_.removed(), page->mutable_removed()}}) {
    const size_t list_end = list_start + static_cast<size_t>(from->size());
    for (size_t i = std::max(start, list_start); i < std::min(end, list_end); ++i) *to->Add() = (*from)[i - list_start];
    list_start = list_end;
  }
  page->set_next_offset(static_cast<uint32_t>(end));
  page->set_done(end == total);
  // Nothing is asked twice: the front end reads the pages in order, once.
  if (end == total) committed_.Clear();
}

privsep::NetlinkReply FirewallService::Finish(const privsep::NetlinkRequest& request, const absl::Status& status,
                                              privsep::NetlinkReply reply) {
  if (!status.ok()) {
    reply.clear_result();
    SetStatus(status, &reply);
    LogWarn("%s: %s", privsep::NetlinkRequest::descriptor()->FindFieldByNumber(request.op_case())->name(),
            status.ToString());
  }
  return reply;
}

privsep::NetlinkReply FirewallService::AnswerAllow(const privsep::NetlinkRequest& request) {
  privsep::NetlinkReply reply;
  const absl::Status status = Allow(request.allow(), reply.mutable_allowed());
  return Finish(request, status, std::move(reply));
}

privsep::NetlinkReply FirewallService::AnswerDelete(const privsep::NetlinkRequest& request) {
  return Finish(request, Delete(request.delete_().id()), privsep::NetlinkReply());
}

privsep::NetlinkReply FirewallService::AnswerList(const privsep::NetlinkRequest& request) {
  privsep::NetlinkReply reply;
  const absl::Status status = List(request.list(), reply.mutable_page());
  return Finish(request, status, std::move(reply));
}

privsep::NetlinkReply FirewallService::AnswerStage(const privsep::NetlinkRequest& request) {
  return Finish(request, Stage(request.stage()), privsep::NetlinkReply());
}

privsep::NetlinkReply FirewallService::AnswerCommit(const privsep::NetlinkRequest& request) {
  privsep::NetlinkReply reply;
  const absl::Status status = Commit(request.commit().mode(), reply.mutable_changes());
  return Finish(request, status, std::move(reply));
}

privsep::NetlinkReply FirewallService::AnswerChangesPage(const privsep::NetlinkRequest& request) {
  privsep::NetlinkReply reply;
  ChangesPage(request.changes().offset(), reply.mutable_changes());
  return reply;
}

privsep::NetlinkReply FirewallService::AnswerAbort(const privsep::NetlinkRequest& /*request*/) {
  staged_.clear();
  return privsep::NetlinkReply();
}

}  // namespace coolify::netlink
