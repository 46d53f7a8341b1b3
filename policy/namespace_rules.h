// Reading a policy's per-namespace rules (proto/policy.proto, NamespaceRule): which rule
// governs a namespace, and what it lets that namespace's containers use.
//
// Patterns in a rule may hold "{namespace}", replaced by the namespace's name wherever
// it occurs ("coolify-{namespace}-mesh" is "coolify-alpha-mesh" for namespace alpha).
#ifndef COOLD_POLICY_NAMESPACE_RULES_H_
#define COOLD_POLICY_NAMESPACE_RULES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "proto/policy.pb.h"

namespace coolify::policy {

// The namespace of a request that names none.
inline constexpr std::string_view kDefaultNamespace = "default";

// The rule name that governs every namespace without a rule of its own.
inline constexpr std::string_view kAnyNamespace = "*";

inline constexpr std::string_view kNamespacePlaceholder = "{namespace}";

// The labels the gatekeeper writes on every container it creates, after the request's
// own (which may not use these keys): who created it and the namespace it belongs to.
// Every verb on an existing container reads them back (engine.h,
// EvaluateContainerAccess); they are the record of tenancy that no request can forge.
inline constexpr std::string_view kOwnerLabel = "coolify.coold.owner";
inline constexpr std::string_view kOwnerValue = "coold";
inline constexpr std::string_view kNamespaceLabel = "coolify.coold.namespace";

// `pattern` with every "{namespace}" replaced by `name`.
std::string ExpandNamespace(std::string_view pattern, std::string_view name);

// The rule for `name`: its own, else the "*" rule, else nullptr (the namespace may use
// no network and publish no port).
const v1::NamespaceRule* FindNamespaceRule(const v1::Policy& policy, std::string_view name);

// Whether a container of namespace `name` governed by `rule` may join `network`: one of
// rule.networks, or a name starting with one of rule.network_prefixes (and longer than
// it), after expansion.
bool NetworkAllowed(const v1::NamespaceRule& rule, std::string_view name, std::string_view network);

// Whether `rule` lets a port be published on host port `port` at host address `ip`
// ("" is "0.0.0.0").
bool HostPortAllowed(const v1::NamespaceRule& rule, uint32_t port);
bool HostIpAllowed(const v1::NamespaceRule& rule, std::string_view ip);

}  // namespace coolify::policy

#endif  // COOLD_POLICY_NAMESPACE_RULES_H_
