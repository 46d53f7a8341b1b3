// The in-memory index of the allow rules coold wrote: rule id -> tuple and the kernel
// handle of the rule on each plane, kept in chain order.
//
// Chain order matters because snapshots must restore the chain as it was; lookups by id
// must not cost a scan because every mutation does one. Hence a list (stable order,
// O(1) append and erase) indexed by a hash map of ids.
#ifndef COOLD_SERVICES_NETLINK_FIREWALL_INDEX_H_
#define COOLD_SERVICES_NETLINK_FIREWALL_INDEX_H_

#include <cstdint>
#include <list>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "services/netlink/firewall_rule.h"

namespace coolify::netlink {

// Rule id -> namespace: what the kernel does not store (see FirewallWriter::Load).
using NamespaceHints = absl::flat_hash_map<std::string, std::string>;

struct FirewallEntry {
  std::string id;
  // rule.namespace_name is empty when the rule was read back from the kernel and no
  // namespace hint matched it (see FirewallWriter::Load).
  Rule rule;
  // The rule's handle in ip filter COOLIFY-ALLOW; unset when the ip plane lacks it.
  std::optional<uint64_t> ip_handle;
  // The rule's handle in bridge coolify_bridge coolify_allow; unset when the bridge
  // plane lacks it (permissive mode, or written before the bridge scaffold existed).
  std::optional<uint64_t> bridge_handle;

  bool operator==(const FirewallEntry& other) const {
    return id == other.id && rule == other.rule && ip_handle == other.ip_handle &&
           bridge_handle == other.bridge_handle;
  }
};

class FirewallIndex {
 public:
  using const_iterator = std::list<FirewallEntry>::const_iterator;

  // nullptr when `id` is not indexed.
  const FirewallEntry* Find(const std::string& id) const;
  FirewallEntry* Find(const std::string& id);

  // Appends `entry`, whose id must not be indexed yet.
  FirewallEntry& Append(FirewallEntry entry);

  // Removes `id` if indexed.
  void Erase(const std::string& id);

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  // Entries in chain order.
  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }

 private:
  std::list<FirewallEntry> entries_;
  absl::flat_hash_map<std::string, std::list<FirewallEntry>::iterator> by_id_;
};

}  // namespace coolify::netlink

#endif  // COOLD_SERVICES_NETLINK_FIREWALL_INDEX_H_
