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
#include "privsep/dispatch.h"
#include "privsep/health_check.h"
#include "privsep/log.h"
#include "privsep/proc_status.h"
#include "privsep/roles.h"
#include "privsep/sandbox.h"
#include "privsep/spawn.h"
#include "privsep/validate.h"
#include "proto/privsep.pb.h"
#include "services/monitor/host_identity.h"
#include "services/build/build_cgroup.h"
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

using FrontTable = privsep::DispatchTable<MonitorRequest, MonitorReply>;

// The front end's phases on the monitor channel: it asks for its configuration once,
// then proves its and every helper's confinement, and only then may ask for sockets.
enum FrontPhase { kUnconfigured = 0, kConfigured = 1, kServing = 2 };

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
  // The front channel's handlers, one per op of MonitorRequest (see the table in Start).
  MonitorReply AnswerStartup(const MonitorRequest& request, FrontTable::Call& call);
  MonitorReply AnswerHealthRound(const MonitorRequest& request, FrontTable::Call& call);
  MonitorReply AnswerDnsSockets(const MonitorRequest& request, FrontTable::Call& call);
  MonitorReply AnswerHostProof(const MonitorRequest& request, FrontTable::Call& call);
  MonitorReply AnswerHostToken(const MonitorRequest& request, FrontTable::Call& call);
  MonitorReply AnswerHostEnrolled(const MonitorRequest& request, FrontTable::Call& call);
  MonitorReply AnswerHostJwtWrite(const MonitorRequest& request, FrontTable::Call& call);
  absl::Status CheckHealthRound(const privsep::HealthRound& round);
  absl::Duration HealthDeadline() const;
  Child* FindChild(pid_t pid);
  Child* FindChild(Role role);
  // Ends every child still running: SIGTERM and a grace period when orderly, SIGKILL
  // straight away otherwise. Reaps them all before returning.
  void StopChildren(bool orderly);

  MonitorOptions options_;
  UniqueFd signal_fd_;
  std::unique_ptr<Channel> front_;
  std::unique_ptr<FrontTable> front_table_;
  std::vector<Child> children_;
  FrontResources front_resources_;
  HostIdentity host_identity_;
  bool health_round_done_ = false;
  // Set by a handler when what the front end sent, though well-formed, means coold must
  // stop (a health round that does not match the kernel).
  absl::Status fatal_;
  // When the next health round must have passed.
  absl::Time health_due_;
};

