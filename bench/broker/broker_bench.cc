// The broker's costs, each beside a floor measured in the same run (README.md here).
//   1. no-op dispatch round trip, Laravel -> broker (Unix socket) -> host (gRPC, TLS) ->
//      back, p50/p99, against a bare HTTP-over-Unix-socket echo plus a bare gRPC bidi echo;
//   2. dispatches per second with --hosts connected hosts and --clients socket clients;
//   3. broker memory per idle connected host at each of --memory-hosts.
// The hosts are one process multiplexing many streams (a callback reactor per stream,
// its own TCP+TLS connection per host). Runs as root (the broker sandboxes itself).
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/asio/local/stream_protocol.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "grpcpp/grpcpp.h"
#include "proto/agent.grpc.pb.h"
#include "services/http/server.h"
#include "tests/broker/broker_testing.h"
#include "bench/machine_load.h"

namespace coolify::bench {
namespace {

using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

// One keep-alive HTTP/1.1 connection over a Unix socket.
class UnixClient {
 public:
  explicit UnixClient(const std::string& path) : socket_(io_) {
    socket_.connect(asio::local::stream_protocol::endpoint(path));
  }
  int Post(const std::string& target, const std::string& body, std::string* answer = nullptr) {
    bhttp::request<bhttp::string_body> request(bhttp::verb::post, target, 11);
    request.set(bhttp::field::host, "broker");
    request.set(bhttp::field::content_type, "application/json");
    request.keep_alive(true);
    request.body() = body;
    request.prepare_payload();
    bhttp::write(socket_, request);
    bhttp::response<bhttp::string_body> response;
    bhttp::read(socket_, buffer_, response);
    if (answer) *answer = response.body();
    return static_cast<int>(response.result_int());
  }

 private:
  asio::io_context io_;
  asio::local::stream_protocol::socket socket_;
  boost::beast::flat_buffer buffer_;
};

// One fake host's stream as a callback reactor: every command is answered at once with
// {"ok": true}; writes are queued because gRPC allows one in flight.
class EchoHost : public grpc::ClientBidiReactor<v1::ClientMsg, v1::ServerMsg> {
 public:
  EchoHost(v1::Agent::Stub* stub, const std::string& host_id, const std::string& token) {
    context_.AddMetadata("authorization", "Bearer " + token);
    stub->async()->Stream(&context_, this);
    v1::ClientMsg hello;
    hello.mutable_hello()->set_host_id(host_id);
    hello.mutable_hello()->add_capabilities(v1::CAPABILITY_PODMAN);
    Write(std::move(hello));
    StartRead(&in_);
    AddHold();
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      RemoveHold();
      return;
    }
    v1::ClientMsg reply;
    reply.mutable_response()->set_request_id(in_.request_id());
    reply.mutable_response()->mutable_result()->set_code(200);
    (*reply.mutable_response()->mutable_result()->mutable_data()->mutable_struct_value()->mutable_fields())["ok"]
        .set_bool_value(true);
    Write(std::move(reply));
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ok || queue_.empty()) {
      writing_ = false;
      return;
    }
    out_ = std::move(queue_.front());
    queue_.pop_front();
    StartWrite(&out_);
  }
  void OnDone(const grpc::Status&) override { done_ = true; }
  void Cancel() { context_.TryCancel(); }
  bool done() const { return done_; }

 private:
  void Write(v1::ClientMsg message) {
    std::lock_guard<std::mutex> lock(mu_);
    if (writing_) {
      queue_.push_back(std::move(message));
      return;
    }
    writing_ = true;
    out_ = std::move(message);
    StartWrite(&out_);
  }

  grpc::ClientContext context_;
  v1::ServerMsg in_;
  v1::ClientMsg out_;
  std::mutex mu_;
  std::deque<v1::ClientMsg> queue_;
  bool writing_ = false;
  std::atomic<bool> done_{false};
};

