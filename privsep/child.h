// What every coold child does: enter its role's sandbox as the first act of main(), report
// its own confinement. Each serves its channel through its DispatchTable (dispatch.h).
#ifndef COOLD_PRIVSEP_CHILD_H_
#define COOLD_PRIVSEP_CHILD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "privsep/channel.h"
#include "privsep/log.h"
#include "privsep/unique_fd.h"
#include "proto/privsep.pb.h"

namespace coolify::privsep {

// Enters the sandbox of `role`, keeping the `passed_fds` descriptors the monitor laid out
// from fd 3. Returns a descriptor on this process's /proc status, opened before the sandbox
// because Landlock forbids opening it afterwards. Never returns on failure.
// `passed_dirs` are directory descriptors among them that the role's Landlock list grants
// access beneath ("@passed-directories").
// `tcp_connect_ports` are the TCP ports it may connect to ("@tcp-connect-passed-ports").
UniqueFd EnterChildSandbox(Role role, int passed_fds, std::vector<int> passed_dirs = {},
                           std::vector<uint16_t> tcp_connect_ports = {});

// The front end's argv as the monitor writes it: "--tcp-connect=PORT" for each port it
// may connect to, then the SQLite store's file name when it has one. Exits 126 on
// anything else: a front end started otherwise must not run.
struct FrontArgs {
  std::vector<uint16_t> tcp_connect_ports;
  std::string endpoint_db_name;  // "" without the SQLite store
};
FrontArgs ParseFrontArgs(int argc, char** argv);

// This process's confinement as the kernel reports it (through the descriptor above).
absl::StatusOr<HealthReport> SelfHealth(Role role, int proc_status_fd);

// Answers a health request in `reply`: this process's report, or the error reading it.
template <typename Reply>
void AnswerHealth(Role role, int proc_status_fd, Reply* reply) {
  absl::StatusOr<HealthReport> health = SelfHealth(role, proc_status_fd);
  if (health.ok()) {
    *reply->mutable_health() = *std::move(health);
  } else {
    reply->mutable_status()->set_code(static_cast<int>(health.status().code()));
    reply->mutable_status()->set_message(std::string(health.status().message()));
  }
}

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_CHILD_H_
