#include "services/front/podman_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "privsep/validate.h"
#include "services/commands/verbs.h"
#include "services/http/status.h"

namespace coolify::front {

// A whole answer never needs more than this; a gatekeeper sending more is misbehaving.
constexpr size_t kMaxAnswerBytes = 64 << 20;

bool IsPodmanVerb(const v1::Command& command) {
  const commands::Verb* verb = commands::VerbOf(command);
  return verb != nullptr && verb->server == commands::Server::kPodman;
}

absl::StatusOr<privsep::PodmanResponse> PodmanClient::Call(const privsep::PodmanRequest& request,
                                                           std::vector<privsep::UniqueFd>* fds) {
  absl::StatusOr<privsep::PodmanReply> reply = client_.Call(request, {}, fds);
  if (!reply.ok()) return reply.status();
  if (reply->status().code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply->status().code()), reply->status().message());
  }
  if (!reply->has_response()) return absl::InternalError("gatekeeper answered without a response");
  return std::move(*reply->mutable_response());
}

absl::StatusOr<privsep::PodmanImageLoaded> PodmanClient::LoadImage(const std::string& name, int archive) {
  privsep::PodmanRequest request;
  request.mutable_image_load()->set_name(name);
  absl::StatusOr<privsep::PodmanReply> reply = client_.Call(request, {archive});
  if (!reply.ok()) return reply.status();
  if (reply->status().code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply->status().code()), reply->status().message());
  }
  if (!reply->has_image_loaded()) return absl::InternalError("gatekeeper answered without the loaded image");
  return reply->image_loaded();
}

absl::StatusOr<PodmanAnswer> PodmanClient::Run(const v1::Command& command) {
  if (!IsPodmanVerb(command)) return http::InvalidField("command", "not a Podman verb");
  privsep::PodmanRequest request;
  *request.mutable_call()->mutable_command() = command;
  absl::StatusOr<privsep::PodmanResponse> first = Call(request);
  if (!first.ok()) return first.status();
  return Collect(*std::move(first));
}

absl::StatusOr<PodmanAnswer> PodmanClient::Collect(privsep::PodmanResponse first) {
  PodmanAnswer answer;
  answer.http_status = first.http_status();
  answer.body = std::move(*first.mutable_body());
  bool more = first.more();
  while (more) {
    privsep::PodmanRequest next;
    next.mutable_next();
    absl::StatusOr<privsep::PodmanResponse> piece = Call(next);
    if (!piece.ok()) return piece.status();
    answer.body += piece->body();
    if (answer.body.size() > kMaxAnswerBytes) return absl::ResourceExhaustedError("podman answer too large");
    more = piece->more();
  }
  return answer;
}

absl::StatusOr<PodmanFollow> PodmanClient::Follow(const v1::Command& command) {
  if (!command.has_containers_logs() || !command.containers_logs().follow()) {
    return http::InvalidField("command", "not a followed log");
  }
  privsep::PodmanRequest request;
  *request.mutable_call()->mutable_command() = command;
  return OpenStream(request);
}

absl::StatusOr<PodmanFollow> PodmanClient::WatchEvents() {
  privsep::PodmanRequest request;
  request.mutable_watch_events();
  return OpenStream(request);
}

absl::StatusOr<PodmanFollow> PodmanClient::OpenStream(const privsep::PodmanRequest& request) {
  std::vector<privsep::UniqueFd> fds;
  absl::StatusOr<privsep::PodmanResponse> response = Call(request, &fds);
  if (!response.ok()) return response.status();
  // The validator already holds a stream to a bare 200; here it must come with exactly
  // its one descriptor, and nothing else may.
  if (response->stream() != (fds.size() == 1) || fds.size() > 1) {
    return absl::InternalError("gatekeeper: stream flag and descriptors disagree");
  }
  PodmanFollow follow;
  if (response->stream()) {
    follow.stream = std::move(fds[0]);
    return follow;
  }
  absl::StatusOr<PodmanAnswer> answer = Collect(*std::move(response));
  if (!answer.ok()) return answer.status();
  follow.answer = *std::move(answer);
  return follow;
}

}  // namespace coolify::front
