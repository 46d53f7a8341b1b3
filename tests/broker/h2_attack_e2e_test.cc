// The broker's gRPC port under the attacks its HTTP/2 guard exists for, tried for real:
// the real broker binary, a raw HTTP/2 client (TCP, over TLS with ALPN h2 or plaintext,
// as the broker is configured) speaking below gRPC, and beside it a real host (FakeHost,
// gRPC) and a Laravel-side client dispatching to it through the Unix socket the whole
// time. For each attack: the connection gets the guard's GOAWAY and is closed within its
// deadline, the broker's RSS does not grow by the attack's size, the refusal is counted
// in /metrics by its reason, the host stays connected, every dispatch during the attack
// succeeds with bounded latency, and the attacker never became a host.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/metrics/exposition_parse.h"
#include "tests/broker/broker_testing.h"
#include "tests/broker/h2_frames.h"

namespace coolify::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr long kGoawayEnhanceYourCalm = 0xb;
constexpr long kGoawayProtocolError = 0x1;

long RssKiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// An HTTP/2 client with no HTTP/2 library: bytes as the test writes them.
class RawH2Client {
 public:
  RawH2Client(int port, const std::string& root_pem) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    // Sends give up rather than hang on a broker that stopped reading.
    timeval five{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &five, sizeof(five));
    if (!connected_ || root_pem.empty()) return;
    ctx_ = SSL_CTX_new(TLS_client_method());
    BIO* bio = BIO_new_mem_buf(root_pem.data(), static_cast<int>(root_pem.size()));
    X509* root = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), root);
    X509_free(root);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    static const unsigned char kAlpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx_, kAlpn, sizeof(kAlpn));
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    connected_ = SSL_connect(ssl_) == 1;
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
    alpn_ = std::string(reinterpret_cast<const char*>(alpn), alpn_len);
  }
  ~RawH2Client() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return connected_; }
  const std::string& alpn() const { return alpn_; }

  // False once the broker closed the connection. May run on one thread while another
  // reads: one SSL object is used by one thread at a time (io_mu_).
  bool Send(const std::string& bytes) {
    size_t at = 0;
    while (at < bytes.size()) {
      int chunk = static_cast<int>(std::min<size_t>(bytes.size() - at, 16384));
      std::unique_lock<std::mutex> lock(io_mu_);
      long n = ssl_ ? SSL_write(ssl_, bytes.data() + at, chunk) : send(fd_, bytes.data() + at, chunk, MSG_NOSIGNAL);
      if (n <= 0) return false;
      at += static_cast<size_t>(n);
    }
    return true;
  }

  struct Ending {
    std::string received;   // everything the broker sent
    bool closed = false;    // the broker closed (end of stream or reset) before the wait ran out
    double seconds = 0;     // from the call to the close
  };
  // Reads until the broker closes the connection or `wait` passes.
  Ending ReadUntilClosed(std::chrono::seconds wait) {
    Ending e;
    auto t0 = Clock::now();
    auto end = t0 + wait;
    char buf[16384];
    timeval tv{0, 50000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (Clock::now() < end) {
      std::unique_lock<std::mutex> lock(io_mu_);
      long n = ssl_ ? SSL_read(ssl_, buf, sizeof(buf)) : recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) {
        e.received.append(buf, static_cast<size_t>(n));
        continue;
      }
      bool timed_out = ssl_ ? (SSL_get_error(ssl_, static_cast<int>(n)) == SSL_ERROR_WANT_READ ||
                               (SSL_get_error(ssl_, static_cast<int>(n)) == SSL_ERROR_SYSCALL &&
                                (errno == EAGAIN || errno == EWOULDBLOCK)))
                            : (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
      if (timed_out) {
        lock.unlock();
        std::this_thread::yield();
        continue;
      }
      e.closed = true;
      break;
    }
    ERR_clear_error();
    e.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return e;
  }

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool connected_ = false;
  std::string alpn_;
  std::mutex io_mu_;
};

