// JSON for people: two-space indentation, one member or element per line, keys in the
// order they were inserted. What the audit tool prints and what golden files hold.
#ifndef COOLD_POLICY_PRETTY_JSON_H_
#define COOLD_POLICY_PRETTY_JSON_H_

#include <string>

#include "boost/json.hpp"

namespace coolify::policy {

// `value` indented, with a final newline. Empty objects and arrays print as {} and [].
std::string PrettyJson(const boost::json::value& value);

}  // namespace coolify::policy

#endif  // COOLD_POLICY_PRETTY_JSON_H_
