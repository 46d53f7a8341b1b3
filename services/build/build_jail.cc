#include "services/build/build_jail.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <libmnl/libmnl.h>
#include <linux/capability.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/builder/build_files.h"

namespace coolify::build {
namespace {

using privsep::UniqueFd;

// slirp4netns' fixed addresses (its default 10.0.2.0/24): the gateway, which stands for
// the host, and the DNS forwarder.
constexpr char kTap[] = "tap0";
constexpr uint32_t kSlirpGateway = 0x0A000202;  // 10.0.2.2
constexpr char kSlirp[] = "/usr/bin/slirp4netns";
// How long the builder waits for its network helper before it gives up.
constexpr int kHelperReadyMs = 10000;

uint32_t Mask(int prefix) { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }

bool WriteAll(int fd, const std::string& text) {
  return write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

bool WriteProcFile(pid_t pid, const char* name, const std::string& text) {
  const std::string path = absl::StrCat("/proc/", pid, "/", name);
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  return fd && WriteAll(fd.get(), text);
}

// The calling thread's capability sets: `effective` and `permitted` (bit n = capability
// n), inheritable empty.
bool SetCapabilities(uint64_t caps) {
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = data[i].permitted = static_cast<uint32_t>(caps >> (32 * i));
  }
  return syscall(SYS_capset, &header, data) == 0;
}

// Becomes host uid and gid `id` with no supplementary groups, keeping `caps`.
bool BecomeHostId(uid_t id, uint64_t caps) {
  if (setgroups(0, nullptr) != 0 || setresgid(id, id, id) != 0) return false;
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setresuid(id, id, id) != 0) return false;
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return false;
  return SetCapabilities(caps);
}

constexpr uint64_t Cap(int n) { return uint64_t{1} << n; }

// Everything of one start that crosses fork and clone. Plain descriptors: each process
// closes what it does not use.
struct Pipes {
  int go[2] = {-1, -1};      // launcher -> intermediate: in the cgroup, go on
  int child[2] = {-1, -1};   // intermediate -> launcher: the builder's pid
  int mapped[2] = {-1, -1};  // intermediate -> builder: id maps written
  int ready[2] = {-1, -1};   // slirp4netns -> builder: the tap is configured
  int exit[2] = {-1, -1};    // builder holds the write end; slirp4netns ends at its EOF
  ~Pipes() {
    for (int* p : {go, child, mapped, ready, exit}) {
      for (int i = 0; i < 2; ++i) {
        if (p[i] >= 0) close(p[i]);
      }
    }
  }
};

// ---- The builder's side (root of the new user namespace, before exec). ----

// A failure of the jail's setup: the reason goes to error.json in the work directory (as
// the builder would write it) and to builder.log, and the process ends.
[[noreturn]] void SetupFailed(int work_dir, const std::string& request_id, const std::string& step) {
  const std::string reason = absl::StrCat("sandbox: ", step, ": ", strerror(errno));
  BuildErrorFile error;
  error.set_request_id(request_id);
  error.set_phase("sandbox");
  error.set_code(500);
  error.set_reason(reason);
  (void)WriteFileAtomically(work_dir, kErrorFile, ErrorJson(error));
  (void)!write(2, reason.data(), reason.size());
  (void)!write(2, "\n", 1);
  _exit(125);
}

struct Setup {
  const JailConfig& config;
  const JailLaunch& launch;
  int null_fd;
  [[noreturn]] void Fail(const std::string& step) const { SetupFailed(launch.work_dir, launch.request_id, step); }

