// `coolify-policy explain`: a policy's effective rules as a two-column table, defaults
// filled in, one row per decision, so an operator can read what a host allows without
// knowing the schema.
#ifndef COOLD_POLICY_EXPLAIN_H_
#define COOLD_POLICY_EXPLAIN_H_

#include <string>

#include "proto/policy.pb.h"

namespace coolify::policy {

// The table for a complete, valid policy (policy_file.h), ending in a newline.
std::string ExplainPolicy(const v1::Policy& policy);

}  // namespace coolify::policy

#endif  // COOLD_POLICY_EXPLAIN_H_
