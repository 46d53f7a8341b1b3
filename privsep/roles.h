// Names of the coold process roles, as logs, binaries and hardening files spell them.
#ifndef COOLD_PRIVSEP_ROLES_H_
#define COOLD_PRIVSEP_ROLES_H_

#include <string>

#include "proto/privsep.pb.h"

namespace coolify::privsep {

// "monitor", "front", "netlink", "podman", "build"; "unknown" for anything else.
const char* RoleName(Role role);

// "coold-front", ...: the executable the monitor starts for a child role.
std::string ChildBinaryName(Role role);

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_ROLES_H_