struct Fleet {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::Agent::Stub>> stubs;
  std::vector<std::unique_ptr<EchoHost>> hosts;
  ~Fleet() {
    for (auto& h : hosts) h->Cancel();
    for (auto& h : hosts) {
      while (!h->done()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
};

// `count` hosts "host-<first>".., each on its own connection.
void Connect(Fleet& fleet, int first, int count, int port, const testing::TestKeys& keys, bool plaintext = false) {
  std::string root = plaintext ? "" : keys.Read("tls.crt");
  std::string key = keys.Read("es.key");
  for (int i = first; i < first + count; ++i) {
    fleet.channels.push_back(testing::FakeHost::Dial(absl::StrCat("127.0.0.1:", port), root));
    fleet.stubs.push_back(v1::Agent::NewStub(fleet.channels.back()));
    std::string id = absl::StrCat("host-", i);
    fleet.hosts.push_back(std::make_unique<EchoHost>(fleet.stubs.back().get(), id,
                                                     testing::SignJwt("ES256", "es", key, testing::Claims(id, {"images.list"}))));
  }
}

struct Percentiles {
  double p50 = 0, p99 = 0;
};
Percentiles Of(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)]};
}

std::string Dispatch(int host, uint64_t id) {
  return absl::StrCat(R"({"host_id":"host-)", host, R"(","request_id":"b-)", id, R"(","command":{"type":"images.list"}})");
}

long RssKiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// Floor (a): the project's HTTP server over a Unix socket, answering at once.
struct HttpEcho {
  asio::io_context io;
  std::shared_ptr<http::Server> server;
  std::thread thread;
  std::string path;
  explicit HttpEcho(const std::string& socket_path) : path(socket_path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    unlink(path.c_str());
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 128) != 0) std::abort();
    server = *http::Server::Create(io, fd, nullptr, http::Limits{}, [](http::Request request, http::Responder respond) {
      http::Response response;
      response.body = std::move(request.body);
      respond(std::move(response));
    });
    server->Start();
    thread = std::thread([this] { io.run(); });
  }
  ~HttpEcho() {
    io.stop();
    thread.join();
  }
};

// Floor (b): a bare bidi echo on the same service, over loopback TLS.
class EchoService final : public v1::Agent::CallbackService {
  class Reactor : public grpc::ServerBidiReactor<v1::ClientMsg, v1::ServerMsg> {
   public:
    Reactor() { StartRead(&in_); }
    void OnReadDone(bool ok) override {
      if (!ok) return Finish(grpc::Status::OK);
      out_.set_request_id(in_.response().request_id());
      StartWrite(&out_);
    }
    void OnWriteDone(bool) override { StartRead(&in_); }
    void OnDone() override { delete this; }

   private:
    v1::ClientMsg in_;
    v1::ServerMsg out_;
  };
  grpc::ServerBidiReactor<v1::ClientMsg, v1::ServerMsg>* Stream(grpc::CallbackServerContext*) override {
    return new Reactor();
  }
};

