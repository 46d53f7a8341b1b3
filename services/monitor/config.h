// coold's configuration from COOLD_* environment variables. Every variable, its default
// and its grammar are in README.md; an invalid value stops coold at start with a message
// naming the variable.
#ifndef COOLD_SERVICES_MONITOR_CONFIG_H_
#define COOLD_SERVICES_MONITOR_CONFIG_H_

#include <functional>

#include "absl/status/statusor.h"
#include "proto/config.pb.h"

namespace coolify::monitor {

// Returns the variable's value, or nullptr when unset.
using EnvLookup = std::function<const char*(const char* name)>;

absl::StatusOr<v1::CooldConfig> LoadConfig(const EnvLookup& env);

}  // namespace coolify::monitor

#endif  // COOLD_SERVICES_MONITOR_CONFIG_H_
