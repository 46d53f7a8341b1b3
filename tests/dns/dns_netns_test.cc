// The DNS server against real clients: in a private network namespace with real bridges
// (ip link add type bridge), queried with dig, forwarding to a real Knot DNS upstream.
// Needs root, ip, dig and knotd; a missing one fails the test.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "gtest/gtest.h"
#include "privsep/unique_fd.h"
#include "services/dns/message.h"
#include "services/dns/name_table.h"
#include "services/dns/query_testing.h"
#include "services/dns/server.h"
#include "services/endpoints/endpoint.h"
#include "tests/shell_testing.h"

namespace coolify::dns {
namespace {

using coolify::testing::Shell;
using endpoints::EndpointRow;
using namespace std::chrono_literals;

constexpr char kGatewayA[] = "10.210.0.1";
constexpr char kGatewayB[] = "10.211.0.1";
constexpr char kKnot[] = "127.0.0.2";  // the upstream

std::string g_dir;
pid_t g_knot = -1;

EndpointRow Row(const std::string& ns, const std::string& name, const std::string& ip, int n = 0) {
  EndpointRow r;
  r.service_id = "svc-" + name;
  r.container_id = "0123456789ab" + std::to_string(n);
  r.host_id = "host-a";
  r.namespace_name = ns;
  r.container_name = name;
  r.ip = ip;
  r.state = "running";
  r.health = "healthy";
  return r;
}

void AddBridge(const std::string& name, const std::string& gateway) {
  auto r = Shell("ip link add " + name + " type bridge && ip addr add " + gateway + "/24 dev " + name +
                 " && ip link set " + name + " up");
  ASSERT_EQ(r.status, 0) << r.out;
}

// The answer section and status line of a dig run, as text.
struct Dig {
  std::string out;
  bool Has(const std::string& s) const { return out.find(s) != std::string::npos; }
  bool NoAnswer() const { return !Has("status:"); }
};
Dig RunDig(const std::string& server, const std::string& args) {
  auto r = Shell("dig @" + server + " +tries=1 +time=2 " + args);
  return {r.out};
}

class DnsNetnsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = Shell("ip link set lo up && ip addr add 127.0.0.2/8 dev lo 2>/dev/null; true");
    ASSERT_EQ(r.status, 0) << r.out;
    AddBridge("br-default", kGatewayA);
    AddBridge("br-alpha", kGatewayB);
    StartKnot();
  }
  static void TearDownTestSuite() {
    if (g_knot > 0) {
      kill(g_knot, SIGTERM);
      waitpid(g_knot, nullptr, 0);
    }
  }

