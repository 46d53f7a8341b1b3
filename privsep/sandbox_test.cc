// Enters each role's sandbox for real, in forked children: run as root, with the users
// tools/install-deps.sh creates.
#include "privsep/child.h"
#include "privsep/roles.h"
#include "privsep/sandbox.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <netdb.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "privsep/landlock.h"
#include "privsep/proc_status.h"
#include "privsep/unique_fd.h"
#include "proto/privsep.pb.h"

namespace coolify::privsep {
namespace {

using ::testing::HasSubstr;

struct ChildResult {
  int wait_status = 0;
  std::string output;  // What the child wrote to its output descriptor.
};

// What a child runs once sandboxed. `out` is a pipe to the test, `proc_status` a
// descriptor for the child's /proc/self/status opened before the sandbox. The return
// value becomes the exit status, through exit(3), so glibc's whole exit path runs
// under the filter too.
using Body = std::function<int(int out, int proc_status)>;

// Runs in the child before EnterSandbox, with the pipe to the test (e.g. to start the
// child as systemd would: another user, fewer capabilities).
using Prepare = std::function<void(int out)>;

ChildResult RunSandboxed(Role role, const Body& body, std::vector<int> extra_keep = {},
                         std::vector<int> passed_dirs = {}, const Prepare& prepare = nullptr) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << strerror(errno);
    return {};
  }
  std::fflush(nullptr);  // Or the child would flush the test's buffered output again.
  const pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << strerror(errno);
    return {};
  }
  if (pid == 0) {
    close(pipe_fds[0]);
    const int status = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (status < 0) _exit(125);
    SandboxSpec spec{role, {pipe_fds[1], status}, passed_dirs, {}};
    spec.keep_fds.insert(spec.keep_fds.end(), extra_keep.begin(), extra_keep.end());
    if (prepare) prepare(pipe_fds[1]);
    EnterSandbox(spec);
    exit(body(pipe_fds[1], status));
  }
  close(pipe_fds[1]);
  ChildResult result;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(pipe_fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  while (waitpid(pid, &result.wait_status, 0) < 0 && errno == EINTR) {
  }
  return result;
}

