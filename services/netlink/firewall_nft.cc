#include "services/netlink/firewall_nft.h"
#include "privsep/validate.h"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "privsep/log.h"

namespace coolify::netlink {
namespace {

// How often Load() dumps again when the kernel says a dump raced with a change.
constexpr int kLoadAttempts = 3;

}  // namespace

FirewallWriter::FirewallWriter(NftSocket socket) : socket_(std::move(socket)) {}

absl::StatusOr<FirewallWriter> FirewallWriter::Open() {
  absl::StatusOr<NftSocket> socket = NftSocket::Open();
  if (!socket.ok()) return socket.status();
  return FirewallWriter(std::move(*socket));
}

absl::StatusOr<FirewallWriter> FirewallWriter::Adopt(privsep::UniqueFd netlink_socket) {
  absl::StatusOr<NftSocket> socket = NftSocket::Adopt(std::move(netlink_socket));
  if (!socket.ok()) return socket.status();
  return FirewallWriter(std::move(*socket));
}

absl::StatusOr<bool> FirewallWriter::ChainExists(Plane plane) {
  absl::Status found = socket_.Get(
      NFT_MSG_GETCHAIN, LocationOf(plane).family,
      [plane](nlmsghdr* nlh) { BuildChainPayload(nlh, plane); },
      [](const nlmsghdr*) { return absl::OkStatus(); });
  if (found.ok()) return true;
  if (absl::IsNotFound(found)) return false;
  return found;
}

absl::Status FirewallWriter::DumpChain(Plane plane,
                                       absl::FunctionRef<void(const nftnl_rule*)> on_rule) {
  return socket_.Dump(
      NFT_MSG_GETRULE, LocationOf(plane).family,
      [plane](nlmsghdr* nlh) { BuildChainRulesPayload(nlh, plane); },
      [&](const nlmsghdr* nlh) -> absl::Status {
        absl::StatusOr<NftnlRule> rule = ParseRuleMessage(nlh);
        if (!rule.ok()) return rule.status();
        on_rule(rule->get());
        return absl::OkStatus();
      });
}

absl::StatusOr<LoadReport> FirewallWriter::Load(const NamespaceHints& hints) {
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<LoadReport> report = LoadOnce(hints);
    if (report.ok() || !absl::IsAborted(report.status()) || attempt == kLoadAttempts) {
      return report;
    }
  }
}

