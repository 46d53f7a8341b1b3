// The broker's Unix-socket lane as Laravel reaches it: raw bytes into the real HTTP
// server (services/http, with the lane's limits) and its router and codec
// (services/broker/uds_api), over a real Unix socket in this process. No input may
// crash or hang the server, and whatever it answers is an HTTP/1.1 response.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "boost/asio/io_context.hpp"
#include "fuzz/protobuf_logs.h"
#include "services/broker/broker_metrics.h"
#include "services/broker/hub.h"
#include "services/broker/identity_store.h"
#include "services/broker/uds_api.h"
#include "services/http/server.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

struct World {
  boost::asio::io_context io;
  coolify::broker::Hub hub{coolify::broker::HubOptions{}};
  // The identity routes write a real store: a scratch file of this run.
  std::unique_ptr<coolify::broker::IdentityStore> store = [] {
    char dir[] = "/tmp/broker-http-fuzz-XXXXXX";
    Check(mkdtemp(dir) != nullptr);
    auto opened = coolify::broker::IdentityStore::Open(std::string(dir) + "/broker.db", absl::Hours(1));
    Check(opened.ok());
    return *std::move(opened);
  }();
  coolify::broker::BrokerMetrics metrics{hub, nullptr};
  coolify::broker::UdsApi api{hub, *store, {}, &metrics};
  std::shared_ptr<coolify::http::Server> server;
  sockaddr_un addr = {};
  socklen_t addr_len = 0;
};

World& TheWorld() {
  static World* world = [] {
    auto* w = new World();
    // An abstract address: nothing on the filesystem, private to this run.
    w->addr.sun_family = AF_UNIX;
    std::string name = "coold-broker-http-fuzzer-" + std::to_string(getpid());
    std::memcpy(w->addr.sun_path + 1, name.data(), name.size());
    w->addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    Check(fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&w->addr), w->addr_len) == 0 && listen(fd, 16) == 0);
    coolify::http::Limits limits = coolify::broker::UdsLimits();
    limits.request_log.clear();  // a line per input would only slow the run
    auto server = coolify::http::Server::Create(
        w->io, fd, nullptr, limits,
        [w](coolify::http::Request request, coolify::http::Responder respond) {
          w->api.Handle(std::move(request), std::move(respond));
        });
    Check(server.ok());
    w->server = *server;
    w->server->Start();
    return w;
  }();
  return *world;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  coolify::fuzz::KeepOnlyFatalProtobufLogs();
  TheWorld();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // beyond one socket buffer; the limits are tested elsewhere
  World& w = TheWorld();
  int client = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  Check(client >= 0);
  Check(connect(client, reinterpret_cast<sockaddr*>(&w.addr), w.addr_len) == 0);
  Check(write(client, data, size) == static_cast<ssize_t>(size));
  shutdown(client, SHUT_WR);  // the request ends here; the server must answer or close
  std::string answer;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    w.io.restart();
    w.io.poll();
    char buf[4096];
    ssize_t n = read(client, buf, sizeof(buf));
    if (n == 0) break;
    if (n > 0) {
      answer.append(buf, static_cast<size_t>(n));
      continue;
    }
    Check(errno == EAGAIN || errno == EWOULDBLOCK);
    Check(std::chrono::steady_clock::now() < deadline);  // a hung connection is a bug
  }
  close(client);
  if (!answer.empty()) Check(answer.rfind("HTTP/1.1 ", 0) == 0);
  return 0;
}