absl::Duration Monitor::HealthDeadline() const {
  return 2 * absl::Milliseconds(std::max<uint32_t>(options_.config.health_interval_ms(), 1000));
}

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
  auto host_identity = LoadHostIdentity(options_.config);
  if (!host_identity.ok()) return host_identity.status();
  host_identity_ = *std::move(host_identity);
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

  // The launcher makes each build's cgroup below this parent, which on a hybrid host only
  // a holder of CAP_DAC_OVERRIDE can create; the launcher holds none. A host where it
  // cannot be made still runs coold: its builds then fail with the reason.
  if (absl::Status s = build::BuildCgroup::PrepareParent(build::kBuildCgroupParent); !s.ok()) {
    LogWarn("build cgroups: %s; builds will fail until it exists", s.message());
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
      // Then what an allow may name (services/netlink/firewall_policy.h): the writer
      // decides from this, never from what the front end sends.
      args.insert(args.end(), {options_.config.host_mgmt_ip(), options_.config.firewall_destinations(),
                               options_.config.firewall_sources(), options_.config.firewall_ports(),
                               options_.config.firewall_public_ports()});
    } else if (roles[i] == Role::ROLE_BUILD) {
      // fd 4: the builder binary, opened here like every child binary; argv: the
      // launcher's configuration (services/build/launcher_config.h).
      args.assign(options_.config.build_launcher_args().begin(), options_.config.build_launcher_args().end());
      args.push_back("--builder=" + builder_path);
      fds.push_back(builder->get());
    } else if (roles[i] == Role::ROLE_PODMAN) {
      // argv: the Podman socket, where the policy comes from (fd 4, or the build's own),
      // and what no container may publish on: the management IP and the API's port.
      args = {options_.config.podman_socket(), policy->valid() ? "fd" : "embedded:baseline",
              options_.config.host_mgmt_ip(), std::to_string(options_.config.api_bind_port())};
      // Then the namespaces, under which alone a build's image may be named.
      for (const v1::NamespaceConfig& ns : options_.config.namespaces()) args.push_back(ns.name());
      if (policy->valid()) fds.push_back(policy->get());
    }
    auto child = privsep::Spawn(executables[i].get(), privsep::ChildBinaryName(roles[i]), args, fds);
    if (!child.ok()) return child.status();
    children_.push_back({roles[i], std::move(*child)});
    front_ends.push_back(std::move(pair->first));
    // pair->second closes here: only the child holds that end, so its death reads as EOF.
  }
  // The front end gets fd 3 = monitor, 4 = netlink, 5 = podman, 6 = build, and with the
  // SQLite store fd 7 = the database's directory, its file name as the last argument.
  // Before it, the only TCP ports it may connect to (its Landlock ruleset): the broker's,
  // Corrosion's and the DNS upstream's, as this configuration names them.
  std::vector<int> front_fds = {monitor_front->second.get(), front_ends[0].get(), front_ends[1].get(),
                                front_ends[2].get()};
  std::vector<std::string> front_args;
  for (uint32_t port : {options_.config.broker_port(), options_.config.endpoint_store_corrosion() ? options_.config.corrosion_port() : 0u,
                        options_.config.dns_upstream_port()}) {
    if (port != 0) front_args.push_back(absl::StrCat("--tcp-connect=", port));
  }
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
  using std::placeholders::_1;
  using std::placeholders::_2;
  //  op                               phases                                   once   fds validator handler
  front_table_ = std::make_unique<FrontTable>("monitor", kUnconfigured, std::vector<FrontTable::Row>{
      {MonitorRequest::kStartup,     privsep::Phases({kUnconfigured}),          true,  0, nullptr,
       std::bind(&Monitor::AnswerStartup, this, _1, _2), kConfigured},
      {MonitorRequest::kHealthRound, privsep::Phases({kConfigured, kServing}),  false, 0, nullptr,
       std::bind(&Monitor::AnswerHealthRound, this, _1, _2), kServing},
      {MonitorRequest::kDnsSockets,  privsep::Phases({kServing}),               false, 0, nullptr,
       std::bind(&Monitor::AnswerDnsSockets, this, _1, _2)},
      // The broker stream starts while the first health round may still be running.
      {MonitorRequest::kHostProof,   privsep::Phases({kConfigured, kServing}),  false, 0, nullptr,
       std::bind(&Monitor::AnswerHostProof, this, _1, _2)},
      {MonitorRequest::kHostToken,   privsep::Phases({kConfigured, kServing}),  false, 0, nullptr,
       std::bind(&Monitor::AnswerHostToken, this, _1, _2)},
      {MonitorRequest::kHostEnrolled, privsep::Phases({kConfigured, kServing}), true,  0, nullptr,
       std::bind(&Monitor::AnswerHostEnrolled, this, _1, _2)},
      {MonitorRequest::kHostJwtWrite, privsep::Phases({kConfigured, kServing}), false, 0, nullptr,
       std::bind(&Monitor::AnswerHostJwtWrite, this, _1, _2)},
  });
  health_due_ = absl::Now() + HealthDeadline();
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
      // Named even now: a child that died on its own in the meantime (its peer's death
      // and its own often come together) shows what ended it, not just the stop.
      if (r == c.process.pid) LogInfo("%s %s", privsep::RoleName(c.role), DescribeExit(status));
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
      // Every child that is gone by now, each named: when one dies, another often follows
      // at once (its channel read end-of-file), and the log must show the first cause too.
      int status = 0;
      pid_t pid;
      bool died = false;
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        Child* c = FindChild(pid);
        if (c == nullptr) continue;
        c->process.pid = -1;
        LogError("%s %s", privsep::RoleName(c->role), DescribeExit(status));
        died = true;
      }
      if (died) {
        LogError("a child is gone; stopping coold");
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
  // reads each child's /proc status itself and compares every field with the role's
  // policy (privsep/health_check.h); only Landlock, which the kernel does not show, is
  // taken from the report.
  LogInfo("%-8s %7s %6s %6s %-18s %-18s %-18s %3s %7s %8s", "role", "pid", "uid", "gid", "CapEff",
          "CapPrm", "CapBnd", "NNP", "seccomp", "landlock");
  if (round.reports_size() != static_cast<int>(children_.size())) {
    return absl::FailedPreconditionError(
        absl::StrCat("health round has ", round.reports_size(), " reports for ", children_.size(), " children"));
  }
  for (const HealthReport& report : round.reports()) {
    Child* c = FindChild(report.role());
    if (c == nullptr || c->process.pid != report.pid()) {
      return absl::FailedPreconditionError(
          absl::StrCat("health report for ", privsep::RoleName(report.role()), " names pid ",
                       report.pid(), ", which is not that child"));
    }
    auto status = privsep::ReadProcStatus(c->process.pid);
    if (!status.ok()) return status.status();
    LogInfo("%-8s %7d %6u %6u %016x   %016x   %016x   %3d %7u %8d", privsep::RoleName(c->role),
            c->process.pid, status->uid, status->gid, status->cap_eff, status->cap_prm,
            status->cap_bnd, status->no_new_privs ? 1 : 0, status->seccomp, report.landlock_abi());
    absl::StatusOr<privsep::Confinement> expected = privsep::ExpectedConfinement(c->role);
    if (!expected.ok()) return expected.status();
    if (absl::Status s = privsep::CheckConfinement(*expected, *status, report); !s.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(privsep::RoleName(c->role), " is not confined as its policy says: ", s.message()));
    }
  }
  return absl::OkStatus();
}

