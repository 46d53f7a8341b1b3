#include "services/monitor/monitor.h"

#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "privsep/capabilities.h"
#include "privsep/channel.h"
#include "privsep/log.h"
#include "privsep/proc_status.h"
#include "privsep/roles.h"
#include "privsep/sandbox.h"
#include "privsep/spawn.h"
#include "privsep/validate.h"
#include "proto/privsep.pb.h"
#include "services/monitor/resources.h"

namespace coolify::monitor {
namespace {

using privsep::Channel;
using privsep::ChildProcess;
using privsep::HealthReport;
using privsep::MonitorReply;
using privsep::MonitorRequest;
using privsep::Role;
using privsep::UniqueFd;

// How long children get to exit after SIGTERM in an orderly shutdown.
constexpr absl::Duration kShutdownGrace = absl::Seconds(2);

// An installed coold keeps its children beside it (<dir>/coold-front); a Bazel tree keeps
// each in its own package (<dir>/front/coold-front).
std::string ChildPath(const std::string& dir, Role role) {
  std::string flat = absl::StrCat(dir, "/", privsep::ChildBinaryName(role));
  if (access(flat.c_str(), F_OK) == 0) return flat;
  return absl::StrCat(dir, "/", privsep::RoleName(role), "/", privsep::ChildBinaryName(role));
}

struct Child {
  Role role;
  ChildProcess process;
};

class Monitor {
 public:
  explicit Monitor(const MonitorOptions& options) : options_(options) {}

  int Run();

 private:
  absl::Status Start();
  // Handles one readable event on the signalfd; returns an exit status when done.
  std::optional<int> OnSignal();
  std::optional<int> OnFrontMessage();
  absl::Status ReplyStartup(uint64_t request_id);
  absl::Status CheckHealthRound(const privsep::HealthRound& round);
  Child* FindChild(pid_t pid);
  Child* FindChild(Role role);
  // Ends every child still running: SIGTERM and a grace period when orderly, SIGKILL
  // straight away otherwise. Reaps them all before returning.
  void StopChildren(bool orderly);

  MonitorOptions options_;
  UniqueFd signal_fd_;
  std::unique_ptr<Channel> front_;
  std::unique_ptr<privsep::Server<MonitorRequest, MonitorReply>> front_server_;
  std::vector<Child> children_;
  FrontResources front_resources_;
  bool health_round_done_ = false;
};

absl::Status Monitor::Start() {
  // Signals arrive through a descriptor so the supervision loop is one poll() and no
  // handler ever runs between two statements of the loop.
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, sig);
  if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return absl::InternalError("sigprocmask");
  signal_fd_.reset(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_) return absl::InternalError(absl::StrCat("signalfd: ", strerror(errno)));
  // A broken channel must surface as an error on the write, not kill the monitor.
  signal(SIGPIPE, SIG_IGN);

  // Open every binary before starting any child, so a missing one fails before anything runs.
  std::array<Role, 4> roles = {Role::ROLE_NETLINK, Role::ROLE_PODMAN, Role::ROLE_BUILD,
                               Role::ROLE_FRONT};
  std::vector<UniqueFd> executables;
  for (Role role : roles) {
    auto exe = privsep::OpenExecutable(ChildPath(options_.libexec_dir, role));
    if (!exe.ok()) return exe.status();
    executables.push_back(std::move(*exe));
  }

  // The one-shot builder coold-build starts per build: <libexec>/builder, or
  // <libexec>/builder/builder in a Bazel runfiles tree.
  std::string builder_path = absl::StrCat(options_.libexec_dir, "/builder");
  if (access((builder_path + "/builder").c_str(), X_OK) == 0) builder_path += "/builder";
  auto builder = privsep::OpenExecutable(builder_path);
  if (!builder.ok()) return builder.status();

  // What the children need opened with privilege, opened now so a bad path stops coold
  // before any child runs.
  auto netlink_policy = privsep::LoadRolePolicy(Role::ROLE_NETLINK);
  if (!netlink_policy.ok()) return netlink_policy.status();
  auto netlink_user = privsep::ResolveUser(netlink_policy->identity.user);
  if (!netlink_user.ok()) return netlink_user.status();
  auto snapshots = PrepareSnapshotDirs(options_.config, *netlink_user);
  if (!snapshots.ok()) return snapshots.status();
  auto front_resources = OpenFrontResources(options_.config);
  if (!front_resources.ok()) return front_resources.status();
  front_resources_ = std::move(*front_resources);
  auto policy = OpenPolicy(options_.config);
  if (!policy.ok()) return policy.status();
  EndpointDir endpoint_dir;
  if (!options_.config.endpoint_store_corrosion()) {
    auto front_policy = privsep::LoadRolePolicy(Role::ROLE_FRONT);
    if (!front_policy.ok()) return front_policy.status();
    auto front_user = privsep::ResolveUser(front_policy->identity.user);
    if (!front_user.ok()) return front_user.status();
    auto prepared = PrepareEndpointDir(options_.config, *front_user);
    if (!prepared.ok()) return prepared.status();
    endpoint_dir = std::move(*prepared);
  }