std::string Describe(int wait_status) {
  if (WIFEXITED(wait_status)) return absl::StrCat("exited with ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return absl::StrCat("killed by ", strsignal(WTERMSIG(wait_status)));
  return absl::StrCat("wait status ", wait_status);
}

void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// For bodies that check something: writes `error` and fails, or succeeds.
int Check(int out, bool ok, const std::string& error) {
  if (ok) return 0;
  WriteAll(out, error);
  return 1;
}

std::string ErrnoText(const char* what) { return absl::StrCat(what, ": ", strerror(errno)); }

std::string RoleUser(Role role) {
  auto policy = LoadRolePolicy(role);
  return policy.ok() ? policy->identity.user : "";
}

// ---- the embedded policy ----

TEST(SandboxPolicyTest, EveryRoleHasParsablePolicy) {
  for (Role role : kSandboxedRoles) {
    auto policy = LoadRolePolicy(role);
    ASSERT_TRUE(policy.ok()) << RoleName(role) << ": " << policy.status();
    EXPECT_FALSE(policy->seccomp.empty());
    auto filter = SeccompFilter::Build(policy->seccomp);
    EXPECT_TRUE(filter.ok()) << RoleName(role) << ": " << filter.status();
  }
  EXPECT_FALSE(LoadRolePolicy(ROLE_MONITOR).ok());
  EXPECT_FALSE(LoadRolePolicy(ROLE_UNSPECIFIED).ok());
}

TEST(SandboxPolicyTest, RoleTable) {
  EXPECT_EQ(RoleUser(ROLE_FRONT), "coold-front");
  EXPECT_EQ(RoleUser(ROLE_NETLINK), "coold-netlink");
  EXPECT_EQ(RoleUser(ROLE_PODMAN), "root");
  EXPECT_EQ(RoleUser(ROLE_BUILD), "root");
  EXPECT_EQ(CapabilityMask(ROLE_FRONT), 0u);
  EXPECT_EQ(CapabilityMask(ROLE_NETLINK), uint64_t{1} << CAP_NET_ADMIN);
  EXPECT_EQ(CapabilityMask(ROLE_PODMAN), 0u);
  // The build launcher makes jails and holds nothing a build needs: no CAP_SYS_ADMIN,
  // no CAP_DAC_OVERRIDE. What builds hold, they hold in their own user namespaces.
  uint64_t build = 0;
  for (int cap : {CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_KILL}) build |= uint64_t{1} << cap;
  EXPECT_EQ(CapabilityMask(ROLE_BUILD), build);
  auto policy = LoadRolePolicy(ROLE_BUILD);
  ASSERT_TRUE(policy.ok()) << policy.status();
  uint64_t inside = 0;
  for (int cap : {CAP_SYS_ADMIN, CAP_SYS_CHROOT, CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER,
                  CAP_FSETID, CAP_MKNOD, CAP_SETFCAP, CAP_SETPCAP, CAP_KILL, CAP_NET_BIND_SERVICE}) {
    inside |= uint64_t{1} << cap;
  }
  EXPECT_EQ(CapabilityBits(policy->identity.namespace_capabilities), inside);
  // Never inside a build either: they would let it rewrite its routes or write raw frames.
  EXPECT_EQ(inside & ((uint64_t{1} << CAP_NET_ADMIN) | (uint64_t{1} << CAP_NET_RAW)), 0u);
}

// hardening/seccomp/<role>.pfc is the filter as compiled; regenerate with
//   bazel run //privsep:seccomp_export -- $PWD/hardening/seccomp
TEST(SandboxPolicyTest, SeccompFiltersMatchGoldenFiles) {
  for (Role role : kSandboxedRoles) {
    const std::string path = absl::StrCat("hardening/seccomp/", RoleName(role), ".pfc");
    std::ifstream in(path);
    ASSERT_TRUE(in) << "cannot read " << path;
    std::stringstream golden;
    golden << in.rdbuf();
    auto filter = RoleSeccompFilter(role);
    ASSERT_TRUE(filter.ok()) << filter.status();
    auto pfc = filter->ExportPfc();
    ASSERT_TRUE(pfc.ok()) << pfc.status();
    EXPECT_EQ(*pfc, golden.str()) << path << " is out of date; see the comment above";
  }
}

// ---- each role, sandboxed ----

// Sanitizer runtimes make system calls of their own inside sandboxed code
// (__asan_handle_no_return calls sigaltstack before every noreturn call, LeakSanitizer
// clones and ptraces at exit), which the role lists rightly leave out. So under a
// sanitizer build (--config=asan) the tests that enter a sandbox are skipped.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
constexpr bool kSanitized = __has_feature(address_sanitizer);
#else
constexpr bool kSanitized = false;
#endif

template <typename Base>
class Sandboxed : public Base {
 protected:
  void SetUp() override {
    if (kSanitized) GTEST_SKIP() << "sanitizer runtimes make calls no role list allows";
  }
};

class SandboxRoleTest : public Sandboxed<::testing::TestWithParam<Role>> {};

std::string RoleParamName(const ::testing::TestParamInfo<Role>& info) {
  return std::string(RoleName(info.param));
}

// The child reports itself as the real children do, through its pre-opened status
// descriptor and a serialized HealthReport.
TEST_P(SandboxRoleTest, ReportsConfinement) {
  const Role role = GetParam();
  ChildResult r = RunSandboxed(role, [role](int out, int proc_status) {
    absl::StatusOr<HealthReport> report = SelfHealth(role, proc_status);
    if (!report.ok()) return Check(out, false, report.status().ToString());
    WriteAll(out, report->SerializeAsString());
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0)
      << Describe(r.wait_status) << ": " << r.output;
  HealthReport report;
  ASSERT_TRUE(report.ParseFromString(r.output));
  auto ids = ResolveUser(RoleUser(role));
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(report.uid(), ids->uid);
  EXPECT_EQ(report.gid(), ids->gid);
  EXPECT_EQ(report.supplementary_groups(), 0u);
  EXPECT_EQ(report.cap_eff(), CapabilityMask(role));
  EXPECT_EQ(report.cap_prm(), CapabilityMask(role));
  EXPECT_EQ(report.cap_bnd(), CapabilityMask(role));
  EXPECT_EQ(report.cap_inh(), 0u);
  EXPECT_EQ(report.cap_amb(), 0u);
  EXPECT_TRUE(report.no_new_privs());
  EXPECT_EQ(report.seccomp_mode(), 2u);
  // The build launcher's list says @no-ruleset: builds must mount (landlock.h kNoRuleset).
  EXPECT_EQ(report.landlock_abi(), GetParam() == ROLE_BUILD ? 0 : LandlockAbi());
}

// What every role's loop does: allocate small and large, format, write, and exit
// through glibc's exit path (the body's return goes to exit(3)).
TEST_P(SandboxRoleTest, RunsAnOrdinaryLoop) {
  ChildResult r = RunSandboxed(GetParam(), [](int out, int) {
    std::vector<std::unique_ptr<char[]>> blocks;
    for (size_t size = 16; size <= (size_t{64} << 20); size *= 4) {
      blocks.emplace_back(new char[size]);
      std::memset(blocks.back().get(), 1, size);
    }
    std::string text;
    for (int i = 0; i < 10000; ++i) absl::StrAppend(&text, i, ",");
    blocks.clear();
    std::fprintf(stderr, "sandboxed loop done (%zu bytes)\n", text.size());
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return Check(out, false, ErrnoText("clock"));
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0)
      << Describe(r.wait_status) << ": " << r.output;
}

TEST_P(SandboxRoleTest, ClosesDescriptorsNotKept) {
  UniqueFd kept(open("/dev/null", O_RDONLY));
  UniqueFd dropped(open("/dev/null", O_RDONLY));
  ASSERT_TRUE(kept.valid() && dropped.valid());
  const int kept_fd = kept.get(), dropped_fd = dropped.get();
  ChildResult r = RunSandboxed(
      GetParam(),
      [=](int out, int) {
        if (fcntl(kept_fd, F_GETFD) < 0) return Check(out, false, "kept descriptor is closed");
        if (fcntl(dropped_fd, F_GETFD) >= 0 || errno != EBADF) {
          return Check(out, false, "descriptor not kept is still open");
        }
        return 0;
      },
      {kept_fd});
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0)
      << Describe(r.wait_status) << ": " << r.output;
}

TEST_P(SandboxRoleTest, ClearsEnvironment) {
  setenv("COOLD_SANDBOX_TEST", "1", 1);
  ChildResult r = RunSandboxed(GetParam(), [](int out, int) {
    return Check(out, environ == nullptr || environ[0] == nullptr, "environment not empty");
  });
  unsetenv("COOLD_SANDBOX_TEST");
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0)
      << Describe(r.wait_status) << ": " << r.output;
}

INSTANTIATE_TEST_SUITE_P(AllRoles, SandboxRoleTest,
                         ::testing::Values(ROLE_FRONT, ROLE_NETLINK, ROLE_PODMAN, ROLE_BUILD),
                         RoleParamName);

// ---- what each role's policy allows beyond the common loop ----

class SandboxFrontTest : public Sandboxed<::testing::Test> {};

TEST_F(SandboxFrontTest, RunsThreads) {
  ChildResult r = RunSandboxed(ROLE_FRONT, [](int out, int) {
    int sum = 0;
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&sum, i] {
        std::unique_ptr<char[]> block(new char[1 << 20]);  // An arena per thread.
        block[0] = static_cast<char>(i);
        __atomic_fetch_add(&sum, block[0], __ATOMIC_RELAXED);
      });
    }
    for (std::thread& t : threads) t.join();
    return Check(out, sum == 6, "threads did not run");
  });
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0)
      << Describe(r.wait_status) << ": " << r.output;
}