// Laravel's side, dispatching to the host every 20 ms for as long as it lives.
class LegitClient {
 public:
  LegitClient(std::string socket, std::string host) : socket_(std::move(socket)), host_(std::move(host)) {
    thread_ = std::thread([this] {
      for (int i = 0; !stop_; ++i) {
        auto t0 = Clock::now();
        HttpAnswer a = UnixHttp(socket_, "POST", "/v1/coold/dispatch",
                                absl::StrCat(R"({"host_id":")", host_, R"(","request_id":"legit-)", i,
                                             R"(","command":{"type":"images.list"}})"));
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        {
          std::lock_guard<std::mutex> lock(mu_);
          latencies_ms_.push_back(ms);
          if (a.status != 200) failures_.push_back(absl::StrCat(a.status, " ", a.body));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  ~LegitClient() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  size_t count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return latencies_ms_.size();
  }
  double P99() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<double> sorted = latencies_ms_;
    std::sort(sorted.begin(), sorted.end());
    return sorted.empty() ? 0 : sorted[std::min(sorted.size() - 1, sorted.size() * 99 / 100)];
  }
  std::vector<std::string> failures() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }

 private:
  const std::string socket_;
  const std::string host_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<double> latencies_ms_;
  std::vector<std::string> failures_;
  std::thread thread_;
};

struct Mode {
  bool tls;
};

class H2AttackTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    // OpenSSL writes with write(2): a write after the broker closed must fail, not kill
    // the test.
    signal(SIGPIPE, SIG_IGN);
    socket_ = keys_.Path("broker.sock");
    std::vector<std::string> env = {"BROKER_UNIX_SOCKET=" + socket_, "BROKER_GRPC_BIND=127.0.0.1:0",
                                    "BROKER_JWT_KEYS=" + keys_.KeySpec()};
    if (GetParam().tls) {
      env.push_back("BROKER_TLS_CERT=" + keys_.Path("tls.crt"));
      env.push_back("BROKER_TLS_KEY=" + keys_.Path("tls.key"));
    } else {
      env.push_back("BROKER_INSECURE_PLAINTEXT=1");
    }
    broker_ = std::make_unique<BrokerUnderTest>(env);
    ASSERT_TRUE(broker_->listening()) << broker_->log();
    FakeHost::Options o;
    o.host_id = "host-ok";
    o.token = SignJwt("ES256", "es", keys_.Read("es.key"), Claims("host-ok", AllCaps()));
    o.target = absl::StrCat("127.0.0.1:", broker_->port());
    o.root_pem = root_pem();
    host_ = std::make_unique<FakeHost>(o, FakeHost::Echo());
    ASSERT_TRUE(host_->WaitAdmitted()) << broker_->log();
    ASSERT_TRUE(WaitForHosts(socket_, 1)) << broker_->log();
    // The host's address as the broker logs it: the peer's, not gRPC's "fd:N".
    ASSERT_TRUE(broker_->WaitForLog("host host-ok connected from ipv4:127.0.0.1:")) << broker_->log();
    client_ = std::make_unique<LegitClient>(socket_, "host-ok");
    // Warm: the client's first answers are in before the attack starts.
    for (int i = 0; i < 100 && client_->count() < 5; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    rss_before_ = RssKiB(broker_->pid());
  }

  std::string root_pem() const { return GetParam().tls ? keys_.Read("tls.crt") : ""; }

  std::unique_ptr<RawH2Client> Attacker() {
    auto attacker = std::make_unique<RawH2Client>(broker_->port(), root_pem());
    EXPECT_TRUE(attacker->connected());
    if (GetParam().tls) {
      EXPECT_EQ(attacker->alpn(), "h2");
    }
    return attacker;
  }

  // The preface, SETTINGS and a call's HEADERS with a token the broker refuses: the
  // attacker holds no credential.
  static std::string Opening(uint32_t stream = 1) {
    return h2::Preface() + h2::Settings() +
           h2::Frame(h2::kHeaders, h2::kEndHeaders, stream, h2::AgentStreamHeaders("Bearer not-a-token"));
  }
  // ... and a whole Hello message on the stream.
  static std::string OpeningWithHello() {
    v1::ClientMsg message;
    message.mutable_hello()->set_host_id("mallory");
    const std::string hello = message.SerializeAsString();
    return Opening() + h2::Frame(h2::kData, 0, 1, h2::GrpcMessage(hello));
  }

  double Refusals(const std::string& reason) {
    HttpAnswer answer = UnixHttp(socket_, "GET", "/metrics");
    auto parsed = metrics::ParseExposition(answer.body);
    if (!parsed.ok()) return -1;
    return parsed->Sum("broker_refusals_total", {{"reason", reason}});
  }

