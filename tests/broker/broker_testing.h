// Real peers of the broker for tests and benchmarks: keys and certificates made with the
// openssl CLI, host JWTs signed with OpenSSL, the broker binary as a process, an HTTP
// client over its Unix socket (Laravel's side) and FakeHost, a real gRPC client that
// speaks coold's side of Agent.Stream with scripted answers.
#ifndef COOLD_TESTS_BROKER_BROKER_TESTING_H_
#define COOLD_TESTS_BROKER_BROKER_TESTING_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "proto/agent.grpc.pb.h"
#include "tests/shell_testing.h"

namespace coolify::testing {

// A scratch directory with an ES256 key pair (es.key/es.pub), an RSA-2048 pair
// (rs.key/rs.pub) and a TLS certificate for 127.0.0.1 (tls.crt/tls.key). Aborts the
// test binary when openssl fails: a test without its keys cannot mean anything.
struct TestKeys {
  TestKeys();
  ~TestKeys();
  std::string dir;
  std::string Path(const std::string& name) const { return dir + "/" + name; }
  std::string Read(const std::string& name) const;
  // "es=<dir>/es.pub,rs=<dir>/rs.pub"
  std::string KeySpec() const;
};

// A compact JWS over `claims_json` with header {"alg", "kid", "typ":"JWT"}. alg ES256 and
// RS256 sign with the PEM private key `key_pem`; HS256 uses `key_pem`'s bytes as the HMAC
// secret; "none" leaves the signature empty.
std::string SignJwt(const std::string& alg, const std::string& kid, const std::string& key_pem,
                    const std::string& claims_json);

// A token id unique in this test binary.
std::string NewJti();

// {"sub": host, "aud": "coold", "jti": NewJti(), "caps": caps, "iat": now + iat_offset,
// "exp": now + ttl}
std::string Claims(const std::string& host, const std::vector<std::string>& caps, long ttl_seconds = 3600,
                   long iat_offset = 0);

// Every dotted verb plus "builder".
std::vector<std::string> AllCaps();

class BrokerUnderTest {
 public:
  // Starts the broker binary with `env` ("NAME=value"); waits for it to listen. Without
  // BROKER_STATE_DIR in `env`, a scratch directory of its own, removed at the end.
  explicit BrokerUnderTest(std::vector<std::string> env, const std::string& binary = "");
  ~BrokerUnderTest();
  bool listening() const { return port_ > 0; }
  int port() const { return port_; }
  std::string log() const;
  bool WaitForLog(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits for exit; the wait status, or -1.
  int WaitExit(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  bool exited_ = false;
  int exit_status_ = -1;
  std::thread drain_;
  mutable std::mutex mu_;
  std::string log_;
  std::string own_state_dir_;
};

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection failed or closed)
  std::string body;
};

// One HTTP/1.1 request over the Unix socket at `socket_path`, on a new connection.
HttpAnswer UnixHttp(const std::string& socket_path, const std::string& method, const std::string& target,
                    const std::string& body = "");
// GET /v1/build/result/<id> until it is not 408 or `total` passed: the broker clamps a
// poll to 30 s, so a longer wait is several polls, as central's own loop does.
HttpAnswer PollBuildResult(const std::string& socket_path, const std::string& request_id,
                           std::chrono::seconds total);
// The raw bytes a server answered to `raw` (for malformed-request tests).
std::string UnixRaw(const std::string& socket_path, const std::string& raw);

// coold's side of one Agent.Stream.
class FakeHost {
 public:
  // What the host answers to a ServerMsg; nullopt-like (has_result false) = no answer.
  using Answer = std::function<bool(const v1::ServerMsg&, v1::CommandResult*)>;