std::optional<int> Monitor::OnFrontMessage() {
  absl::Status served = front_table_->ServeOne(*front_);
  if (!served.ok()) {
    // The front end is the process that faces the network; a frame its table refuses
    // means it may be compromised, and EOF means it died. Either way coold stops.
    LogError("front channel: %s; stopping coold", front_table_->Describe(served));
    StopChildren(/*orderly=*/false);
    return 1;
  }
  if (!fatal_.ok()) {
    LogError("%s; stopping coold", fatal_.message());
    StopChildren(/*orderly=*/false);
    return 1;
  }
  if (options_.once && health_round_done_) {
    StopChildren(/*orderly=*/true);
    return 0;
  }
  return std::nullopt;
}

MonitorReply Monitor::AnswerHealthRound(const MonitorRequest& request, FrontTable::Call&) {
  MonitorReply reply;
  absl::Status checked = CheckHealthRound(request.health_round());
  reply.mutable_status()->set_code(static_cast<int>(checked.code()));
  reply.mutable_status()->set_message(std::string(checked.message()));
  if (!checked.ok()) {
    fatal_ = absl::FailedPreconditionError(absl::StrCat("health round: ", checked.message()));
    return reply;
  }
  LogInfo("health round ok: %d processes confined as their policies say", request.health_round().reports_size());
  health_round_done_ = true;
  health_due_ = absl::Now() + HealthDeadline();
  return reply;
}

MonitorReply Monitor::AnswerDnsSockets(const MonitorRequest& request, FrontTable::Call& call) {
  // Only a namespace of COOLD_NAMESPACES with a gateway, and only its gateway: the
  // front end names a namespace, never an address.
  MonitorReply reply;
  const std::string& name = request.dns_sockets().namespace_name();
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
    return reply;
  }
  reply.mutable_dns_sockets();
  call.reply_fds.push_back(std::move(sockets->first));
  call.reply_fds.push_back(std::move(sockets->second));
  return reply;
}

