// Sandbox proofs under the real monitor and the real sandbox: a probe (probe.cc) runs in a
// child's place, entering that role's sandbox exactly as the child does, and
//   - tries what its role must not do, and each attempt must fail, with the refusal the
//     test names (an errno, or the seccomp kill the monitor reports);
//   - as a hostile front end, sends one well-formed malicious request to the monitor or a
//     privileged child, which must refuse it by ending (coold stops, non-zero), with
//     nothing changed in the kernel's firewall (a private network namespace), in an
//     isolated Podman or on the filesystem.
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/coold_testing.h"
#include "tests/podman_harness/podman_harness.h"
#include "tests/shell_testing.h"

namespace coolify {
namespace {

using testing::CooldUnderTest;
using testing::Runfile;
using testing::Shell;

constexpr auto kTimeout = std::chrono::seconds(30);

// A private directory under /tmp (the roles' users can traverse it; $TEST_TMPDIR under
// /root they cannot).
std::string MakeDir(const std::string& prefix, mode_t mode) {
  std::string path = "/tmp/" + prefix + ".XXXXXX";
  if (mkdtemp(path.data()) == nullptr) return "";
  chmod(path.c_str(), mode);
  return path;
}

// A libexec directory whose coold-`role` is the probe with `scenario`, the other
// children the real ones.
class ProbeLibexec {
 public:
  ProbeLibexec(const std::string& role, const std::string& scenario) {
    dir_ = MakeDir("coold-probe", 0755);
    for (const char* child : {"front", "netlink", "podman", "build"}) {
      const std::string name = std::string("coold-") + child;
      if (child == role) {
        // A copy, not a link: the probe finds its scenario beside /proc/self/exe.
        Shell("cp " + Runfile("tests/privsep/probe") + " " + dir_ + "/" + name + " && chmod 0755 " + dir_ + "/" + name);
      } else {
        (void)!symlink(Runfile("services/" + std::string(child) + "/" + name).c_str(), (dir_ + "/" + name).c_str());
      }
    }
    (void)!symlink(Runfile("services/builder/builder").c_str(), (dir_ + "/builder").c_str());
    std::ofstream(dir_ + "/scenario") << scenario << "\n";
  }
  ~ProbeLibexec() { Shell("rm -rf '" + dir_ + "'"); }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// A named network namespace with loopback up, kept after coold is gone so the test can
// read its firewall.
class Netns {
 public:
  Netns() : name_("coold-proof-" + std::to_string(getpid())) {
    Shell("ip netns del " + name_ + " 2>/dev/null; ip netns add " + name_ + " && ip -n " + name_ + " link set lo up");
  }
  ~Netns() { Shell("ip netns del " + name_); }
  std::string path() const { return "/run/netns/" + name_; }
  // Both planes as the kernel holds them.
  std::string Firewall() const {
    return Shell("ip netns exec " + name_ + " nft list ruleset").out;
  }