  // What every attack must leave true; the broker's RSS may grow by less than
  // `max_growth_kib` (below the attack's size; an attacker's connection and TLS state
  // are part of it).
  void ExpectUnharmed(long max_growth_kib) {
    long rss_after = RssKiB(broker_->pid());
    std::printf("broker RSS %ld KiB before the attack, %ld KiB after (bound: growth < %ld KiB)\n", rss_before_,
                rss_after, max_growth_kib);
    EXPECT_LT(rss_after - rss_before_, max_growth_kib) << "the broker held the attack's bytes";
    // Dispatches go on a little after a quick refusal, so there are enough to judge by.
    for (int i = 0; i < 100 && client_->count() < 20; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    client_->Stop();
    size_t before_stop = client_->count();
    EXPECT_GE(before_stop, 20u) << "the legitimate client made too few dispatches to mean anything";
    EXPECT_THAT(client_->failures(), ::testing::IsEmpty());
    std::printf("legitimate dispatches during the attack: %zu, p99 %.1f ms\n", before_stop, client_->P99());
    EXPECT_LT(client_->P99(), 500.0);
    EXPECT_TRUE(host_->open());
    EXPECT_EQ(UnixHttp(socket_, "GET", "/v1/health").body, R"({"ok":true,"hosts":1,"pending":0})");
    // Every dispatch went to the real host, and no stream of the attacker's was admitted.
    EXPECT_EQ(host_->received().size(), before_stop);
    auto parsed = metrics::ParseExposition(UnixHttp(socket_, "GET", "/metrics").body);
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed->Sum("broker_host_streams_opened_total"), 1);
  }

  TestKeys keys_;
  std::string socket_;
  std::unique_ptr<BrokerUnderTest> broker_;
  std::unique_ptr<FakeHost> host_;
  std::unique_ptr<LegitClient> client_;
  long rss_before_ = 0;
};

TEST_P(H2AttackTest, A4GiBLengthPrefixIsRefusedFromItsPrefix) {
  auto attacker = Attacker();
  attacker->Send(Opening() + h2::Frame(h2::kData, 0, 1, h2::GrpcPrefix(0xffffffffu) + std::string(1024, 'x')));
  RawH2Client::Ending e = attacker->ReadUntilClosed(std::chrono::seconds(10));
  EXPECT_TRUE(e.closed);
  EXPECT_LT(e.seconds, 5);
  EXPECT_EQ(h2::GoawayCode(e.received), kGoawayEnhanceYourCalm);
  EXPECT_EQ(Refusals("grpc_message_size"), 1);
  EXPECT_TRUE(broker_->WaitForLog("event=grpc_connection_refused reason=message_size peer=ipv4:127.0.0.1:"))
      << broker_->log();
  ExpectUnharmed(2048);
}

TEST_P(H2AttackTest, AFrameCutShortAfterTheHelloIsClosedAtTheFrameDeadline) {
  auto attacker = Attacker();
  std::string next = h2::Frame(h2::kData, 0, 1, h2::GrpcMessage("0123456789"));
  attacker->Send(OpeningWithHello() + next.substr(0, 12));
  RawH2Client::Ending e = attacker->ReadUntilClosed(std::chrono::seconds(20));
  EXPECT_TRUE(e.closed);
  // 10 s from the frame's first byte, plus the lingering read after the GOAWAY.
  EXPECT_GT(e.seconds, 8);
  EXPECT_LT(e.seconds, 14);
  EXPECT_EQ(h2::GoawayCode(e.received), kGoawayEnhanceYourCalm);
  EXPECT_EQ(Refusals("grpc_frame_deadline"), 1);
  ExpectUnharmed(2048);
}

