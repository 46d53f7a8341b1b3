// The real coold, started as root: its four children are confined exactly as their role
// policies say (read from the kernel, /proc/<pid>/status), and the set fails fast.
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/coold_testing.h"
#include "privsep/proc_status.h"
#include "privsep/sandbox.h"
#include "proto/privsep.pb.h"

namespace coolify {
namespace {

using privsep::Role;

constexpr uint64_t kCapNetAdmin = uint64_t{1} << 12;

// coold in its own network namespace, its snapshots in the test's directory.
std::unique_ptr<testing::CooldUnderTest> StartCoold(bool once = false, std::vector<std::string> env = {}) {
  std::string tmp = getenv("TEST_TMPDIR");
  std::vector<std::string> args;
  if (once) args.push_back("--once");
  env.push_back("COOLD_HOST_MGMT_IP=127.0.0.1");
  env.push_back("COOLD_RULES_PATH=" + tmp + "/fw/allow.rules");
  env.push_back("COOLD_BRIDGE_RULES_PATH=" + tmp + "/fw/allow.nft");
  return std::make_unique<testing::CooldUnderTest>(env, args, /*own_network_namespace=*/true);
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Children of `parent` by command name, from /proc.
std::map<std::string, pid_t> ChildrenOf(pid_t parent) {
  std::map<std::string, pid_t> children;
  DIR* dir = opendir("/proc");
  while (dirent* entry = readdir(dir)) {
    pid_t pid = atoi(entry->d_name);
    if (pid <= 0) continue;
    std::ifstream status("/proc/" + std::string(entry->d_name) + "/status");
    std::string line, name;
    pid_t ppid = 0;
    while (std::getline(status, line)) {
      if (line.rfind("Name:\t", 0) == 0) name = line.substr(6);
      if (line.rfind("PPid:\t", 0) == 0) ppid = atoi(line.c_str() + 6);
    }
    if (ppid == parent) children[name] = pid;
  }
  closedir(dir);
  return children;
}

uid_t UidOf(const char* user) {
  passwd* pw = getpwnam(user);
  EXPECT_NE(pw, nullptr) << user << " missing: run tools/install-deps.sh";
  return pw == nullptr ? 0 : pw->pw_uid;
}

constexpr auto kStartTimeout = std::chrono::seconds(20);

TEST(CooldProcess, OnceRunsAHealthRoundAndExitsZero) {
  auto coold = StartCoold(/*once=*/true);
  int status = coold->WaitExit(kStartTimeout);
  coold->WaitForLog("\n", std::chrono::milliseconds(100));
  ASSERT_NE(status, -1) << coold->log();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << coold->log();
  EXPECT_NE(coold->log().find("health round ok: 4 processes"), std::string::npos) << coold->log();
}

TEST(CooldProcess, EachChildHoldsExactlyItsRolePrivileges) {
  auto coold = StartCoold();
  ASSERT_TRUE(coold->WaitForLog("health round ok", kStartTimeout)) << coold->log();
  std::map<std::string, pid_t> children = ChildrenOf(coold->pid());
  ASSERT_EQ(children.size(), 4u) << coold->log();

  struct Expected {
    const char* name;
    uid_t uid;
    uint64_t caps;
  };
  const Expected expected[] = {
      {"coold-front", UidOf("coold-front"), 0},
      {"coold-netlink", UidOf("coold-netlink"), kCapNetAdmin},
      {"coold-podman", 0, 0},
      {"coold-build", 0, privsep::CapabilityMask(privsep::ROLE_BUILD)},
  };
  for (const Expected& e : expected) {
    SCOPED_TRACE(e.name);
    ASSERT_TRUE(children.count(e.name));
    auto status = privsep::ReadProcStatus(children[e.name]);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_EQ(status->uid, e.uid);
    EXPECT_EQ(status->cap_eff, e.caps);
    EXPECT_EQ(status->cap_prm, e.caps);
    EXPECT_EQ(status->cap_bnd, e.caps);
    EXPECT_EQ(status->cap_inh, 0u);
    EXPECT_EQ(status->cap_amb, 0u);
    EXPECT_TRUE(status->no_new_privs);
    EXPECT_EQ(status->seccomp, 2u);
    EXPECT_EQ(status->groups, 0u);
  }
  // The build role's set is not empty and never includes what no build needs.
  EXPECT_NE(privsep::CapabilityMask(privsep::ROLE_BUILD), 0u);
  EXPECT_EQ(privsep::CapabilityMask(privsep::ROLE_BUILD) & kCapNetAdmin, 0u);
}

TEST(CooldProcess, TheFrontEndRepeatsTheHealthRoundAndCooldKeepsRunning) {
  auto coold = StartCoold(/*once=*/false, {"COOLD_HEALTH_INTERVAL=1s"});
  ASSERT_TRUE(coold->WaitForLog("health round ok", kStartTimeout)) << coold->log();
  // Three more rounds, each checked by the monitor against the kernel, past the 2 s
  // deadline of the first.
  for (int round = 2; round <= 4; ++round) {
    auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (Count(coold->log(), "health round ok") < static_cast<size_t>(round) &&
           std::chrono::steady_clock::now() < deadline) {
      coold->WaitForLog("\x01", std::chrono::milliseconds(200));
    }
    ASSERT_GE(Count(coold->log(), "health round ok"), static_cast<size_t>(round)) << coold->log();
  }
  EXPECT_EQ(kill(coold->pid(), 0), 0) << coold->log();
  EXPECT_EQ(coold->log().find("overdue"), std::string::npos) << coold->log();
}

class FailFast : public ::testing::TestWithParam<const char*> {};

TEST_P(FailFast, KillingAChildStopsCooldWithinOneSecond) {
  auto coold = StartCoold();
  ASSERT_TRUE(coold->WaitForLog("health round ok", kStartTimeout)) << coold->log();
  std::map<std::string, pid_t> children = ChildrenOf(coold->pid());
  ASSERT_EQ(children.size(), 4u);
  auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(children[GetParam()], SIGKILL), 0);
  int status = coold->WaitExit(std::chrono::seconds(1));
  auto took = std::chrono::steady_clock::now() - killed_at;
  ASSERT_NE(status, -1) << "coold still running 1 s after its child was killed";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << coold->log();
  EXPECT_LT(took, std::chrono::seconds(1));
  for (const auto& [name, pid] : children) {
    EXPECT_EQ(kill(pid, 0), -1) << name << " survived";
    EXPECT_EQ(errno, ESRCH) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryChild, FailFast,
                         ::testing::Values("coold-front", "coold-netlink", "coold-podman", "coold-build"));

TEST(CooldProcess, SigtermShutsDownInOrder) {
  auto coold = StartCoold();
  ASSERT_TRUE(coold->WaitForLog("health round ok", kStartTimeout)) << coold->log();
  std::map<std::string, pid_t> children = ChildrenOf(coold->pid());
  ASSERT_EQ(kill(coold->pid(), SIGTERM), 0);
  int status = coold->WaitExit(std::chrono::seconds(10));
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << coold->log();
  for (const auto& [name, pid] : children) EXPECT_EQ(kill(pid, 0), -1) << name << " survived";
}

}  // namespace
}  // namespace coolify
