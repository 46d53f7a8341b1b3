// The broker socket-activated, as broker.socket and broker.service start it: the
// listeners made by "systemd" (this test, exactly as systemd passes them: descriptors from
// 3, LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID) and the broker started as coolify-broker with
// no capability and no_new_privs. It serves Laravel's socket and the hosts' gRPC port, and
// refuses descriptors that are not what their names say, with a clear error, before it
// serves anything.
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/broker_testing.h"

namespace coolify::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class SocketActivationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/broker-activation-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // The broker reads its keys as coolify-broker now: they are given to it, as the
    // README's install section says; its state directory is its own (StateDirectory=).
    GiveToBrokerUser(keys_.dir);
    ASSERT_EQ(mkdir((dir_ + "/state").c_str(), 0700), 0);
    GiveToBrokerUser(dir_);
    socket_ = dir_ + "/broker.sock";
  }
  void TearDown() override { Shell("rm -rf " + dir_); }

  // Every variable but the listeners'. BROKER_UNIX_SOCKET names a path the broker could
  // not bind (its directory does not exist): a passed socket must be what it serves.
  // `grpc_bind` likewise, when the gRPC listener is passed.
  std::vector<std::string> Env(const std::string& grpc_bind = "127.0.0.1:0") const {
    return {"BROKER_UNIX_SOCKET=/nonexistent/unused.sock", "BROKER_UNIX_SOCKET_GROUP=nonexistent-group",
            "BROKER_GRPC_BIND=" + grpc_bind,
            "BROKER_TLS_CERT=" + keys_.Path("tls.crt"), "BROKER_TLS_KEY=" + keys_.Path("tls.key"),
            "BROKER_JWT_KEYS=" + keys_.KeySpec(), "BROKER_STATE_DIR=" + dir_ + "/state"};
  }

  // Started as systemd would, with `fds` named `names`; the script's path.
  std::string Script(const std::vector<int>& fds, const std::string& names, const std::string& listen_pid = "") {
    const std::string script = dir_ + "/activate.sh";
    WriteSocketActivationScript(script, fds, names,
                                AsBrokerServiceUser() + " " + Runfile("services/broker/broker"), listen_pid);
    return script;
  }

  // The broker run to its end with `fds`: it must refuse them (exit 2) before serving.
  CommandRun Refused(const std::vector<int>& fds, const std::string& names, const std::string& listen_pid = "") {
    const std::string script = Script(fds, names, listen_pid);
    CommandRun run = Shell(absl::StrCat("env -i ", absl::StrJoin(Env(), " "), " timeout 20 ", script));
    EXPECT_EQ(run.status, 2) << run.out;
    EXPECT_THAT(run.out, Not(HasSubstr("listening: "))) << "the broker served";
    return run;
  }

  TestKeys keys_;
  std::string dir_;
  std::string socket_;
};

// The status fields of a process, as the kernel shows them.
std::string ProcStatusField(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return line.substr(field.size() + 1);
  }
  return "";
}

// Laravel's side (a request answered on the socket systemd made) and a host's (a TLS
// stream admitted on `grpc_port`, a command sent from Laravel's socket and answered by
// the host); then what the broker runs as, by the kernel: coolify-broker throughout,
// nothing it could regain.
void ExpectServedAsItsUser(const BrokerUnderTest& broker, const TestKeys& keys, const std::string& socket,
                           int grpc_port) {
  HttpAnswer health = UnixHttp(socket, "GET", "/v1/health");
  EXPECT_EQ(health.status, 200) << broker.log();
  FakeHost::Options o;
  o.host_id = "host-a";
  o.token = SignJwt("ES256", "es", keys.Read("es.key"), Claims("host-a", AllCaps()));
  o.target = absl::StrCat("127.0.0.1:", grpc_port);
  o.root_pem = keys.Read("tls.crt");
  FakeHost host(o, FakeHost::Echo());
  ASSERT_TRUE(WaitForHosts(socket, 1)) << broker.log();
  HttpAnswer answer = UnixHttp(socket, "POST", "/v1/coold/dispatch",
                               R"({"host_id":"host-a","request_id":"r-1","command":{"type":"host.info"}})");
  EXPECT_EQ(answer.status, 200) << answer.body << broker.log();
  EXPECT_THAT(answer.body, HasSubstr("r-1"));

  const passwd* pw = getpwnam("coolify-broker");
  ASSERT_NE(pw, nullptr);
  EXPECT_EQ(ProcStatusField(broker.pid(), "Uid"), absl::StrCat("\t", pw->pw_uid, "\t", pw->pw_uid, "\t", pw->pw_uid,
                                                                "\t", pw->pw_uid));
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(ProcStatusField(broker.pid(), set), "\t0000000000000000") << set;
  }
  EXPECT_EQ(ProcStatusField(broker.pid(), "NoNewPrivs"), "\t1");
  EXPECT_EQ(ProcStatusField(broker.pid(), "Seccomp"), "\t2");
  // It never made the path it was configured with.
  EXPECT_NE(access("/nonexistent/unused.sock", F_OK), 0);
}

