// coold-build. The build launcher: starts one sandboxed builder per build request
// (services/build/launcher.h). It acts only on validated messages from the front end
// (fd 3); fd 4 is the builder binary the monitor opened; argv is its configuration
// (launcher_config.h).
//
// One thread, one loop: a request from the front end is answered at once (a build is
// started or refused, never waited for); every 100 ms the launcher reports progress and
// outcomes, which go to the front end on the build stream it opened with BuildWatch.
// Until that stream is open, reports wait here, so the outcome of a build adopted at
// start is not lost.
#include <poll.h>

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "privsep/channel.h"
#include "privsep/child.h"
#include "privsep/log.h"
#include "privsep/spawn.h"
#include "proto/privsep.pb.h"
#include "services/build/launcher.h"
#include "services/build/launcher_config.h"

namespace coolify::privsep {
namespace {

constexpr int kBuilderFd = kFirstPassedFd + 1;

// Report frames for one update: its event lines in frames of at most
// kMaxBuildLinesPerFrame lines and about 48 KiB, then its end.
std::vector<BuildStreamFrame> Frames(const build::BuildUpdate& update) {
  std::vector<BuildStreamFrame> frames;
  BuildProgress* progress = nullptr;
  size_t bytes = 0;
  for (const std::string& line : update.event_lines) {
    if (progress == nullptr || progress->event_lines_size() >= kMaxBuildLinesPerFrame ||
        bytes + line.size() > 48 * 1024) {
      frames.emplace_back();
      progress = frames.back().mutable_progress();
      progress->set_request_id(update.request_id);
      bytes = 0;
    }
    progress->add_event_lines(line);
    bytes += line.size();
  }
  if (update.finished) {
    BuildFinished* finished = frames.emplace_back().mutable_finished();
    finished->set_request_id(update.request_id);
    if (update.outcome_text.size() <= static_cast<size_t>(kMaxBuildOutcomeBytes) && !update.outcome_text.empty()) {
      finished->set_outcome_file(update.outcome_file);
      finished->set_outcome(update.outcome_text);
    }
    finished->set_note(update.note.substr(0, 256));
  }
  return frames;
}

void SetStatus(const absl::Status& s, BuildLauncherReply* reply) {
  reply->mutable_status()->set_code(static_cast<int>(s.code()));
  reply->mutable_status()->set_message(std::string(s.message()));
}

int Main(int argc, char** argv) {
  SetLogRole("build");
  UniqueFd proc_status = EnterChildSandbox(ROLE_BUILD, /*passed_fds=*/2);
  Channel front{UniqueFd(kFirstPassedFd)};
  absl::StatusOr<build::LauncherConfig> config = build::ParseLauncherArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!config.ok()) {
    LogError("configuration: %s", config.status().ToString());
    return 1;
  }
  config->builder_fd = kBuilderFd;
  auto launcher = build::Launcher::Create(*config);
  if (!launcher.ok()) {
    LogError("%s", launcher.status().ToString());
    return 1;
  }
  // resume_or_reap: what ran or finished while no launcher watched.
  std::vector<std::string> adopted = (*launcher)->Adopt();
  if (!adopted.empty()) LogInfo("adopted %zu builds", adopted.size());

  Server<BuildLauncherRequest, BuildLauncherReply> server(front);
  std::optional<Channel> stream;
  std::deque<BuildStreamFrame> waiting;
  for (;;) {
    pollfd fds[1] = {{front.fd(), POLLIN, 0}};
    if (poll(fds, 1, 100) < 0 && errno != EINTR) return 1;
    if (fds[0].revents != 0) {
      absl::StatusOr<BuildLauncherRequest> request = server.Next(nullptr);
      if (!request.ok()) {
        if (front.cut_off() || absl::IsUnavailable(request.status())) {
          LogError("channel closed: %s", request.status().ToString());
          return 1;
        }
        LogWarn("rejected request: %s", request.status().ToString());
        continue;
      }
      BuildLauncherReply reply;
      std::vector<int> reply_fds;
      UniqueFd front_end;
      switch (request->op_case()) {
        case BuildLauncherRequest::kHealth:
          AnswerHealth(ROLE_BUILD, proc_status.get(), &reply);
          break;
        case BuildLauncherRequest::kStart:
          if (absl::Status s = (*launcher)->Start(request->start().spec()); !s.ok()) {
            LogWarn("build %s refused: %s", request->start().spec().request_id(), s.ToString());
            SetStatus(s, &reply);
          }
          break;
        case BuildLauncherRequest::kCancel:
          if (absl::Status s = (*launcher)->Cancel(request->cancel().request_id()); !s.ok()) SetStatus(s, &reply);
          break;
        case BuildLauncherRequest::kWatch: {
          if (stream) {
            SetStatus(absl::FailedPreconditionError("the build stream is open already"), &reply);
            break;
          }
          absl::StatusOr<std::pair<UniqueFd, UniqueFd>> pair = SeqpacketPair();
          if (!pair.ok()) {
            SetStatus(pair.status(), &reply);
            break;
          }
          stream.emplace(std::move(pair->first));
          front_end = std::move(pair->second);
          reply_fds.push_back(front_end.get());
          break;
        }
        case BuildLauncherRequest::OP_NOT_SET:
          break;  // refused by Validate() before dispatch
      }
      reply.set_request_id(request->request_id());
      if (absl::Status s = server.Reply(reply, reply_fds); !s.ok()) {
        LogError("reply: %s", s.ToString());
        return 1;
      }
    }
    for (const build::BuildUpdate& update : (*launcher)->Poll(absl::ZeroDuration())) {
      for (BuildStreamFrame& frame : Frames(update)) waiting.push_back(std::move(frame));
    }
    while (stream && !waiting.empty()) {
      // The front end is the only reader; a stream it closed means it is gone, and the
      // monitor is stopping coold.
      if (absl::Status s = stream->Send(waiting.front()); !s.ok()) {
        LogError("build stream: %s", s.ToString());
        return 1;
      }
      waiting.pop_front();
    }
  }
}

}  // namespace
}  // namespace coolify::privsep

int main(int argc, char** argv) { return coolify::privsep::Main(argc, argv); }
