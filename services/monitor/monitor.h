// The coold monitor: the one process that stays root. It opens what needs privilege,
// creates the channels, starts the four sandboxed children and supervises them.
//
// Fail-fast: any child exit ends the others and the monitor exits non-zero, so systemd's
// Restart=on-failure restarts the whole set; a worker is never silently lost.
#ifndef COOLD_SERVICES_MONITOR_MONITOR_H_
#define COOLD_SERVICES_MONITOR_MONITOR_H_

#include <string>

#include "absl/status/status.h"
#include "proto/config.pb.h"

namespace coolify::monitor {

struct MonitorOptions {
  v1::CooldConfig config;
  // Where coold-front, coold-netlink, coold-podman and coold-build live.
  std::string libexec_dir;
  // Exit (status 0) after the first health round instead of serving until SIGTERM.
  bool once = false;
};

// Finds the child binaries: $COOLD_LIBEXEC_DIR, else <the running binary's
// directory>/../lib/coold (/usr/lib/coold for /usr/sbin/coold), else the running binary's
// own directory. Never Bazel's runfiles: tests name theirs with COOLD_LIBEXEC_DIR.
std::string DefaultLibexecDir();

// Runs coold until SIGTERM (exit 0), a child's death (non-zero) or, with `once`, the end of
// the first health round. Returns the process exit status.
int RunMonitor(const MonitorOptions& options);

}  // namespace coolify::monitor

#endif  // COOLD_SERVICES_MONITOR_MONITOR_H_