// It resolves names and opens IP sockets; it binds no TCP port (its listeners come from
// the monitor, bound), which Landlock refuses from ABI 4 on.
TEST_F(SandboxFrontTest, ResolvesNamesAndOpensIpSocketsButBindsNoTcpPort) {
  ChildResult r = RunSandboxed(ROLE_FRONT, [](int out, int) {
    addrinfo hints = {};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    if (int rc = getaddrinfo("localhost", "443", &hints, &result); rc != 0) {
      return Check(out, false, absl::StrCat("getaddrinfo: ", gai_strerror(rc)));
    }
    freeaddrinfo(result);
    UniqueFd tcp(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    UniqueFd udp6(socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!tcp.valid() || !udp6.valid()) return Check(out, false, ErrnoText("socket"));
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int bound = bind(tcp.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    if (LandlockAbi() >= 4) return Check(out, bound != 0 && errno == EACCES, "a TCP bind was not refused with EACCES");
    return Check(out, bound == 0, ErrnoText("bind"));
  });
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0)
      << Describe(r.wait_status) << ": " << r.output;
}

class SandboxNetlinkTest : public Sandboxed<::testing::Test> {};

TEST_F(SandboxNetlinkTest, OpensNetfilterSocket) {
  ChildResult r = RunSandboxed(ROLE_NETLINK, [](int out, int) {
    UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
    if (!fd.valid()) return Check(out, false, ErrnoText("socket(AF_NETLINK)"));
    sockaddr_nl addr = {};
    addr.nl_family = AF_NETLINK;
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return Check(out, false, ErrnoText("bind"));
    }
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0)
      << Describe(r.wait_status) << ": " << r.output;
}

class SandboxPodmanTest : public Sandboxed<::testing::Test> {};

// The podman role's one power: connecting, as uid 0 without capabilities, to a
// root-owned socket only root may open (like /run/podman/podman.sock).
TEST_F(SandboxPodmanTest, ConnectsToRootOwnedSocket) {
  char dir[] = "/tmp/coold-sandbox-test.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = absl::StrCat(dir, "/podman.sock");
  UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(chmod(path.c_str(), 0660), 0);
  ASSERT_EQ(chmod(dir, 0700), 0);
  ASSERT_EQ(listen(listener.get(), 4), 0);

  ChildResult r = RunSandboxed(ROLE_PODMAN, [&addr](int out, int) {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return Check(out, false, ErrnoText("socket(AF_UNIX)"));
    if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
      return Check(out, false, ErrnoText("connect"));
    }
    return 0;
  });
  unlink(path.c_str());
  rmdir(dir);
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0)
      << Describe(r.wait_status) << ": " << r.output;
}