namespace {
MonitorReply StatusReply(const absl::Status& status) {
  MonitorReply reply;
  reply.mutable_status()->set_code(static_cast<int>(status.code()));
  reply.mutable_status()->set_message(std::string(status.message()));
  return reply;
}
}  // namespace

MonitorReply Monitor::AnswerHostProof(const MonitorRequest& request, FrontTable::Call&) {
  absl::StatusOr<std::string> signature = SignProof(host_identity_, options_.config, request.host_proof().nonce());
  if (!signature.ok()) return StatusReply(signature.status());
  MonitorReply reply;
  reply.mutable_host_proof()->set_signature(*signature);
  return reply;
}

MonitorReply Monitor::AnswerHostToken(const MonitorRequest& request, FrontTable::Call&) {
  std::vector<std::string> caps(request.host_token().caps().begin(), request.host_token().caps().end());
  absl::StatusOr<std::string> token = MintHostToken(host_identity_, options_.config, caps, absl::Now());
  if (!token.ok()) return StatusReply(token.status());
  MonitorReply reply;
  reply.mutable_host_token()->set_token(*token);
  return reply;
}

MonitorReply Monitor::AnswerHostEnrolled(const MonitorRequest&, FrontTable::Call&) {
  absl::Status committed = CommitEnrollment(options_.config, host_identity_);
  if (!committed.ok()) LogError("enrollment: %s", committed.ToString());
  return StatusReply(committed);
}

MonitorReply Monitor::AnswerHostJwtWrite(const MonitorRequest& request, FrontTable::Call&) {
  return StatusReply(WriteHostJwt(options_.config, request.host_jwt_write().jwt()));
}

MonitorReply Monitor::AnswerStartup(const MonitorRequest&, FrontTable::Call& call) {
  MonitorReply reply;
  privsep::FrontStartup* startup = reply.mutable_startup();
  *startup->mutable_config() = options_.config;
  // The front end holds them once the reply is sent; the monitor keeps no copy.
  auto attach = [&call](UniqueFd& fd) {
    if (!fd.valid()) return false;
    call.reply_fds.push_back(std::move(fd));
    return true;
  };
  startup->set_api_listener(attach(front_resources_.api_listener));
  startup->set_api_token(attach(front_resources_.api_token));
  startup->set_tls_cert(attach(front_resources_.tls_cert));
  startup->set_tls_key(attach(front_resources_.tls_key));
  startup->set_broker_token(front_resources_.broker_token);
  startup->set_broker_ca_pem(front_resources_.broker_ca_pem);
  startup->set_broker_address(front_resources_.broker_address);
  startup->set_enrollment_token(host_identity_.enrollment_token);
  if (host_identity_.key) startup->set_host_public_key(host_identity_.key->PublicDer());
  startup->set_host_enrolled(host_identity_.key_on_disk);
  for (const auto& [kid, pem] : front_resources_.broker_jwt_keys) {
    privsep::TrustedKey* key = startup->add_broker_jwt_keys();
    key->set_kid(kid);
    key->set_pem(pem);
  }
  front_resources_ = FrontResources();
  return reply;
}

int Monitor::Run() {
  if (absl::Status started = Start(); !started.ok()) {
    LogError("start: %s", started.ToString());
    StopChildren(/*orderly=*/false);
    return 1;
  }
  for (;;) {
    // A front end that stops proving confinement (never runs the health round, or stops
    // running it) must not keep coold running: the round has a deadline.
    const absl::Duration left = health_due_ - absl::Now();
    if (left <= absl::ZeroDuration()) {
      LogError("health round overdue: none passed within %s; stopping coold", absl::FormatDuration(HealthDeadline()));
      StopChildren(/*orderly=*/false);
      return 1;
    }
    pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {front_->fd(), POLLIN, 0}};
    int n = poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
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
  // the staged tree //packaging:stage.
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
