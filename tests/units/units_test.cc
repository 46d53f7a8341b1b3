// The systemd units as shipped (hardening/systemd/):
// - each is held at or below its recorded exposure (exposure-scores.txt), so a loosened
//   unit fails here, and every unit has a recorded score;
// - each restore unit's command really works the way the unit runs it: as the unit's
//   User with only its AmbientCapabilities (setpriv), in a private network namespace,
//   and every system call it makes (strace, after its exec) is one its SystemCallFilter
//   allows, expanded by systemd-analyze itself. systemd is not PID 1 on these machines,
//   so this is how the filter is proven not to kill the boot restore;
// - the broker works the way broker.service and its socket units run it: as
//   coolify-broker with no capability and no_new_privs, Laravel's socket and the hosts'
//   port passed as systemd passes them,
//   serving that socket and a TLS connection, and every system call it makes is one the
//   unit's SystemCallFilter allows;
// - no daemon unit's SystemCallFilter refuses a call that a role it runs lists in its own
//   seccomp list (hardening/seccomp/), so the unit's filter cannot break a sandboxed child;
// - coold.service's mount settings, reproduced in a private mount namespace, leave a
//   build what its jail makes: an unprivileged user, network, PID and mount namespace
//   that mounts its own /proc and sysfs and opens /dev/net/tun; and each setting the unit
//   leaves out for that reason would stop it;
// - coold.service, broker.service and the broker's socket units pass
//   `systemd-analyze verify`.
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/broker/passed_listeners.h"
#include "tests/broker/broker_testing.h"
#include "tests/shell_testing.h"

