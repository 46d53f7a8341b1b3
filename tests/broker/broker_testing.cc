#include "tests/broker/broker_testing.h"

#include <algorithm>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "boost/asio/local/stream_protocol.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "services/commands/dispatch_codec.h"
#include "services/identity/host_key.h"
#include "services/commands/verbs.h"

namespace coolify::testing {

namespace {

[[noreturn]] void Fatal(const std::string& what) {
  std::fprintf(stderr, "broker_testing: %s\n", what.c_str());
  std::abort();
}

std::string B64(const std::string& bytes) { return absl::WebSafeBase64Escape(bytes); }

std::string Sign(const std::string& alg, const std::string& key_pem, const std::string& input) {
  if (alg == "none") return "";
  if (alg == "HS256") {
    unsigned char out[64];
    size_t length = 0;
    if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key_pem.data(), key_pem.size(),
                  reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, sizeof(out),
                  &length) == nullptr) {
      Fatal("HMAC failed");
    }
    return std::string(reinterpret_cast<char*>(out), length);
  }
  BIO* bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) Fatal("not a PEM private key");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t length = 0;
  std::string signature;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx, nullptr, &length, reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    Fatal("sign failed");
  }
  signature.resize(length);
  if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    Fatal("sign failed");
  }
  signature.resize(length);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  if (alg == "ES256") {
    // DER ECDSA-Sig-Value -> JWS's fixed-width r||s.
    const unsigned char* p = reinterpret_cast<const unsigned char*>(signature.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(signature.size()));
    if (sig == nullptr) Fatal("bad ECDSA signature");
    unsigned char raw[64];
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32);
    ECDSA_SIG_free(sig);
    return std::string(reinterpret_cast<char*>(raw), 64);
  }
  return signature;
}

}  // namespace


TestKeys::TestKeys() {
  char tmpl[] = "/tmp/broker-keys-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Fatal("mkdtemp");
  dir = tmpl;
  CommandRun run = Shell(absl::StrCat(
      "cd ", dir, " && openssl ecparam -name prime256v1 -genkey -noout -out es.key",
      " && openssl ec -in es.key -pubout -out es.pub",
      " && openssl genrsa -out rs.key 2048 && openssl rsa -in rs.key -pubout -out rs.pub",
      " && openssl ecparam -name prime256v1 -genkey -noout -out other.key",
      " && openssl ec -in other.key -pubout -out other.pub",
      " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout tls.key",
      " -out tls.crt -days 2 -subj /CN=broker -addext subjectAltName=IP:127.0.0.1,DNS:localhost"));
  if (run.status != 0) Fatal("openssl failed: " + run.out);
}

TestKeys::~TestKeys() { Shell("rm -rf " + dir); }

