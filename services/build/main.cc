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
//
// Nothing the reader does can stall the loop or grow it without bound: the stream is
// written without waiting (a full socket leaves the frame queued for the next tick), and
// each build's queue holds at most kMaxHeldProgressBytes of progress lines, dropping the
// oldest and saying how many (launcher.h). Health answers, cancels and timeouts go on
// whether or not anyone reads.
#include <poll.h>

#include <deque>
#include <iterator>
#include <map>
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

// What one build has for the build stream, waiting until the stream takes it. Bounded:
// at most kMaxHeldProgressBytes of progress lines; beyond it the oldest are dropped and
// counted, and the next progress frame carries the count (events.ndjson keeps them all).
// The finished report is never dropped and goes after every line queued before it.
struct Outbox {
  std::deque<std::string> lines;
  size_t bytes = 0;
  uint64_t dropped = 0;
  std::optional<BuildFinished> finished;

  void Add(build::BuildUpdate& update) {
    dropped += update.dropped_lines;
    for (std::string& line : update.event_lines) {
      bytes += line.size();
      lines.push_back(std::move(line));
      while (bytes > build::kMaxHeldProgressBytes) {
        bytes -= lines.front().size();
        lines.pop_front();
        ++dropped;
      }
    }
    if (update.finished) {
      BuildFinished& f = finished.emplace();
      f.set_request_id(update.request_id);
      if (update.outcome_text.size() <= static_cast<size_t>(kMaxBuildOutcomeBytes) && !update.outcome_text.empty()) {
        f.set_outcome_file(update.outcome_file);
        f.set_outcome(update.outcome_text);
      }
      f.set_note(update.note.substr(0, 256));
    }
  }

  // The next frame: the dropped count and up to kMaxBuildLinesPerFrame lines (about
  // 48 KiB), or, once no line waits, the finished report. `*lines_in` is how many lines
  // it takes from the queue once sent.
  std::optional<BuildStreamFrame> Next(const std::string& id, size_t* lines_in) const {
    BuildStreamFrame frame;
    *lines_in = 0;
    if (!lines.empty() || dropped > 0) {
      BuildProgress* progress = frame.mutable_progress();
      progress->set_request_id(id);
      progress->set_dropped_lines(dropped);
      size_t frame_bytes = 0;
      for (const std::string& line : lines) {
        if (*lines_in == static_cast<size_t>(kMaxBuildLinesPerFrame) ||
            (*lines_in > 0 && frame_bytes + line.size() > 48 * 1024)) {
          break;
        }
        progress->add_event_lines(line);
        frame_bytes += line.size();
        ++*lines_in;
      }
      return frame;
    }
    if (finished) {
      *frame.mutable_finished() = *finished;
      return frame;
    }
    return std::nullopt;
  }

  // The frame Next() gave was sent. True when nothing of the build is left.
  bool Sent(const BuildStreamFrame& frame, size_t lines_in) {
    if (frame.has_finished()) return true;
    dropped = 0;
    for (size_t i = 0; i < lines_in; ++i) {
      bytes -= lines.front().size();
      lines.pop_front();
    }
    return false;
  }
};

// Sends what waits, build by build in turn, without ever waiting for the reader: a full
// socket leaves the rest queued (bounded) for the next tick. False when the stream is
// gone.
bool Drain(Channel& stream, std::map<std::string, Outbox>& outboxes) {
  bool progress = true;
  while (progress && !outboxes.empty()) {
    progress = false;
    for (auto it = outboxes.begin(); it != outboxes.end();) {
      size_t lines_in = 0;
      std::optional<BuildStreamFrame> frame = it->second.Next(it->first, &lines_in);
      if (!frame) {
        it = outboxes.erase(it);
        continue;
      }
      absl::Status s = stream.TrySend(*frame);
      if (absl::IsResourceExhausted(s)) return true;
      if (!s.ok()) {
        // The front end is the only reader; a stream it closed means it is gone, and the
        // monitor is stopping coold.
        LogError("build stream: %s", s.ToString());
        return false;
      }
      progress = true;
      it = it->second.Sent(*frame, lines_in) ? outboxes.erase(it) : std::next(it);
    }
  }
  return true;
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
  std::map<std::string, Outbox> outboxes;
  for (;;) {
    // The stream is watched for room only while something waits for it.
    const bool waiting = stream && !outboxes.empty();
    pollfd fds[2] = {{front.fd(), POLLIN, 0}, {waiting ? stream->fd() : -1, POLLOUT, 0}};
    if (poll(fds, 2, 100) < 0 && errno != EINTR) return 1;
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
    for (build::BuildUpdate& update : (*launcher)->Poll(absl::ZeroDuration())) {
      outboxes[update.request_id].Add(update);
    }
    if (stream && !Drain(*stream, outboxes)) return 1;
  }
}

}  // namespace
}  // namespace coolify::privsep

int main(int argc, char** argv) { return coolify::privsep::Main(argc, argv); }