  // One socketpair per child. The privileged helpers each talk only to the front end;
  // the front end also holds the channel to the monitor.
  auto monitor_front = privsep::SeqpacketPair();
  if (!monitor_front.ok()) return monitor_front.status();
  std::vector<UniqueFd> front_ends;
  for (size_t i = 0; i < 3; ++i) {
    auto pair = privsep::SeqpacketPair();
    if (!pair.ok()) return pair.status();
    std::vector<int> fds = {pair->second.get()};
    std::vector<std::string> args;
    if (roles[i] == Role::ROLE_NETLINK) {
      // fd 4 and 5: the snapshot directories; argv: the snapshot file names in them.
      fds.push_back(snapshots->rules_dir.get());
      fds.push_back(snapshots->bridge_dir.get());
      args = {snapshots->rules_name, snapshots->bridge_name};
    } else if (roles[i] == Role::ROLE_BUILD) {
      // fd 4: the builder binary, opened here like every child binary; argv: the
      // launcher's configuration (services/build/launcher_config.h).
      args.assign(options_.config.build_launcher_args().begin(), options_.config.build_launcher_args().end());
      args.push_back("--builder=" + builder_path);
      fds.push_back(builder->get());
    } else if (roles[i] == Role::ROLE_PODMAN) {
      // argv: the Podman socket and where the policy comes from (fd 4, or the build's own).
      args = {options_.config.podman_socket(), policy->valid() ? "fd" : "embedded:baseline"};
      if (policy->valid()) fds.push_back(policy->get());
    }
    auto child = privsep::Spawn(executables[i].get(), privsep::ChildBinaryName(roles[i]), args, fds);
    if (!child.ok()) return child.status();
    children_.push_back({roles[i], std::move(*child)});
    front_ends.push_back(std::move(pair->first));
    // pair->second closes here: only the child holds that end, so its death reads as EOF.
  }
  // The front end gets fd 3 = monitor, 4 = netlink, 5 = podman, 6 = build, and with the
  // SQLite store fd 7 = the database's directory, its file name as argv[1].
  std::vector<int> front_fds = {monitor_front->second.get(), front_ends[0].get(), front_ends[1].get(),
                                front_ends[2].get()};
  std::vector<std::string> front_args;
  if (endpoint_dir.dir.valid()) {
    front_fds.push_back(endpoint_dir.dir.get());
    front_args.push_back(endpoint_dir.db_name);
  }
  auto front = privsep::Spawn(executables[3].get(), privsep::ChildBinaryName(Role::ROLE_FRONT), front_args,
                              front_fds);
  if (!front.ok()) return front.status();
  children_.push_back({Role::ROLE_FRONT, std::move(*front)});
  monitor_front->second.reset();
  front_ = std::make_unique<Channel>(std::move(monitor_front->first));
  front_server_ = std::make_unique<privsep::Server<MonitorRequest, MonitorReply>>(*front_);
  for (const Child& c : children_) {
    LogInfo("started %s pid %d", privsep::RoleName(c.role), c.process.pid);
  }
  return absl::OkStatus();
}

Child* Monitor::FindChild(pid_t pid) {
  for (Child& c : children_) {
    if (c.process.pid == pid) return &c;
  }
  return nullptr;
}

Child* Monitor::FindChild(Role role) {
  for (Child& c : children_) {
    if (c.role == role) return &c;
  }
  return nullptr;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)), ")");
  }
  return "stopped";
}