std::string TestKeys::Read(const std::string& name) const {
  std::ifstream in(Path(name));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string TestKeys::KeySpec() const { return absl::StrCat("es=", Path("es.pub"), ",rs=", Path("rs.pub")); }

std::string SignJwt(const std::string& alg, const std::string& kid, const std::string& key_pem,
                    const std::string& claims_json) {
  std::string header = absl::StrCat("{\"alg\":\"", alg, "\",\"kid\":\"", kid, "\",\"typ\":\"JWT\"}");
  std::string input = B64(header) + "." + B64(claims_json);
  return input + "." + B64(Sign(alg, key_pem, input));
}

std::string NewJti() {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat("t-", getpid(), "-", static_cast<long>(time(nullptr)), "-", counter++);
}

std::string Claims(const std::string& host, const std::vector<std::string>& caps, long ttl_seconds, long iat_offset) {
  long now = static_cast<long>(time(nullptr));
  std::vector<std::string> quoted;
  for (const auto& c : caps) quoted.push_back("\"" + c + "\"");
  return absl::StrCat("{\"sub\":\"", host, "\",\"aud\":\"coold\",\"jti\":\"", NewJti(), "\",\"caps\":[",
                      absl::StrJoin(quoted, ","), "],\"iat\":", now + iat_offset, ",\"exp\":", now + ttl_seconds, "}");
}

std::vector<std::string> AllCaps() {
  std::vector<std::string> caps = {"builder"};
  for (const commands::Verb& verb : commands::Verbs()) {
    for (const char* name : verb.names) caps.emplace_back(name);
  }
  return caps;
}

BrokerUnderTest::BrokerUnderTest(std::vector<std::string> env, const std::string& binary_path) {
  std::string binary = binary_path.empty() ? Runfile("services/broker/broker") : binary_path;
  // Each broker its own identity store unless the test names one (to restart on it).
  if (std::none_of(env.begin(), env.end(), [](const std::string& e) { return absl::StartsWith(e, "BROKER_STATE_DIR="); })) {
    char tmpl[] = "/tmp/broker-state-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) Fatal("mkdtemp");
    own_state_dir_ = tmpl;
    env.push_back("BROKER_STATE_DIR=" + own_state_dir_);
  }
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  char* argv[] = {binary.data(), nullptr};
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) Fatal("pipe");
  pid_ = fork();
  if (pid_ == 0) {
    dup2(pipefd[1], STDERR_FILENO);
    execve(binary.c_str(), argv, envp.data());
    _exit(127);
  }
  close(pipefd[1]);
  int fd = pipefd[0];
  // Drained continuously: a broker that logs a line per connection must never block on
  // a full pipe.
  drain_ = std::thread([this, fd] {
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      log_.append(buf, static_cast<size_t>(n));
    }
    close(fd);
  });
  const std::string marker = "listening: gRPC ";
  if (WaitForLog(marker, std::chrono::seconds(15))) {
    std::string text = log();
    size_t at = text.find(marker) + marker.size();
    size_t colon = text.find(':', at);
    size_t end = text.find(' ', colon);
    absl::SimpleAtoi(text.substr(colon + 1, end - colon - 1), &port_);
  }
}