// Connections that send nothing: one that never starts TLS (with TLS on), one that never
// sends the HTTP/2 preface. Each is closed 10 s after it connected (or finished TLS).
TEST_P(H2AttackTest, SilentPeersAreClosedAtTheirDeadline) {
  RawH2Client bare(broker_->port(), "");
  ASSERT_TRUE(bare.connected());
  auto after_tls = Attacker();
  RawH2Client::Ending bare_end;
  std::thread wait_bare([&] { bare_end = bare.ReadUntilClosed(std::chrono::seconds(20)); });
  RawH2Client::Ending e = after_tls->ReadUntilClosed(std::chrono::seconds(20));
  wait_bare.join();
  for (const RawH2Client::Ending* end : {&bare_end, &e}) {
    EXPECT_TRUE(end->closed);
    EXPECT_GT(end->seconds, 8);
    EXPECT_LT(end->seconds, 14);
  }
  EXPECT_EQ(h2::GoawayCode(e.received), kGoawayEnhanceYourCalm);
  if (GetParam().tls) {
    EXPECT_EQ(Refusals("grpc_tls_handshake"), 1);
    EXPECT_EQ(Refusals("grpc_frame_deadline"), 1);
  } else {
    EXPECT_EQ(h2::GoawayCode(bare_end.received), kGoawayEnhanceYourCalm);
    EXPECT_EQ(Refusals("grpc_frame_deadline"), 2);
  }
  ExpectUnharmed(2048);
}

TEST_P(H2AttackTest, AMessageBegunAndNotFinishedIsClosedAtTheMessageDeadline) {
  auto attacker = Attacker();
  // 1 KiB sent of a 64 KiB message, in whole frames: no frame is left open.
  attacker->Send(OpeningWithHello() + h2::Frame(h2::kData, 0, 1, h2::GrpcPrefix(64 << 10) + std::string(1024, 'm')));
  RawH2Client::Ending e = attacker->ReadUntilClosed(std::chrono::seconds(40));
  EXPECT_TRUE(e.closed);
  EXPECT_GT(e.seconds, 28);
  EXPECT_LT(e.seconds, 34);
  EXPECT_EQ(h2::GoawayCode(e.received), kGoawayEnhanceYourCalm);
  EXPECT_EQ(Refusals("grpc_message_deadline"), 1);
  ExpectUnharmed(2048);
}

TEST_P(H2AttackTest, A5MiBMessageIsRefusedBeforeItIsBuffered) {
  auto attacker = Attacker();
  std::string attack = Opening() + h2::Frame(h2::kData, 0, 1, h2::GrpcPrefix(5 << 20) + std::string(16000, 'b'));
  for (int i = 0; i < (5 << 20) / 16384; ++i) attack += h2::Frame(h2::kData, 0, 1, std::string(16384, 'b'));
  // The broker stops forwarding at the prefix; the rest is read and dropped or refused.
  std::thread send([&] { attacker->Send(attack); });
  RawH2Client::Ending e = attacker->ReadUntilClosed(std::chrono::seconds(10));
  send.join();
  EXPECT_TRUE(e.closed);
  EXPECT_LT(e.seconds, 5);
  EXPECT_EQ(h2::GoawayCode(e.received), kGoawayEnhanceYourCalm);
  EXPECT_EQ(Refusals("grpc_message_size"), 1);
  ExpectUnharmed(2560);
}

TEST_P(H2AttackTest, ACompressedMessageIsRefused) {
  auto attacker = Attacker();
  attacker->Send(Opening() + h2::Frame(h2::kData, 0, 1, h2::GrpcMessage(std::string("\x1f\x8b\x08\0", 4), 1)));
  RawH2Client::Ending e = attacker->ReadUntilClosed(std::chrono::seconds(10));
  EXPECT_TRUE(e.closed);
  EXPECT_LT(e.seconds, 5);
  EXPECT_EQ(h2::GoawayCode(e.received), kGoawayProtocolError);
  EXPECT_EQ(Refusals("grpc_compressed_message"), 1);
  ExpectUnharmed(2048);
}

