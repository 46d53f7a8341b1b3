#include "policy/namespace_rules.h"

namespace coolify::policy {

std::string ExpandNamespace(std::string_view pattern, std::string_view name) {
  std::string out;
  out.reserve(pattern.size() + name.size());
  size_t start = 0;
  while (true) {
    const size_t at = pattern.find(kNamespacePlaceholder, start);
    if (at == std::string_view::npos) {
      out.append(pattern.substr(start));
      return out;
    }
    out.append(pattern.substr(start, at - start));
    out.append(name);
    start = at + kNamespacePlaceholder.size();
  }
}

const v1::NamespaceRule* FindNamespaceRule(const v1::Policy& policy, std::string_view name) {
  const v1::NamespaceRule* any = nullptr;
  for (const v1::NamespaceRule& rule : policy.namespaces()) {
    if (rule.namespace_() == name) return &rule;
    if (rule.namespace_() == kAnyNamespace) any = &rule;
  }
  return any;
}

bool NetworkAllowed(const v1::NamespaceRule& rule, std::string_view name,
                    std::string_view network) {
  for (const std::string& pattern : rule.networks()) {
    if (ExpandNamespace(pattern, name) == network) return true;
  }
  for (const std::string& pattern : rule.network_prefixes()) {
    const std::string prefix = ExpandNamespace(pattern, name);
    if (network.size() > prefix.size() && network.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

bool HostPortAllowed(const v1::NamespaceRule& rule, uint32_t port) {
  for (const v1::PortRange& range : rule.host_ports()) {
    if (port >= range.first() && port <= range.last()) return true;
  }
  return false;
}

bool HostIpAllowed(const v1::NamespaceRule& rule, std::string_view ip) {
  const std::string_view address = ip.empty() ? std::string_view("0.0.0.0") : ip;
  for (const std::string& allowed : rule.host_ips()) {
    if (allowed == address) return true;
  }
  return false;
}

}  // namespace coolify::policy