BrokerUnderTest::~BrokerUnderTest() {
  if (pid_ > 0 && !exited_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (drain_.joinable()) drain_.join();
  if (!own_state_dir_.empty()) Shell("rm -rf " + own_state_dir_);
}

std::string BrokerUnderTest::log() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

bool BrokerUnderTest::WaitForLog(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (log().find(needle) != std::string::npos) return true;
    int status;
    if (!exited_ && waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      exit_status_ = status;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return log().find(needle) != std::string::npos;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

int BrokerUnderTest::WaitExit(std::chrono::milliseconds timeout) {
  if (exited_) {
    if (drain_.joinable()) drain_.join();
    return exit_status_;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      exit_status_ = status;
      if (drain_.joinable()) drain_.join();
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

HttpAnswer PollBuildResult(const std::string& socket_path, const std::string& request_id,
                           std::chrono::seconds total) {
  const auto deadline = std::chrono::steady_clock::now() + total;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    long long wait_ms = std::max<long long>(1, std::min<long long>(left.count(), 30000));
    HttpAnswer answer =
        UnixHttp(socket_path, "GET", absl::StrCat("/v1/build/result/", request_id, "?timeout_ms=", wait_ms));
    if (answer.status != 408 || std::chrono::steady_clock::now() >= deadline) return answer;
  }
}

HttpAnswer UnixHttp(const std::string& socket_path, const std::string& method, const std::string& target,
                    const std::string& body) {
  namespace asio = boost::asio;
  namespace bhttp = boost::beast::http;
  HttpAnswer answer;
  try {
    asio::io_context io;
    asio::local::stream_protocol::socket socket(io);
    socket.connect(asio::local::stream_protocol::endpoint(socket_path));
    bhttp::request<bhttp::string_body> request(bhttp::string_to_verb(method), target, 11);
    request.set(bhttp::field::host, "broker");
    if (!body.empty()) request.set(bhttp::field::content_type, "application/json");
    request.body() = body;
    request.prepare_payload();
    bhttp::write(socket, request);
    boost::beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> response;
    bhttp::read(socket, buffer, response);
    answer.status = static_cast<int>(response.result_int());
    answer.body = response.body();
  } catch (const std::exception&) {
  }
  return answer;
}

std::string UnixRaw(const std::string& socket_path, const std::string& raw) {
  namespace asio = boost::asio;
  std::string out;
  try {
    asio::io_context io;
    asio::local::stream_protocol::socket socket(io);
    socket.connect(asio::local::stream_protocol::endpoint(socket_path));
    asio::write(socket, asio::buffer(raw));
    char buf[4096];
    boost::system::error_code ec;
    size_t n;
    while ((n = socket.read_some(asio::buffer(buf), ec)) > 0 && !ec) out.append(buf, n);
  } catch (const std::exception&) {
  }
  return out;
}

std::shared_ptr<grpc::Channel> FakeHost::Dial(const std::string& target, const std::string& root_pem) {
  grpc::ChannelArguments args;
  // Each fake host its own connection, as separate coolds would have.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (root_pem.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = root_pem;
    credentials = grpc::SslCredentials(tls);
  }
  return grpc::CreateCustomChannel(target, credentials, args);
}

FakeHost::FakeHost(Options options, Answer answer) : options_(std::move(options)), answer_(std::move(answer)) {
  channel_ = options_.channel ? options_.channel : Dial(options_.target, options_.root_pem);
  stub_ = v1::Agent::NewStub(channel_);
  if (!options_.enrollment_token.empty()) {
    context_.AddMetadata("authorization", "Enroll " + options_.enrollment_token);
  } else if (!options_.token.empty()) {
    context_.AddMetadata("authorization", "Bearer " + options_.token);
  }
  stream_ = stub_->Stream(&context_);
  if (options_.send_hello) {
    v1::ClientMsg hello;
    hello.mutable_hello()->set_host_id(options_.host_id);
    if (!options_.enrollment_token.empty()) {
      auto key = identity::HostKey::FromPem(options_.host_key_pem);
      if (!key.ok()) Fatal("FakeHost: enrollment without a usable host_key_pem");
      hello.mutable_hello()->set_public_key(key->PublicDer());
    }
    for (auto c : options_.capabilities) hello.mutable_hello()->add_capabilities(c);
    hello.mutable_hello()->set_builder_capacity(options_.builder_capacity);
    hello.mutable_hello()->set_agent_version("fake-host");
    Send(hello);
  }
  reader_ = std::thread([this] { ReadLoop(); });
}

FakeHost::~FakeHost() {
  Drop();
  if (reader_.joinable()) reader_.join();
}

bool FakeHost::Send(const v1::ClientMsg& message) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return stream_->Write(message);
}

void FakeHost::ReadLoop() {
  v1::ServerMsg message;
  while (stream_->Read(&message)) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      const bool work = message.has_command() || message.has_build() || message.has_cancel();
      (work ? received_ : control_).push_back(message);
    }
    if (message.has_challenge() && !options_.host_key_pem.empty()) {
      auto key = identity::HostKey::FromPem(options_.host_key_pem);
      auto signature = key.ok() ? key->Sign(identity::ProofInput(options_.host_id, message.challenge().nonce()))
                                : absl::StatusOr<std::string>(key.status());
      v1::ClientMsg proof;
      proof.mutable_proof()->set_signature(signature.ok() ? *signature : std::string(64, '\0'));
      Send(proof);
      continue;
    }
    // Only work is answered: a TokenVerdict or the like takes no Response.
    if (!message.has_command() && !message.has_build() && !message.has_cancel()) continue;
    v1::ClientMsg reply;
    reply.mutable_response()->set_request_id(message.request_id());
    if (answer_ && answer_(message, reply.mutable_response()->mutable_result())) Send(reply);
  }
  status_ = stream_->Finish();
  ended_ = true;
}

grpc::Status FakeHost::WaitEnd(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ended_ && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (!ended_) return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "stream still open");
  return status_;
}

void FakeHost::Drop() {
  if (!ended_) context_.TryCancel();
}

bool FakeHost::WaitAdmitted(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const v1::ServerMsg& m : control()) {
      if (m.has_admitted()) return true;
    }
    if (ended_) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

std::vector<v1::ServerMsg> FakeHost::control() const {
  std::lock_guard<std::mutex> lock(mu_);
  return control_;
}

