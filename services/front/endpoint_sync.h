// Keeps this host's rows of the endpoint store equal to what Podman runs: every container
// attached to a namespace's network (COOLD_NAMESPACES) is one row per service it serves,
// with its address on that network, its state and its health.
//
// A reconcile runs every COOLD_RECONCILE_INTERVAL, and 100 ms after any Podman container
// event (the gatekeeper streams them; a burst of events costs one reconcile). Each one
// hands the store the whole desired set (EndpointStore::ReplaceHostRows), so a tick that
// failed (Podman or the store down) loses nothing: the next one writes it all. When
// Podman cannot be listed nothing is written, so a Podman restart never empties the table.
//
// Rows registered through the API keep their service id and port while their container
// exists; a container Podman does not have is no longer this host's to announce.
#ifndef COOLD_SERVICES_FRONT_ENDPOINT_SYNC_H_
#define COOLD_SERVICES_FRONT_ENDPOINT_SYNC_H_

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/posix/stream_descriptor.hpp"
#include "boost/asio/steady_timer.hpp"
#include "privsep/channel.h"
#include "proto/config.pb.h"
#include "services/endpoints/endpoint.h"
#include "services/front/front_metrics.h"
#include "services/front/podman_client.h"
#include "services/front/service_directory.h"

namespace coolify::front {

// The desired rows from Podman's answers, without any I/O: `containers` is the JSON of
// host_containers (libpod's list), `inspect` gives one container's inspect JSON by id
// and the namespace its ownership label names (asked only for containers on a managed
// network), `existing` is this host's rows now. Public for tests.
absl::StatusOr<std::vector<endpoints::EndpointRow>> DesiredRows(
    const std::string& containers_json,
    const std::function<absl::StatusOr<std::string>(const std::string& id, const std::string& namespace_name)>& inspect,
    const v1::CooldConfig& config, const std::vector<endpoints::EndpointRow>& existing);

class EndpointSync {
 public:
  EndpointSync(boost::asio::io_context& io, PodmanClient& podman, ServiceDirectory& directory,
               v1::CooldConfig config);

  void Start();
  // Counts repaired rows and refused event frames (may be null, the default).
  void set_metrics(FrontMetrics* metrics) { metrics_ = metrics; }

 private:
  void Watch();
  void WaitForEvent();
  void RetryWatch();
  void Trigger();
  void ScheduleTick();
  absl::Status Reconcile();

  boost::asio::io_context& io_;
  PodmanClient& podman_;
  ServiceDirectory& directory_;
  const v1::CooldConfig config_;
  std::optional<privsep::Channel> events_;
  std::optional<boost::asio::posix::stream_descriptor> events_readable_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer trigger_timer_;
  boost::asio::steady_timer watch_timer_;
  bool trigger_pending_ = false;
  std::chrono::milliseconds watch_backoff_{100};
  std::string last_error_;
  FrontMetrics* metrics_ = nullptr;
};

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_ENDPOINT_SYNC_H_