  void Mkdir(const std::string& path, mode_t mode) const {
    if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) Fail("mkdir " + path);
  }
  void MkdirAll(const std::string& path) const {
    for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
      Mkdir(path.substr(0, slash), 0755);
    }
    Mkdir(path, 0755);
  }
  void Mount(const char* source, const std::string& target, const char* type, unsigned long flags,
             const char* data) const {
    if (mount(source, target.c_str(), type, flags, data) != 0) Fail(absl::StrCat("mount ", target));
  }
  // A read-only bind of a host path (a directory or a file). Its flags are the host
  // mount's as well: nosuid and nodev always.
  void BindReadOnly(const std::string& source, const std::string& target, bool optional = false) const {
    struct stat st;
    if (stat(source.c_str(), &st) != 0) {
      if (optional) return;
      Fail("stat " + source);
    }
    if (S_ISDIR(st.st_mode)) {
      MkdirAll(target);
    } else {
      UniqueFd f(open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
      if (!f) Fail("create " + target);
    }
    Mount(source.c_str(), target, nullptr, MS_BIND | MS_REC, nullptr);
    Remount(target, MS_RDONLY | MS_NOSUID | MS_NODEV);
  }
  // A bind remounted with `flags` added to those of the mount it came from: flags the
  // host set are locked in a user namespace, and dropping one fails.
  void Remount(const std::string& target, unsigned long flags) const {
    struct statvfs st;
    if (statvfs(target.c_str(), &st) != 0) Fail("statvfs " + target);
    for (auto [st_flag, ms_flag] : {std::pair{ST_NOSUID, MS_NOSUID}, std::pair{ST_NODEV, MS_NODEV},
                                    std::pair{ST_NOEXEC, MS_NOEXEC}, std::pair{ST_NOATIME, MS_NOATIME},
                                    std::pair{ST_NODIRATIME, MS_NODIRATIME}, std::pair{ST_RELATIME, MS_RELATIME},
                                    std::pair{ST_RDONLY, MS_RDONLY}}) {
      if (st.f_flag & st_flag) flags |= ms_flag;
    }
    Mount(nullptr, target, nullptr, MS_BIND | MS_REMOUNT | flags, nullptr);
  }
  void WriteFile(const std::string& path, const std::string& text) const {
    UniqueFd f(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!f || !WriteAll(f.get(), text)) Fail("write " + path);
  }

  // The new root: a tmpfs mounted over /tmp of this mount namespace (a copy of the
  // launcher's, private from here on) and pivoted into at once, so the host's tree is
  // only at /.old while the root is filled, and then detached.
  void MakeRoot() const {
    Mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
    Mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m");
    Mkdir("/tmp/.old", 0700);
    if (syscall(SYS_pivot_root, "/tmp", "/tmp/.old") != 0) Fail("pivot_root");
    const std::string h = "/.old";  // the host's tree, until detached
    // Programs and libraries; Debian's merged /usr keeps /bin, /sbin and /lib as links.
    BindReadOnly(h + "/usr", "/usr");
    for (const char* link : {"bin", "sbin", "lib", "lib32", "lib64", "libx32"}) {
      char target[64];
      ssize_t n = readlink(absl::StrCat(h, "/", link).c_str(), target, sizeof(target) - 1);
      if (n <= 0) continue;
      target[n] = '\0';
      if (symlink(target, absl::StrCat("/", link).c_str()) != 0) Fail(absl::StrCat("symlink ", link));
    }
    // /etc: what name resolution, TLS, the loader and containers/image read; the rest
    // of the host's configuration stays out.
    Mkdir("/etc", 0755);
    for (const char* file : {"nsswitch.conf", "ld.so.cache", "gai.conf", "services", "protocols", "mime.types",
                             "localtime"}) {
      BindReadOnly(absl::StrCat(h, "/etc/", file), absl::StrCat("/etc/", file), /*optional=*/true);
    }
    for (const char* dir : {"ssl", "ca-certificates", "containers", "alternatives"}) {
      BindReadOnly(absl::StrCat(h, "/etc/", dir), absl::StrCat("/etc/", dir), /*optional=*/true);
    }
    WriteFile("/etc/passwd", "root:x:0:0:root:/build/home:/bin/sh\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n");
    WriteFile("/etc/group", "root:x:0:\nnogroup:x:65534:\n");
    WriteFile("/etc/hosts", "127.0.0.1 localhost coolify-build\n");
    WriteFile("/etc/hostname", "coolify-build\n");
    // slirp4netns forwards DNS from 10.0.2.3 to the host's resolver; without a network
    // there is nothing to ask.
    WriteFile("/etc/resolv.conf", config.network == JailNetwork::kSlirp ? "nameserver 10.0.2.3\n" : "");
    // The work directory, read-write: the only host directory the build may write. It
    // is this process's working directory, entered before the clone (its path may
    // cross directories the build's uid cannot search), and so already part of this
    // mount namespace.
    Mkdir(kJailWorkDir, 0755);
    Mount(".", kJailWorkDir, nullptr, MS_BIND, nullptr);
    Remount(kJailWorkDir, MS_NOSUID | MS_NODEV);
    if (chdir("/") != 0) Fail("chdir /");
    // Private scratch space.
    for (const char* dir : {"/tmp", "/var/tmp"}) {
      MkdirAll(dir);
      Mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=1g");
    }
    MkdirAll("/run");
    Mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64m");
    // Host paths the build reads (on top of the scratch space, where they may lie).
    if (!config.images_dir.empty()) BindReadOnly(h + config.images_dir, kJailImagesDir);
    for (const std::string& path : launch.read_only_paths) BindReadOnly(h + path, path);
    // The slot's base image store: its files are the slot's own ids, so only the lock
    // the nested user namespace puts on this read-only mount keeps the build from
    // changing them (NestUserNamespace).
    if (!launch.base_store.empty()) BindReadOnly(h + launch.base_store, kJailBaseStoreDir);
    // A minimal /dev: the host's harmless character devices, a pty instance of its own.
    Mkdir("/dev", 0755);
    Mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k");
    for (const char* dev : {"null", "zero", "full", "random", "urandom", "tty"}) {
      const std::string target = absl::StrCat("/dev/", dev);
      UniqueFd f(open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
      if (!f) Fail("create " + target);
      Mount(absl::StrCat(h, "/dev/", dev).c_str(), target, nullptr, MS_BIND, nullptr);
    }
    Mkdir("/dev/pts", 0755);
    Mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
    Mkdir("/dev/shm", 01777);
    Mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m");
    for (auto [name, target] : {std::pair{"ptmx", "pts/ptmx"}, std::pair{"fd", "/proc/self/fd"},
                                std::pair{"stdin", "/proc/self/fd/0"}, std::pair{"stdout", "/proc/self/fd/1"},
                                std::pair{"stderr", "/proc/self/fd/2"}}) {
      if (symlink(target, absl::StrCat("/dev/", name).c_str()) != 0) Fail(absl::StrCat("symlink /dev/", name));
    }
    // /proc of the build's own PID namespace; /sys as the build's network namespace
    // shows it, read-only. (The kernel lets a user namespace mount these only while a
    // full view of each is mounted in its mount namespace: the host's, until detached.)
    Mkdir("/proc", 0555);
    Mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
    Mkdir("/sys", 0555);
    Mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, nullptr);
    if (!launch.cgroup_dirs.empty()) {
      Mount("tmpfs", "/sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k");
      for (const std::string& dir : launch.cgroup_dirs) BindReadOnly(h + dir, dir);
      Mount(nullptr, "/sys/fs/cgroup", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "mode=0755,size=64k");
    }
    // The host's tree goes; nothing of it can be reached again.
    if (umount2(h.c_str(), MNT_DETACH) != 0) Fail("umount the host's root");
    if (rmdir(h.c_str()) != 0) Fail("rmdir /.old");
    Mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr);
  }

  // Moves this process into a second user namespace, nested in the build's first, with
  // the same ids (0..65535 mapped to themselves) and a copy of its mount namespace. The
  // kernel locks every mount of that copy: a mount the jail made read-only (the base
  // image store, /usr, the root) stays read-only whatever its root does, whereas in the
  // namespace that made them their root could remount them read-write. The network, PID,
  // IPC and UTS namespaces stay the first one's: nothing the build runs holds a
  // capability over them (its routes, its hostname), only over what it creates itself.
  void NestUserNamespace() const {
    int go[2];
    if (pipe2(go, O_CLOEXEC) != 0) Fail("pipe2");
    // The maps of a user namespace are written from its parent by a process holding
    // CAP_SETUID and CAP_SETGID there: a child left in the first one.
    pid_t writer = fork();
    if (writer < 0) Fail("fork");
    if (writer == 0) {
      close(go[1]);
      char ready = 0;
      const std::string map = absl::StrCat("0 0 ", kJailIds, "\n");
      const pid_t parent = getppid();
      _exit(read(go[0], &ready, 1) == 1 && WriteProcFile(parent, "uid_map", map) && WriteProcFile(parent, "gid_map", map)
                ? 0
                : 1);
    }
    close(go[0]);
    const bool nested = unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0;
    const int unshare_errno = errno;
    (void)!write(go[1], "n", 1);
    close(go[1]);
    int status = 0;
    while (waitpid(writer, &status, 0) < 0 && errno == EINTR) {
    }
    errno = unshare_errno;
    if (!nested) Fail("unshare a nested user namespace");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      errno = EPERM;
      Fail("the nested user namespace's maps");
    }
    if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) Fail("setresuid in the nested user namespace");
  }

  void LoopbackUp() const {
    UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr = {};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (!s || ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) Fail("loopback flags");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) Fail("loopback up");
  }

  // One route in the main table: `prohibit` for a denied range, via the helper's
  // gateway for an allowed one.
  void AddRoute(mnl_socket* nl, uint32_t seq, const Cidr& dst, bool prohibit, int tap) const {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWROUTE;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    nlh->nlmsg_seq = seq;
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rtm->rtm_family = AF_INET;
    rtm->rtm_dst_len = static_cast<unsigned char>(dst.prefix);
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_STATIC;
    rtm->rtm_scope = RT_SCOPE_UNIVERSE;
    rtm->rtm_type = prohibit ? RTN_PROHIBIT : RTN_UNICAST;
    mnl_attr_put_u32(nlh, RTA_DST, htonl(dst.address));
    if (!prohibit) {
      mnl_attr_put_u32(nlh, RTA_GATEWAY, htonl(kSlirpGateway));
      mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(tap));
    }
    const std::string what = absl::StrCat(prohibit ? "prohibit route " : "route ", FormatCidr(dst));
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) Fail(what);
    ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
    if (n < 0 || mnl_cb_run(buf, static_cast<size_t>(n), seq, mnl_socket_get_portid(nl), nullptr, nullptr) < 0) {
      Fail(what);
    }
  }

  void MakeNetwork(int ready) const {
    LoopbackUp();
    // What the build runs holds no capability over this network namespace (see
    // NestUserNamespace), CAP_NET_BIND_SERVICE included; nothing else listens in it, so
    // every port is as good as unprivileged (a RUN step's test server on port 80).
    {
      UniqueFd f(open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC));
      if (!f || !WriteAll(f.get(), "0\n")) Fail("ip_unprivileged_port_start");
    }
    if (config.network == JailNetwork::kNone) return;
    // The helper writes "1" once the tap is up with its address and default route.
    pollfd p = {ready, POLLIN, 0};
    char one = 0;
    if (poll(&p, 1, kHelperReadyMs) != 1 || read(ready, &one, 1) != 1) {
      errno = ETIMEDOUT;
      Fail("the network helper (slirp4netns) did not come up");
    }
    const int tap = static_cast<int>(if_nametoindex(kTap));
    if (tap == 0) Fail("no tap device");
    mnl_socket* nl = mnl_socket_open(NETLINK_ROUTE);
    if (nl == nullptr || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) Fail("rtnetlink");
    uint32_t seq = 1;
    // The helper's gateway stands for the host itself.
    AddRoute(nl, seq++, Cidr{kSlirpGateway, 32}, /*prohibit=*/true, tap);
    for (const Cidr& cidr : config.deny) AddRoute(nl, seq++, cidr, /*prohibit=*/true, tap);
    for (const Cidr& cidr : config.allow) AddRoute(nl, seq++, cidr, /*prohibit=*/false, tap);
    mnl_socket_close(nl);
  }

  [[noreturn]] void Run(const Pipes& pipes) const {
    // The log first, so every later failure is seen.
    if (dup2(launch.log, 2) < 0) _exit(125);
    char mapped = 0;
    if (read(pipes.mapped[0], &mapped, 1) != 1) {
      errno = EPERM;
      Fail("uid and gid maps");
    }
    // Root of the user namespace from here on (the host's uid B).
    if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) Fail("setresuid");
    if (setsid() < 0) Fail("setsid");
    static const char kHost[] = "coolify-build";
    if (sethostname(kHost, sizeof(kHost) - 1) != 0) Fail("sethostname");
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    MakeRoot();
    MakeNetwork(pipes.ready[0]);
    NestUserNamespace();
    // The build's capabilities, and no more, for everything it starts. CAP_NET_ADMIN
    // and CAP_NET_RAW are not among them: the routes above stay as they are.
    for (int cap = 0; cap <= 63; ++cap) {
      if ((config.capabilities & Cap(cap)) == 0 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
        Fail(absl::StrCat("dropping capability ", cap));
      }
    }
    if (dup2(null_fd, 0) < 0 || dup2(launch.log, 1) < 0 || dup2(launch.executable, 3) < 0 ||
        (config.network == JailNetwork::kSlirp && dup2(pipes.exit[1], 4) < 0)) {
      Fail("dup2");
    }
    // Kept open across exec: the helper ends when the last holder (the builder and, by
    // inheritance, what it starts, all of which end with its PID namespace) is gone.
    fcntl(3, F_SETFD, FD_CLOEXEC);
    syscall(SYS_close_range, config.network == JailNetwork::kSlirp ? 5 : 4, ~0U, 0);
    std::vector<char*> argv, envp;
    for (const std::string& a : launch.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const std::string& e : launch.envp) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    syscall(SYS_execveat, 3, "", argv.data(), envp.data(), AT_EMPTY_PATH);
    Fail("execute the builder");
  }
};