std::vector<v1::ServerMsg> FakeHost::received() const {
  std::lock_guard<std::mutex> lock(mu_);
  return received_;
}

FakeHost::Answer FakeHost::Echo() {
  return [](const v1::ServerMsg& message, v1::CommandResult* result) {
    if (message.has_cancel()) return false;
    result->set_code(200);
    auto& fields = *result->mutable_data()->mutable_struct_value()->mutable_fields();
    if (message.has_build()) {
      fields["digest"].set_string_value("sha256:" + std::string(64, 'a'));
      fields["registry_ref"].set_string_value(message.build().target_image());
      fields["duration_ms"].set_number_value(42);
      return true;
    }
    const auto* field = v1::Command::descriptor()->FindFieldByNumber(message.command().verb_case());
    fields["verb"].set_string_value(field ? field->name() : "none");
    fields["request_id"].set_string_value(message.request_id());
    return true;
  };
}

FakeHost::Answer FakeHost::Silent() {
  return [](const v1::ServerMsg&, v1::CommandResult*) { return false; };
}

bool WaitForHosts(const std::string& socket_path, int hosts, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string want = absl::StrCat("\"hosts\":", hosts, ",");
  while (std::chrono::steady_clock::now() < deadline) {
    if (UnixHttp(socket_path, "GET", "/v1/health").body.find(want) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

ListeningSocket ListeningSocket::Unix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (fd < 0 || path.size() >= sizeof(addr.sun_path)) Fatal("socket " + path);
  std::memcpy(addr.sun_path, path.data(), path.size());
  unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 128) != 0) Fatal("bind " + path);
  return ListeningSocket(fd);
}

ListeningSocket ListeningSocket::Tcp(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 128) != 0) {
    Fatal(absl::StrCat("bind 127.0.0.1:", port));
  }
  return ListeningSocket(fd);
}

ListeningSocket ListeningSocket::Adopt(int fd) {
  if (fd < 0) Fatal("ListeningSocket::Adopt of a closed descriptor");
  fcntl(fd, F_SETFD, 0);  // inheritable, as a passed descriptor is
  return ListeningSocket(fd);
}

ListeningSocket::~ListeningSocket() {
  if (fd_ >= 0) close(fd_);
}

void WriteSocketActivationScript(const std::string& path, const std::vector<int>& fds, const std::string& names,
                                 const std::string& command, const std::string& listen_pid) {
  // Through 100 + i first, so that a descriptor already at 3 or 4 is not overwritten
  // before it is moved.
  std::string script = "#!/bin/bash\nset -e\n";
  for (size_t i = 0; i < fds.size(); ++i) absl::StrAppend(&script, "exec ", 100 + i, "<&", fds[i], "\n");
  for (size_t i = 0; i < fds.size(); ++i) absl::StrAppend(&script, "exec ", fds[i], "<&-\n");
  for (size_t i = 0; i < fds.size(); ++i) absl::StrAppend(&script, "exec ", 3 + i, "<&", 100 + i, " ", 100 + i, "<&-\n");
  absl::StrAppend(&script, "export LISTEN_PID=", listen_pid.empty() ? "$$" : listen_pid, " LISTEN_FDS=", fds.size(), "\n");
  if (!names.empty()) absl::StrAppend(&script, "export LISTEN_FDNAMES='", names, "'\n");
  absl::StrAppend(&script, "exec ", command, "\n");
  std::ofstream(path) << script;
  chmod(path.c_str(), 0755);
}

std::string AsBrokerServiceUser() {
  const passwd* pw = getpwnam("coolify-broker");
  if (pw == nullptr) Fatal("no user coolify-broker (run tools/install-deps.sh)");
  return absl::StrCat("/usr/bin/setpriv --reuid=coolify-broker --regid=", pw->pw_gid,
                      " --init-groups --inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs");
}

void GiveToBrokerUser(const std::string& dir) {
  CommandRun run = Shell(absl::StrCat("chown -R coolify-broker: ", dir, " && chmod 0755 ", dir));
  if (run.status != 0) Fatal("chown " + dir + ": " + run.out);
}

}  // namespace coolify::testing
