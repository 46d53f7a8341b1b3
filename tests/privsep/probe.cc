// A stand-in for one coold child, started by the real monitor in that child's place (a
// libexec directory whose coold-<role> is a copy of this binary; see probe_testing.h). It
// enters the role's real sandbox exactly as the child would, then does what the file
// `scenario` beside its own executable says (read before the sandbox closes the
// filesystem):
//
//   try:<act>[:<arg>]   one act the role must not be able to do. Logs
//                       "probe <role> <act>: allowed" or "... refused <ERRNO>" and exits 0.
//                       An act seccomp kills shows as the monitor's "killed by signal 31".
//   idle                (front) asks the monitor for its startup, then never runs a health
//                       round.
//   hostile:<case>      (front) sends one well-formed malicious request (see Hostile()) and
//                       logs what came back, then waits to be stopped.
//
// Logs go to stderr, which the monitor's children share with it.
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "privsep/channel.h"
#include "privsep/child.h"
#include "privsep/log.h"
#include "privsep/spawn.h"
#include "privsep/validate.h"
#include "proto/privsep.pb.h"

namespace coolify::privsep {
namespace {

constexpr int kMonitorFd = kFirstPassedFd;
constexpr int kNetlinkFd = kFirstPassedFd + 1;
constexpr int kPodmanFd = kFirstPassedFd + 2;
constexpr int kBuildFd = kFirstPassedFd + 3;

std::string ReadScenario() {
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "";
  std::string dir(exe, static_cast<size_t>(n));
  dir = dir.substr(0, dir.rfind('/'));
  std::ifstream in(dir + "/scenario");
  std::string line;
  std::getline(in, line);
  return line;
}

void Report(const std::string& role, const std::string& act, int rc) {
  if (rc >= 0) {
    LogInfo("probe %s %s: allowed", role, act);
  } else {
    LogInfo("probe %s %s: refused %s", role, act, strerrorname_np(errno));
  }
}

// One act; returns >= 0 when the kernel let it happen, -1 with errno when it did not.
int Try(const std::string& act, const std::string& arg) {
  if (act == "exec") {
    char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
    char* const envp[] = {nullptr};
    return execve("/bin/true", argv, envp);
  }
  if (act == "netlink") {
    return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  }
  if (act == "connect_unix") {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, arg.c_str(), sizeof(addr.sun_path) - 1);
    return connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  }
  if (act == "connect_loopback") {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(atoi(arg.c_str())));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  }
  if (act == "write_file") return open(arg.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (act == "read_file") return open(arg.c_str(), O_RDONLY | O_CLOEXEC);
  errno = EINVAL;
  return -1;
}

template <typename Request, typename Reply>
absl::StatusOr<HealthReport> AskHealth(Channel& channel) {
  Client<Request, Reply> client(channel);
  Request request;
  request.mutable_health();
  absl::StatusOr<Reply> reply = client.Call(request);
  if (!reply.ok()) return reply.status();
  return reply->health();
}

// What the real front end does first: startup, then one health round.
absl::Status StartLikeTheFrontEnd(Channel& monitor, Channel& netlink, Channel& podman, Channel& build,
                                  int proc_status_fd) {
  Client<MonitorRequest, MonitorReply> client(monitor);
  MonitorRequest startup;
  startup.mutable_startup();
  std::vector<UniqueFd> fds;
  if (absl::StatusOr<MonitorReply> r = client.Call(startup, {}, &fds); !r.ok()) return r.status();
  HealthRound round;
  absl::StatusOr<HealthReport> self = SelfHealth(ROLE_FRONT, proc_status_fd);
  if (!self.ok()) return self.status();
  *round.add_reports() = *self;
  for (absl::StatusOr<HealthReport> report : {AskHealth<NetlinkRequest, NetlinkReply>(netlink),
                                              AskHealth<PodmanRequest, PodmanReply>(podman),
                                              AskHealth<BuildLauncherRequest, BuildLauncherReply>(build)}) {
    if (!report.ok()) return report.status();
    *round.add_reports() = *report;
  }
  MonitorRequest health;
  *health.mutable_health_round() = round;
  absl::StatusOr<MonitorReply> r = client.Call(health);
  if (!r.ok()) return r.status();
  if (r->status().code() != 0) return absl::InternalError(r->status().message());
  return absl::OkStatus();
}

// A request envelope stamped as Client would, so the frame passes the strict decode and
// the envelope's validator: what is wrong with it is what the case is about.
template <typename Request>
Request Envelope(uint64_t id) {
  Request request;
  request.set_protocol_version(kProtocolVersion);
  request.set_request_id(id);
  request.set_role(kRecipient<Request>);
  return request;
}

v1::FirewallRule GoodRule() {
  v1::FirewallRule rule;
  rule.set_namespace_("hostile");
  rule.set_src("10.66.0.1");
  rule.set_dst("10.66.0.2");
  rule.set_proto("tcp");
  rule.set_port(6666);
  return rule;
}

// Sends one frame with `fds` and logs how the peer answered: a reply, or its end closed.
template <typename Reply>
void SendAndLog(Channel& channel, const google::protobuf::Message& request, std::vector<int> fds = {}) {
  if (absl::Status sent = channel.Send(request, fds); !sent.ok()) {
    LogInfo("probe front: send: %s", sent.ToString());
    return;
  }
  Reply reply;
  absl::Status got = channel.Receive(&reply);
  if (got.ok()) {
    LogInfo("probe front: answered, status %d %s", reply.status().code(), reply.status().message());
  } else {
    LogInfo("probe front: no answer: %s", got.ToString());
  }
}

// The hostile front end's cases. Each sends frames that pass the strict decode; the
// first group also passes the envelope's validator and is wrong only by the table
// (phase, once-only, descriptors, op). Returns false for an unknown case.
bool Hostile(const std::string& name, Channel& monitor, Channel& netlink, Channel& podman, Channel& build,
             int proc_status_fd) {
  // A descriptor to attach where none belongs: the front end's filter has no pipe2, and
  // any open descriptor serves.
  const std::vector<int> one_fd = {proc_status_fd};

  // ---- before any health round: every helper is in its first phase
  if (name == "netlink_allow_before_health") {
    NetlinkRequest r = Envelope<NetlinkRequest>(1);
    *r.mutable_allow()->mutable_rule() = GoodRule();
    SendAndLog<NetlinkReply>(netlink, r);
    return true;
  }
  if (name == "podman_call_before_health") {
    PodmanRequest r = Envelope<PodmanRequest>(1);
    r.mutable_call()->mutable_command()->mutable_volumes_create()->set_name("hostile-volume");
    SendAndLog<PodmanReply>(podman, r);
    return true;
  }
  if (name == "build_start_before_health") {
    BuildLauncherRequest r = Envelope<BuildLauncherRequest>(1);
    BuildSpec* spec = r.mutable_start()->mutable_spec();
    spec->set_request_id("hostile-build");
    spec->set_kind(BUILD_KIND_STATIC);
    spec->set_repo_url("https://example.invalid/x.git");
    spec->set_git_ref("main");
    spec->set_target_image("localhost/hostile:1");
    SendAndLog<BuildLauncherReply>(build, r);
    return true;
  }
  if (name == "monitor_dns_before_health") {
    Client<MonitorRequest, MonitorReply> client(monitor);
    MonitorRequest startup;
    startup.mutable_startup();
    std::vector<UniqueFd> fds;
    (void)client.Call(startup, {}, &fds);
    MonitorRequest r = Envelope<MonitorRequest>(2);
    r.mutable_dns_sockets()->set_namespace_name("default");
    SendAndLog<MonitorReply>(monitor, r);
    return true;
  }
  if (name == "monitor_health_before_startup") {
    MonitorRequest r = Envelope<MonitorRequest>(1);
    HealthReport* report = r.mutable_health_round()->add_reports();
    report->set_role(ROLE_FRONT);
    report->set_pid(getpid());
    SendAndLog<MonitorReply>(monitor, r);
    return true;
  }

  // ---- after a complete, honest start
  if (absl::Status started = StartLikeTheFrontEnd(monitor, netlink, podman, build, proc_status_fd); !started.ok()) {
    LogInfo("probe front: start failed: %s", started.ToString());
    return true;
  }
  LogInfo("probe front: started");
  if (name == "none") return true;
  if (name == "monitor_startup_twice") {
    MonitorRequest r = Envelope<MonitorRequest>(10);
    r.mutable_startup();
    SendAndLog<MonitorReply>(monitor, r);
  } else if (name == "monitor_health_with_descriptor") {
    MonitorRequest r = Envelope<MonitorRequest>(10);
    HealthReport* report = r.mutable_health_round()->add_reports();
    report->set_role(ROLE_FRONT);
    report->set_pid(getpid());
    SendAndLog<MonitorReply>(monitor, r, one_fd);
  } else if (name == "monitor_health_lies_about_pid") {
    // A round that names pid 1 for the netlink writer: a well-formed report the monitor
    // checks against its own children and refuses.
    MonitorRequest r = Envelope<MonitorRequest>(10);
    HealthReport* report = r.mutable_health_round()->add_reports();
    report->set_role(ROLE_NETLINK);
    report->set_pid(1);
    SendAndLog<MonitorReply>(monitor, r);
  } else if (name == "netlink_abort_outside_staging") {
    NetlinkRequest r = Envelope<NetlinkRequest>(10);
    r.mutable_abort();
    SendAndLog<NetlinkReply>(netlink, r);
  } else if (name == "netlink_allow_while_staging") {
    // A staged set (never committed) and an allow slipped between its frames.
    NetlinkRequest stage = Envelope<NetlinkRequest>(10);
    *stage.mutable_stage()->add_rules() = GoodRule();
    NetlinkReply staged;
    if (netlink.Send(stage).ok() && netlink.Receive(&staged).ok()) {
      LogInfo("probe front: staged, status %d", staged.status().code());
    }
    NetlinkRequest r = Envelope<NetlinkRequest>(11);
    *r.mutable_allow()->mutable_rule() = GoodRule();
    SendAndLog<NetlinkReply>(netlink, r);
  } else if (name == "netlink_changes_with_nothing_committed") {
    NetlinkRequest r = Envelope<NetlinkRequest>(10);
    r.mutable_changes()->set_offset(0);
    SendAndLog<NetlinkReply>(netlink, r);
  } else if (name == "netlink_allow_between_change_pages") {
    // A bulk whose changes take several pages, then an allow before the last is read.
    for (uint64_t frame = 0; frame < 2; ++frame) {
      NetlinkRequest stage = Envelope<NetlinkRequest>(10 + frame);
      for (int i = 0; i < kMaxRulesPerFrame; ++i) {
        v1::FirewallRule rule = GoodRule();
        rule.set_port(static_cast<uint32_t>(1000 + frame * kMaxRulesPerFrame + i));
        *stage.mutable_stage()->add_rules() = rule;
      }
      NetlinkReply staged;
      if (netlink.Send(stage).ok() && netlink.Receive(&staged).ok()) {
        LogInfo("probe front: staged, status %d", staged.status().code());
      }
    }
    NetlinkRequest commit = Envelope<NetlinkRequest>(12);
    commit.mutable_commit()->set_mode(FIREWALL_COMMIT_MODE_BULK);
    NetlinkReply committed;
    if (netlink.Send(commit).ok() && netlink.Receive(&committed).ok()) {
      LogInfo("probe front: committed, status %d, %d ids on the first page, done %d", committed.status().code(),
              committed.changes().ids_size(), committed.changes().done());
    }
    NetlinkRequest r = Envelope<NetlinkRequest>(13);
    *r.mutable_allow()->mutable_rule() = GoodRule();
    SendAndLog<NetlinkReply>(netlink, r);
  } else if (name == "netlink_allow_with_descriptor") {
    NetlinkRequest r = Envelope<NetlinkRequest>(10);
    *r.mutable_allow()->mutable_rule() = GoodRule();
    SendAndLog<NetlinkReply>(netlink, r, one_fd);
  } else if (name == "netlink_stage_501_rules") {
    NetlinkRequest r = Envelope<NetlinkRequest>(10);
    for (int i = 0; i < kMaxRulesPerFrame + 1; ++i) *r.mutable_stage()->add_rules() = GoodRule();
    SendAndLog<NetlinkReply>(netlink, r);
  } else if (name == "netlink_delete_bad_id") {
    NetlinkRequest r = Envelope<NetlinkRequest>(10);
    r.mutable_delete_()->set_id("../../etc/x");
    SendAndLog<NetlinkReply>(netlink, r);
  } else if (name == "netlink_gets_podman_request") {
    // Another role's envelope; the field numbers coincide, so it decodes.
    PodmanRequest r = Envelope<PodmanRequest>(10);
    r.mutable_health();
    SendAndLog<NetlinkReply>(netlink, r);
  } else if (name == "netlink_unknown_op") {
    NetlinkRequest r = Envelope<NetlinkRequest>(10);
    r.mutable_health();
    r.GetReflection()->MutableUnknownFields(&r)->AddLengthDelimited(99, "op from the future");
    const absl::StatusOr<std::vector<uint8_t>> frame = EncodeFrame(r);
    if (frame.ok()) (void)!send(netlink.fd(), frame->data(), frame->size(), MSG_NOSIGNAL);
    NetlinkReply reply;
    LogInfo("probe front: %s", netlink.Receive(&reply).ToString());
  } else if (name == "podman_call_with_descriptor") {
    PodmanRequest r = Envelope<PodmanRequest>(10);
    r.mutable_call()->mutable_command()->mutable_volumes_create()->set_name("hostile-volume");
    SendAndLog<PodmanReply>(podman, r, one_fd);
  } else if (name == "podman_next_with_nothing_pending") {
    PodmanRequest r = Envelope<PodmanRequest>(10);
    r.mutable_next();
    SendAndLog<PodmanReply>(podman, r);
  } else if (name == "podman_gets_netlink_request") {
    NetlinkRequest r = Envelope<NetlinkRequest>(10);
    r.mutable_list();
    SendAndLog<PodmanReply>(podman, r);
  } else if (name == "build_watch_twice") {
    BuildLauncherRequest r = Envelope<BuildLauncherRequest>(10);
    r.mutable_watch();
    std::vector<UniqueFd> fds;
    if (build.Send(r).ok()) {
      BuildLauncherReply reply;
      LogInfo("probe front: first watch: %s", build.Receive(&reply, &fds).ToString());
    }
    r.set_request_id(11);
    SendAndLog<BuildLauncherReply>(build, r);
  } else if (name == "build_start_with_descriptor") {
    BuildLauncherRequest r = Envelope<BuildLauncherRequest>(10);
    r.mutable_cancel()->set_request_id("hostile-build");
    SendAndLog<BuildLauncherReply>(build, r, one_fd);
  } else {
    return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  const std::string name = argv[0];
  Role role = name == "coold-front"     ? ROLE_FRONT
              : name == "coold-netlink" ? ROLE_NETLINK
              : name == "coold-podman"  ? ROLE_PODMAN
              : name == "coold-build"   ? ROLE_BUILD
                                        : ROLE_UNSPECIFIED;
  const std::string scenario = ReadScenario();
  SetLogRole(name.substr(6));
  UniqueFd proc_status;
  // The descriptors each role gets from the monitor (services/monitor/monitor.cc).
  switch (role) {
    case ROLE_FRONT: {
      FrontArgs args = ParseFrontArgs(argc, argv);
      const bool endpoint_dir = !args.endpoint_db_name.empty();
      proc_status = EnterChildSandbox(ROLE_FRONT, endpoint_dir ? 5 : 4,
                                      endpoint_dir ? std::vector<int>{kFirstPassedFd + 4} : std::vector<int>{},
                                      args.tcp_connect_ports);
      break;
    }
    case ROLE_NETLINK:
      proc_status = EnterChildSandbox(ROLE_NETLINK, 1, {kFirstPassedFd + 1, kFirstPassedFd + 2});
      break;
    case ROLE_PODMAN:
      proc_status = EnterChildSandbox(ROLE_PODMAN, argc == 3 && std::string(argv[2]) == "fd" ? 2 : 1);
      break;
    case ROLE_BUILD:
      proc_status = EnterChildSandbox(ROLE_BUILD, 2);
      break;
    default:
      LogError("probe: started as %s, not a child role", name);
      return 2;
  }
  const std::string role_name = name.substr(6);
  LogInfo("probe %s: sandboxed; scenario %s", role_name, scenario);

  std::vector<std::string> parts = absl::StrSplit(scenario, absl::MaxSplits(':', 2));
  if (parts.size() >= 2 && parts[0] == "try") {
    const std::string arg = parts.size() == 3 ? parts[2] : "";
    Report(role_name, parts[1], Try(parts[1], arg));
    return 0;
  }
  if (role != ROLE_FRONT) {
    // A helper stand-in for a front-end scenario would break the start; say so.
    LogError("probe %s: scenario %s is for the front end", role_name, scenario);
    return 2;
  }
  Channel monitor{UniqueFd(kMonitorFd)};
  Channel netlink{UniqueFd(kNetlinkFd)};
  Channel podman{UniqueFd(kPodmanFd)};
  Channel build{UniqueFd(kBuildFd)};
  if (scenario == "idle") {
    Client<MonitorRequest, MonitorReply> client(monitor);
    MonitorRequest startup;
    startup.mutable_startup();
    std::vector<UniqueFd> fds;
    LogInfo("probe front: startup %s; no health round follows", client.Call(startup, {}, &fds).status().ToString());
  } else if (parts.size() == 2 && parts[0] == "hostile") {
    if (!Hostile(parts[1], monitor, netlink, podman, build, proc_status.get())) {
      LogError("probe front: unknown case %s", parts[1]);
      return 2;
    }
    if (parts[1] == "none") return 0;
    LogInfo("probe front: case %s sent", parts[1]);
  } else {
    LogError("probe front: unknown scenario %s", scenario);
    return 2;
  }
  // Stay until the monitor stops coold (or its test does): the front end exiting on
  // its own would stop coold for another reason than the one under test.
  for (;;) poll(nullptr, 0, -1);
}

}  // namespace
}  // namespace coolify::privsep

int main(int argc, char** argv) { return coolify::privsep::Main(argc, argv); }