  static void StartKnot() {
    char tmpl[] = "/tmp/dns_netns_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    g_dir = tmpl;
    std::ofstream(g_dir + "/knot.conf") << "server:\n  listen: " << kKnot << "@53\n  rundir: " << g_dir
                                        << "\ndatabase:\n  storage: " << g_dir << "\ntemplate:\n  - id: default\n"
                                        << "    storage: " << g_dir << "\nzone:\n  - domain: example.test\n";
    std::ofstream zone(g_dir + "/example.test.zone");
    zone << "$ORIGIN example.test.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\nns A 127.0.0.2\n"
         << "www A 192.0.2.80\n";
    for (int i = 1; i <= 80; ++i) zone << "big A 192.0.2." << i << "\n";
    zone.close();
    Shell("chmod -R a+rwx " + g_dir);
    g_knot = fork();
    if (g_knot == 0) {
      execlp("knotd", "knotd", "-c", (g_dir + "/knot.conf").c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (RunDig(kKnot, "www.example.test +short").Has("192.0.2.80")) return;
      int status = 0;
      ASSERT_EQ(waitpid(g_knot, &status, WNOHANG), 0) << "knotd exited (is the knot package installed?)";
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "knotd did not answer";
  }

  void SetUp() override {
    table_.Replace({
        Row("default", "web", "10.210.0.5", 1),
        Row("default", "api", "10.210.0.6", 2),
        Row("alpha", "db", "10.211.0.5", 3),
    });
    work_ = std::make_unique<Guard>(io_.get_executor());
    thread_ = std::thread([this] {
      io_tid_ = gettid();
      io_.run();
    });
  }
  void TearDown() override {
    boost::asio::post(io_, [this] { servers_.clear(); });
    work_.reset();
    thread_.join();
  }

  // A server for `ns` on `gateway`:53, sockets bound by the test as the monitor would.
  DnsServer* Serve(const std::string& ns, const std::string& gateway, const std::string& upstream = kKnot,
                   void (*tune)(ServerOptions&) = nullptr) {
    ServerOptions o;
    o.namespace_name = ns;
    o.gateway_ip = gateway;
    o.zone = *ParseName("coolify.internal");
    o.upstream_ip = upstream;
    o.upstream_timeout = 700ms;
    o.probe_interval = 100ms;
    o.rebind_backoff_min = 20ms;
    o.rebind_backoff_max = 200ms;
    if (tune) tune(o);
    auto server = DnsServer::Create(io_, o, &table_, [gateway] { return BindListenSockets(gateway, 53); });
    EXPECT_TRUE(server.ok()) << server.status();
    DnsServer* raw = server->get();
    std::promise<void> started;
    boost::asio::post(io_, [&] {
      raw->Start();
      servers_.push_back(std::move(*server));
      started.set_value();
    });
    started.get_future().wait();
    return raw;
  }

  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  NameTable table_;
  boost::asio::io_context io_;
  std::unique_ptr<Guard> work_;
  std::thread thread_;
  std::vector<std::unique_ptr<DnsServer>> servers_;
  std::atomic<pid_t> io_tid_{0};

  // CPU time (utime + stime, clock ticks) of the thread that runs the servers.
  long IoThreadTicks() {
    std::ifstream stat("/proc/self/task/" + std::to_string(io_tid_.load()) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string f;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {
      if (i == 14) utime = std::stol(f);
      if (i == 15) stime = std::stol(f);
    }
    return utime + stime;
  }
};

TEST_F(DnsNetnsTest, AnswersItsNamespaceOverUdpAndTcp) {
  Serve("default", kGatewayA);
  Dig d = RunDig(kGatewayA, "web.default.coolify.internal A");
  EXPECT_TRUE(d.Has("status: NOERROR")) << d.out;
  EXPECT_TRUE(d.Has("flags: qr aa rd ra")) << d.out;
  EXPECT_TRUE(d.Has("web.default.coolify.internal. 5\tIN\tA\t10.210.0.5")) << d.out;
  d = RunDig(kGatewayA, "+tcp WEB.Default.Coolify.Internal A");
  EXPECT_TRUE(d.Has("status: NOERROR")) << d.out;
  EXPECT_TRUE(d.Has("10.210.0.5")) << d.out;
  EXPECT_TRUE(d.Has("WEB.Default.Coolify.Internal.")) << d.out;  // question echoed as asked
}

TEST_F(DnsNetnsTest, SeedRules) {
  Serve("default", kGatewayA);
  EXPECT_TRUE(RunDig(kGatewayA, "web.coolify.internal A").Has("status: NXDOMAIN"));  // bare: on purpose
  Dig aaaa = RunDig(kGatewayA, "web.default.coolify.internal AAAA");
  EXPECT_TRUE(aaaa.Has("status: NOERROR") && aaaa.Has("ANSWER: 0")) << aaaa.out;
  EXPECT_TRUE(RunDig(kGatewayA, "nobody.default.coolify.internal").Has("status: NXDOMAIN"));
  // A row that stops serving disappears; one that starts appears, without a restart.
  auto sick = Row("default", "web", "10.210.0.5", 1);
  sick.health = "unhealthy";
  table_.Replace({sick, Row("default", "fresh", "10.210.0.9", 9)});
  EXPECT_TRUE(RunDig(kGatewayA, "web.default.coolify.internal").Has("status: NXDOMAIN"));
  EXPECT_TRUE(RunDig(kGatewayA, "fresh.default.coolify.internal +short").Has("10.210.0.9"));
}

TEST_F(DnsNetnsTest, NamespacesAreIsolated) {
  Serve("default", kGatewayA);
  Serve("alpha", kGatewayB);
  EXPECT_TRUE(RunDig(kGatewayB, "db.alpha.coolify.internal +short").Has("10.211.0.5"));
  EXPECT_TRUE(RunDig(kGatewayB, "web.default.coolify.internal").Has("status: NXDOMAIN"));
  EXPECT_TRUE(RunDig(kGatewayA, "db.alpha.coolify.internal").Has("status: NXDOMAIN"));
}

TEST_F(DnsNetnsTest, BindsTheGatewayOnly) {
  Serve("default", kGatewayA);
  auto ss = Shell("ss -Hlnu 'sport = :53'; ss -Hlnt 'sport = :53'");
  EXPECT_NE(ss.out.find("10.210.0.1:53"), std::string::npos) << ss.out;
  EXPECT_EQ(ss.out.find("0.0.0.0:53"), std::string::npos) << ss.out;
  EXPECT_EQ(ss.out.find("*:53"), std::string::npos) << ss.out;
  // Another address of the host gets nothing.
  EXPECT_TRUE(RunDig("127.0.0.1", "web.default.coolify.internal").NoAnswer());
  // And 0.0.0.0 is refused outright.
  EXPECT_FALSE(BindListenSockets("0.0.0.0", 53).ok());
  ServerOptions o;
  o.namespace_name = "default";
  o.gateway_ip = "0.0.0.0";
  o.zone = *ParseName("coolify.internal");
  o.upstream_ip = kKnot;
  EXPECT_EQ(DnsServer::Create(io_, o, &table_, [] { return BindListenSockets("0.0.0.0", 53); }).status().message(),
            "DNS never binds 0.0.0.0; give the namespace's bridge gateway");
}

// Descriptors that are not what the server was promised are refused, never served.
TEST_F(DnsNetnsTest, RefusesSocketsNotOnTheGateway) {
  ServerOptions o;
  o.namespace_name = "default";
  o.gateway_ip = kGatewayA;
  o.zone = *ParseName("coolify.internal");
  o.upstream_ip = kKnot;
  o.rebind_backoff_min = 20ms;
  o.rebind_backoff_max = 50ms;
  auto server = DnsServer::Create(io_, o, &table_, [] { return BindListenSockets("127.0.0.1", 5353); });
  ASSERT_TRUE(server.ok());
  DnsServer* raw = server->get();
  std::promise<void> started;
  boost::asio::post(io_, [&] {
    raw->Start();
    servers_.push_back(std::move(*server));
    started.set_value();
  });
  started.get_future().wait();
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(raw->serving());
  EXPECT_GE(raw->stats().bind_failures.load(), 2u);  // and it keeps trying, with backoff
  EXPECT_EQ(raw->stats().binds.load(), 0u);
}

TEST_F(DnsNetnsTest, EdnsAndTruncation) {
  std::vector<EndpointRow> rows;
  for (int i = 1; i <= 60; ++i) rows.push_back(Row("default", "big", "10.210.1." + std::to_string(i), i));
  table_.Replace(rows);
  Serve("default", kGatewayA);
  Dig plain = RunDig(kGatewayA, "+noedns +ignore big.default.coolify.internal");
  EXPECT_TRUE(plain.Has("flags: qr aa tc rd ra")) << plain.out;
  Dig edns = RunDig(kGatewayA, "+bufsize=1232 big.default.coolify.internal");
  EXPECT_TRUE(edns.Has("ANSWER: 60")) << edns.out;
  EXPECT_TRUE(edns.Has("EDNS: version: 0")) << edns.out;
  EXPECT_TRUE(edns.Has("udp: 1232")) << edns.out;
  Dig retry = RunDig(kGatewayA, "+noedns big.default.coolify.internal");  // dig retries over TCP on TC
  EXPECT_TRUE(retry.Has("ANSWER: 60")) << retry.out;
  Dig badvers = RunDig(kGatewayA, "+edns=1 +noednsneg web.default.coolify.internal");
  EXPECT_TRUE(badvers.Has("status: BADVERS")) << badvers.out;
}

TEST_F(DnsNetnsTest, ForwardsOutOfZoneToTheUpstream) {
  DnsServer* s = Serve("default", kGatewayA);
  Dig d = RunDig(kGatewayA, "www.example.test A");
  EXPECT_TRUE(d.Has("status: NOERROR") && d.Has("192.0.2.80")) << d.out;
  EXPECT_TRUE(RunDig(kGatewayA, "nothing.example.test").Has("status: NXDOMAIN"));
  Dig tcp = RunDig(kGatewayA, "+tcp www.example.test A");
  EXPECT_TRUE(tcp.Has("192.0.2.80")) << tcp.out;
  // 80 records do not fit 512 bytes: TC over UDP, the whole set over TCP.
  Dig big = RunDig(kGatewayA, "+noedns +ignore big.example.test");
  EXPECT_TRUE(big.Has(" tc ")) << big.out;
  Dig big_tcp = RunDig(kGatewayA, "+tcp big.example.test");
  EXPECT_TRUE(big_tcp.Has("ANSWER: 80")) << big_tcp.out;
  EXPECT_GE(s->stats().upstream_answers.load(), 4u);
}

TEST_F(DnsNetnsTest, UpstreamDownIsServfail) {
  Serve("default", kGatewayA, "127.0.0.3");  // nothing listens: ICMP port unreachable
  Dig refused = RunDig(kGatewayA, "www.example.test");
  EXPECT_TRUE(refused.Has("status: SERVFAIL")) << refused.out;
  EXPECT_TRUE(RunDig(kGatewayA, "+tcp www.example.test").Has("status: SERVFAIL"));
  // An upstream that swallows queries: SERVFAIL after the timeout.
  privsep::UniqueFd sink(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(53);
  inet_pton(AF_INET, "127.0.0.4", &sin.sin_addr);
  ASSERT_EQ(bind(sink.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  DnsServer* s = Serve("alpha", kGatewayB, "127.0.0.4");
  auto start = std::chrono::steady_clock::now();
  Dig silent = RunDig(kGatewayB, "www.example.test");
  EXPECT_TRUE(silent.Has("status: SERVFAIL")) << silent.out;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(s->stats().upstream_timeouts.load(), 1u);
  // In-zone names never depend on the upstream.
  EXPECT_TRUE(RunDig(kGatewayB, "db.alpha.coolify.internal +short").Has("10.211.0.5"));
}

// Opens a TCP connection to the gateway and sends nothing.
privsep::UniqueFd IdleConnection(const std::string& server) {
  privsep::UniqueFd fd(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(53);
  inet_pton(AF_INET, server.c_str(), &sin.sin_addr);
  EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  return fd;
}

// An upstream that first answers with the wrong id, then for another question, then
// correctly: only the correct answer may reach the client. Each forwarded query comes
// from a source port of its own.
TEST_F(DnsNetnsTest, OnlyTheAnswerToTheQuestionAskedIsRelayed) {
  privsep::UniqueFd up(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(53);
  inet_pton(AF_INET, "127.0.0.5", &sin.sin_addr);
  ASSERT_EQ(bind(up.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  std::vector<uint16_t> ports;
  std::thread upstream([&] {
    for (int i = 0; i < 3; ++i) {
      uint8_t q[512];
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      ssize_t n = recvfrom(up.get(), q, sizeof(q), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 12) return;
      ports.push_back(ntohs(from.sin_port));
      const uint16_t id = static_cast<uint16_t>(q[0] << 8 | q[1]);
      auto answer = [&](uint16_t with_id, const char* name, const char* ip) {
        testing::QueryOptions o;
        o.id = with_id;
        std::vector<uint8_t> a = testing::MakeQuery(name, o);
        a[2] |= 0x80;  // QR
        a[7] = 1;      // one answer
        const uint8_t rr[] = {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
        a.insert(a.end(), rr, rr + sizeof(rr));
        in_addr addr{};
        inet_pton(AF_INET, ip, &addr);
        const uint8_t* b = reinterpret_cast<const uint8_t*>(&addr);
        a.insert(a.end(), b, b + 4);
        sendto(up.get(), a.data(), a.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      };
      answer(static_cast<uint16_t>(id + 1), "www.example.test", "6.6.6.6");  // wrong id
      answer(id, "evil.example.test", "6.6.6.7");                           // other question
      answer(id, "www.example.test", "192.0.2.1");
    }
  });
  DnsServer* s = Serve("default", kGatewayA, "127.0.0.5");
  for (int i = 0; i < 3; ++i) {
    Dig d = RunDig(kGatewayA, "www.example.test +short");
    EXPECT_EQ(d.out, "192.0.2.1\n") << d.out;
  }
  upstream.join();
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_TRUE(ports[0] != ports[1] || ports[1] != ports[2]) << ports[0] << " " << ports[1] << " " << ports[2];
  EXPECT_EQ(s->stats().upstream_answers.load(), 3u);
}

// Sends raw bytes over UDP; the answer, or empty after 500 ms.
std::vector<uint8_t> RawUdp(const std::string& server, const std::vector<uint8_t>& bytes) {
  privsep::UniqueFd fd(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(53);
  inet_pton(AF_INET, server.c_str(), &sin.sin_addr);
  sendto(fd.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  pollfd p{fd.get(), POLLIN, 0};
  if (poll(&p, 1, 500) != 1) return {};
  std::vector<uint8_t> out(4096);
  ssize_t n = recv(fd.get(), out.data(), out.size(), 0);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

TEST_F(DnsNetnsTest, MalformedPacketsNeverStopIt) {
  DnsServer* s = Serve("default", kGatewayA);
  EXPECT_TRUE(RawUdp(kGatewayA, {1, 2, 3}).empty());  // not a header: dropped
  auto q = testing::MakeQuery("web.default.coolify.internal");
  q[5] = 2;  // two questions
  auto a = testing::ReadAnswer(RawUdp(kGatewayA, q));
  EXPECT_EQ(a.rcode, 1);
  std::vector<uint8_t> loop = {0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1};
  EXPECT_EQ(testing::ReadAnswer(RawUdp(kGatewayA, loop)).rcode, 1);
  auto response = testing::MakeQuery("web.default.coolify.internal");
  response[2] |= 0x80;  // a response: never answered (no reflection loops)
  EXPECT_TRUE(RawUdp(kGatewayA, response).empty());
  std::vector<uint8_t> junk(3000, 0xff);
  RawUdp(kGatewayA, junk);
  // TCP: a zero length or an oversized one closes the connection.
  for (const char* length : {"\0\0", "\xff\xff"}) {
    privsep::UniqueFd tcp = IdleConnection(kGatewayA);
    ASSERT_EQ(write(tcp.get(), length, 2), 2);
    pollfd p{tcp.get(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 2000), 1);
    char c;
    EXPECT_EQ(read(tcp.get(), &c, 1), 0);
  }
  EXPECT_TRUE(RunDig(kGatewayA, "web.default.coolify.internal +short").Has("10.210.0.5"));
  EXPECT_GE(s->stats().formerr.load(), 2u);
  EXPECT_GE(s->stats().dropped.load(), 2u);
}

// Thousands of random datagrams and TCP streams: the server keeps answering, and once
// they stop it is idle again (nothing left spinning).
TEST_F(DnsNetnsTest, RandomGarbageNeitherStopsNorSpinsIt) {
  DnsServer* s = Serve("default", kGatewayA);
  std::mt19937 rng(7);
  privsep::UniqueFd udp(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(53);
  inet_pton(AF_INET, kGatewayA, &sin.sin_addr);
  auto base = testing::MakeQuery("web.default.coolify.internal");
  for (int i = 0; i < 5000; ++i) {
    std::vector<uint8_t> junk;
    if (i % 2) {  // a real query with a few bytes flipped: deep into the parser
      junk = base;
      for (int k = 0; k < 3; ++k) junk[rng() % junk.size()] = static_cast<uint8_t>(rng());
    } else {
      junk.resize(rng() % 600);
      for (auto& b : junk) b = static_cast<uint8_t>(rng());
    }
    sendto(udp.get(), junk.data(), junk.size(), 0, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  }
  for (int i = 0; i < 20; ++i) {
    privsep::UniqueFd tcp = IdleConnection(kGatewayA);
    std::vector<uint8_t> junk(rng() % 300);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    (void)!write(tcp.get(), junk.data(), junk.size());
  }
  EXPECT_TRUE(RunDig(kGatewayA, "web.default.coolify.internal +short").Has("10.210.0.5"));
  EXPECT_TRUE(RunDig(kGatewayA, "+tcp web.default.coolify.internal +short").Has("10.210.0.5"));
  EXPECT_GT(s->stats().queries_udp.load(), 1000u);
  std::this_thread::sleep_for(300ms);
  const long before = IoThreadTicks();
  std::this_thread::sleep_for(1000ms);
  EXPECT_LE(IoThreadTicks() - before, 5) << "the server thread is busy with no work";
}

TEST_F(DnsNetnsTest, TcpLimitsAndIdleTimeout) {
  DnsServer* s = Serve("default", kGatewayA, kKnot, [](ServerOptions& o) {
    o.max_tcp_connections = 3;
    o.tcp_idle_timeout = 1000ms;
  });
  std::vector<privsep::UniqueFd> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(IdleConnection(kGatewayA));
  std::this_thread::sleep_for(100ms);
  // The slots are taken: a fourth TCP client is turned away, UDP is unaffected.
  EXPECT_FALSE(RunDig(kGatewayA, "+tcp web.default.coolify.internal").Has("status: NOERROR"));
  EXPECT_TRUE(RunDig(kGatewayA, "web.default.coolify.internal +short").Has("10.210.0.5"));
  // The idle clients lose their slots; TCP serves again.
  std::this_thread::sleep_for(1300ms);
  EXPECT_TRUE(RunDig(kGatewayA, "+tcp web.default.coolify.internal").Has("10.210.0.5"));
  EXPECT_GE(s->stats().tcp_rejected.load(), 1u);
  EXPECT_EQ(s->stats().tcp_idle_closed.load(), 3u);
}

// A connection answers at most max_tcp_queries_per_connection queries, then is closed.
TEST_F(DnsNetnsTest, TcpQueriesPerConnectionAreCapped) {
  Serve("default", kGatewayA, kKnot, [](ServerOptions& o) { o.max_tcp_queries_per_connection = 2; });
  privsep::UniqueFd tcp = IdleConnection(kGatewayA);
  std::vector<uint8_t> stream;
  for (int i = 0; i < 3; ++i) {
    testing::QueryOptions o;
    o.id = static_cast<uint16_t>(100 + i);
    auto q = testing::MakeQuery("web.default.coolify.internal", o);
    stream.push_back(static_cast<uint8_t>(q.size() >> 8));
    stream.push_back(static_cast<uint8_t>(q.size()));
    stream.insert(stream.end(), q.begin(), q.end());
  }
  ASSERT_EQ(write(tcp.get(), stream.data(), stream.size()), static_cast<ssize_t>(stream.size()));
  std::vector<uint8_t> got;
  for (;;) {
    pollfd p{tcp.get(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 2000), 1) << "the connection was neither answered nor closed";
    uint8_t buf[4096];
    ssize_t n = read(tcp.get(), buf, sizeof(buf));
    if (n <= 0) break;  // closed after the second answer
    got.insert(got.end(), buf, buf + n);
  }
  size_t answers = 0;
  for (size_t off = 0; off + 2 <= got.size(); ++answers) {
    const size_t len = static_cast<size_t>(got[off] << 8 | got[off + 1]);
    auto a = testing::ReadAnswer(got.data() + off + 2, std::min(len, got.size() - off - 2));
    EXPECT_EQ(a.id, 100 + answers);
    EXPECT_EQ(a.a, std::vector<std::string>{"10.210.0.5"});
    off += 2 + len;
  }
  EXPECT_EQ(answers, 2u);
}

TEST_F(DnsNetnsTest, RebindsAfterTheBridgeComesBack) {
  // A bridge that does not exist yet: the server waits for it.
  DnsServer* s = Serve("default", "10.212.0.1");
  EXPECT_EQ(s->stats().binds.load(), 0u);
  AddBridge("br-late", "10.212.0.1");
  Dig first;
  for (int i = 0; i < 30 && !first.Has("10.210.0.5"); ++i) {
    std::this_thread::sleep_for(100ms);
    first = RunDig("10.212.0.1", "web.default.coolify.internal +short");
  }
  EXPECT_TRUE(first.Has("10.210.0.5")) << first.out;
  // netavark tears the bridge down and creates it again.
  ASSERT_EQ(Shell("ip link del br-late").status, 0);
  std::this_thread::sleep_for(400ms);
  EXPECT_TRUE(RunDig("10.212.0.1", "web.default.coolify.internal").NoAnswer());
  EXPECT_FALSE(s->serving());
  auto start = std::chrono::steady_clock::now();
  AddBridge("br-late", "10.212.0.1");
  Dig again;
  while (!again.Has("10.210.0.5") && std::chrono::steady_clock::now() - start < 5s) {
    again = RunDig("10.212.0.1", "web.default.coolify.internal +short +time=1");
  }
  EXPECT_TRUE(again.Has("10.210.0.5")) << again.out;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(s->stats().binds.load(), 2u);
  Shell("ip link del br-late");
}

}  // namespace
}  // namespace coolify::dns

int main(int argc, char** argv) {
  // Before any thread: a network namespace is per thread, and every thread started later
  // (the server's) and every command run (ip, dig) must share this private one.
  if (unshare(CLONE_NEWNET) != 0) {
    perror("unshare(CLONE_NEWNET) (needs root)");
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