class SandboxBuildTest : public Sandboxed<::testing::Test> {};

// Launched programs inherit the filter and the Landlock domain; the list covers what
// the dynamic loader and libc of a program do.
TEST_F(SandboxBuildTest, LaunchesPrograms) {
  ChildResult r = RunSandboxed(ROLE_BUILD, [](int out, int) {
    const pid_t pid = fork();
    if (pid < 0) return Check(out, false, ErrnoText("fork"));
    if (pid == 0) {
      char* const argv[] = {const_cast<char*>("true"), nullptr};
      char* const envp[] = {nullptr};
      execve("/bin/true", argv, envp);
      _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return Check(out, false, ErrnoText("waitpid"));
    return Check(out, WIFEXITED(status) && WEXITSTATUS(status) == 0,
                 absl::StrCat("/bin/true ", Describe(status)));
  });
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0)
      << Describe(r.wait_status) << ": " << r.output;
}

// ---- Landlock ----

struct OpenCase {
  Role role;
  const char* path;
  bool allowed;
};

class SandboxLandlockTest : public Sandboxed<::testing::TestWithParam<OpenCase>> {};

TEST_P(SandboxLandlockTest, OpensOnlyListedPaths) {
  if (LandlockAbi() == 0) GTEST_SKIP() << "kernel without Landlock";
  const OpenCase c = GetParam();
  ChildResult r = RunSandboxed(c.role, [c](int out, int) {
    UniqueFd fd(open(c.path, O_RDONLY | O_CLOEXEC));
    if (c.allowed) return Check(out, fd.valid(), ErrnoText(c.path));
    return Check(out, !fd.valid() && errno == EACCES,
                 absl::StrCat(c.path, ": want EACCES, got ",
                              fd.valid() ? "a descriptor" : strerror(errno)));
  });
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0)
      << Describe(r.wait_status) << ": " << r.output;
}

INSTANTIATE_TEST_SUITE_P(
    Paths, SandboxLandlockTest,
    ::testing::Values(OpenCase{ROLE_FRONT, "/etc/hosts", true},
                      OpenCase{ROLE_FRONT, "/etc/passwd", false},
                      OpenCase{ROLE_FRONT, "/proc/self/status", false},
                      OpenCase{ROLE_NETLINK, "/etc/hosts", false},
                      OpenCase{ROLE_NETLINK, "/proc/sys/net/ipv4/ip_forward", false},
                      OpenCase{ROLE_BUILD, "/usr/bin/true", true},
                      // No Landlock ruleset for the build launcher (landlock.h kNoRuleset).
                      OpenCase{ROLE_BUILD, "/etc/passwd", true}),
    [](const ::testing::TestParamInfo<OpenCase>& info) {
      return absl::StrCat(RoleName(info.param.role), "_", info.index);
    });

