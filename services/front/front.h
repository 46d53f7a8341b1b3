// coold-front: the unprivileged network front end. It holds no capability; every
// privileged act is a validated request to one of the helpers over its channel.
#ifndef COOLD_SERVICES_FRONT_FRONT_H_
#define COOLD_SERVICES_FRONT_FRONT_H_

#include <vector>

#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "privsep/channel.h"
#include "proto/privsep.pb.h"

namespace coolify::front {

// The channels the monitor passes, in descriptor order from fd 3.
struct FrontChannels {
  privsep::Channel& monitor;
  privsep::Channel& netlink;
  privsep::Channel& podman;
  privsep::Channel& build;
  // Held for every call on `monitor`: the health round (this thread) and the DNS
  // servers' socket requests (theirs) share it.
  absl::Mutex& monitor_mu;
};

// What the monitor hands the front end at start: the configuration and the descriptors
// it opened with privilege (see privsep.proto FrontStartup).
struct Startup {
  privsep::FrontStartup startup;
  privsep::UniqueFd api_listener;
  privsep::UniqueFd api_token;
  privsep::UniqueFd tls_cert;
  privsep::UniqueFd tls_key;
  // The SQLite store's path through the directory descriptor the monitor passed ("" with
  // Corrosion).
  std::string endpoint_db_path;
};

absl::StatusOr<Startup> RequestStartup(privsep::Channel& monitor);

// Runs one health round: collects this process's and each helper's confinement report and
// sends them to the monitor, which checks them against the kernel's view.
absl::Status RunHealthRound(FrontChannels channels, int proc_status_fd);

// Serves the REST API (when configured) until a channel closes; the monitor then stops
// coold. Runs a health round every COOLD_HEALTH_INTERVAL (the monitor stops coold when
// none passed within twice that); one that fails ends this process. Returns the exit
// status.
int Serve(FrontChannels channels, Startup startup, int proc_status_fd);

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_FRONT_H_