int Run(int argc, char** argv) {
  int samples = 3000, hosts = 1000, clients = 64, seconds = 10;
  bool plaintext_memory = false;  // --plaintext-memory: part 3 also without TLS, to show TLS's share
  std::string baseline;  // --baseline=PATH: another broker binary, measured first in the same run
  std::vector<int> memory_hosts = {1000, 5000};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&arg](const char* name, int* out) {
      std::string prefix = absl::StrCat("--", name, "=");
      return arg.rfind(prefix, 0) == 0 && absl::SimpleAtoi(arg.substr(prefix.size()), out);
    };
    if (value("samples", &samples) || value("hosts", &hosts) || value("clients", &clients) ||
        value("seconds", &seconds)) {
      continue;
    }
    if (arg == "--plaintext-memory") {
      plaintext_memory = true;
      continue;
    }
    if (arg.rfind("--baseline=", 0) == 0) {
      baseline = arg.substr(11);
      continue;
    }
    if (arg.rfind("--memory-hosts=", 0) == 0) {
      memory_hosts.clear();
      for (absl::string_view n : absl::StrSplit(arg.substr(15), ',')) {
        int v;
        if (absl::SimpleAtoi(n, &v)) memory_hosts.push_back(v);
      }
      continue;
    }
    std::fprintf(stderr, "usage: broker_bench [--samples=N] [--hosts=N] [--clients=N] [--seconds=N] [--memory-hosts=A,B] [--plaintext-memory] [--baseline=BROKER]\n");
    return 2;
  }
  // Thousands of connections on both sides.
  rlimit files = {65536, 65536};
  setrlimit(RLIMIT_NOFILE, &files);
  std::string broker_binary = std::string(argv[0]) + ".runfiles/coold/services/broker/broker";
  testing::TestKeys keys;
  std::string socket_path = keys.Path("broker.sock");
  std::string current = broker_binary;
  auto start_broker = [&](bool plaintext = false) {
    // Every host of the bench dials from 127.0.0.1, where a fleet's come from as many
    // addresses: the per-address cap is lifted to the total's.
    std::vector<std::string> env = {"BROKER_UNIX_SOCKET=" + socket_path, "BROKER_GRPC_BIND=127.0.0.1:0",
                                    "BROKER_JWT_KEYS=" + keys.KeySpec(), "BROKER_MAX_CONNECTIONS_PER_ADDRESS=16384"};
    if (plaintext) {
      env.push_back("BROKER_INSECURE_PLAINTEXT=1");
    } else {
      env.push_back("BROKER_TLS_CERT=" + keys.Path("tls.crt"));
      env.push_back("BROKER_TLS_KEY=" + keys.Path("tls.key"));
    }
    return std::make_unique<testing::BrokerUnderTest>(env, current);
  };
  std::printf("broker_bench: %d cores, TLS on every gRPC connection\n", static_cast<int>(std::thread::hardware_concurrency()));
  // With --baseline, every part runs for the baseline binary first, then for this build's.
  std::vector<std::pair<std::string, std::string>> brokers = {{"this build", broker_binary}};
  if (!baseline.empty()) brokers.insert(brokers.begin(), {"baseline", baseline});
  for (const auto& [label, binary] : brokers) {
  current = binary;
  std::printf("\n=== %s: %s\n", label.c_str(), binary.c_str());

  // 1. Round trip against the floor.
  {
    auto broker = start_broker();
    if (!broker->listening()) {
      std::fprintf(stderr, "broker did not start:\n%s\n", broker->log().c_str());
      return 1;
    }
    // The host here is a synchronous client, like the gRPC floor's client below, so the
    // two differ by the broker and the Unix-socket lane only.
    testing::FakeHost::Options o;
    o.host_id = "host-0";
    o.token = testing::SignJwt("ES256", "es", keys.Read("es.key"), testing::Claims("host-0", {"images.list"}));
    o.target = absl::StrCat("127.0.0.1:", broker->port());
    o.root_pem = keys.Read("tls.crt");
    o.capabilities = {v1::CAPABILITY_PODMAN};
    testing::FakeHost host(o, [](const v1::ServerMsg&, v1::CommandResult* result) {
      result->set_code(200);
      (*result->mutable_data()->mutable_struct_value()->mutable_fields())["ok"].set_bool_value(true);
      return true;
    });
    testing::WaitForHosts(socket_path, 1);
    UnixClient client(socket_path);
    std::vector<double> through;
    std::string answer;
    for (int i = 0; i < samples + 200; ++i) {
      auto t0 = Clock::now();
      int status = client.Post("/v1/coold/dispatch", Dispatch(0, i), &answer);
      double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      if (status != 200) {
        std::fprintf(stderr, "dispatch answered %d: %s\n", status, answer.c_str());
        return 1;
      }
      if (i >= 200) through.push_back(us);  // the first ones warm up
    }
    HttpEcho echo(keys.Path("echo.sock"));
    UnixClient echo_client(echo.path);
    std::vector<double> http_floor;
    for (int i = 0; i < samples + 200; ++i) {
      auto t0 = Clock::now();
      echo_client.Post("/echo", Dispatch(0, i));
      if (i >= 200) http_floor.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    EchoService service;
    grpc::ServerBuilder builder;
    int port = 0;
    grpc::SslServerCredentialsOptions tls;
    tls.pem_key_cert_pairs.push_back({keys.Read("tls.key"), keys.Read("tls.crt")});
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(tls), &port);
    builder.RegisterService(&service);
    auto server = builder.BuildAndStart();
    auto stub = v1::Agent::NewStub(testing::FakeHost::Dial(absl::StrCat("127.0.0.1:", port), keys.Read("tls.crt")));
    grpc::ClientContext context;
    auto stream = stub->Stream(&context);
    std::vector<double> grpc_floor;
    v1::ClientMsg out;
    v1::ServerMsg in;
    for (int i = 0; i < samples + 200; ++i) {
      out.mutable_response()->set_request_id(absl::StrCat("b-", i));
      auto t0 = Clock::now();
      stream->Write(out);
      stream->Read(&in);
      if (i >= 200) grpc_floor.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    stream->WritesDone();
    stream->Finish();
    server->Shutdown();
    Percentiles b = Of(through), h = Of(http_floor), g = Of(grpc_floor);
    std::printf("\n1. no-op dispatch round trip (%d samples, one keep-alive client, one host)\n", samples);
    std::printf("   %-44s %9s %9s\n", "", "p50 us", "p99 us");
    std::printf("   %-44s %9.1f %9.1f\n", "broker: UDS -> broker -> gRPC host -> back", b.p50, b.p99);
    std::printf("   %-44s %9.1f %9.1f\n", "floor a: HTTP echo over a Unix socket", h.p50, h.p99);
    std::printf("   %-44s %9.1f %9.1f\n", "floor b: gRPC bidi echo over loopback TLS", g.p50, g.p99);
    std::printf("   %-44s %9.1f %9.1f\n", "floor a + b", h.p50 + g.p50, h.p99 + g.p99);
    std::printf("   ratio broker / floor: p50 %.2fx (target <= 2x), p99 %.2fx\n", b.p50 / (h.p50 + g.p50),
                b.p99 / (h.p99 + g.p99));
  }

  // 2. Throughput.
  {
    auto broker = start_broker();
    // Callback-API hosts multiplexed on gRPC's threads: a thread per host costs more.
    Fleet fleet;
    Connect(fleet, 0, hosts, broker->port(), keys);
    if (!testing::WaitForHosts(socket_path, hosts, std::chrono::seconds(120))) {
      std::fprintf(stderr, "not all %d hosts connected\n", hosts);
      return 1;
    }
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> done{0}, failed{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        UnixClient client(socket_path);
        std::mt19937 random(c);
        uint64_t id = static_cast<uint64_t>(c) << 40;
        while (!stop) {
          std::string answer;
          if (client.Post("/v1/coold/dispatch", Dispatch(static_cast<int>(random() % hosts), ++id), &answer) == 200) {
            ++done;
          } else if (failed++ == 0) {
            std::fprintf(stderr, "first failure: %s\n", answer.c_str());
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // warm-up
    uint64_t before = done;
    auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    double rate = static_cast<double>(done - before) / std::chrono::duration<double>(Clock::now() - t0).count();
    stop = true;
    for (auto& t : threads) t.join();
    std::printf("\n2. throughput: %d connected hosts, %d concurrent socket clients, %d s\n", hosts, clients, seconds);
    std::printf("   %.0f dispatches/s (target >= 20000), %llu failed\n", rate,
                static_cast<unsigned long long>(failed.load()));
  }

  // 3. Memory per idle host.
  std::printf("\n3. broker memory per idle connected host (VmRSS)\n");
  for (bool plaintext : {false, true}) {
  if (plaintext && !plaintext_memory) break;
  for (int n : memory_hosts) {
    auto broker = start_broker(plaintext);
    testing::WaitForHosts(socket_path, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    long base = RssKiB(broker->pid());
    Fleet fleet;
    Connect(fleet, 0, n, broker->port(), keys, plaintext);
    if (!testing::WaitForHosts(socket_path, n, std::chrono::seconds(300))) {
      std::fprintf(stderr, "not all %d hosts connected\n", n);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::seconds(6));  // idle: past the broker's periodic heap trim
    long rss = RssKiB(broker->pid());
    std::printf("   %5d hosts%s: %ld KiB before, %ld KiB after, %.1f KiB per host (target <= 64)\n", n,
                plaintext ? " (plaintext, for comparison)" : " (TLS)", base, rss, static_cast<double>(rss - base) / n);
  }
  }
  }  // brokers
  return 0;
}

}  // namespace
}  // namespace coolify::bench

int main(int argc, char** argv) {
  coolify::bench::PrintLoadAround load;
  return coolify::bench::Run(argc, argv);
}