namespace coolify::testing {
namespace {

using ::testing::HasSubstr;

std::string UnitDir() { return Runfile("hardening/systemd"); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every value of `key=` in the unit's text, in order.
std::vector<std::string> Values(const std::string& unit, const std::string& key) {
  std::vector<std::string> values;
  for (absl::string_view line : absl::StrSplit(unit, '\n')) {
    if (absl::ConsumePrefix(&line, key + "=")) values.emplace_back(absl::StripAsciiWhitespace(line));
  }
  return values;
}

// Syscall names of a systemd-analyze syscall-filter set, groups expanded.
std::set<std::string> Expand(const std::string& set) {
  std::set<std::string> names;
  CommandRun run = Shell("systemd-analyze syscall-filter " + set);
  EXPECT_EQ(run.status, 0) << run.out;
  bool first = true;
  for (absl::string_view line : absl::StrSplit(run.out, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (first) {  // the set's own name
      first = false;
      continue;
    }
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    std::string name(line);
    if (name[0] == '@') {
      for (const std::string& n : Expand(name)) names.insert(n);
    } else {
      names.insert(name);
    }
  }
  return names;
}

// What the unit's SystemCallFilter= lines allow: the union of the allow lines, less the
// union of the `~` lines (systemd's reading of several lines).
std::set<std::string> AllowedSyscalls(const std::string& unit) {
  std::set<std::string> allowed, denied;
  for (const std::string& line : Values(unit, "SystemCallFilter")) {
    absl::string_view value = line;
    bool deny = absl::ConsumePrefix(&value, "~");
    for (absl::string_view item : absl::StrSplit(value, ' ', absl::SkipEmpty())) {
      std::set<std::string> names = item[0] == '@' ? Expand(std::string(item)) : std::set<std::string>{std::string(item)};
      (deny ? denied : allowed).insert(names.begin(), names.end());
    }
  }
  for (const std::string& d : denied) allowed.erase(d);
  return allowed;
}

// The system calls in an `strace -f` log made after `program` was executed.
std::set<std::string> SyscallsAfterExec(const std::string& trace, const std::string& program) {
  std::set<std::string> names;
  bool started = false;
  for (absl::string_view line : absl::StrSplit(trace, '\n')) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::MaxSplits(' ', 1), absl::SkipEmpty());
    if (fields.size() < 2) continue;
    absl::string_view call = absl::StripLeadingAsciiWhitespace(fields[1]);
    if (!started) {
      started = absl::StartsWith(call, absl::StrCat("execve(\"", program, "\""));
      continue;
    }
    size_t paren = call.find('(');
    if (paren == absl::string_view::npos || paren == 0 || !absl::ascii_islower(call[0])) continue;
    names.emplace(call.substr(0, paren));
  }
  EXPECT_TRUE(started) << "no execve of " << program << " in the trace";
  return names;
}

// setpriv's spelling of a unit's capability list: ",+setuid,+chown".
std::string SetprivCaps(const std::string& caps) {
  std::string out;
  for (absl::string_view cap : absl::StrSplit(caps, ' ', absl::SkipEmpty())) {
    absl::ConsumePrefix(&cap, "CAP_");
    absl::StrAppend(&out, ",+", absl::AsciiStrToLower(cap));
  }
  return out;
}

TEST(UnitsTest, EveryUnitIsHeldAtOrBelowItsRecordedExposure) {
  std::map<std::string, double> scores;
  for (absl::string_view line : absl::StrSplit(ReadFile(UnitDir() + "/exposure-scores.txt"), '\n')) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    ASSERT_EQ(f.size(), 2u) << line;
    ASSERT_TRUE(absl::SimpleAtod(f[1], &scores[f[0]])) << line;
  }
  std::set<std::string> units;
  for (absl::string_view name : absl::StrSplit(Shell("ls " + UnitDir()).out, '\n', absl::SkipEmpty())) {
    if (absl::EndsWith(name, ".service")) units.emplace(name);
  }
  ASSERT_FALSE(units.empty());
  for (const std::string& unit : units) {
    SCOPED_TRACE(unit);
    ASSERT_TRUE(scores.count(unit)) << "no recorded exposure for " << unit << " in exposure-scores.txt";
    const int threshold = static_cast<int>(scores[unit] * 10 + 0.5);
    CommandRun run = Shell(absl::StrCat("systemd-analyze security --offline=true --threshold=", threshold, " ",
                                        UnitDir(), "/", unit, " 2>&1 | tail -n 1"));
    EXPECT_EQ(run.status, 0) << run.out;
    CommandRun strict = Shell(absl::StrCat("systemd-analyze security --offline=true --threshold=", threshold, " ",
                                           UnitDir(), "/", unit, " >/dev/null 2>&1"));
    EXPECT_EQ(strict.status, 0) << unit << " is above its recorded exposure " << scores[unit] << ": " << run.out;
  }
}

struct Restore {
  const char* unit;
  const char* snapshot;  // the file its ExecStart reads, under /etc/coolify
  const char* content;
  const char* readback;  // a command listing what it restored
  const char* expected;  // in readback's output
};

const Restore kRestores[] = {
    {"coolify-mesh-fw.service", "allow.rules",
     "*filter\n:COOLIFY-ALLOW - [0:0]\n-F COOLIFY-ALLOW\n"
     "-A COOLIFY-ALLOW -s 10.210.5.2/32 -d 10.210.6.3/32 -p tcp -m tcp --dport 80 -m comment --comment "
     "1a2b3c4d5e6f -j ACCEPT\nCOMMIT\n",
     "iptables-save", "--comment 1a2b3c4d5e6f -j ACCEPT"},
    {"coolify-mesh-allow.service", "allow.nft",
     "table bridge coolify_bridge {\n  chain coolify_allow {\n    ip saddr 10.210.5.2 ip daddr 10.210.6.3 "
     "meta l4proto tcp th dport 80 accept comment \"1a2b3c4d5e6f\"\n  }\n}\n",
     "nft list chain bridge coolify_bridge coolify_allow", "comment \"1a2b3c4d5e6f\""},
};

TEST(UnitsTest, RestoreUnitsWorkAsTheirUserWithOnlyTheirCapabilityAndFilter) {
  // Everything below happens in a network namespace of this test's own.
  ASSERT_EQ(unshare(CLONE_NEWNET), 0);
  // Readable by the unit's user: not under Bazel's /root-owned test directory.
  char dir_template[] = "/tmp/coold-units-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  chmod(dir.c_str(), 0755);
  for (const Restore& r : kRestores) {
    SCOPED_TRACE(r.unit);
    const std::string unit = ReadFile(absl::StrCat(UnitDir(), "/", r.unit));
    const std::vector<std::string> exec = Values(unit, "ExecStart");
    const std::vector<std::string> user = Values(unit, "User");
    const std::vector<std::string> ambient = Values(unit, "AmbientCapabilities");
    ASSERT_EQ(exec.size(), 1u);
    ASSERT_EQ(user.size(), 1u) << "a restore unit runs as its own user";
    ASSERT_EQ(ambient.size(), 1u);
    ASSERT_THAT(exec[0], HasSubstr(absl::StrCat("/etc/coolify/", r.snapshot)));

    const std::string snapshot = absl::StrCat(dir, "/", r.snapshot);
    std::ofstream(snapshot) << r.content;
    chmod(snapshot.c_str(), 0644);
    const std::string caps = SetprivCaps(ambient[0]);
    const std::string command = absl::StrReplaceAll(exec[0], {{"/etc/coolify/", dir + "/"}});
    const std::string program = command.substr(0, command.find(' '));
    const std::string trace = absl::StrCat(dir, "/", r.unit, ".trace");
    CommandRun run = Shell(absl::StrCat("strace -f -qq -o ", trace, " setpriv --reuid=", user[0], " --regid=", user[0],
                                        " --clear-groups --inh-caps=-all", caps, " --ambient-caps=-all", caps,
                                        " --bounding-set=-all", caps, " --no-new-privs ", command));
    ASSERT_EQ(run.status, 0) << run.out;
    EXPECT_THAT(Shell(r.readback).out, HasSubstr(r.expected));

    const std::set<std::string> allowed = AllowedSyscalls(unit);
    ASSERT_GT(allowed.size(), 100u) << "the unit has a SystemCallFilter allow list";
    for (const std::string& call : SyscallsAfterExec(ReadFile(trace), program)) {
      EXPECT_TRUE(allowed.count(call)) << program << " calls " << call << ", which " << r.unit
                                       << "'s SystemCallFilter does not allow";
    }
    CommandRun verify = Shell(absl::StrCat("systemd-analyze verify ", UnitDir(), "/", r.unit));
    EXPECT_EQ(verify.status, 0) << verify.out;
  }
  Shell("rm -rf " + dir);
}

// Every value of `key=` in the [Socket] listener of a socket unit, one expected.
std::string OnlyValue(const std::string& unit, const std::string& key) {
  const std::vector<std::string> values = Values(unit, key);
  EXPECT_EQ(values.size(), 1u) << key;
  return values.empty() ? "" : values[0];
}

TEST(UnitsTest, BrokerServesAsItsUnitsStartItWithOnlyTheirUserAndFilter) {
  const std::string unit = ReadFile(UnitDir() + "/broker.service");
  const std::string socket_unit = ReadFile(UnitDir() + "/broker.socket");
  // The user the unit starts it as is the one its sandbox would drop to: no identity
  // change is left for it to make (hardening/capabilities/broker.list).
  ASSERT_EQ(Values(unit, "User"), std::vector<std::string>{"coolify-broker"});
  ASSERT_EQ(Values(unit, "CapabilityBoundingSet"), std::vector<std::string>{""}) << "no capability at all";
  ASSERT_EQ(Values(unit, "AmbientCapabilities"), std::vector<std::string>{""});
  ASSERT_EQ(Values(unit, "NoNewPrivileges"), std::vector<std::string>{"yes"});
  ASSERT_EQ(Values(unit, "Sockets"), std::vector<std::string>{"broker.socket broker-grpc.socket"});
  // Laravel's socket as broker.socket makes it, under this test's directory, and the
  // hosts' port as broker-grpc.socket does, on loopback; passed by the names they give.
  ASSERT_EQ(OnlyValue(socket_unit, "ListenStream"), "/run/coolify/broker.sock");
  const std::string name = OnlyValue(socket_unit, "FileDescriptorName");
  ASSERT_EQ(name, broker::kUnixListenerName);
  const std::string grpc_unit = ReadFile(UnitDir() + "/broker-grpc.socket");
  const std::string grpc_name = OnlyValue(grpc_unit, "FileDescriptorName");
  ASSERT_EQ(grpc_name, broker::kGrpcListenerName);
  char dir_template[] = "/tmp/coold-units-broker-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string trace = dir + "/broker.trace";
  const std::string broker = Runfile("services/broker/broker");
  TestKeys keys;
  GiveToBrokerUser(keys.dir);
  ASSERT_EQ(mkdir((dir + "/state").c_str(), 0700), 0);
  GiveToBrokerUser(dir);  // coolify-broker's state directory, as StateDirectory= makes it
  const std::string socket = dir + "/broker.sock";
  ListeningSocket laravel = ListeningSocket::Unix(socket);
  const int port = FreeLoopbackPort();
  ListeningSocket grpc = ListeningSocket::Tcp(port);
  // As systemd would start it: the sockets at descriptors 3 and 4, coolify-broker with the unit's
  // empty bounding set, no_new_privs; traced from its exec on. strace's tracee is a
  // process of its own, so LISTEN_PID names it from inside.
  const std::string wrapper = dir + "/broker-as-unit";
  WriteSocketActivationScript(wrapper, {laravel.fd(), grpc.fd()}, absl::StrCat(name, ":", grpc_name),
                              absl::StrCat("/usr/bin/strace -f -qq -o ", trace,
                                           " /bin/bash -c 'export LISTEN_PID=$$; exec ", AsBrokerServiceUser(), " ",
                                           broker, "'"));
  {
    // Neither variable names a listener it could bind as coolify-broker: the passed ones
    // are what it serves.
    BrokerUnderTest run({"BROKER_UNIX_SOCKET=/nonexistent/unused.sock", "BROKER_GRPC_BIND=127.0.0.1:1",
                         "BROKER_TLS_CERT=" + keys.Path("tls.crt"), "BROKER_TLS_KEY=" + keys.Path("tls.key"),
                         "BROKER_JWT_KEYS=" + keys.KeySpec(), "BROKER_STATE_DIR=" + dir + "/state"},
                        wrapper);
    ASSERT_TRUE(run.listening()) << run.log();
    EXPECT_EQ(run.port(), port) << run.log();
    EXPECT_EQ(UnixHttp(socket, "GET", "/v1/health").status, 200) << run.log();
    // A TLS handshake on the hosts' listener: accept, TLS and HTTP/2 on gRPC's threads.
    Shell(absl::StrCat("curl -sk --http2 --max-time 5 -o /dev/null https://127.0.0.1:", port, "/"));
    // The broker is strace's child; ending it ends the trace.
    Shell(absl::StrCat("pkill -TERM -P ", run.pid()));
    run.WaitExit(std::chrono::seconds(10));
  }
  const std::set<std::string> allowed = AllowedSyscalls(unit);
  ASSERT_GT(allowed.size(), 100u) << "the unit has a SystemCallFilter allow list";
  const std::set<std::string> made = SyscallsAfterExec(ReadFile(trace), broker);
  EXPECT_THAT(made, ::testing::Contains("landlock_restrict_self")) << "the broker sandboxed itself";
  // The sandbox's proof that root is out of reach (privsep/capabilities.cc,
  // VerifyIdentity): the unit's filter refusing it is the answer it wants.
  const std::set<std::string> refused_on_purpose = {"setuid"};
  for (const std::string& call : made) {
    if (refused_on_purpose.count(call)) {
      EXPECT_FALSE(allowed.count(call)) << call << " is allowed by broker.service again: drop it from this test's list";
      continue;
    }
    EXPECT_TRUE(allowed.count(call)) << "the broker calls " << call << ", which broker.service's SystemCallFilter does not allow";
  }
  Shell("rm -rf " + dir);
}

// The calls a role's seccomp list admits (hardening/seccomp/<role>.list; grammar
// privsep/policy_list.h): the first word of each entry, less those it answers with an
// error instead of running.
std::set<std::string> RoleSyscalls(const std::string& role) {
  std::set<std::string> names;
  for (absl::string_view line : absl::StrSplit(ReadFile(Runfile("hardening/seccomp/" + role + ".list")), '\n')) {
    line = absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
    if (line.empty() || line[0] == '[') continue;
    if (absl::StrContains(line, " return ")) continue;
    names.emplace(line.substr(0, line.find(' ')));
  }
  return names;
}

TEST(UnitsTest, NoUnitFilterRefusesACallOfARoleItRuns) {
  const std::pair<std::string, std::vector<std::string>> kUnits[] = {
      {"coold.service", {"front", "netlink", "podman", "build"}},
      {"broker.service", {"broker"}},
  };
  for (const auto& [name, roles] : kUnits) {
    SCOPED_TRACE(name);
    const std::string unit = ReadFile(absl::StrCat(UnitDir(), "/", name));
    const std::vector<std::string> lines = Values(unit, "SystemCallFilter");
    ASSERT_FALSE(lines.empty()) << "the unit has a SystemCallFilter";
    const bool allow_list = lines[0][0] != '~';
    const std::set<std::string> allowed = AllowedSyscalls(unit);
    std::set<std::string> denied;
    for (const std::string& line : lines) {
      if (line[0] != '~') continue;
      for (absl::string_view item : absl::StrSplit(absl::string_view(line).substr(1), ' ', absl::SkipEmpty())) {
        std::set<std::string> names =
            item[0] == '@' ? Expand(std::string(item)) : std::set<std::string>{std::string(item)};
        denied.insert(names.begin(), names.end());
      }
    }
    ASSERT_FALSE(denied.empty());
    for (const std::string& role : roles) {
      const std::set<std::string> calls = RoleSyscalls(role);
      ASSERT_GT(calls.size(), 20u) << role << ".list read";
      for (const std::string& call : calls) {
        const bool refused = allow_list ? !allowed.count(call) : denied.count(call) > 0;
        EXPECT_FALSE(refused) << name << "'s SystemCallFilter refuses " << call << ", which hardening/seccomp/" << role
                              << ".list admits";
      }
    }
  }
}

// coold.service's mount namespace as systemd makes it from the settings
// CooldUnitsMountsLeaveABuildItsProcSysfsAndTun pins (ProtectSystem=strict: everything
// but /proc, /sys, /dev read-only; PrivateTmp; PrivateDevices with the tun device bound
// in; ProtectHome and ProtectKernelModules: their directories inaccessible), then `$1`,
// then what a build's jail does as the build's unprivileged uid (build_jail.cc).
constexpr char kUnitMountNamespace[] = R"(set -eu
mount --make-rprivate /
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /var/tmp
mkdir /tmp/hostdev
mount --rbind /dev /tmp/hostdev
mount -t tmpfs -o mode=0755,nosuid,noexec tmpfs /dev
for d in null zero full random urandom tty; do touch /dev/$d; mount --bind /tmp/hostdev/$d /dev/$d; done
mkdir -p /dev/net /dev/pts /dev/shm
touch /dev/net/tun
mount --bind /tmp/hostdev/net/tun /dev/net/tun
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
umount -l /tmp/hostdev
for d in /home /root /run/user /usr/lib/modules; do if [ -d $d ]; then mount -t tmpfs -o ro,mode=000 tmpfs $d; fi; done
findmnt -rn -o TARGET | grep -v '^/proc\|^/sys\|^/dev' | sort -u | while read -r m; do mount -o remount,bind,ro "$m" 2>/dev/null || true; done
if touch /etc/.coold-units-rw 2>/dev/null; then echo "the root stayed writable"; exit 3; fi
eval "$1"
setpriv --reuid=65534 --regid=65534 --clear-groups unshare -Urmpnf --mount-proc \
  sh -ec 'mount -t sysfs sysfs /sys; exec 3<>/dev/net/tun; echo build-namespaces-ok'
)";