void Monitor::StopChildren(bool orderly) {
  auto alive = [this] {
    size_t n = 0;
    for (const Child& c : children_) n += c.process.pid > 0;
    return n;
  };
  auto reap = [this](int flags) {
    for (Child& c : children_) {
      if (c.process.pid <= 0) continue;
      int status = 0;
      pid_t r = waitpid(c.process.pid, &status, flags);
      if (r == c.process.pid || (r < 0 && errno == ECHILD)) c.process.pid = -1;
    }
  };
  for (const Child& c : children_) {
    if (c.process.pid > 0) kill(c.process.pid, orderly ? SIGTERM : SIGKILL);
  }
  absl::Time deadline = absl::Now() + kShutdownGrace;
  while (alive() > 0 && orderly && absl::Now() < deadline) {
    reap(WNOHANG);
    if (alive() > 0) absl::SleepFor(absl::Milliseconds(10));
  }
  for (const Child& c : children_) {
    if (c.process.pid > 0) kill(c.process.pid, SIGKILL);
  }
  reap(0);
}

std::optional<int> Monitor::OnSignal() {
  signalfd_siginfo info;
  while (read(signal_fd_.get(), &info, sizeof(info)) == sizeof(info)) {
    if (info.ssi_signo == SIGCHLD) {
      int status = 0;
      pid_t pid;
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        Child* c = FindChild(pid);
        if (c == nullptr) continue;
        c->process.pid = -1;
        LogError("%s %s; stopping coold", privsep::RoleName(c->role), DescribeExit(status));
        StopChildren(/*orderly=*/false);
        return 1;
      }
    } else {
      LogInfo("signal %d: orderly shutdown", info.ssi_signo);
      StopChildren(/*orderly=*/true);
      return 0;
    }
  }
  return std::nullopt;
}

absl::Status Monitor::CheckHealthRound(const privsep::HealthRound& round) {
  // The reports are the children's own view. The monitor trusts only the kernel's: it
  // reads each child's /proc status itself and compares it with the role's policy.
  LogInfo("%-8s %7s %6s %6s %-18s %-18s %-18s %3s %7s %8s", "role", "pid", "uid", "gid", "CapEff",
          "CapPrm", "CapBnd", "NNP", "seccomp", "landlock");
  for (const HealthReport& report : round.reports()) {
    Child* c = FindChild(report.role());
    if (c == nullptr || c->process.pid != report.pid()) {
      return absl::FailedPreconditionError(
          absl::StrCat("health report for ", privsep::RoleName(report.role()), " names pid ",
                       report.pid(), ", which is not that child"));
    }
    auto status = privsep::ReadProcStatus(c->process.pid);
    if (!status.ok()) return status.status();
    uint64_t expected = privsep::CapabilityMask(c->role);
    LogInfo("%-8s %7d %6u %6u %016x   %016x   %016x   %3d %7u %8d", privsep::RoleName(c->role),
            c->process.pid, status->uid, status->gid, status->cap_eff, status->cap_prm,
            status->cap_bnd, status->no_new_privs ? 1 : 0, status->seccomp, report.landlock_abi());
    if (status->cap_eff != expected || status->cap_prm != expected || status->cap_bnd != expected ||
        status->cap_inh != 0 || status->cap_amb != 0 || !status->no_new_privs ||
        status->seccomp != 2) {
      return absl::FailedPreconditionError(
          absl::StrCat(privsep::RoleName(c->role), " is not confined as its policy says"));
    }
  }
  if (round.reports_size() != static_cast<int>(children_.size())) {
    return absl::FailedPreconditionError("health round is missing a child");
  }
  return absl::OkStatus();
}

