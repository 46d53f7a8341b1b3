#include "services/dns/name_table.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/ascii.h"

namespace coolify::dns {

const NameSnapshot::Names* NameSnapshot::Find(const std::string& namespace_name) const {
  auto it = namespaces.find(namespace_name);
  return it == namespaces.end() ? nullptr : &it->second;
}

NameTable::NameTable() : current_(std::make_shared<NameSnapshot>()) {}

size_t NameTable::Replace(const std::vector<endpoints::EndpointRow>& rows) {
  auto next = std::make_shared<NameSnapshot>();
  for (const auto& row : rows) {
    if (!endpoints::ServesDns(row) || !endpoints::ValidateEndpointRow(row).ok()) continue;
    in_addr addr{};
    if (inet_pton(AF_INET, row.ip.c_str(), &addr) != 1) continue;
    auto& ips = next->namespaces[row.namespace_name][absl::AsciiStrToLower(row.container_name)];
    const uint32_t ip = ntohl(addr.s_addr);
    if (std::find(ips.begin(), ips.end(), ip) == ips.end()) ips.push_back(ip);
  }
  for (auto& [ns, names] : next->namespaces) {
    next->names += names.size();
    for (auto& [name, ips] : names) std::sort(ips.begin(), ips.end());
  }
  const size_t count = next->names;
  {
    absl::MutexLock lock(&mu_);
    current_ = std::move(next);
  }
  generation_.fetch_add(1, std::memory_order_release);
  return count;
}

std::shared_ptr<const NameSnapshot> NameTable::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

}  // namespace coolify::dns
