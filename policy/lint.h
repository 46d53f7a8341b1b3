// `coolify-policy lint`: the allowances in a policy that weaken isolation, each with
// why it matters, so a reviewer sees every risky line of a policy change.
//
// Severity:
//   danger   an allowance that gives a container root on the host or another tenant's
//            resources (privileged, host network, ALL or an escape-grade capability,
//            host paths at or around "/", /etc, sockets or container storage, raw memory
//            or disk devices, host-wide sysctls, host-path volume options, layer-2
//            network drivers, namespace patterns shared by every namespace);
//   warning  widening that needs a reason (other added capabilities, other devices,
//            other sysctls, runtimes coold does not know, ports for every namespace);
//   note     things to keep in mind (writable host paths, no registry allowlist, no
//            resource caps).
#ifndef COOLD_POLICY_LINT_H_
#define COOLD_POLICY_LINT_H_

#include <string>
#include <vector>

#include "proto/policy.pb.h"

namespace coolify::policy {

enum class Severity { kDanger, kWarning, kNote };

struct Finding {
  Severity severity;
  std::string rule;         // the policy field: "host_paths[0].prefix"
  std::string value;        // what it allows: "/etc"
  std::string explanation;  // why it matters, one or two sentences
};

// The findings for a valid policy (ValidatePolicy), most severe first, then in field
// order.
std::vector<Finding> LintPolicy(const v1::Policy& policy);

// "danger", "warning" or "note".
const char* SeverityName(Severity severity);

}  // namespace coolify::policy

#endif  // COOLD_POLICY_LINT_H_
