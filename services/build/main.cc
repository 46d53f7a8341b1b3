// coold-build. The build launcher: starts one sandboxed builder per build request
// (services/build/launcher.h). It acts only on requests from the front end (fd 3) that
// its dispatch table admits; fd 4 is the builder binary the monitor opened; argv is its
// configuration (launcher_config.h).
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
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <deque>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "privsep/channel.h"
#include "privsep/child.h"
#include "privsep/dispatch.h"
#include "privsep/log.h"
#include "privsep/spawn.h"
#include "proto/privsep.pb.h"
#include "services/build/launcher.h"
#include "services/build/launcher_config.h"
#include "services/builder/build_files.h"

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
  UniqueFd image;  // sent with `finished`

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

  // A finished build's image archive and the name it was started for, to go with the
  // finished frame.
  void AttachImage(UniqueFd archive, std::string name) {
    if (!finished || finished->outcome_file() != "result.json" || !archive || name.empty()) return;
    image = std::move(archive);
    finished->set_image_archive(true);
    finished->set_image_name(std::move(name));
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

// The name each build was started for is the launcher's own record, kept beside (not in)
// its work directory, where nothing of the build can reach it: "<id>.image" (a request id
// has no '.', so it never names a work directory).
std::string ImageRecord(const std::string& id) { return id + ".image"; }

void RecordImageName(int builds_dir, const BuildSpec& spec) {
  UniqueFd fd(openat(builds_dir, ImageRecord(spec.request_id()).c_str(),
                     O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  const std::string& name = spec.target_image();
  if (!fd || write(fd.get(), name.data(), name.size()) != static_cast<ssize_t>(name.size())) {
    LogWarn("build %s: cannot record its image name: %s", spec.request_id(), strerror(errno));
  }
}

// The recorded name, removed: it is used once.
std::string TakeImageName(int builds_dir, const std::string& id) {
  const std::string record = ImageRecord(id);
  UniqueFd fd(openat(builds_dir, record.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return "";
  char buf[256];
  ssize_t n = read(fd.get(), buf, sizeof(buf));
  unlinkat(builds_dir, record.c_str(), 0);
  return n > 0 && n < static_cast<ssize_t>(sizeof(buf)) ? std::string(buf, static_cast<size_t>(n)) : "";
}

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
      std::vector<int> fds;
      if (frame->has_finished() && it->second.image) fds.push_back(it->second.image.get());
      absl::Status s = stream.TrySend(*frame, fds);
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

// The launcher's phases: until the first health request only `health`; then every op.
enum Phase { kHandshake = 0, kServing = 1 };

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

  UniqueFd builds_dir(open(config->builds_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!builds_dir) {
    LogError("open %s: %s", config->builds_dir, strerror(errno));
    return 1;
  }
  std::optional<Channel> stream;
  std::map<std::string, Outbox> outboxes;
  using Table = DispatchTable<BuildLauncherRequest, BuildLauncherReply>;
  auto answer_health = [&](const BuildLauncherRequest&, Table::Call&) {
    BuildLauncherReply reply;
    AnswerHealth(ROLE_BUILD, proc_status.get(), &reply);
    return reply;
  };
  auto answer_start = [&](const BuildLauncherRequest& request, Table::Call&) {
    BuildLauncherReply reply;
    if (absl::Status s = (*launcher)->Start(request.start().spec()); !s.ok()) {
      LogWarn("build %s refused: %s", request.start().spec().request_id(), s.ToString());
      SetStatus(s, &reply);
    } else {
      RecordImageName(builds_dir.get(), request.start().spec());
    }
    return reply;
  };
  auto answer_cancel = [&](const BuildLauncherRequest& request, Table::Call&) {
    BuildLauncherReply reply;
    if (absl::Status s = (*launcher)->Cancel(request.cancel().request_id()); !s.ok()) SetStatus(s, &reply);
    return reply;
  };
  auto answer_watch = [&](const BuildLauncherRequest&, Table::Call& call) {
    BuildLauncherReply reply;
    absl::StatusOr<std::pair<UniqueFd, UniqueFd>> pair = SeqpacketPair();
    if (!pair.ok()) {
      SetStatus(pair.status(), &reply);
      return reply;
    }
    stream.emplace(std::move(pair->first));
    call.reply_fds.push_back(std::move(pair->second));
    return reply;
  };
  // Validate(BuildLauncherRequest) has checked the spec's and the cancel's request ids
  // and sizes; the launcher checks every field against the builder's own grammar and
  // answers a refusal as INVALID_ARGUMENT. The stream opens once: the front end asks for
  // it at start, and a second one would take the builds' reports from the first.
  //  op                                 phases                          once   fds validator handler
  Table table("build", kHandshake, {
      {BuildLauncherRequest::kHealth, Phases({kHandshake, kServing}), false, 0, nullptr, answer_health, kServing},
      {BuildLauncherRequest::kStart,  Phases({kServing}),             false, 0, nullptr, answer_start},
      {BuildLauncherRequest::kCancel, Phases({kServing}),             false, 0, nullptr, answer_cancel},
      {BuildLauncherRequest::kWatch,  Phases({kServing}),             true,  0, nullptr, answer_watch},
  });
  for (;;) {
    // The stream is watched for room only while something waits for it.
    const bool waiting = stream && !outboxes.empty();
    pollfd fds[2] = {{front.fd(), POLLIN, 0}, {waiting ? stream->fd() : -1, POLLOUT, 0}};
    if (poll(fds, 2, 100) < 0 && errno != EINTR) return 1;
    if (fds[0].revents != 0) {
      if (absl::Status served = table.ServeOne(front); !served.ok()) return table.Stop(served);
    }
    for (build::BuildUpdate& update : (*launcher)->Poll(absl::ZeroDuration())) {
      Outbox& outbox = outboxes[update.request_id];
      outbox.Add(update);
      if (update.finished) {
        std::string name = TakeImageName(builds_dir.get(), update.request_id);
        if (update.outcome_file == build::kResultFile) {
          outbox.AttachImage(std::move(update.image_archive), std::move(name));
        }
      }
    }
    if (stream && !Drain(*stream, outboxes)) return 1;
  }
}

}  // namespace
}  // namespace coolify::privsep

int main(int argc, char** argv) { return coolify::privsep::Main(argc, argv); }