std::string IdMap(uid_t host) { return absl::StrCat("0 ", host, " ", kJailIds, "\n"); }

// The intermediate's part: uid B with CAP_SETUID/CAP_SETGID, the clone, the maps.
// Returns the new process's pid in the parent, 0 in the child, -1 on error.
pid_t CloneAsSlot(uid_t host, unsigned long flags, int mapped_write, int work_dir) {
  if (!BecomeHostId(host, Cap(CAP_SETUID) | Cap(CAP_SETGID))) return -1;
  if (work_dir >= 0 && fchdir(work_dir) != 0) return -1;
  // Its /proc files then belong to uid B (the maps are written as B, with the host's
  // CAP_SETUID; the helper opens its namespaces as B).
  if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) return -1;
  long pid = syscall(SYS_clone, flags | CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid <= 0) return static_cast<pid_t>(pid);
  if (!WriteProcFile(static_cast<pid_t>(pid), "uid_map", IdMap(host)) ||
      !WriteProcFile(static_cast<pid_t>(pid), "gid_map", IdMap(host)) || write(mapped_write, "m", 1) != 1) {
    kill(static_cast<pid_t>(pid), SIGKILL);
    return -1;
  }
  return static_cast<pid_t>(pid);
}

absl::StatusOr<pid_t> ReadChildPid(int fd, pid_t intermediate) {
  pid_t child = 0;
  ssize_t n;
  do {
    n = read(fd, &child, sizeof(child));
  } while (n < 0 && errno == EINTR);
  if (n != sizeof(child) || child <= 0) {
    int status = 0;
    waitpid(intermediate, &status, 0);
    return absl::InternalError(absl::StrCat("the build's namespaces could not be made (", 
                                            WIFEXITED(status) ? WEXITSTATUS(status) : -1, ")"));
  }
  return child;
}

}  // namespace

