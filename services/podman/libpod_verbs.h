// One function per gatekeeper verb, each a libpod v4 API call through LibpodClient.
//
// Ids, names and refs are validated and percent-encoded (libpod_path.h) before they reach
// a path; a value outside its grammar is InvalidArgument and nothing is sent. JSON bodies
// passed in (container, volume and network specs) are rendered and checked by the
// caller; here they are only required to be a JSON object. Podman's answers are
// untrusted text and this runs as uid 0: they are returned as the text Podman sent (the
// front end parses them), and the few fields a verb is about (an id, an exit code, a
// status) are read with the bounded reader of libpod_fields.h, never as a document.
//
// Errors: transport failures as LibpodClient documents (Unavailable when the socket is
// missing or refused); Podman's HTTP errors as StatusFromResponse maps them (NotFound,
// AlreadyExists, FailedPrecondition, Internal with Podman's message); a 2xx whose body is
// not the JSON the verb expects is Internal.
#ifndef COOLD_SERVICES_PODMAN_LIBPOD_VERBS_H_
#define COOLD_SERVICES_PODMAN_LIBPOD_VERBS_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/podman/libpod_client.h"
#include "services/podman/libpod_demux.h"

namespace coolify::podman {

// ---------------------------------------------------------------- images

// Podman's pull policies. kNewer (the default) pulls when the registry has a newer image
// and uses the local one when it does not or cannot be reached, like `podman pull
// --policy newer`; kAlways fails without the registry; kMissing never contacts it when
// the image is present.
enum class PullPolicy { kAlways, kMissing, kNewer };

// POST /images/pull. The response is a stream of JSON objects (progress, then {"id"} or
// {"error"}) under HTTP 200 either way: an "error" object makes the pull a failure
// (NotFound when the registry says the image does not exist, else Internal with its
// text). Returns the pulled image's id. The stream is parsed line by line as it arrives.
// Credentials for the registry of a pulled image: username and password, or an identity
// token (OAuth refresh token).
struct RegistryCredentials {
  std::string username;
  std::string password;
  std::string identity_token;
};
// The X-Registry-Auth value Podman reads: base64url (padded) of the JSON of Docker's
// AuthConfig, {"username","password"} or {"identitytoken"}.
std::string RegistryAuthHeader(const RegistryCredentials& credentials);
absl::StatusOr<std::string> ImagesPull(const LibpodClient& client, std::string_view ref,
                                       PullPolicy policy = PullPolicy::kNewer,
                                       const RegistryCredentials* credentials = nullptr);
// GET /images/json: Podman's array of image summaries.
absl::StatusOr<std::string> ImagesList(const LibpodClient& client);
// DELETE /images/{ref}?force=: Podman's report {"Deleted": [...], "Untagged": [...], ...}.
absl::StatusOr<std::string> ImagesDelete(const LibpodClient& client, std::string_view ref,
                                                bool force);

// ---------------------------------------------------------------- containers

// POST /containers/create with a SpecGenerator JSON object; returns the new id.
absl::StatusOr<std::string> ContainersCreate(const LibpodClient& client,
                                             std::string_view spec_json);
// POST /containers/{name}/start. Already running is OK (Podman's 304).
absl::Status ContainersStart(const LibpodClient& client, std::string_view name);
// POST /containers/{name}/stop?timeout=: SIGTERM (or the image's stop signal), then
// SIGKILL after `timeout_seconds` (Podman's default, usually 10, when unset). Already
// stopped is OK (304).
absl::Status ContainersStop(const LibpodClient& client, std::string_view name,
                            std::optional<unsigned> timeout_seconds = std::nullopt);
// POST /containers/{name}/restart?t=: stop with that timeout, then start.
absl::Status ContainersRestart(const LibpodClient& client, std::string_view name,
                               std::optional<unsigned> timeout_seconds = std::nullopt);
// DELETE /containers/{name}?force=&timeout=: a running container needs force
// (FailedPrecondition otherwise) and is stopped first, SIGKILL following after
// `timeout_seconds` (Podman's default stop timeout when unset).
absl::Status ContainersDelete(const LibpodClient& client, std::string_view name, bool force,
                              std::optional<unsigned> timeout_seconds = std::nullopt);
// GET /containers/{name}/json: Podman's inspect object, as the text Podman sent.
absl::StatusOr<std::string> ContainersInspect(const LibpodClient& client, std::string_view name);

// What the gatekeeper decides on about an existing container, read from its inspect with
// the bounded reader of libpod_fields.h (each field at most once, or the answer is
// refused as Internal), and the inspect text itself for relaying unread.
// A bind mount of an existing container, as Podman holds it (Mounts[] with Type "bind").
struct BindFacts {
  std::string source;  // the host path Podman binds again at every start
  std::string destination;
  bool read_only = false;  // !RW
};

struct ContainerFacts {
  std::string id;                             // Id: 64 hex digits
  std::optional<std::string> owner;           // Config.Labels[policy::kOwnerLabel]
  std::optional<std::string> namespace_name;  // Config.Labels[policy::kNamespaceLabel]
  std::string user;                           // Config.User ("" = the image's)
  bool tty = false;                           // Config.Tty
  std::string oci_runtime;                    // OCIRuntime: what Podman runs it with
  std::vector<BindFacts> binds;               // Mounts[] of Type "bind"
  std::string inspect;
};
absl::StatusOr<ContainerFacts> InspectContainer(const LibpodClient& client, std::string_view name);

struct LogsOptions {
  bool follow = false;
  bool include_stdout = true;
  bool include_stderr = true;
  std::optional<unsigned> tail;  // last N lines only
  bool timestamps = false;        // each line prefixed with its RFC 3339 time, as `podman logs -t`
  bool tty = false;               // the container's Config.Tty: its log is one raw stream
  size_t max_frame_bytes = 1 << 20;
};
// Receives demultiplexed output as it arrives (for a TTY container, all as kStdout).
// Returning non-OK stops the stream with that status.
using OutputSink = std::function<absl::Status(StreamKind stream, std::string_view data)>;
// GET /containers/{name}/logs. With follow, runs until the container stops, the sink
// refuses, or stream_options.cancel_fd fires (Cancelled); nothing is buffered beyond one
// partial frame.
absl::Status ContainersLogs(const LibpodClient& client, std::string_view name,
                            const LogsOptions& options, const OutputSink& sink,
                            const LibpodClient::StreamOptions& stream_options = {});

struct ExecResult {
  int exit_code = -1;
  std::string stdout_text;
  std::string stderr_text;
  bool truncated = false;  // output beyond max_output_bytes was dropped
};
// POST /containers/{name}/exec with `exec_config_json` (the gatekeeper renders it:
// policy::RenderExecConfig, never privileged), POST /exec/{id}/start (attached; the output
// streams until the process ends), then GET /exec/{id}/json for the real exit code, which
// the stream does not carry. `tty` must match the config's Tty (it decides the framing).
// Exec into a stopped container is FailedPrecondition.
absl::StatusOr<ExecResult> ContainersExec(const LibpodClient& client, std::string_view name,
                                          std::string_view exec_config_json, bool tty = false,
                                          size_t max_output_bytes = 1 << 20);

struct HealthResult {
  std::string status;  // "healthy", "unhealthy" or "starting"
};
// GET /containers/{name}/healthcheck runs the container's healthcheck now and returns
// the outcome (libpod v4 has no POST for it). A container without a healthcheck is
// FailedPrecondition (Podman's 409).
absl::StatusOr<HealthResult> ContainersHealthcheck(const LibpodClient& client,
                                                   std::string_view name);

// ---------------------------------------------------------------- volumes

// POST /volumes/create with {"Name", "Driver", "Labels", "Options"}; returns the volume's
// inspect object. An existing name is AlreadyExists.
absl::StatusOr<std::string> VolumesCreate(const LibpodClient& client,
                                                 std::string_view spec_json);
// DELETE /volumes/{name}?force=: a volume in use needs force.
absl::Status VolumesDelete(const LibpodClient& client, std::string_view name, bool force);
// GET /volumes/{name}/json.
absl::StatusOr<std::string> VolumesInspect(const LibpodClient& client,
                                                  std::string_view name);

// ---------------------------------------------------------------- networks

// POST /networks/create with a netavark network object ({"name", "driver", "subnets",
// ...}); returns the created network. An existing name is AlreadyExists.
absl::StatusOr<std::string> NetworksCreate(const LibpodClient& client,
                                                  std::string_view spec_json);
// DELETE /networks/{name}?force=.
absl::Status NetworksDelete(const LibpodClient& client, std::string_view name, bool force);
// GET /networks/json.
absl::StatusOr<std::string> NetworksList(const LibpodClient& client);

// ---------------------------------------------------------------- host

// GET /info.
absl::StatusOr<std::string> HostInfo(const LibpodClient& client);
// GET /containers/json?all=true, with `label` ("KEY=VALUE") only the containers that
// carry it (Podman filters), as the text Podman sent.
absl::StatusOr<std::string> HostContainers(const LibpodClient& client, std::string_view label = {});
// GET /containers/stats?stream=false: {"Error": null, "Stats": [...]}, one entry per
// running container.
absl::StatusOr<std::string> HostStats(const LibpodClient& client);

// GET /events?stream=true, container events only: each event's JSON line (without its
// newline) goes to `on_line` as Podman sends it, until the stream ends, `on_line` refuses,
// or stream_options.cancel_fd fires. A line longer than 64 KiB ends the stream.
absl::Status ContainerEvents(const LibpodClient& client, const std::function<absl::Status(std::string_view)>& on_line,
                             const LibpodClient::StreamOptions& stream_options);

}  // namespace coolify::podman

#endif  // COOLD_SERVICES_PODMAN_LIBPOD_VERBS_H_
