#include "privsep/roles.h"

namespace coolify::privsep {

const char* RoleName(Role role) {
  switch (role) {
    case ROLE_MONITOR:
      return "monitor";
    case ROLE_FRONT:
      return "front";
    case ROLE_NETLINK:
      return "netlink";
    case ROLE_PODMAN:
      return "podman";
    case ROLE_BUILD:
      return "build";
    case ROLE_BROKER:
      return "broker";
    default:
      return "unknown";
  }
}

std::string ChildBinaryName(Role role) { return std::string("coold-") + RoleName(role); }

}  // namespace coolify::privsep