bool Cidr::Contains(const Cidr& other) const {
  return other.prefix >= prefix && (other.address & Mask(prefix)) == address;
}
bool Cidr::Overlaps(const Cidr& other) const { return Contains(other) || other.Contains(*this); }

absl::StatusOr<Cidr> ParseCidr(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, '/');
  Cidr cidr;
  cidr.prefix = 32;
  in_addr addr;
  if (parts.size() > 2 || inet_pton(AF_INET, parts[0].c_str(), &addr) != 1 ||
      (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &cidr.prefix) || cidr.prefix < 0 || cidr.prefix > 32))) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not an IPv4 address or CIDR"));
  }
  cidr.address = ntohl(addr.s_addr) & Mask(cidr.prefix);
  return cidr;
}

std::string FormatCidr(const Cidr& cidr) {
  in_addr addr{htonl(cidr.address)};
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr, text, sizeof(text));
  return absl::StrCat(text, "/", cidr.prefix);
}

uid_t SlotHostId(const JailConfig& config, uint32_t slot) { return config.uid_base + slot * kJailIds; }

absl::StatusOr<JailedBuild> StartJailed(const JailConfig& config, const JailLaunch& launch) {
  const uid_t host = SlotHostId(config, launch.slot);
  const bool network = config.network == JailNetwork::kSlirp;
  UniqueFd null_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd slirp(open(kSlirp, O_PATH | O_CLOEXEC));
  if (!null_fd) return absl::ErrnoToStatus(errno, "open /dev/null");
  if (network && !slirp) return absl::ErrnoToStatus(errno, absl::StrCat("open ", kSlirp, " (package slirp4netns)"));
  Pipes pipes;
  for (int* p : {pipes.go, pipes.child, pipes.mapped, pipes.ready, pipes.exit}) {
    if (pipe2(p, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  }
  // Prepared before fork: the helper's command line names the builder's pid, which the
  // intermediate learns only after the clone; the rest is fixed now.
  const std::string ready_fd = std::to_string(pipes.ready[1]), exit_fd = std::to_string(pipes.exit[0]);
  Setup setup{config, launch, null_fd.get()};

  pid_t intermediate = fork();
  if (intermediate < 0) return absl::ErrnoToStatus(errno, "fork");
  if (intermediate == 0) {
    char go = 0;
    if (read(pipes.go[0], &go, 1) != 1) _exit(126);
    // The builder starts in its work directory (see Setup::MakeRoot); entered as uid B,
    // which owns it.
    pid_t builder = CloneAsSlot(host, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC |
                                          CLONE_NEWUTS,
                                pipes.mapped[1], launch.work_dir);
    if (builder == 0) setup.Run(pipes);
    if (builder < 0 || write(pipes.child[1], &builder, sizeof(builder)) != sizeof(builder)) _exit(126);
    if (!network) _exit(0);
    // The network helper: uid B without a capability on the host. It runs in the
    // build's user namespace (which uid B owns; there its sandbox may make a mount
    // namespace and drop capabilities) and in the host's network namespace, and joins
    // the build's network namespace only to make the tap.
    if (!SetCapabilities(0)) _exit(126);
    {
      UniqueFd userns(open(absl::StrCat("/proc/", builder, "/ns/user").c_str(), O_RDONLY | O_CLOEXEC));
      if (!userns || setns(userns.get(), CLONE_NEWUSER) != 0) _exit(126);
    }
    fcntl(pipes.ready[1], F_SETFD, 0);
    fcntl(pipes.exit[0], F_SETFD, 0);
    const std::string netns = absl::StrCat("/proc/", builder, "/ns/net");
    const std::string ready_arg = "--ready-fd=" + ready_fd, exit_arg = "--exit-fd=" + exit_fd;
    const char* argv[] = {"slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
                          "--enable-sandbox", "--enable-seccomp", "--netns-type=path",
                          ready_arg.c_str(), exit_arg.c_str(), netns.c_str(), kTap, nullptr};
    const char* envp[] = {"PATH=/usr/bin:/bin", nullptr};
    if (dup2(null_fd.get(), 0) < 0 || dup2(launch.log, 1) < 0 || dup2(launch.log, 2) < 0) _exit(126);
    syscall(SYS_execveat, slirp.get(), "", argv, envp, AT_EMPTY_PATH);
    _exit(127);
  }
  // The launcher keeps none of the pipes but its own two ends.
  for (int* fd : {&pipes.go[0], &pipes.child[1], &pipes.mapped[0], &pipes.mapped[1], &pipes.ready[0],
                  &pipes.ready[1], &pipes.exit[0], &pipes.exit[1]}) {
    close(*fd);
    *fd = -1;
  }
  if (absl::Status s = launch.enter_cgroup(intermediate); !s.ok()) {
    kill(intermediate, SIGKILL);
    waitpid(intermediate, nullptr, 0);
    return s;
  }
  if (write(pipes.go[1], "g", 1) != 1) return absl::ErrnoToStatus(errno, "starting the build");
  absl::StatusOr<pid_t> builder = ReadChildPid(pipes.child[0], intermediate);
  if (!builder.ok()) return builder.status();
  JailedBuild started;
  started.builder = *builder;
  started.pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, *builder, 0)));
  if (network) {
    started.helper = intermediate;
  } else {
    waitpid(intermediate, nullptr, 0);
  }
  return started;
}