TEST_P(H2AttackTest, A1MiBHeaderBlockInContinuationsIsRefused) {
  // One header field whose value is 1 MiB, split into 16 KiB CONTINUATIONs; on four
  // connections at once, 4 MiB in all.
  std::string block = h2::HeaderBlock({{"x-filler", std::string(1 << 20, 'h')}});
  std::string attack = h2::Preface() + h2::Settings() + h2::Frame(h2::kHeaders, 0, 1, block.substr(0, 16384));
  for (size_t at = 16384; at < block.size(); at += 16384) {
    bool last = at + 16384 >= block.size();
    attack += h2::Frame(h2::kContinuation, last ? h2::kEndHeaders : 0, 1, block.substr(at, 16384));
  }
  constexpr int kConnections = 4;
  std::vector<RawH2Client::Ending> endings(kConnections);
  std::vector<std::thread> attackers;
  for (int i = 0; i < kConnections; ++i) {
    attackers.emplace_back([&, i] {
      auto attacker = std::make_unique<RawH2Client>(broker_->port(), root_pem());
      std::thread send([&] { attacker->Send(attack); });
      endings[i] = attacker->ReadUntilClosed(std::chrono::seconds(10));
      send.join();
    });
  }
  for (std::thread& t : attackers) t.join();
  for (const RawH2Client::Ending& e : endings) {
    EXPECT_TRUE(e.closed);
    EXPECT_LT(e.seconds, 5);
    EXPECT_EQ(h2::GoawayCode(e.received), kGoawayEnhanceYourCalm);
  }
  EXPECT_EQ(Refusals("grpc_header_block"), kConnections);
  ExpectUnharmed(2048);
}

TEST_P(H2AttackTest, AHeadersAndResetFloodIsRefused) {
  std::string attack = h2::Preface() + h2::Settings();
  const std::string headers = h2::AgentStreamHeaders("Bearer not-a-token");
  for (uint32_t i = 0; i < 20000; ++i) {
    attack += h2::Frame(h2::kHeaders, h2::kEndHeaders, 2 * i + 1, headers) + h2::RstStream(2 * i + 1);
  }
  // Sustained: connection after connection for 3 s, each flooding until refused.
  int rounds = 0;
  for (auto end = Clock::now() + std::chrono::seconds(3); Clock::now() < end; ++rounds) {
    auto attacker = Attacker();
    std::thread send([&] { attacker->Send(attack); });
    RawH2Client::Ending e = attacker->ReadUntilClosed(std::chrono::seconds(10));
    send.join();
    EXPECT_TRUE(e.closed);
    EXPECT_LT(e.seconds, 5);
    EXPECT_EQ(h2::GoawayCode(e.received), kGoawayEnhanceYourCalm);
  }
  std::printf("%d flooding connections refused\n", rounds);
  EXPECT_EQ(Refusals("grpc_resets"), rounds);
  ExpectUnharmed(2048);
}

// An honest call through the raw client: the guard lets a whole exchange through, and
// gRPC answers it (here: UNAUTHENTICATED, in trailers, with no GOAWAY).
TEST_P(H2AttackTest, AnHonestCallPassesTheGuard) {
  auto attacker = Attacker();
  attacker->Send(OpeningWithHello() + h2::Frame(h2::kData, h2::kEndStream, 1, ""));
  RawH2Client::Ending e = attacker->ReadUntilClosed(std::chrono::seconds(2));
  EXPECT_FALSE(e.closed);
  EXPECT_EQ(h2::GoawayCode(e.received), -1);
  bool trailers = false;
  for (const h2::ParsedFrame& f : h2::ParseFrames(e.received)) {
    if (f.type == h2::kHeaders && f.stream == 1 && (f.flags & h2::kEndStream)) trailers = true;
  }
  EXPECT_TRUE(trailers) << "no trailers on stream 1";
  for (const char* reason : {"grpc_frame_size", "grpc_protocol", "grpc_message_size", "grpc_resets"}) {
    EXPECT_EQ(Refusals(reason), 0) << reason;
  }
  ExpectUnharmed(2048);
}

INSTANTIATE_TEST_SUITE_P(TlsAndPlaintext, H2AttackTest, ::testing::Values(Mode{true}, Mode{false}),
                         [](const ::testing::TestParamInfo<Mode>& info) {
                           return info.param.tls ? "Tls" : "Plaintext";
                         });

}  // namespace
}  // namespace coolify::testing