TEST(UnitsTest, CooldUnitsMountsLeaveABuildItsProcSysfsAndTun) {
  const std::string unit = ReadFile(UnitDir() + "/coold.service");
  // The settings that shape coold's mount namespace, exactly: one added or changed here
  // must be reproduced above (ReadWritePaths only makes two directories writable again).
  const std::map<std::string, std::string> expected = {
      {"ProtectSystem", "strict"}, {"PrivateTmp", "yes"},          {"PrivateDevices", "yes"},
      {"BindPaths", "-/dev/net/tun"}, {"ProtectHome", "yes"},     {"ProtectKernelModules", "yes"},
      {"PrivateMounts", "yes"},   {"ReadWritePaths", "/etc/coolify /var/lib/coolify"},
  };
  for (const char* key : {"ProtectSystem", "PrivateTmp", "PrivateDevices", "BindPaths", "BindReadOnlyPaths", "ProtectHome",
                          "ProtectKernelModules", "ProtectKernelTunables", "ProtectKernelLogs", "ProtectControlGroups",
                          "ProtectProc", "ProcSubset", "ProtectHostname", "PrivateMounts", "ReadWritePaths",
                          "ReadOnlyPaths", "InaccessiblePaths", "TemporaryFileSystem", "RootDirectory", "RootImage",
                          "MountAPIVFS", "PrivateUsers", "PrivateNetwork"}) {
    SCOPED_TRACE(key);
    const std::vector<std::string> values = Values(unit, key);
    if (expected.count(key)) {
      EXPECT_EQ(values, std::vector<std::string>{expected.at(key)});
    } else {
      EXPECT_TRUE(values.empty()) << "coold.service sets " << key << ", which this test does not reproduce";
    }
  }
  char dir_template[] = "/tmp/coold-units-mounts-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string script = dir + "/unit-mount-namespace.sh";
  std::ofstream(script) << kUnitMountNamespace;
  auto run = [&](const std::string& extra) {
    return Shell(absl::StrCat("unshare -m bash ", script, " '", extra, "' 2>&1"));
  };
  CommandRun ok = run("true");
  EXPECT_EQ(ok.status, 0) << ok.out;
  EXPECT_THAT(ok.out, HasSubstr("build-namespaces-ok"));
  // What the settings coold.service leaves out would do (ProtectKernelLogs covers
  // /proc/kmsg; ProtectKernelTunables makes /proc/sys read-only): a build could not
  // mount its /proc.
  for (const std::string& cover :
       {std::string("mount --bind /dev/null /proc/kmsg"), std::string("mount --bind -o ro /proc/sys /proc/sys")}) {
    SCOPED_TRACE(cover);
    CommandRun refused = run(cover);
    EXPECT_NE(refused.status, 0) << refused.out;
    EXPECT_THAT(refused.out, HasSubstr("mount /proc failed"));
  }
  Shell("rm -rf " + dir);
}