std::optional<int> Monitor::OnFrontMessage() {
  auto request = front_server_->Next(nullptr);
  if (!request.ok()) {
    // The front end is the process that faces the network; garbage from it means it may be
    // compromised, and EOF means it died. Either way coold stops.
    LogError("front channel: %s; stopping coold", request.status().ToString());
    StopChildren(/*orderly=*/false);
    return 1;
  }
  MonitorReply reply;
  reply.set_request_id(request->request_id());
  switch (request->op_case()) {
    case MonitorRequest::kHealthRound: {
      absl::Status checked = CheckHealthRound(request->health_round());
      reply.mutable_status()->set_code(static_cast<int>(checked.code()));
      reply.mutable_status()->set_message(std::string(checked.message()));
      if (!checked.ok()) {
        LogError("health round: %s; stopping coold", checked.ToString());
        StopChildren(/*orderly=*/false);
        return 1;
      }
      LogInfo("health round ok: %d processes confined as their policies say",
              request->health_round().reports_size());
      health_round_done_ = true;
      break;
    }
    case MonitorRequest::kStartup:
      // Answered with descriptors attached; see ReplyStartup.
      if (absl::Status sent = ReplyStartup(request->request_id()); !sent.ok()) {
        LogError("front channel: %s; stopping coold", sent.ToString());
        StopChildren(/*orderly=*/false);
        return 1;
      }
      return std::nullopt;
    case MonitorRequest::kDnsSockets: {
      // Only a namespace of COOLD_NAMESPACES with a gateway, and only its gateway: the
      // front end names a namespace, never an address.
      const std::string& name = request->dns_sockets().namespace_name();
      const v1::NamespaceConfig* found = nullptr;
      for (const v1::NamespaceConfig& ns : options_.config.namespaces()) {
        if (ns.name() == name) found = &ns;
      }
      absl::StatusOr<std::pair<UniqueFd, UniqueFd>> sockets =
          found == nullptr || found->gateway() == "0.0.0.0"
              ? absl::NotFoundError(absl::StrCat("no DNS listener for namespace ", name))
              : OpenDnsSockets(found->gateway());
      if (!sockets.ok()) {
        reply.mutable_status()->set_code(static_cast<int>(sockets.status().code()));
        reply.mutable_status()->set_message(std::string(sockets.status().message()));
        break;
      }
      reply.mutable_dns_sockets();
      if (absl::Status sent = front_server_->Reply(reply, {sockets->first.get(), sockets->second.get()}); !sent.ok()) {
        LogError("front channel: %s; stopping coold", sent.ToString());
        StopChildren(/*orderly=*/false);
        return 1;
      }
      return std::nullopt;
    }
    case MonitorRequest::OP_NOT_SET:
      // Validate() already refused it; unreachable by construction.
      return 1;
  }
  if (absl::Status sent = front_server_->Reply(reply); !sent.ok()) {
    LogError("front channel: %s; stopping coold", sent.ToString());
    StopChildren(/*orderly=*/false);
    return 1;
  }
  if (options_.once && health_round_done_) {
    StopChildren(/*orderly=*/true);
    return 0;
  }
  return std::nullopt;
}

absl::Status Monitor::ReplyStartup(uint64_t request_id) {
  MonitorReply reply;
  reply.set_request_id(request_id);
  privsep::FrontStartup* startup = reply.mutable_startup();
  *startup->mutable_config() = options_.config;
  std::vector<int> fds;
  auto attach = [&fds](const UniqueFd& fd, bool* flag) {
    *flag = fd.valid();
    if (fd.valid()) fds.push_back(fd.get());
  };
  bool flag = false;
  attach(front_resources_.api_listener, &flag);
  startup->set_api_listener(flag);
  attach(front_resources_.api_token, &flag);
  startup->set_api_token(flag);
  attach(front_resources_.tls_cert, &flag);
  startup->set_tls_cert(flag);
  attach(front_resources_.tls_key, &flag);
  startup->set_tls_key(flag);
  startup->set_broker_token(front_resources_.broker_token);
  startup->set_broker_ca_pem(front_resources_.broker_ca_pem);
  startup->set_broker_address(front_resources_.broker_address);
  absl::Status sent = front_server_->Reply(reply, fds);
  // The front end holds them now; the monitor has no use for its copies.
  front_resources_ = FrontResources();
  return sent;
}

int Monitor::Run() {
  if (absl::Status started = Start(); !started.ok()) {
    LogError("start: %s", started.ToString());
    StopChildren(/*orderly=*/false);
    return 1;
  }
  for (;;) {
    pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {front_->fd(), POLLIN, 0}};
    int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      LogError("poll: %s", strerror(errno));
      StopChildren(/*orderly=*/false);
      return 1;
    }
    if (fds[0].revents != 0) {
      if (auto code = OnSignal()) return *code;
    }
    if (fds[1].revents != 0) {
      if (auto code = OnFrontMessage()) return *code;
    }
  }
}

}  // namespace

std::string DefaultLibexecDir() {
  if (const char* dir = getenv("COOLD_LIBEXEC_DIR"); dir != nullptr && *dir != '\0') return dir;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return ".";
  exe[n] = '\0';
  std::string self(exe);
  std::string bin_dir = self.substr(0, self.rfind('/'));
  // Installed as /usr/sbin/coold, the children are in /usr/lib/coold; the same holds for
  // the staged tree //packaging:stage that tools/run.sh runs.
  char libexec[PATH_MAX];
  if (realpath((bin_dir + "/../lib/coold").c_str(), libexec) != nullptr &&
      access(libexec, X_OK) == 0) {
    return libexec;
  }
  return bin_dir;
}

int RunMonitor(const MonitorOptions& options) {
  Monitor monitor(options);
  return monitor.Run();
}

}  // namespace coolify::monitor