namespace {

// Runs `program` (opened O_PATH) with `args` and `env` in directory `dir`, as root of a
// fresh user namespace with the slot's mapping and the namespaces `flags` adds; its
// output goes to /dev/null. Returns its pid, the launcher's child.
absl::StatusOr<pid_t> StartAsSlot(const JailConfig& config, uint32_t slot, int dir, unsigned long flags, int program,
                                  std::vector<std::string> args, std::vector<std::string> env) {
  const uid_t host = SlotHostId(config, slot);
  Pipes pipes;
  for (int* p : {pipes.child, pipes.mapped}) {
    if (pipe2(p, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  }
  UniqueFd null_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null_fd) return absl::ErrnoToStatus(errno, "open /dev/null");
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t intermediate = fork();
  if (intermediate < 0) return absl::ErrnoToStatus(errno, "fork");
  if (intermediate == 0) {
    pid_t child = CloneAsSlot(host, CLONE_NEWUSER | flags, pipes.mapped[1], dir);
    if (child == 0) {
      char mapped = 0;
      if (read(pipes.mapped[0], &mapped, 1) != 1 || setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) {
        _exit(125);
      }
      if (dup2(null_fd.get(), 0) < 0 || dup2(null_fd.get(), 1) < 0 || dup2(null_fd.get(), 2) < 0) _exit(125);
      syscall(SYS_execveat, program, "", argv.data(), envp.data(), AT_EMPTY_PATH);
      _exit(127);
    }
    if (child < 0 || write(pipes.child[1], &child, sizeof(child)) != sizeof(child)) _exit(126);
    _exit(0);
  }
  close(pipes.child[1]);
  pipes.child[1] = -1;
  absl::StatusOr<pid_t> child = ReadChildPid(pipes.child[0], intermediate);
  if (child.ok()) waitpid(intermediate, nullptr, 0);
  return child;
}

}  // namespace

absl::StatusOr<pid_t> StartCleaner(const JailConfig& config, uint32_t slot, int work_dir,
                                   const std::vector<std::string>& names) {
  UniqueFd rm(open("/usr/bin/rm", O_PATH | O_CLOEXEC));
  if (!rm) return absl::ErrnoToStatus(errno, "open /usr/bin/rm");
  std::vector<std::string> args = {"rm", "-rf", "--one-file-system", "--"};
  for (const std::string& name : names) args.push_back(name);
  // Root there may remove every file of the build (all owned by the slot's ids), and
  // nothing else on the host.
  return StartAsSlot(config, slot, work_dir, 0, rm.get(), std::move(args), {"LC_ALL=C"});
}

absl::StatusOr<pid_t> StartBaseStoreLoader(const JailConfig& config, uint32_t slot, int store_dir,
                                           const std::string& store_path, const std::string& storage_driver,
                                           const std::vector<std::string>& archives,
                                           const std::vector<std::string>& env) {
  UniqueFd sh(open("/bin/sh", O_PATH | O_CLOEXEC));
  if (!sh) return absl::ErrnoToStatus(errno, "open /bin/sh");
  // The archives are the operator's (COOLD_BUILD_IMAGES_DIR), never a build's; their
  // paths reach buildah as arguments, not as shell text.
  std::vector<std::string> args = {
      "sh", "-ec",
      "root=$1 driver=$2; shift 2; rm -rf --one-file-system storage run tmp; mkdir -m 0700 tmp\n"
      "for archive; do /usr/bin/buildah --root=\"$root/storage\" --runroot=\"$root/run\" "
      "--storage-driver=\"$driver\" pull --quiet \"docker-archive:$archive\"; done",
      "sh", store_path, storage_driver};
  for (const std::string& archive : archives) args.push_back(archive);
  std::vector<std::string> environment = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=" + store_path + "/tmp",
                                          "TMPDIR=" + store_path + "/tmp"};
  for (const std::string& e : env) environment.push_back(e);
  // Its own mount namespace for the storage's overlay mounts, and no network: loading a
  // docker-archive needs none.
  return StartAsSlot(config, slot, store_dir, CLONE_NEWNS | CLONE_NEWNET, sh.get(), std::move(args),
                     std::move(environment));
}

}  // namespace coolify::build