 private:
  std::string name_;
};

struct CooldRun {
  std::string log;
  int status = -1;
};

// coold with `role` replaced by the probe running `scenario`, until it exits by itself.
CooldRun RunCoold(const std::string& role, const std::string& scenario, const std::string& netns,
             std::vector<std::string> env = {}) {
  ProbeLibexec libexec(role, scenario);
  const std::string state = MakeDir("coold-proof-state", 0755);
  env.push_back("COOLD_LIBEXEC_DIR=" + libexec.dir());
  env.push_back("COOLD_HOST_MGMT_IP=127.0.0.1");
  env.push_back("COOLD_RULES_PATH=" + state + "/fw/allow.rules");
  env.push_back("COOLD_BRIDGE_RULES_PATH=" + state + "/fw/allow.nft");
  env.push_back("COOLD_ENDPOINT_DB=" + state + "/endpoints/endpoints.db");
  env.push_back("COOLD_BUILDS_DIR=" + state + "/builds");
  CooldRun run;
  {
    CooldUnderTest coold(env, {}, /*own_network_namespace=*/netns.empty(), netns);
    run.status = coold.WaitExit(kTimeout);
    coold.WaitForLog("\x01", std::chrono::milliseconds(100));
    run.log = coold.log();
  }
  Shell("rm -rf '" + state + "'");
  return run;
}

bool Contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

// ---- what each role must not do

// A stand-in for Podman's API socket: root's, mode 0660, as Podman makes it.
class FakePodmanSocket {
 public:
  FakePodmanSocket() {
    dir_ = MakeDir("coold-proof-sock", 0755);
    path_ = dir_ + "/podman.sock";
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    chmod(path_.c_str(), 0660);
    listen(fd_, 16);
  }
  ~FakePodmanSocket() {
    close(fd_);
    Shell("rm -rf '" + dir_ + "'");
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

struct Forbidden {
  const char* role;
  const char* act;
  const char* arg;       // "@socket": the fake Podman socket; "@dir": a world-writable directory
  const char* refusal;   // "EACCES", "EPERM", ... or "SIGSYS" for the seccomp kill
};

std::string PrintForbidden(const ::testing::TestParamInfo<Forbidden>& info) {
  return std::string(info.param.role) + "_" + info.param.act;
}

class RoleMustNot : public ::testing::TestWithParam<Forbidden> {};

TEST_P(RoleMustNot, AndTheKernelRefuses) {
  const Forbidden& f = GetParam();
  FakePodmanSocket podman_socket;
  // World-writable and sticky like /tmp: the file permissions would let anyone create a
  // file here, so a refusal comes from the sandbox.
  const std::string open_dir = MakeDir("coold-proof-open", 01777);
  std::string arg = f.arg;
  if (arg == "@socket") arg = podman_socket.path();
  if (arg == "@dir") arg = open_dir + "/written";
  CooldRun run = RunCoold(f.role, std::string("try:") + f.act + (arg.empty() ? "" : ":" + arg), "",
                     {"COOLD_PODMAN_SOCKET=" + podman_socket.path()});
  ASSERT_NE(run.status, -1) << "coold still running\n" << run.log;
  ASSERT_TRUE(Contains(run.log, std::string("probe ") + f.role + ": sandboxed")) << run.log;
  EXPECT_FALSE(Contains(run.log, ": allowed")) << run.log;
  if (std::string(f.refusal) == "SIGSYS") {
    EXPECT_TRUE(Contains(run.log, std::string(f.role) + " killed by signal 31")) << run.log;
  } else {
    EXPECT_TRUE(Contains(run.log, std::string("probe ") + f.role + " " + f.act + ": refused " + f.refusal)) << run.log;
  }
  // Nothing was written.
  struct stat st;
  EXPECT_NE(stat((open_dir + "/written").c_str(), &st), 0);
  Shell("rm -rf '" + open_dir + "'");
  EXPECT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) != 0) << run.log;
}

INSTANTIATE_TEST_SUITE_P(
    Sandbox, RoleMustNot,
    ::testing::Values(
        // The front end: no Podman socket, no netlink, no exec, no file.
        Forbidden{"front", "connect_unix", "@socket", "EACCES"},
        Forbidden{"front", "netlink", "", "SIGSYS"},
        Forbidden{"front", "exec", "", "SIGSYS"},
        Forbidden{"front", "write_file", "@dir", "EACCES"},
        // Nor a TCP connection to a port its configuration does not name (sshd's here;
        // without Landlock's refusal the private namespace would answer ECONNREFUSED).
        Forbidden{"front", "connect_loopback", "22", "EACCES"},
        // The gatekeeper (uid 0): no netlink, no exec, no path, not even root's.
        Forbidden{"podman", "netlink", "", "SIGSYS"},
        Forbidden{"podman", "exec", "", "SIGSYS"},
        // Its filter admits openat only with O_PATH (bind sources are pinned that way):
        // any real open of a path is a seccomp kill, before Landlock is even asked.
        Forbidden{"podman", "read_file", "/etc/shadow", "SIGSYS"},
        Forbidden{"podman", "write_file", "@dir", "SIGSYS"},
        // The firewall writer: no Podman socket, no exec.
        Forbidden{"netlink", "connect_unix", "@socket", "SIGSYS"},
        Forbidden{"netlink", "exec", "", "SIGSYS"}),
    PrintForbidden);

// ---- the monitor's deadline

TEST(HealthDeadline, AFrontEndThatNeverRunsTheRoundStopsCoold) {
  CooldRun run = RunCoold("front", "idle", "", {"COOLD_HEALTH_INTERVAL=1s"});
  ASSERT_NE(run.status, -1) << run.log;
  EXPECT_TRUE(Contains(run.log, "probe front: startup OK; no health round follows")) << run.log;
  EXPECT_TRUE(Contains(run.log, "health round overdue: none passed within 2s; stopping coold")) << run.log;
  EXPECT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 1) << run.log;
}

// ---- a hostile front end

struct Hostile {
  const char* name;
  const char* refusal;  // the line the refusing process logs
  // The probe's honest requests before its hostile one write the firewall (a bulk whose
  // changes take several pages): only the hostile rule (GoodRule, port 6666) must be absent.
  bool honest_writes = false;
};

std::string PrintHostile(const ::testing::TestParamInfo<Hostile>& info) { return info.param.name; }

class HostileFrontEnd : public ::testing::TestWithParam<Hostile> {
 protected:
  static void SetUpTestSuite() {
    auto harness = testing::PodmanHarness::Start();
    ASSERT_TRUE(harness.ok()) << harness.status();
    podman_ = std::move(*harness).release();
  }
  static void TearDownTestSuite() {
    delete podman_;
    podman_ = nullptr;
  }
  static std::string PodmanState() {
    auto volumes = podman_->Podman({"volume", "ls", "--format", "{{.Name}}"});
    auto containers = podman_->Podman({"ps", "-a", "--format", "{{.Names}}"});
    return (volumes.ok() ? *volumes : volumes.status().ToString()) + "|" +
           (containers.ok() ? *containers : containers.status().ToString());
  }
  static inline testing::PodmanHarness* podman_ = nullptr;
};

TEST_P(HostileFrontEnd, IsRefusedAndNothingChanges) {
  ASSERT_NE(podman_, nullptr);
  Netns netns;
  const std::vector<std::string> env = {"COOLD_PODMAN_SOCKET=" + podman_->socket_path()};
  // What an honest start leaves behind (the probe front end starts and exits): the
  // firewall writer's tables, Podman as it was.
  CooldRun baseline = RunCoold("front", "hostile:none", netns.path(), env);
  ASSERT_TRUE(Contains(baseline.log, "probe front: started")) << baseline.log;
  const std::string firewall = netns.Firewall();
  const std::string podman = PodmanState();

  CooldRun run = RunCoold("front", std::string("hostile:") + GetParam().name, netns.path(), env);
  ASSERT_NE(run.status, -1) << "coold still running\n" << run.log;
  EXPECT_TRUE(Contains(run.log, GetParam().refusal)) << run.log;
  EXPECT_TRUE(Contains(run.log, "stopping coold")) << run.log;
  EXPECT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 1) << run.log;
  // Refused, never served: no answer, or (a health round the monitor checks and finds
  // wrong) an error answer followed by the stop.
  EXPECT_FALSE(Contains(run.log, "probe front: answered, status 0")) << "the malicious request was served\n" << run.log;
  if (GetParam().honest_writes) {
    EXPECT_TRUE(Contains(netns.Firewall(), "dport 1999 ")) << "the honest bulk was not written";
    EXPECT_FALSE(Contains(netns.Firewall(), "dport 6666 "));
  } else {
    EXPECT_EQ(netns.Firewall(), firewall);
    EXPECT_FALSE(Contains(netns.Firewall(), "10.66.0.1"));
  }
  EXPECT_EQ(PodmanState(), podman);
}

INSTANTIATE_TEST_SUITE_P(
    Channels, HostileFrontEnd,
    ::testing::Values(
        // Each helper before the health round: a well-formed request in the wrong phase.
        Hostile{"netlink_allow_before_health", "refused a request from the front end, exiting: netlink: op allow is not allowed in phase 0"},
        Hostile{"podman_call_before_health", "refused a request from the front end, exiting: podman: op call is not allowed in phase 0"},
        Hostile{"build_start_before_health", "refused a request from the front end, exiting: build: op start is not allowed in phase 0"},
        // The monitor's table.
        Hostile{"monitor_health_before_startup", "refused a request from the front end: monitor: op health_round is not allowed in phase 0"},
        Hostile{"monitor_dns_before_health", "refused a request from the front end: monitor: op dns_sockets is not allowed in phase 1"},
        Hostile{"monitor_startup_twice", "refused a request from the front end: monitor: op startup is not allowed in phase 2"},
        Hostile{"monitor_health_with_descriptor", "monitor: op health_round came with 1 descriptors, carries exactly 0"},
        Hostile{"monitor_health_lies_about_pid", "health round: health round has 1 reports for 4 children"},
        // The firewall writer after an honest start.
        Hostile{"netlink_abort_outside_staging", "netlink: op abort is not allowed in phase 1"},
        Hostile{"netlink_allow_while_staging", "netlink: op allow is not allowed in phase 2"},
        Hostile{"netlink_changes_with_nothing_committed", "netlink: op changes is not allowed in phase 1"},
        Hostile{"netlink_allow_between_change_pages", "netlink: op allow is not allowed in phase 3", true},
        Hostile{"netlink_allow_with_descriptor", "netlink: op allow came with 1 descriptors, carries exactly 0"},
        Hostile{"netlink_stage_501_rules", "NetlinkRequest.stage.rules: 501 rules; 1..500 per frame"},
        Hostile{"netlink_delete_bad_id", "NetlinkRequest.delete.id"},
        Hostile{"netlink_gets_podman_request", "NetlinkRequest.role: ROLE_PODMAN (4) is not ROLE_NETLINK"},
        Hostile{"netlink_unknown_op", "frame: unknown field 99 in coolify.privsep.NetlinkRequest"},
        // The gatekeeper after an honest start.
        Hostile{"podman_call_with_descriptor", "podman: op call came with 1 descriptors, carries exactly 0"},
        Hostile{"podman_next_with_nothing_pending", "podman: op next is not allowed in phase 1"},
        Hostile{"podman_gets_netlink_request", "PodmanRequest.role: ROLE_NETLINK (3) is not ROLE_PODMAN"},
        // The build launcher after an honest start.
        Hostile{"build_watch_twice", "build: op watch may come only once"},
        Hostile{"build_start_with_descriptor", "build: op cancel came with 1 descriptors, carries exactly 0"}),
    PrintHostile);

}  // namespace
}  // namespace coolify
