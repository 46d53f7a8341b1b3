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
#include <sstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "privsep/proc_status.h"
#include "privsep/sandbox.h"
#include "proto/privsep.pb.h"

namespace coolify {
namespace {

using privsep::Role;

constexpr uint64_t kCapNetAdmin = uint64_t{1} << 12;

std::string Runfile(const std::string& path) {
  return std::string(getenv("TEST_SRCDIR")) + "/coold/" + path;
}

// A coold process with its stderr captured.
class Coold {
 public:
  explicit Coold(bool once = false) {
    int pipefd[2];
    EXPECT_EQ(pipe2(pipefd, O_CLOEXEC), 0);
    std::string binary = Runfile("services/monitor/coold");
    std::string libexec = "COOLD_LIBEXEC_DIR=" + Runfile("services");
    std::string tmp = getenv("TEST_TMPDIR");
    std::string rules = "COOLD_RULES_PATH=" + tmp + "/fw/allow.rules";
    std::string bridge = "COOLD_BRIDGE_RULES_PATH=" + tmp + "/fw/allow.nft";
    pid_ = fork();
    if (pid_ == 0) {
      // Its own network namespace: the firewall writer reads and writes that, not the host's.
      if (unshare(CLONE_NEWNET) != 0) _exit(126);
      dup2(pipefd[1], STDERR_FILENO);
      char* argv[] = {const_cast<char*>(binary.c_str()), const_cast<char*>("--once"), nullptr};
      if (!once) argv[1] = nullptr;
      char* envp[] = {const_cast<char*>(libexec.c_str()), const_cast<char*>("COOLD_HOST_MGMT_IP=127.0.0.1"),
                      const_cast<char*>(rules.c_str()), const_cast<char*>(bridge.c_str()), nullptr};
      execve(binary.c_str(), argv, envp);
      _exit(127);
    }
    close(pipefd[1]);
    stderr_fd_ = pipefd[0];
  }
  ~Coold() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(stderr_fd_);
  }

  pid_t pid() const { return pid_; }
  const std::string& output() const { return output_; }

  // Reads stderr until `needle` appears or `timeout` passes.
  bool WaitForOutput(const std::string& needle, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output_.find(needle) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p = {stderr_fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = read(stderr_fd_, buf, sizeof(buf));
      if (n <= 0) return output_.find(needle) != std::string::npos;
      output_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  // Waits for coold to exit; returns its wait status, or -1 after `timeout`.
  int WaitExit(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int stderr_fd_ = -1;
  bool exited_ = false;
  std::string output_;
};

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
  Coold coold(/*once=*/true);
  int status = coold.WaitExit(kStartTimeout);
  coold.WaitForOutput("\n", std::chrono::milliseconds(100));
  ASSERT_NE(status, -1) << coold.output();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << coold.output();
  EXPECT_NE(coold.output().find("health round ok: 4 processes"), std::string::npos) << coold.output();
}

TEST(CooldProcess, EachChildHoldsExactlyItsRolePrivileges) {
  Coold coold;
  ASSERT_TRUE(coold.WaitForOutput("health round ok", kStartTimeout)) << coold.output();
  std::map<std::string, pid_t> children = ChildrenOf(coold.pid());
  ASSERT_EQ(children.size(), 4u) << coold.output();

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

class FailFast : public testing::TestWithParam<const char*> {};

TEST_P(FailFast, KillingAChildStopsCooldWithinOneSecond) {
  Coold coold;
  ASSERT_TRUE(coold.WaitForOutput("health round ok", kStartTimeout)) << coold.output();
  std::map<std::string, pid_t> children = ChildrenOf(coold.pid());
  ASSERT_EQ(children.size(), 4u);
  auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(children[GetParam()], SIGKILL), 0);
  int status = coold.WaitExit(std::chrono::seconds(1));
  auto took = std::chrono::steady_clock::now() - killed_at;
  ASSERT_NE(status, -1) << "coold still running 1 s after its child was killed";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << coold.output();
  EXPECT_LT(took, std::chrono::seconds(1));
  for (const auto& [name, pid] : children) {
    EXPECT_EQ(kill(pid, 0), -1) << name << " survived";
    EXPECT_EQ(errno, ESRCH) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryChild, FailFast,
                         testing::Values("coold-front", "coold-netlink", "coold-podman", "coold-build"));

TEST(CooldProcess, SigtermShutsDownInOrder) {
  Coold coold;
  ASSERT_TRUE(coold.WaitForOutput("health round ok", kStartTimeout)) << coold.output();
  std::map<std::string, pid_t> children = ChildrenOf(coold.pid());
  ASSERT_EQ(kill(coold.pid(), SIGTERM), 0);
  int status = coold.WaitExit(std::chrono::seconds(10));
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << coold.output();
  for (const auto& [name, pid] : children) EXPECT_EQ(kill(pid, 0), -1) << name << " survived";
}

}  // namespace
}  // namespace coolify