absl::StatusOr<LoadReport> FirewallWriter::LoadOnce(const NamespaceHints& hints) {
  LoadReport report;
  absl::StatusOr<bool> ip_exists = ChainExists(Plane::kIp);
  if (!ip_exists.ok()) return ip_exists.status();
  absl::StatusOr<bool> bridge_exists = ChainExists(Plane::kBridge);
  if (!bridge_exists.ok()) return bridge_exists.status();
  report.ip_chain_exists = *ip_exists;
  report.bridge_plane_active = *bridge_exists;

  // Built aside and swapped in at the end: a failed Load leaves the writer as it was.
  FirewallIndex index;
  auto foreign = [&](Plane plane, const nftnl_rule& rule, std::string reason) {
    report.foreign.push_back(ForeignRule{plane, nftnl_rule_get_u64(&rule, NFTNL_RULE_HANDLE),
                                         std::move(reason), DescribeRule(rule)});
  };
  if (*ip_exists) {
    absl::Status dumped = DumpChain(Plane::kIp, [&](const nftnl_rule* rule_ptr) {
      const nftnl_rule& rule = *rule_ptr;
      absl::StatusOr<DecodedRule> decoded = DecodeRule(Plane::kIp, rule);
      if (!decoded.ok()) return foreign(Plane::kIp, rule, std::string(decoded.status().message()));
      if (const FirewallEntry* first = index.Find(decoded->id)) {
        return foreign(Plane::kIp, rule,
                       absl::StrFormat("a second rule with id %s (first: handle %d)",
                                       decoded->id, *first->ip_handle));
      }
      index.Append(FirewallEntry{decoded->id, decoded->rule, decoded->handle, std::nullopt});
    });
    if (!dumped.ok()) return dumped;
  }
  if (*bridge_exists) {
    absl::Status dumped = DumpChain(Plane::kBridge, [&](const nftnl_rule* rule_ptr) {
      const nftnl_rule& rule = *rule_ptr;
      absl::StatusOr<DecodedRule> decoded = DecodeRule(Plane::kBridge, rule);
      if (!decoded.ok()) {
        return foreign(Plane::kBridge, rule, std::string(decoded.status().message()));
      }
      FirewallEntry* entry = index.Find(decoded->id);
      if (entry == nullptr) {
        index.Append(FirewallEntry{decoded->id, decoded->rule, std::nullopt, decoded->handle});
      } else if (entry->bridge_handle) {
        foreign(Plane::kBridge, rule,
                absl::StrFormat("a second rule with id %s (first: handle %d)", decoded->id,
                                *entry->bridge_handle));
      } else if (!entry->rule.SameTuple(decoded->rule)) {
        foreign(Plane::kBridge, rule,
                absl::StrFormat("id %s names another tuple on the ip plane", decoded->id));
      } else {
        entry->bridge_handle = decoded->handle;
      }
    });
    if (!dumped.ok()) return dumped;
  }

  // Namespaces: a hint counts only if it hashes, with the tuple, to the id. The index
  // being replaced still knows the namespaces of rules written or hinted before.
  for (const FirewallEntry& const_entry : index) {
    FirewallEntry& entry = *index.Find(const_entry.id);
    std::optional<std::string> candidate;
    if (auto hint = hints.find(entry.id); hint != hints.end()) {
      candidate = hint->second;
    } else if (const FirewallEntry* known = index_.Find(entry.id)) {
      candidate = known->rule.namespace_name;
    }
    if (candidate) {
      Rule named = entry.rule;
      named.namespace_name = *candidate;
      // A caller's id hashes nothing: its hint comes from the snapshot this writer wrote.
      if (!privsep::IsDerivedRuleId(entry.id) || RuleId(named) == entry.id) {
        entry.rule.namespace_name = *candidate;
      }
    }
    if (entry.rule.namespace_name.empty()) ++report.without_namespace;
  }
  report.rules = index.size();

  index_ = std::move(index);
  ip_chain_exists_ = *ip_exists;
  bridge_active_ = *bridge_exists;
  loaded_ = true;
  if (!bridge_active_ && !permissive_warned_) {
    LogWarn("%s is missing: permissive mode, the intra-host plane is not written until the "
            "bridge scaffold exists; %s still is",
            PlaneName(Plane::kBridge), PlaneName(Plane::kIp));
  }
  permissive_warned_ = !bridge_active_;
  return report;
}

absl::Status FirewallWriter::EnsureLoaded() {
  if (loaded_) return absl::OkStatus();
  absl::StatusOr<LoadReport> report = Load();
  if (!report.ok()) return report.status();
  if (!report->foreign.empty()) {
    LogWarn("%d rules in our chains were not written by coold; left in place",
            report->foreign.size());
  }
  return absl::OkStatus();
}