// broker.socket and broker-grpc.socket: both listeners passed. BROKER_GRPC_BIND names a
// port coolify-broker could not bind (1, privileged): the passed one is what it serves.
TEST_F(SocketActivationTest, ServesBothPassedListenersAsItsUserWithNoCapability) {
  ListeningSocket laravel = ListeningSocket::Unix(socket_);
  const int port = FreeLoopbackPort();
  ListeningSocket grpc = ListeningSocket::Tcp(port);
  BrokerUnderTest broker(Env("127.0.0.1:1"), Script({laravel.fd(), grpc.fd()}, "unix:grpc"));
  ASSERT_TRUE(broker.listening()) << broker.log();
  EXPECT_EQ(broker.port(), port);
  EXPECT_THAT(broker.log(), HasSubstr(absl::StrCat("gRPC 127.0.0.1:", port, " (TLS, passed by systemd")));
  EXPECT_THAT(broker.log(), HasSubstr(absl::StrCat("Unix socket ", socket_, " (passed by systemd")));
  ExpectServedAsItsUser(broker, keys_, socket_, port);
}

// Only Laravel's socket passed: the broker binds the hosts' port from BROKER_GRPC_BIND.
TEST_F(SocketActivationTest, BindsWhatWasNotPassed) {
  ListeningSocket laravel = ListeningSocket::Unix(socket_);
  BrokerUnderTest broker(Env(), Script({laravel.fd()}, "unix"));
  ASSERT_TRUE(broker.listening()) << broker.log();
  EXPECT_THAT(broker.log(), HasSubstr("(TLS, bound from BROKER_GRPC_BIND)"));
  EXPECT_THAT(broker.log(), HasSubstr(absl::StrCat("Unix socket ", socket_, " (passed by systemd")));
  ExpectServedAsItsUser(broker, keys_, socket_, broker.port());
}

TEST_F(SocketActivationTest, DescriptorsForAnotherProcessAreRefused) {
  ListeningSocket laravel = ListeningSocket::Unix(socket_);
  CommandRun run = Refused({laravel.fd()}, "unix", "1");
  EXPECT_THAT(run.out, HasSubstr("LISTEN_PID=1: the passed sockets are for that process, not this one"));
}

TEST_F(SocketActivationTest, ADescriptorThatIsNotASocketIsRefused) {
  ListeningSocket file = ListeningSocket::Adopt(open("/dev/null", O_RDONLY));
  CommandRun run = Refused({file.fd()}, "unix");
  EXPECT_THAT(run.out, HasSubstr("LISTEN_FDS: descriptor 3 (unix): not a socket"));
}

TEST_F(SocketActivationTest, ASocketOfTheWrongFamilyIsRefused) {
  ListeningSocket tcp = ListeningSocket::Tcp(FreeLoopbackPort());
  CommandRun run = Refused({tcp.fd()}, "unix");
  EXPECT_THAT(run.out, HasSubstr("LISTEN_FDS: descriptor 3 (unix): a socket of AF_INET, not AF_UNIX"));

  ListeningSocket laravel = ListeningSocket::Unix(socket_);
  run = Refused({laravel.fd()}, "grpc");
  EXPECT_THAT(run.out, HasSubstr("LISTEN_FDS: descriptor 3 (grpc): a socket of AF_UNIX, not AF_INET or AF_INET6"));
}

TEST_F(SocketActivationTest, ASocketThatDoesNotListenIsRefused) {
  ListeningSocket unbound = ListeningSocket::Adopt(socket(AF_UNIX, SOCK_STREAM, 0));
  CommandRun run = Refused({unbound.fd()}, "unix");
  EXPECT_THAT(run.out, HasSubstr("LISTEN_FDS: descriptor 3 (unix): a AF_UNIX socket that is not listening"));
}

TEST_F(SocketActivationTest, ANameTheBrokerDoesNotServeIsRefused) {
  ListeningSocket laravel = ListeningSocket::Unix(socket_);
  CommandRun run = Refused({laravel.fd()}, "laravel");
  EXPECT_THAT(run.out, HasSubstr("LISTEN_FDNAMES: descriptor 3 is named \"laravel\""));
  run = Refused({laravel.fd()}, "");
  EXPECT_THAT(run.out, HasSubstr("LISTEN_FDNAMES: descriptor 3 is named \"unknown\""));
}

}  // namespace
}  // namespace coolify::testing