  struct Options {
    std::string host_id;
    std::string token;
    std::vector<v1::Capability> capabilities = {v1::CAPABILITY_PODMAN, v1::CAPABILITY_FIREWALL,
                                                v1::CAPABILITY_SERVICES, v1::CAPABILITY_DNS};
    uint32_t builder_capacity = 0;
    std::string target;   // "127.0.0.1:PORT"
    std::string root_pem;  // TLS trust; "" = plaintext
    std::shared_ptr<grpc::Channel> channel;  // reuse instead of dialing
    bool send_hello = true;
    // The host's key (PKCS#8 PEM): answers a Challenge with a Proof. "" = a host that
    // holds no key (a Challenge goes unanswered).
    std::string host_key_pem;
    // Set: opens with "authorization: Enroll <token>" and sends the key's public half
    // in Hello (token is then unused).
    std::string enrollment_token;
  };

  FakeHost(Options options, Answer answer);
  ~FakeHost();

  // Waits until the broker has the stream (the health count says so) is the caller's job;
  // this says whether the stream is still open from this side.
  bool open() const { return !ended_; }
  // Waits for the stream to end; its status.
  grpc::Status WaitEnd(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Cancels the stream from this side, as a crashed host would drop it.
  void Drop();
  // Waits until the broker admitted the stream (an Admitted message came); false when
  // the stream ended or `timeout` passed first.
  bool WaitAdmitted(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Every ServerMsg carrying work (a command, build or cancel) received so far.
  std::vector<v1::ServerMsg> received() const;
  // Every other ServerMsg (Challenge, Admitted, TokenVerdict) received so far.
  std::vector<v1::ServerMsg> control() const;
  // Sends a ClientMsg (e.g. a late Response).
  bool Send(const v1::ClientMsg& message);

  // Answers every command with 200 {"verb": <field name>, "request_id"}; builds with a
  // result {"digest","registry_ref","duration_ms"}.
  static Answer Echo();
  // Never answers.
  static Answer Silent();

  static std::shared_ptr<grpc::Channel> Dial(const std::string& target, const std::string& root_pem);

 private:
  void ReadLoop();

  Options options_;
  Answer answer_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Agent::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ClientMsg, v1::ServerMsg>> stream_;
  std::mutex write_mu_;
  mutable std::mutex mu_;
  std::vector<v1::ServerMsg> received_;
  std::vector<v1::ServerMsg> control_;
  std::atomic<bool> ended_{false};
  grpc::Status status_;
  std::thread reader_;
};

// ---- the broker as broker.service and broker.socket start it ----

// A listening stream socket as a systemd socket unit makes one (socket, bind, listen),
// left inheritable so that a program the test starts gets it; closed at destruction.
class ListeningSocket {
 public:
  static ListeningSocket Unix(const std::string& path);
  static ListeningSocket Tcp(int port);  // 127.0.0.1:port
  // Any descriptor, e.g. a file or a socket that does not listen, to be passed as one.
  static ListeningSocket Adopt(int fd);
  ListeningSocket(ListeningSocket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ~ListeningSocket();
  int fd() const { return fd_; }

 private:
  explicit ListeningSocket(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// A bash script that execs `command` as systemd execs a socket-activated service: `fds`
// moved to descriptors 3, 4, ... (and closed at their own numbers), LISTEN_FDS their
// count, LISTEN_FDNAMES `names` (unset when empty) and LISTEN_PID the script's own pid,
// which `command` keeps by exec, or `listen_pid` when given (descriptors meant for
// another process). Written to `path`, mode 0755.
void WriteSocketActivationScript(const std::string& path, const std::vector<int>& fds, const std::string& names,
                                 const std::string& command, const std::string& listen_pid = "");

// The setpriv command that starts a program as broker.service does: as coolify-broker,
// its primary group and its groups from initgroups(3) (systemd's User=), no capability in
// any set (CapabilityBoundingSet= empty) and no_new_privs (NoNewPrivileges=yes).
std::string AsBrokerServiceUser();

// Makes the files and directories under `dir` coolify-broker's, as an operator gives the
// broker its certificate, key and host-token keys (README, Install), and as
// StateDirectory= gives it its state directory.
void GiveToBrokerUser(const std::string& dir);

// Polls the broker's health until it reports `hosts` connected hosts.
bool WaitForHosts(const std::string& socket_path, int hosts, std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace coolify::testing

#endif  // COOLD_TESTS_BROKER_BROKER_TESTING_H_