// systemd-analyze verify checks ExecStart's program exists: on a machine without the
// packages, each daemon unit is verified with its ExecStart pointed at the binary Bazel
// built, all else as shipped.
TEST(UnitsTest, DaemonUnitsVerify) {
  char dir_template[] = "/tmp/coold-units-verify-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  for (const auto& [name, binary] : {std::pair<std::string, std::string>{"coold.service", "services/monitor/coold"},
                                     {"broker.service", "services/broker/broker"}}) {
    SCOPED_TRACE(name);
    const std::string unit = ReadFile(absl::StrCat(UnitDir(), "/", name));
    const std::vector<std::string> exec = Values(unit, "ExecStart");
    ASSERT_EQ(exec.size(), 1u);
    std::ofstream(absl::StrCat(dir, "/", name))
        << absl::StrReplaceAll(unit, {{"ExecStart=" + exec[0], "ExecStart=" + Runfile(binary)}});
    CommandRun verify = Shell(absl::StrCat("systemd-analyze verify ", dir, "/", name, " 2>&1"));
    EXPECT_EQ(verify.status, 0) << verify.out;
    EXPECT_EQ(verify.out, "") << "systemd-analyze warns";
  }
  // The broker's socket units, beside the broker.service they start (verify loads it),
  // each naming its listener as the broker looks for it.
  const std::pair<std::string, std::string> kSockets[] = {{"broker.socket", broker::kUnixListenerName},
                                                          {"broker-grpc.socket", broker::kGrpcListenerName}};
  for (const auto& [name, fd_name] : kSockets) {
    SCOPED_TRACE(name);
    const std::string unit = ReadFile(absl::StrCat(UnitDir(), "/", name));
    EXPECT_EQ(OnlyValue(unit, "FileDescriptorName"), fd_name);
    EXPECT_EQ(OnlyValue(unit, "Service"), "broker.service");
    std::ofstream(absl::StrCat(dir, "/", name)) << unit;
    CommandRun verify = Shell(absl::StrCat("systemd-analyze verify ", dir, "/", name, " 2>&1"));
    EXPECT_EQ(verify.status, 0) << verify.out;
    EXPECT_EQ(verify.out, "") << "systemd-analyze warns";
  }
  Shell("rm -rf " + dir);
}

}  // namespace
}  // namespace coolify::testing
