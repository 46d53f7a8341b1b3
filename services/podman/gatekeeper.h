// The Podman gatekeeper: runs one validated PodmanCall (a Command whose verb is a Podman
// verb) against the host policy and Podman's libpod API, and answers with an HTTP status
// and a JSON body, cut into frames of at most kMaxBodyBytesPerFrame.
//
// Per verb (bodies are JSON text):
//   images_pull            ValidateImagesPull + EvaluateImagePull, pull, then inspect for
//                          the digest: 200 {"id", "digest"?}
//   images_list / delete   200 Podman's JSON
//   containers_create      ValidateContainerSpec (400 {"error", "field"}), Evaluate with
//                          a PinningHostPathResolver (403 {"error": "denied by policy",
//                          "violations": [...]}), RenderSpecGenerator, create, then every
//                          bind source re-opened and compared with its pinned descriptor
//                          (a difference deletes the container: 409): 201 {"id"}
//   containers_start/stop/restart/delete
//                          200 {"id": the id or name asked}
//   containers_inspect     200 Podman's inspect JSON
//   containers_logs        follow=false: 200 {"stdout", "stderr"[, "truncated": true]}
//                          capped at kMaxLogBytes; follow=true: the container is looked
//                          up (404 when missing), then the answer is a stream: a socket
//                          pair whose other end a thread of its own feeds with
//                          PodmanStreamFrames as Podman sends output, until the container
//                          stops or the front end closes its end (at most
//                          kMaxFollowStreams at once; beyond, 503)
//   containers_exec        ValidateContainersExec + EvaluateExec: 200 {"exit_code",
//                          "stdout", "stderr"[, "truncated"]}; env/user/workdir: 501
//   containers_healthcheck_run
//                          200 {"status"}
//   volumes_*, networks_*  create validated and evaluated (201 Podman's JSON); delete
//                          200 {"name"}; inspect and list 200 Podman's JSON
//   host_*                 200 Podman's JSON
// A verb runs only when the registry gives it to the gatekeeper and the gatekeeper has
// its handler (kPodmanVerbs, with the verb's validator); any other verb is 400. Errors: InvalidArgument 400, PermissionDenied 403, NotFound 404,
// AlreadyExists/FailedPrecondition 409, Unavailable 503 {"error": "podman unavailable:
// ..."}, anything else from Podman 502 {"error": "podman: ..."}.
//
// Single-threaded, like the process that owns it.
#ifndef COOLD_SERVICES_PODMAN_GATEKEEPER_H_
#define COOLD_SERVICES_PODMAN_GATEKEEPER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "proto/policy.pb.h"
#include "privsep/unique_fd.h"
#include "proto/privsep.pb.h"
#include "services/podman/libpod_client.h"

namespace coolify::podman {

// The most log output one containers_logs answer carries.
inline constexpr size_t kMaxLogBytes = 1 << 20;
// Streams (followed logs, the events watch) served at once: each holds a thread and a
// Podman connection.
inline constexpr int kMaxFollowStreams = 16;

// An answer before it is cut into frames.
struct GatekeeperAnswer {
  unsigned http_status = 0;
  std::string body;  // JSON text
  privsep::UniqueFd stream;  // set for a stream: the end to hand to the front end
};

// Cuts a body into pieces of at most `max_piece` bytes (at least one piece, possibly
// empty) and hands them out one at a time.
class BodyChunker {
 public:
  explicit BodyChunker(size_t max_piece);

  // Drops whatever was pending and returns the first piece of `answer`; more is set when
  // pieces remain.
  privsep::PodmanResponse Start(const GatekeeperAnswer& answer);
  // The next pending piece, or 409 {"error": "nothing pending"}.
  privsep::PodmanResponse Next();
  bool pending() const { return !pieces_.empty(); }

 private:
  size_t max_piece_;
  unsigned status_ = 0;
  std::deque<std::string> pieces_;
};

struct GatekeeperOptions {
  std::string socket_path;  // Podman's API socket, absolute
  coolify::v1::Policy policy;  // complete and valid (policy_file.h)
  // From the monitor's configuration: COOLD_HOST_MGMT_IP and the REST API's port (0:
  // none); no container publishes on the one or, on 0.0.0.0, the other.
  std::string management_ip;
  uint32_t api_port = 0;
  // Where bind sources are resolved and pinned ("/" in production).
  std::string host_root = "/";
  // False checks bind sources lexically only (no filesystem access at all).
  bool pin_host_paths = true;
  absl::Duration io_timeout = absl::Seconds(60);
  // Runs between Podman's create and the bind re-check; tests swap a source here, since
  // the window is otherwise too short to hit on purpose.
  std::function<void()> after_create_for_test;
};

class Gatekeeper {
 public:
  explicit Gatekeeper(GatekeeperOptions options);

  // Runs `call` and returns the first frame of its answer (a call drops pieces still
  // pending from an earlier one). For a stream, `*stream` receives the descriptor to
  // attach to the response. The call's log line waits for WriteCallLog.
  privsep::PodmanResponse Call(const privsep::PodmanCall& call, privsep::UniqueFd* stream);
  // Writes the log line of the last Call, once: its caller sends the answer first, so the
  // front end does not wait for the write.
  void WriteCallLog();
  // The next frame of the last answer, or 409 {"error": "nothing pending"}.
  privsep::PodmanResponse Next();
  // Podman's container events as a stream (`event` frames), like a followed log.
  privsep::PodmanResponse WatchEvents(privsep::UniqueFd* stream);

  // Runs `call` and returns the whole answer, not cut into frames; its log line is
  // written before it returns.
  GatekeeperAnswer Execute(const privsep::PodmanCall& call);

  const GatekeeperOptions& options() const { return options_; }

 private:
  // Runs `call`; `*log_line` is what its log line says.
  GatekeeperAnswer Run(const privsep::PodmanCall& call, std::string* log_line);

  GatekeeperOptions options_;
  // One for every call, so that a GET's connection can serve the next (libpod_client.h).
  LibpodClient client_;
  BodyChunker chunker_;
  std::string call_log_;  // the last Call's line, until WriteCallLog
};

// The Command fields (commands.proto) the gatekeeper has a handler for: the verbs the
// registry gives it (services/commands/verbs.h), no more and no fewer.
std::vector<int> HandledVerbs();

// The verb's name as the Command oneof spells it ("containers_create"), for logs.
std::string_view VerbName(const coolify::v1::Command& command);

}  // namespace coolify::podman

#endif  // COOLD_SERVICES_PODMAN_GATEKEEPER_H_
