// What the monitor opens with its privilege and hands to a child as descriptors, so the
// child itself never needs the privilege (or the path) to open it.
#ifndef COOLD_SERVICES_MONITOR_RESOURCES_H_
#define COOLD_SERVICES_MONITOR_RESOURCES_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "privsep/capabilities.h"
#include "privsep/unique_fd.h"
#include "proto/config.pb.h"

namespace coolify::monitor {

// The firewall writer's snapshot directories and the file names inside them.
struct SnapshotDirs {
  privsep::UniqueFd rules_dir;
  privsep::UniqueFd bridge_dir;
  std::string rules_name;
  std::string bridge_name;
};

// Creates the directories of COOLD_RULES_PATH and COOLD_BRIDGE_RULES_PATH when missing and
// lets `writer` replace its snapshots there without power over anything else: the
// directory becomes group `writer.gid`, group-writable and sticky (only a file's owner
// may replace or remove it), and existing snapshot files are given to `writer`.
absl::StatusOr<SnapshotDirs> PrepareSnapshotDirs(const v1::CooldConfig& config, const privsep::UserIds& writer);

// The front end's descriptors: the REST API's listening socket (bound to COOLD_API_BIND),
// the token file and the TLS files; each invalid when not configured.
struct FrontResources {
  privsep::UniqueFd api_listener;
  privsep::UniqueFd api_token;
  privsep::UniqueFd tls_cert;
  privsep::UniqueFd tls_key;
  // The broker stream: the host JWT, the CA, and COOLD_BROKER_URL's host resolved here
  // ("IPv4:PORT"), so the front end never reads a resolver's files.
  std::string broker_token;
  std::string broker_ca_pem;
  std::string broker_address;
  std::vector<std::pair<std::string, std::string>> broker_jwt_keys;  // kid, PEM
};

// Fails with a message naming the variable when a file is missing, unreadable, or (token
// and key) readable by anyone but its owner.
absl::StatusOr<FrontResources> OpenFrontResources(const v1::CooldConfig& config);

// COOLD_POLICY_FILE, opened, checked (root-owned, writable by root only) and parsed, so an
// invalid policy stops coold at start with the parser's message; positioned at offset 0
// for coold-podman, which parses it again as the one that enforces it. Invalid when the
// embedded baseline is in force.
// The directory of COOLD_ENDPOINT_DB, created if missing, owned by root, made group
// `writer` (the front end's), group-writable and sticky, as the snapshot directories are
// for the firewall writer; with the database file's name in it. Unused with Corrosion.
struct EndpointDir {
  privsep::UniqueFd dir;
  std::string db_name;
};
absl::StatusOr<EndpointDir> PrepareEndpointDir(const v1::CooldConfig& config, const privsep::UserIds& writer);

// Binds UDP and TCP (listening) on `gateway`:53 for the DNS server of one namespace.
absl::StatusOr<std::pair<privsep::UniqueFd, privsep::UniqueFd>> OpenDnsSockets(const std::string& gateway);

absl::StatusOr<privsep::UniqueFd> OpenPolicy(const v1::CooldConfig& config);

// A small file's contents, read through a descriptor opened without following links;
// refused when missing, larger than `limit`, or (must_be_private) readable by others.
absl::StatusOr<std::string> ReadSmallFile(const char* variable, const std::string& path, bool must_be_private,
                                          size_t limit);

}  // namespace coolify::monitor

#endif  // COOLD_SERVICES_MONITOR_RESOURCES_H_
