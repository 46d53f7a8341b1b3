// Service endpoints and DNS in the front end: the endpoint store (SQLite or Corrosion,
// services/endpoints), the in-memory name table every DNS listener answers from, one DNS
// server per namespace of COOLD_NAMESPACES that has a gateway, and the services/dns verbs
// of the command model.
//
// The table follows the store: after every change made here at once, and every second
// otherwise (one aggregate query, Fingerprint; the rows are read only when it moved), so
// rows other hosts gossip in through Corrosion are answered within a second or so. DNS
// sockets come from the monitor (port 53 needs privilege), asked for again when the
// server rebinds after the bridge came back.
//
// The DNS servers run on a thread and io_context of their own: the front end's loop calls
// its helpers synchronously (a Podman call, a store transaction), and no such call may
// delay an answer. They share only the name table (immutable snapshots swapped under a
// lock) and the monitor channel, which the front end's periodic health round also uses:
// every use of it holds `monitor_mu`.
#ifndef COOLD_SERVICES_FRONT_SERVICE_DIRECTORY_H_
#define COOLD_SERVICES_FRONT_SERVICE_DIRECTORY_H_

#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/steady_timer.hpp"
#include "privsep/channel.h"
#include "proto/commands.pb.h"
#include "proto/config.pb.h"
#include "services/dns/message.h"
#include "services/dns/name_table.h"
#include "services/dns/server.h"
#include "services/endpoints/endpoint_store.h"
#include "services/endpoints/store_config.h"

namespace coolify::front {

class ServiceDirectory {
 public:
  // Opens the store the configuration names (`sqlite_path` for SQLite: the path through
  // the descriptor the monitor passed), and prepares a DNS server per namespace with a
  // gateway. Nothing runs until Start(). A store that does not answer yet (Unavailable:
  // Corrosion still starting) is opened later, on first use; any other failure to open
  // it is an error here, so a wrong path or permission stops coold at start.
  static absl::StatusOr<std::unique_ptr<ServiceDirectory>> Create(boost::asio::io_context& io,
                                                                  const v1::CooldConfig& config,
                                                                  const std::string& sqlite_path,
                                                                  privsep::Channel& monitor,
                                                                  absl::Mutex& monitor_mu);
  ~ServiceDirectory();

  // Loads the table, starts the DNS servers and the refresh timer.
  void Start();

  // The verbs the registry gives the directory (Server::kDirectory): services_register/
  // deregister/endpoints, dns_lookup/stats.
  v1::CommandResult Route(const v1::Command& command);

  const dns::NameTable& table() const { return table_; }
  // Each DNS server's namespace and counters (atomics, readable from any thread).
  std::vector<std::pair<std::string, const dns::Stats*>> DnsStats() const;
  // The store, opened now if it could not be at start (Corrosion not answering yet).
  absl::StatusOr<endpoints::EndpointStore*> Store();
  // Reloads the name table now (after the store changed here).
  absl::Status TableChanged() { return Refresh(/*force=*/true); }

 private:
  ServiceDirectory(boost::asio::io_context& io, endpoints::StoreConfig store_config, std::string host_id,
                   dns::WireName zone, privsep::Channel& monitor, absl::Mutex& monitor_mu)
      : io_(io),
        store_config_(std::move(store_config)),
        host_id_(std::move(host_id)),
        zone_(std::move(zone)),
        monitor_(monitor),
        monitor_mu_(monitor_mu),
        refresh_timer_(io),
        dns_work_(boost::asio::make_work_guard(dns_io_)) {}

  // Reloads the table when the store's fingerprint moved (or `force`).
  absl::Status Refresh(bool force);
  void ScheduleRefresh();
  absl::StatusOr<dns::ListenSockets> AskMonitorForSockets(const std::string& namespace_name);

  boost::asio::io_context& io_;
  const endpoints::StoreConfig store_config_;
  const std::string host_id_;
  std::unique_ptr<endpoints::EndpointStore> store_;  // null until it could be opened
  dns::WireName zone_;
  privsep::Channel& monitor_;
  absl::Mutex& monitor_mu_;
  dns::NameTable table_;
  std::string fingerprint_;
  bool store_reachable_ = true;
  boost::asio::steady_timer refresh_timer_;
  boost::asio::io_context dns_io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> dns_work_;
  std::vector<std::unique_ptr<dns::DnsServer>> servers_;  // run on dns_io_
  std::vector<std::string> server_namespaces_;
  std::thread dns_thread_;
};

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_SERVICE_DIRECTORY_H_