absl::StatusOr<ApplyResult> FirewallWriter::Apply(const std::vector<Rule>& adds,
                                                  const std::vector<std::string>& deletes) {
  if (absl::Status loaded = EnsureLoaded(); !loaded.ok()) return loaded;

  // Everything that can be refused without the kernel is refused here.
  std::vector<std::string> add_ids;
  add_ids.reserve(adds.size());
  absl::flat_hash_map<std::string, size_t> first_add;
  for (size_t i = 0; i < adds.size(); ++i) {
    if (absl::Status valid = CheckRule(adds[i]); !valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("rules[%d]: %s", i, valid.message()));
    }
    add_ids.push_back(IdOf(adds[i]));
    // A caller's id names one tuple: naming another with it is a conflict, never a
    // silent second meaning (revoke it first).
    if (const FirewallEntry* known = index_.Find(add_ids.back());
        known != nullptr && (!known->rule.SameTuple(adds[i]) ||
                             (!known->rule.namespace_name.empty() && known->rule.namespace_name != adds[i].namespace_name))) {
      return absl::AlreadyExistsError(absl::StrFormat("rule id %s already allows %s in namespace %s",
                                                      add_ids.back(), RuleIdInput(known->rule),
                                                      known->rule.namespace_name));
    }
    auto [it, inserted] = first_add.emplace(add_ids.back(), i);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "rules[%d] duplicates rules[%d] (%s, id %s)", i, it->second,
          RuleIdInput(adds[i]), add_ids.back()));
    }
  }
  absl::flat_hash_set<std::string> deleted;
  for (const std::string& id : deletes) {
    if (absl::Status valid = privsep::ValidateFirewallRuleId("id", id); !valid.ok()) return valid;
    if (index_.Find(id) == nullptr) {
      return absl::NotFoundError(absl::StrFormat("rule %s not found", id));
    }
    if (!deleted.insert(id).second) {
      return absl::InvalidArgumentError(absl::StrFormat("id %s is deleted twice", id));
    }
    if (first_add.contains(id)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("id %s is both added and deleted", id));
    }
  }

  // The batch, and beside it what each message does: enough to name it in an error
  // and to file the handles the kernel echoes.
  struct Op {
    enum Kind { kCreateTable, kCreateChain, kAdd, kDelete } kind;
    Plane plane;
    size_t item;  // into adds (kAdd) or deletes (kDelete)
    uint64_t handle;
  };
  NftBatch batch;
  std::vector<Op> ops;
  for (size_t d = 0; d < deletes.size(); ++d) {
    const FirewallEntry& entry = *index_.Find(deletes[d]);
    for (auto [plane, handle] : {std::pair{Plane::kIp, entry.ip_handle},
                                 std::pair{Plane::kBridge, entry.bridge_handle}}) {
      if (!handle) continue;
      batch.Add(NFT_MSG_DELRULE, LocationOf(plane).family, 0,
                [plane = plane, h = *handle](nlmsghdr* nlh) {
                  BuildRuleHandlePayload(nlh, plane, h);
                });
      ops.push_back(Op{Op::kDelete, plane, d, *handle});
    }
  }
  bool creating_ip_chain = false;
  std::vector<size_t> ip_adds;  // positions of each plane's NEWRULE messages, in order
  std::vector<size_t> bridge_adds;
  for (size_t i = 0; i < adds.size(); ++i) {
    FirewallEntry* entry = index_.Find(add_ids[i]);
    // A rule read back without a namespace gets it from the first request naming it:
    // same id, so the same namespace (the id hashes it).
    if (entry != nullptr && entry->rule.namespace_name.empty()) {
      entry->rule.namespace_name = adds[i].namespace_name;
    }
    const bool need_ip = entry == nullptr || !entry->ip_handle;
    const bool need_bridge = bridge_active_ && (entry == nullptr || !entry->bridge_handle);
    if (need_ip && !ip_chain_exists_ && !creating_ip_chain) {
      // What `iptables -N COOLIFY-ALLOW` sends: the table (a no-op if it exists), then
      // the chain.
      batch.Add(NFT_MSG_NEWTABLE, NFPROTO_IPV4, NLM_F_CREATE,
                [](nlmsghdr* nlh) { BuildIpTablePayload(nlh); });
      ops.push_back(Op{Op::kCreateTable, Plane::kIp, 0, 0});
      batch.Add(NFT_MSG_NEWCHAIN, NFPROTO_IPV4, NLM_F_EXCL,
                [](nlmsghdr* nlh) { BuildChainPayload(nlh, Plane::kIp); });
      ops.push_back(Op{Op::kCreateChain, Plane::kIp, 0, 0});
      creating_ip_chain = true;
    }
    for (auto [plane, needed] :
         {std::pair{Plane::kIp, need_ip}, std::pair{Plane::kBridge, need_bridge}}) {
      if (!needed) continue;
      const size_t message = batch.Add(NFT_MSG_NEWRULE, LocationOf(plane).family,
                                       NLM_F_CREATE | NLM_F_APPEND,
                                       [&, plane = plane](nlmsghdr* nlh) {
                                         BuildRulePayload(nlh, plane, adds[i], add_ids[i]);
                                       });
      ops.push_back(Op{Op::kAdd, plane, i, 0});
      (plane == Plane::kIp ? ip_adds : bridge_adds).push_back(message);
    }
  }
  // Handles: the kernel numbers a table's new objects from one counter, in the order it
  // processes the batch, under the lock that keeps any other batch out meanwhile; the
  // only other object this batch may create in a table (the ip chain) comes before its
  // rules. So a plane's new rules get consecutive handles, and the echoes of its first
  // and last rule give all of them. The echoes also check it: last - first must be
  // n - 1, or the handles are left to the next Load().
  for (const std::vector<size_t>* plane_adds : {&ip_adds, &bridge_adds}) {
    if (plane_adds->empty()) continue;
    batch.AddFlags(plane_adds->front(), NLM_F_ECHO);
    batch.AddFlags(plane_adds->back(), NLM_F_ECHO);
  }

  ApplyResult result;
  if (batch.empty()) return result;
  absl::StatusOr<BatchResult> committed = socket_.Commit(batch, [&](size_t message) {
    const Op& op = ops[message];
    switch (op.kind) {
      case Op::kCreateTable:
        return std::string("create table ip filter");
      case Op::kCreateChain:
        return absl::StrFormat("create chain %s", PlaneName(op.plane));
      case Op::kAdd:
        return absl::StrFormat("add rule %s to %s", add_ids[op.item], PlaneName(op.plane));
      case Op::kDelete:
        return absl::StrFormat("delete rule %s (handle %d) from %s", deletes[op.item],
                               op.handle, PlaneName(op.plane));
    }
    return std::string();
  });
  if (!committed.ok()) {
    if (absl::IsNotFound(committed.status()) || absl::IsAlreadyExists(committed.status()) ||
        absl::IsDataLoss(committed.status())) {
      loaded_ = false;
    }
    return committed.status();
  }

  if (creating_ip_chain) ip_chain_exists_ = true;
  for (const std::string& id : deletes) {
    index_.Erase(id);
    result.removed.push_back(id);
  }
  for (size_t message = 0; message < ops.size(); ++message) {
    const Op& op = ops[message];
    if (op.kind != Op::kAdd) continue;
    const std::string& id = add_ids[op.item];
    if (index_.Find(id) == nullptr) {
      index_.Append(FirewallEntry{id, adds[op.item], std::nullopt, std::nullopt});
    }
    if (result.added.empty() || result.added.back() != id) result.added.push_back(id);
  }
  for (auto [plane, plane_adds] :
       {std::pair{Plane::kIp, &ip_adds}, std::pair{Plane::kBridge, &bridge_adds}}) {
    if (plane_adds->empty()) continue;
    const uint64_t first = committed->rule_handles[plane_adds->front()];
    const uint64_t last = committed->rule_handles[plane_adds->back()];
    if (first == 0 || last < first || last - first != plane_adds->size() - 1) {
      loaded_ = false;  // the rules are in place; their handles come from the kernel
      continue;
    }
    for (size_t k = 0; k < plane_adds->size(); ++k) {
      FirewallEntry& entry = *index_.Find(add_ids[ops[(*plane_adds)[k]].item]);
      (plane == Plane::kIp ? entry.ip_handle : entry.bridge_handle) = first + k;
    }
  }
  return result;
}