namespace coolify::testing {
namespace {

// BROKER_GRPC_BIND's wildcard listens on IPv6 and IPv4 both, as gRPC's own listener did,
// and an IPv4 host is named by its IPv4 address.
// A TCP connection to the broker's gRPC port from `source` (a loopback address), or -1.
int ConnectFrom(const char* source, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source, &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

// Whether the broker closed `fd` within `wait` (it sends nothing to a peer that has not
// begun TLS).
bool ClosedWithin(int fd, std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(wait.count())) != 1) return false;
  char byte;
  return recv(fd, &byte, 1, MSG_DONTWAIT) <= 0;
}

// One source cannot hold the listener's every slot before it has proven anything: past
// BROKER_MAX_CONNECTIONS_PER_ADDRESS its connections are closed at once and counted,
// while hosts from other addresses connect, and its slots come back as its connections end.
TEST(GuardedListenerCapTest, OneAddressCannotHoldMoreThanItsShare) {
  TestKeys keys;
  const std::string unix_socket = keys.Path("broker.sock");
  BrokerUnderTest broker({"BROKER_UNIX_SOCKET=" + unix_socket, "BROKER_GRPC_BIND=127.0.0.1:0",
                          "BROKER_TLS_CERT=" + keys.Path("tls.crt"), "BROKER_TLS_KEY=" + keys.Path("tls.key"),
                          "BROKER_JWT_KEYS=" + keys.KeySpec(), "BROKER_MAX_CONNECTIONS_PER_ADDRESS=3"});
  ASSERT_TRUE(broker.listening()) << broker.log();

  std::vector<int> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(ConnectFrom("127.0.0.2", broker.port()));
    ASSERT_GE(held.back(), 0) << strerror(errno);
  }
  const int over = ConnectFrom("127.0.0.2", broker.port());
  ASSERT_GE(over, 0) << strerror(errno);
  EXPECT_TRUE(ClosedWithin(over, std::chrono::milliseconds(5000))) << "the fourth connection was held";
  close(over);
  for (int fd : held) EXPECT_FALSE(ClosedWithin(fd, std::chrono::milliseconds(200))) << "a connection within the cap was closed";
  EXPECT_TRUE(broker.WaitForLog("reason=address_cap peer=ipv4:127.0.0.2:")) << broker.log();
  auto parsed = metrics::ParseExposition(UnixHttp(unix_socket, "GET", "/metrics").body);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->Sum("broker_refusals_total", {{"reason", "grpc_address_cap"}}), 1);

  // A host from another address is admitted while 127.0.0.2 holds its three.
  FakeHost::Options o;
  o.host_id = "host-ok";
  o.token = SignJwt("ES256", "es", keys.Read("es.key"), Claims("host-ok", AllCaps()));
  o.target = absl::StrCat("127.0.0.1:", broker.port());
  o.root_pem = keys.Read("tls.crt");
  FakeHost host(o, FakeHost::Echo());
  EXPECT_TRUE(host.WaitAdmitted()) << broker.log();

  // Its connections ended, 127.0.0.2 connects again.
  for (int fd : held) close(fd);
  bool admitted_again = false;
  for (int attempt = 0; attempt < 50 && !admitted_again; ++attempt) {
    const int again = ConnectFrom("127.0.0.2", broker.port());
    ASSERT_GE(again, 0) << strerror(errno);
    admitted_again = !ClosedWithin(again, std::chrono::milliseconds(200));
    close(again);
  }
  EXPECT_TRUE(admitted_again) << broker.log();
}

TEST(GuardedListenerBindTest, AWildcardBindServesIPv4AndIPv6) {
  TestKeys keys;
  const std::string unix_socket = keys.Path("broker.sock");
  BrokerUnderTest broker({"BROKER_UNIX_SOCKET=" + unix_socket, "BROKER_GRPC_BIND=0.0.0.0:0",
                          "BROKER_TLS_CERT=" + keys.Path("tls.crt"), "BROKER_TLS_KEY=" + keys.Path("tls.key"),
                          "BROKER_JWT_KEYS=" + keys.KeySpec()});
  ASSERT_TRUE(broker.listening()) << broker.log();
  FakeHost::Options o;
  o.host_id = "host-v4";
  o.token = SignJwt("ES256", "es", keys.Read("es.key"), Claims("host-v4", AllCaps()));
  o.target = absl::StrCat("127.0.0.1:", broker.port());
  o.root_pem = keys.Read("tls.crt");
  FakeHost host(o, FakeHost::Echo());
  ASSERT_TRUE(host.WaitAdmitted()) << broker.log();
  EXPECT_TRUE(broker.WaitForLog("host host-v4 connected from ipv4:127.0.0.1:")) << broker.log();

  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_port = htons(static_cast<uint16_t>(broker.port()));
  addr.sin6_addr = in6addr_loopback;
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  close(fd);
}

}  // namespace
}  // namespace coolify::testing
