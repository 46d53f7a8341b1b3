// Our DNS server alone, for bench/dns/run.sh: one namespace listener on IP:PORT with a
// table of --rows names web0..web<rows-1> in namespace "default" (10.<a>.<b>.<c>
// addresses), forwarding out-of-zone names to --upstream. Runs until killed; prints
// "ready" once serving and the stats counters on SIGTERM.
//   dns_bench_server --ip 10.90.0.1 --port 53 --rows 1000 [--upstream 127.0.0.1:53]
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/signal_set.hpp"
#include "services/dns/namespaces.h"
#include "services/dns/server.h"
#include "services/endpoints/endpoint.h"

int main(int argc, char** argv) {
  using namespace coolify;
  std::string ip, upstream = "127.0.0.1:53";
  int port = 53, rows = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--ip")) {
      ip = argv[i + 1];
    } else if (!std::strcmp(argv[i], "--port")) {
      port = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--rows")) {
      rows = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--upstream")) {
      upstream = argv[i + 1];
    }
  }
  auto up = dns::ParseUpstream(upstream);
  if (ip.empty() || !up.ok() || rows < 0 || port < 1 || port > 65535) {
    std::fprintf(stderr, "usage: dns_bench_server --ip IP [--port 53] [--rows N] [--upstream IP:PORT]\n");
    return 2;
  }
  std::vector<endpoints::EndpointRow> table_rows;
  table_rows.reserve(static_cast<size_t>(rows));
  for (int i = 0; i < rows; ++i) {
    endpoints::EndpointRow r;
    r.service_id = "svc" + std::to_string(i);
    r.container_id = "0123456789ab" + std::to_string(i);
    r.host_id = "host-a";
    r.namespace_name = "default";
    r.container_name = "web" + std::to_string(i);
    r.ip = "10." + std::to_string(100 + i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
           std::to_string(i % 256);
    r.state = "running";
    r.health = "healthy";
    table_rows.push_back(std::move(r));
  }
  dns::NameTable table;
  table.Replace(table_rows);
  table_rows.clear();
  table_rows.shrink_to_fit();

  boost::asio::io_context io;
  dns::ServerOptions o;
  o.namespace_name = "default";
  o.gateway_ip = ip;
  o.zone = *dns::ParseName("coolify.internal");
  o.upstream_ip = up->ip;
  o.upstream_port = up->port;
  auto server = dns::DnsServer::Create(io, o, &table, [&] { return dns::BindListenSockets(ip, static_cast<uint16_t>(port)); });
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  (*server)->Start();
  if (!(*server)->serving()) {
    std::fprintf(stderr, "not serving on %s:%d\n", ip.c_str(), port);
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code&, int) {
    for (const auto& [name, value] : (*server)->stats().Items()) {
      if (value) std::fprintf(stderr, "%s=%lu ", std::string(name).c_str(), static_cast<unsigned long>(value));
    }
    std::fprintf(stderr, "\n");
    (*server)->Stop();
    io.stop();
  });
  io.run();
  return 0;
}
