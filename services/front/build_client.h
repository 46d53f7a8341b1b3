// The front end's side of the build launcher's channel: starts and cancels builds, and
// turns the build stream (what builds wrote, relayed as bytes by the launcher) into the
// broker's messages: a BuildEvent per events.ndjson line, and one Response per build.
//
// This is where a build's files are parsed (services/builder/build_files.h): the front
// end holds no privilege, so a build that wrote something hostile gains nothing here.
#ifndef COOLD_SERVICES_FRONT_BUILD_CLIENT_H_
#define COOLD_SERVICES_FRONT_BUILD_CLIENT_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/posix/stream_descriptor.hpp"
#include "privsep/channel.h"
#include "proto/agent.pb.h"
#include "proto/privsep.pb.h"
#include "services/front/front_metrics.h"

namespace coolify::front {

// A BuildRequest from the broker as the launcher's BuildSpec.
privsep::BuildSpec ToBuildSpec(const v1::BuildRequest& request);

// Hands a built image (its archive's descriptor) to Podman under `name`: the gatekeeper's
// PodmanImageLoad (PodmanClient::LoadImage).
using ImageLoader = std::function<absl::StatusOr<privsep::PodmanImageLoaded>(const std::string& name, int archive)>;

// The Response for a finished build: 200 with {image_id, digest, tags, durations,
// registry_ref} from result.json once `load` handed its image over (registry_ref and tags
// are then the name the image got; 422 when the gatekeeper refused the name or the
// archive, 502 when the hand-over failed, 500 when the build left no image archive);
// error.json's code and reason; 500 "builder exited without result file" when there is
// neither; 502 when what the build wrote does not parse. `archive` is the descriptor that
// came with the frame, or -1.
v1::Response BuildResponse(const privsep::BuildFinished& finished, int archive = -1, const ImageLoader& load = nullptr);

// A BuildEvent for one events.ndjson line, or the reason it is refused.
absl::StatusOr<v1::BuildEvent> BuildEventOf(const std::string& request_id, const std::string& line);

// The one BuildEvent that says how many progress lines the launcher dropped before those
// of `progress` (its queue per build is bounded).
v1::BuildEvent DroppedLinesEvent(const privsep::BuildProgress& progress);

class BuildClient {
 public:
  using Sink = std::function<void(v1::ClientMsg)>;

  BuildClient(boost::asio::io_context& io, privsep::Channel& channel, ImageLoader load)
      : io_(io), channel_(channel), load_(std::move(load)) {}

  // Starts a build: OK once its builder runs; RESOURCE_EXHAUSTED at capacity (the build
  // is refused, not queued); ALREADY_EXISTS for a request id in use.
  absl::Status Start(const v1::BuildRequest& request);
  absl::Status Cancel(const std::string& request_id);
  // Opens the build stream; every event and outcome goes to `sink` on the io_context.
  absl::Status Watch(Sink sink);
  // Counts outcomes and durations (may be null, the default).
  void set_metrics(FrontMetrics* metrics) { metrics_ = metrics; }

 private:
  absl::Status Call(privsep::BuildLauncherRequest request, std::vector<privsep::UniqueFd>* fds = nullptr);
  void WaitFrame();

  boost::asio::io_context& io_;
  privsep::Channel& channel_;
  ImageLoader load_;
  privsep::Client<privsep::BuildLauncherRequest, privsep::BuildLauncherReply> client_{channel_};
  Sink sink_;
  std::optional<privsep::Channel> stream_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> readable_;
  FrontMetrics* metrics_ = nullptr;
  // When each build this process started began, for its duration; at most
  // COOLD_BUILDER_CAPACITY entries, each erased by its outcome.
  std::map<std::string, std::chrono::steady_clock::time_point> started_;
};

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_BUILD_CLIENT_H_