absl::StatusOr<std::string> FirewallWriter::Allow(const Rule& rule) {
  absl::StatusOr<ApplyResult> applied = Apply({rule}, {});
  if (!applied.ok()) return applied.status();
  return IdOf(rule);
}

absl::Status FirewallWriter::Delete(const std::string& id) {
  return Apply({}, {id}).status();
}

std::vector<FirewallEntry> FirewallWriter::List(std::string_view namespace_filter) const {
  std::vector<FirewallEntry> result;
  for (const FirewallEntry& entry : index_) {
    if (namespace_filter.empty() || entry.rule.namespace_name == namespace_filter) {
      result.push_back(entry);
    }
  }
  return result;
}

absl::StatusOr<std::vector<std::string>> FirewallWriter::Bulk(const std::vector<Rule>& rules) {
  absl::StatusOr<ApplyResult> applied = Apply(rules, {});
  if (!applied.ok()) return applied.status();
  std::vector<std::string> ids;
  ids.reserve(rules.size());
  for (const Rule& rule : rules) ids.push_back(IdOf(rule));
  return ids;
}

absl::StatusOr<ApplyResult> FirewallWriter::Reconcile(const std::vector<Rule>& desired) {
  // The deletions are computed from the index, so it must describe the kernel first.
  if (absl::Status loaded = EnsureLoaded(); !loaded.ok()) return loaded;
  absl::flat_hash_set<std::string> wanted;
  for (const Rule& rule : desired) wanted.insert(IdOf(rule));
  std::vector<std::string> deletes;
  for (const FirewallEntry& entry : index_) {
    if (!wanted.contains(entry.id)) deletes.push_back(entry.id);
  }
  return Apply(desired, deletes);
}

}  // namespace coolify::netlink
