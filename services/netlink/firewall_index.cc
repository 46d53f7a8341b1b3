#include "services/netlink/firewall_index.h"

#include <utility>

namespace coolify::netlink {

const FirewallEntry* FirewallIndex::Find(const std::string& id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &*it->second;
}

FirewallEntry* FirewallIndex::Find(const std::string& id) {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &*it->second;
}

FirewallEntry& FirewallIndex::Append(FirewallEntry entry) {
  std::string id = entry.id;
  auto it = entries_.insert(entries_.end(), std::move(entry));
  by_id_.emplace(std::move(id), it);
  return *it;
}

void FirewallIndex::Erase(const std::string& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  entries_.erase(it->second);
  by_id_.erase(it);
}

}  // namespace coolify::netlink
