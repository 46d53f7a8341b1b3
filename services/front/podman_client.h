// The front end's side of the Podman channel: a verb goes to coold-podman, the gatekeeper,
// which alone can reach Podman's socket; its answer comes back as JSON text, in pieces
// when large.
#ifndef COOLD_SERVICES_FRONT_PODMAN_CLIENT_H_
#define COOLD_SERVICES_FRONT_PODMAN_CLIENT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "privsep/channel.h"
#include "privsep/unique_fd.h"
#include "proto/commands.pb.h"
#include "proto/privsep.pb.h"

namespace coolify::front {

struct PodmanAnswer {
  unsigned http_status = 0;
  std::string body;  // JSON text
};

// The start of a followed log: either the stream's socket (PodmanStreamFrames arrive on
// it; closing it cancels the follow) or the gatekeeper's refusal in `answer`.
struct PodmanFollow {
  privsep::UniqueFd stream;
  PodmanAnswer answer;
};

class PodmanClient {
 public:
  explicit PodmanClient(privsep::Channel& channel) : client_(channel) {}

  // Runs one Podman verb. The call carries the command and nothing else: the namespace
  // a verb acts in is a field of the command, checked by the gatekeeper against what it
  // recorded at create.
  absl::StatusOr<PodmanAnswer> Run(const v1::Command& command);

  // Starts a containers_logs with follow=true.
  absl::StatusOr<PodmanFollow> Follow(const v1::Command& command);
  // Starts watching Podman's container events: the stream's socket (`event` frames), or
  // the gatekeeper's refusal in `answer`.
  absl::StatusOr<PodmanFollow> WatchEvents();
  // Hands a finished build's image archive (`archive`, from the launcher) to the
  // gatekeeper, to be loaded into Podman and named `name` (services/podman/image_load.h).
  absl::StatusOr<privsep::PodmanImageLoaded> LoadImage(const std::string& name, int archive);

 private:
  absl::StatusOr<privsep::PodmanResponse> Call(const privsep::PodmanRequest& request,
                                               std::vector<privsep::UniqueFd>* fds = nullptr);
  // Sends a request whose answer may be a stream.
  absl::StatusOr<PodmanFollow> OpenStream(const privsep::PodmanRequest& request);
  // The whole answer that starts with `first`, its further pieces asked for one by one.
  absl::StatusOr<PodmanAnswer> Collect(privsep::PodmanResponse first);

  privsep::Client<privsep::PodmanRequest, privsep::PodmanReply> client_;
};

// Whether `command`'s verb is one the gatekeeper serves.
bool IsPodmanVerb(const v1::Command& command);

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_PODMAN_CLIENT_H_
