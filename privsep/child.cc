#include "privsep/child.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"
#include "privsep/proc_status.h"
#include "privsep/sandbox.h"
#include "privsep/spawn.h"

namespace coolify::privsep {

FrontArgs ParseFrontArgs(int argc, char** argv) {
  FrontArgs args;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    uint32_t port = 0;
    if (absl::ConsumePrefix(&arg, "--tcp-connect=")) {
      if (!absl::SimpleAtoi(arg, &port) || port == 0 || port > 65535) {
        LogError("bad argument --tcp-connect=%s", std::string(arg));
        _exit(126);
      }
      args.tcp_connect_ports.push_back(static_cast<uint16_t>(port));
    } else if (i == argc - 1 && !arg.empty() && arg[0] != '-') {
      args.endpoint_db_name = std::string(arg);
    } else {
      LogError("bad argument %s", std::string(arg));
      _exit(126);
    }
  }
  return args;
}

UniqueFd EnterChildSandbox(Role role, int passed_fds, std::vector<int> passed_dirs,
                           std::vector<uint16_t> tcp_connect_ports) {
  UniqueFd status(open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  if (!status) {
    LogError("open /proc/self/status failed");
    _exit(126);
  }
  SandboxSpec spec;
  spec.role = role;
  for (int i = 0; i < passed_fds; ++i) spec.keep_fds.push_back(kFirstPassedFd + i);
  spec.passed_dirs = std::move(passed_dirs);
  spec.tcp_connect_ports = std::move(tcp_connect_ports);
  spec.keep_fds.push_back(status.get());
  EnterSandbox(spec);
  return status;
}

absl::StatusOr<HealthReport> SelfHealth(Role role, int proc_status_fd) {
  absl::StatusOr<ProcStatus> status = ReadProcStatusFd(proc_status_fd);
  if (!status.ok()) return status.status();
  HealthReport report;
  report.set_role(role);
  report.set_pid(getpid());
  report.set_uid(status->uid);
  report.set_gid(status->gid);
  report.set_cap_eff(status->cap_eff);
  report.set_cap_prm(status->cap_prm);
  report.set_cap_bnd(status->cap_bnd);
  report.set_cap_inh(status->cap_inh);
  report.set_cap_amb(status->cap_amb);
  report.set_no_new_privs(status->no_new_privs);
  report.set_seccomp_mode(status->seccomp);
  report.set_supplementary_groups(status->groups);
  report.set_landlock_abi(AppliedLandlockAbi());
  report.set_landlock_ruleset(AppliedLandlockRuleset());
  return report;
}

}  // namespace coolify::privsep