// ---- what each role's policy forbids: death by SIGSYS ----

struct ForbiddenCase {
  Role role;
  const char* name;
  long (*call)();
};

class SandboxForbiddenTest : public Sandboxed<::testing::TestWithParam<ForbiddenCase>> {};

TEST_P(SandboxForbiddenTest, KillsWithSigsys) {
  const ForbiddenCase c = GetParam();
  ChildResult r = RunSandboxed(c.role, [c](int out, int) {
    // Reached only if the call was let through.
    const long rc = c.call();
    return Check(out, false, absl::StrCat(c.name, " returned ", rc));
  });
  EXPECT_TRUE(WIFSIGNALED(r.wait_status) && WTERMSIG(r.wait_status) == SIGSYS)
      << c.name << ": " << Describe(r.wait_status) << ": " << r.output;
}

long Execve() {
  char* const argv[] = {const_cast<char*>("true"), nullptr};
  char* const envp[] = {nullptr};
  return syscall(SYS_execve, "/bin/true", argv, envp);
}
long Mount() { return syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, nullptr); }
long Unshare() { return syscall(SYS_unshare, CLONE_NEWUSER); }
long Ptrace() { return syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0); }
long Setuid() { return syscall(SYS_setuid, 0); }
long Fork() {
  const long rc = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (rc == 0) _exit(0);  // The new process, had the call been let through.
  return rc;
}
long SocketInet() { return syscall(SYS_socket, AF_INET, SOCK_STREAM, 0); }
long SocketNetlink() { return syscall(SYS_socket, AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER); }
long SocketNetlinkRoute() { return syscall(SYS_socket, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE); }
long SocketPacket() { return syscall(SYS_socket, AF_PACKET, SOCK_RAW, 0); }
long SocketUnixDgram() { return syscall(SYS_socket, AF_UNIX, SOCK_DGRAM, 0); }
long Openat() { return syscall(SYS_openat, AT_FDCWD, "/etc/hosts", O_RDONLY); }
long MmapExec() {
  return syscall(SYS_mmap, nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
long Kill() { return syscall(SYS_kill, 1, 0); }
long Bpf() { return syscall(SYS_bpf, 0, nullptr, 0); }

INSTANTIATE_TEST_SUITE_P(
    Calls, SandboxForbiddenTest,
    ::testing::Values(
        // front: no new programs, processes, privileges or namespaces; no netlink,
        // no raw packets, no executable memory.
        ForbiddenCase{ROLE_FRONT, "execve", Execve},
        ForbiddenCase{ROLE_FRONT, "ptrace", Ptrace},
        ForbiddenCase{ROLE_FRONT, "mount", Mount},
        ForbiddenCase{ROLE_FRONT, "unshare", Unshare},
        ForbiddenCase{ROLE_FRONT, "setuid", Setuid},
        ForbiddenCase{ROLE_FRONT, "fork", Fork},
        ForbiddenCase{ROLE_FRONT, "socket_netlink", SocketNetlink},
        ForbiddenCase{ROLE_FRONT, "socket_packet", SocketPacket},
        ForbiddenCase{ROLE_FRONT, "mmap_exec", MmapExec},
        ForbiddenCase{ROLE_FRONT, "kill", Kill},
        ForbiddenCase{ROLE_FRONT, "bpf", Bpf},
        // netlink: no IP sockets, no other netlink family, no threads or processes.
        ForbiddenCase{ROLE_NETLINK, "socket_inet", SocketInet},
        ForbiddenCase{ROLE_NETLINK, "socket_netlink_route", SocketNetlinkRoute},
        ForbiddenCase{ROLE_NETLINK, "socket_unix", SocketUnixDgram},
        ForbiddenCase{ROLE_NETLINK, "fork", Fork},
        ForbiddenCase{ROLE_NETLINK, "execve", Execve},
        ForbiddenCase{ROLE_NETLINK, "ptrace", Ptrace},
        ForbiddenCase{ROLE_NETLINK, "setuid", Setuid},
        // podman: AF_UNIX stream sockets only, no files at all.
        ForbiddenCase{ROLE_PODMAN, "socket_inet", SocketInet},
        ForbiddenCase{ROLE_PODMAN, "socket_netlink", SocketNetlink},
        ForbiddenCase{ROLE_PODMAN, "socket_unix_dgram", SocketUnixDgram},
        ForbiddenCase{ROLE_PODMAN, "openat", Openat},
        ForbiddenCase{ROLE_PODMAN, "execve", Execve},
        ForbiddenCase{ROLE_PODMAN, "ptrace", Ptrace},
        ForbiddenCase{ROLE_PODMAN, "setuid", Setuid},
        ForbiddenCase{ROLE_PODMAN, "fork", Fork},
        // build: builds mount, make namespaces and use the network (git), but nothing
        // reaches into the kernel: no tracing, no BPF.
        ForbiddenCase{ROLE_BUILD, "ptrace", Ptrace},
        ForbiddenCase{ROLE_BUILD, "bpf", Bpf}),
    [](const ::testing::TestParamInfo<ForbiddenCase>& info) {
      return absl::StrCat(RoleName(info.param.role), "_", info.param.name);
    });

// ---- passed directories ----

// The firewall writer replaces its snapshots inside directories the monitor opens for it
// (configurable paths, so not in the list). Beneath such a directory it may create, write
// and rename files; anywhere else it may not.
TEST_F(SandboxNetlinkTest, WritesOnlyBeneathPassedDirectories) {
  if (LandlockAbi() == 0) GTEST_SKIP() << "kernel without Landlock";
  char snapshots[] = "/tmp/sandbox-passed-XXXXXX";
  char elsewhere[] = "/tmp/sandbox-other-XXXXXX";
  ASSERT_NE(mkdtemp(snapshots), nullptr);
  ASSERT_NE(mkdtemp(elsewhere), nullptr);
  // Both writable by the role's user through DAC, so only Landlock tells them apart.
  ASSERT_EQ(chmod(snapshots, 01777), 0);
  ASSERT_EQ(chmod(elsewhere, 01777), 0);
  UniqueFd dir(open(snapshots, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir.valid());
  const int dir_fd = dir.get();
  const std::string other = std::string(elsewhere) + "/x";
  ChildResult r = RunSandboxed(
      ROLE_NETLINK,
      [dir_fd, other](int out, int) {
        UniqueFd tmp(openat(dir_fd, "allow.rules.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!tmp.valid()) return Check(out, false, ErrnoText("openat beneath the passed directory"));
        if (write(tmp.get(), "x", 1) != 1 || fsync(tmp.get()) != 0) return Check(out, false, ErrnoText("write"));
        if (renameat(dir_fd, "allow.rules.tmp", dir_fd, "allow.rules") != 0) {
          return Check(out, false, ErrnoText("renameat"));
        }
        UniqueFd outside(open(other.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        if (outside.valid() || errno != EACCES) return Check(out, false, "created a file outside: not EACCES");
        return 0;
      },
      {}, {dir_fd});
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0)
      << Describe(r.wait_status) << ": " << r.output;
  struct stat st;
  EXPECT_EQ(stat((std::string(snapshots) + "/allow.rules").c_str(), &st), 0);
  EXPECT_NE(stat(other.c_str(), &st), 0);
  unlink((std::string(snapshots) + "/allow.rules").c_str());
  rmdir(snapshots);
  rmdir(elsewhere);
}

// ---- started as the role's user (systemd's User=) ----

// As systemd starts a service with User= and CapabilityBoundingSet=`keep_bounding`:
// the user's ids, its groups from initgroups(3) (the primary group, plus `extra_group`
// when set), and, since all its uids leave 0 without PR_SET_KEEPCAPS, no effective or
// permitted capability. The child's stderr goes to the test's pipe, for the refusal.
Prepare StartAs(const std::string& user, bool keep_bounding = false, gid_t extra_group = 0) {
  return [=](int out) {
    auto ids = ResolveUser(user);
    if (!ids.ok()) _exit(120);
    if (!keep_bounding) {
      for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) _exit(121);
      }
    }
    std::vector<gid_t> groups = {ids->gid};
    if (extra_group != 0) groups.push_back(extra_group);
    if (setgroups(groups.size(), groups.data()) != 0) _exit(122);
    if (setresgid(ids->gid, ids->gid, ids->gid) != 0 || setresuid(ids->uid, ids->uid, ids->uid) != 0) _exit(123);
    dup2(out, STDERR_FILENO);
  };
}

class SandboxStartedAsUserTest : public Sandboxed<::testing::Test> {};

// The broker under broker.service: coolify-broker from exec, no capability at all. It
// has nothing to change its identity with and needs nothing: the sandbox verifies it,
// sets its limits, Landlock and seccomp, and it is as confined as one dropped from root.
TEST_F(SandboxStartedAsUserTest, BrokerStartedAsItsUserWithNoCapabilityIsConfined) {
  const Role role = ROLE_BROKER;
  auto ids = ResolveUser(RoleUser(role));
  ASSERT_TRUE(ids.ok()) << ids.status();
  ChildResult r = RunSandboxed(
      role,
      [](int out, int proc_status) {
        absl::StatusOr<ProcStatus> status = ReadProcStatusFd(proc_status);
        if (!status.ok()) return Check(out, false, status.status().ToString());
        WriteAll(out, absl::StrCat("uid=", status->uid, " gid=", status->gid, " groups=", status->groups,
                                   " eff=", status->cap_eff, " prm=", status->cap_prm, " bnd=", status->cap_bnd,
                                   " inh=", status->cap_inh, " amb=", status->cap_amb,
                                   " nnp=", status->no_new_privs, " seccomp=", status->seccomp,
                                   " landlock=", AppliedLandlockAbi(), "\n"));
        return 0;
      },
      {}, {}, StartAs(RoleUser(role)));
  ASSERT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0)
      << Describe(r.wait_status) << ": " << r.output;
  EXPECT_THAT(r.output, HasSubstr(absl::StrCat("uid=", ids->uid, " gid=", ids->gid,
                                               " groups=1 eff=0 prm=0 bnd=0 inh=0 amb=0 nnp=1 seccomp=2 landlock=",
                                               LandlockAbi(), "\n")));
}

TEST_F(SandboxStartedAsUserTest, TheRolesUserHoldingABoundingSetIsRefused) {
  ChildResult r = RunSandboxed(
      ROLE_BROKER, [](int, int) { return 0; }, {}, {}, StartAs(RoleUser(ROLE_BROKER), /*keep_bounding=*/true));
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 126) << Describe(r.wait_status);
  EXPECT_THAT(r.output, HasSubstr("sandbox(broker): identity: "));
  EXPECT_THAT(r.output, HasSubstr("holding CapBnd"));
  EXPECT_THAT(r.output, HasSubstr("CapabilityBoundingSet="));
}

TEST_F(SandboxStartedAsUserTest, TheRolesUserInAnotherGroupIsRefused) {
  ChildResult r = RunSandboxed(
      ROLE_BROKER, [](int, int) { return 0; }, {}, {}, StartAs(RoleUser(ROLE_BROKER), false, /*extra_group=*/4242));
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 126) << Describe(r.wait_status);
  EXPECT_THAT(r.output, HasSubstr("sandbox(broker): identity: "));
  EXPECT_THAT(r.output, HasSubstr("a supplementary group other than the user's own"));
}

// Neither root nor the role's user: it could become neither.
TEST_F(SandboxStartedAsUserTest, AnotherUserIsRefused) {
  ChildResult r = RunSandboxed(ROLE_BROKER, [](int, int) { return 0; }, {}, {}, StartAs("nobody"));
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 126) << Describe(r.wait_status);
  EXPECT_THAT(r.output, HasSubstr("sandbox(broker): identity: started as uid 65534"));
  EXPECT_THAT(r.output, HasSubstr("must be root or coolify-broker"));
}

// ---- failures ----

TEST(SandboxFailureTest, PassedDirectoryWithoutAListRuleExits126) {
  UniqueFd dir(open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir.valid());
  // The gatekeeper's list grants no passed directory.
  ChildResult r = RunSandboxed(ROLE_PODMAN, [](int, int) { return 0; }, {}, {dir.get()});
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 126)
      << Describe(r.wait_status);
}

TEST(SandboxFailureTest, RoleWithoutSandboxExits126) {
  ChildResult r = RunSandboxed(ROLE_MONITOR, [](int, int) { return 0; });
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 126)
      << Describe(r.wait_status);
}

TEST(SandboxFailureTest, ClosedKeptDescriptorExits126) {
  ChildResult r = RunSandboxed(ROLE_FRONT, [](int, int) { return 0; }, {1000});
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 126)
      << Describe(r.wait_status);
}

}  // namespace
}  // namespace coolify::privsep
