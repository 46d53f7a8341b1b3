#include "services/front/build_client.h"

#include <fcntl.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "privsep/log.h"
#include "privsep/validate.h"
#include "services/builder/build_files.h"

namespace coolify::front {
namespace {

google::protobuf::Value Number(uint64_t n) {
  google::protobuf::Value v;
  v.set_number_value(static_cast<double>(n));
  return v;
}
google::protobuf::Value Text(const std::string& s) {
  google::protobuf::Value v;
  v.set_string_value(s);
  return v;
}

google::protobuf::Value Durations(const build::BuildDurations& d) {
  google::protobuf::Value v;
  auto& f = *v.mutable_struct_value()->mutable_fields();
  f["clone_ms"] = Number(d.clone_ms());
  f["base_ms"] = Number(d.base_ms());
  f["build_ms"] = Number(d.build_ms());
  f["export_ms"] = Number(d.export_ms());
  f["total_ms"] = Number(d.total_ms());
  return v;
}

v1::Response Failed(const std::string& id, uint32_t code, const std::string& message, const std::string& phase) {
  v1::Response response;
  response.set_request_id(id);
  response.mutable_result()->set_code(code);
  response.mutable_result()->set_message(message);
  // "stage": the name the broker's build envelope gives the phase (dispatch_codec.h).
  (*response.mutable_result()->mutable_data()->mutable_struct_value()->mutable_fields())["stage"] = Text(phase);
  return response;
}

}  // namespace

privsep::BuildSpec ToBuildSpec(const v1::BuildRequest& r) {
  privsep::BuildSpec spec;
  spec.set_request_id(r.request_id());
  spec.set_kind(r.stack() == v1::BUILD_STACK_STATIC       ? privsep::BUILD_KIND_STATIC
                : r.stack() == v1::BUILD_STACK_DOCKERFILE ? privsep::BUILD_KIND_DOCKERFILE
                                                          : privsep::BUILD_KIND_UNSPECIFIED);
  spec.set_repo_url(r.repo_url());
  spec.set_git_ref(r.git_ref());
  spec.set_subdirectory(r.subdirectory());
  spec.set_target_image(r.target_image());
  spec.set_base_image(r.base_image());
  spec.set_dockerfile_path(r.dockerfile_path());
  spec.set_output_dir(r.output_dir());
  return spec;
}

v1::Response BuildResponse(const privsep::BuildFinished& finished, int archive, const ImageLoader& load) {
  const std::string& id = finished.request_id();
  const std::string note = finished.note().empty() ? "" : absl::StrCat(" (", finished.note(), ")");
  if (finished.outcome_file() == build::kResultFile) {
    absl::StatusOr<build::BuildResultFile> result = build::ParseResultFile(finished.outcome());
    if (!result.ok()) return Failed(id, 502, absl::StrCat("unreadable result.json: ", result.status().message()), "export");
    if (result->request_id() != id) return Failed(id, 502, "result.json names another build", "export");
    // The image reaches Podman only through the gatekeeper, which names it; the name the
    // build claims in result.json counts for nothing.
    if (!finished.image_archive() || archive < 0 || !load) {
      return Failed(id, 500, absl::StrCat("the build left no image archive", note), "export");
    }
    absl::StatusOr<privsep::PodmanImageLoaded> loaded = load(finished.image_name(), archive);
    if (!loaded.ok()) {
      return Failed(id, absl::IsInvalidArgument(loaded.status()) ? 422 : 502,
                    absl::StrCat("image hand-over: ", loaded.status().message()), "export");
    }
    v1::Response response;
    response.set_request_id(id);
    response.mutable_result()->set_code(200);
    auto& f = *response.mutable_result()->mutable_data()->mutable_struct_value()->mutable_fields();
    f["image_id"] = Text(loaded->image_id());
    f["digest"] = Text(result->digest());
    *f["tags"].mutable_list_value()->add_values() = Text(loaded->name());
    f["durations"] = Durations(result->durations());
    // The names the broker's build envelope reads (dispatch_codec.h): the name the image
    // got in Podman (no registry hop on a single node) and the whole build's time.
    f["registry_ref"] = Text(loaded->name());
    f["duration_ms"] = Number(result->durations().total_ms());
    return response;
  }
  if (finished.outcome_file() == build::kErrorFile) {
    absl::StatusOr<build::BuildErrorFile> error = build::ParseErrorFile(finished.outcome());
    if (!error.ok()) return Failed(id, 502, absl::StrCat("unreadable error.json: ", error.status().message()), "done");
    if (error->request_id() != id) return Failed(id, 502, "error.json names another build", "done");
    // A build stopped at its wall-clock limit says "cancelled"; the launcher knows why.
    const bool timed_out = error->code() == 499 && absl::StartsWith(finished.note(), "timed out");
    v1::Response response = timed_out ? Failed(id, 504, finished.note(), error->phase())
                                      : Failed(id, error->code(), error->reason(), error->phase());
    (*response.mutable_result()->mutable_data()->mutable_struct_value()->mutable_fields())["durations"] =
        Durations(error->durations());
    return response;
  }
  return Failed(id, 500, absl::StrCat("builder exited without result file", note), "done");
}

absl::StatusOr<v1::BuildEvent> BuildEventOf(const std::string& request_id, const std::string& line) {
  absl::StatusOr<build::BuildEventRecord> record = build::ParseEventLine(line);
  if (!record.ok()) return record.status();
  v1::BuildEvent event;
  event.set_request_id(request_id);
  event.set_phase(record->phase());
  event.set_line(record->line());
  event.set_unix_ms(record->unix_ms());
  return event;
}

v1::BuildEvent DroppedLinesEvent(const privsep::BuildProgress& progress) {
  v1::BuildEvent event;
  event.set_request_id(progress.request_id());
  // The phase of the lines that follow, when they say; the launcher does not parse them.
  event.set_phase("build");
  if (progress.event_lines_size() > 0) {
    if (absl::StatusOr<build::BuildEventRecord> next = build::ParseEventLine(progress.event_lines(0)); next.ok()) {
      event.set_phase(next->phase());
    }
  }
  event.set_line(absl::StrCat(progress.dropped_lines(),
                              " progress lines dropped: the build stream was not read fast enough "
                              "(the build's events.ndjson keeps them)"));
  event.set_unix_ms(absl::ToUnixMillis(absl::Now()));
  return event;
}

absl::Status BuildClient::Call(privsep::BuildLauncherRequest request, std::vector<privsep::UniqueFd>* fds) {
  absl::StatusOr<privsep::BuildLauncherReply> reply = client_.Call(std::move(request), {}, fds);
  if (!reply.ok()) return reply.status();
  if (reply->status().code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply->status().code()), reply->status().message());
  }
  return absl::OkStatus();
}

absl::Status BuildClient::Start(const v1::BuildRequest& request) {
  privsep::BuildLauncherRequest start;
  *start.mutable_start()->mutable_spec() = ToBuildSpec(request);
  absl::Status started = Call(std::move(start));
  if (started.ok()) started_[request.request_id()] = std::chrono::steady_clock::now();
  return started;
}

absl::Status BuildClient::Cancel(const std::string& request_id) {
  privsep::BuildLauncherRequest cancel;
  cancel.mutable_cancel()->set_request_id(request_id);
  return Call(std::move(cancel));
}

absl::Status BuildClient::Watch(Sink sink) {
  privsep::BuildLauncherRequest watch;
  watch.mutable_watch();
  std::vector<privsep::UniqueFd> fds;
  if (absl::Status s = Call(std::move(watch), &fds); !s.ok()) return s;
  if (fds.size() != 1) return absl::InternalError("launcher: the build stream came without its descriptor");
  sink_ = std::move(sink);
  readable_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, fcntl(fds[0].get(), F_DUPFD_CLOEXEC, 0));
  stream_.emplace(std::move(fds[0]));
  WaitFrame();
  return absl::OkStatus();
}

void BuildClient::WaitFrame() {
  // Waiting first keeps the receive from ever blocking the event loop.
  readable_->async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    privsep::BuildStreamFrame frame;
    std::vector<privsep::UniqueFd> fds;
    absl::Status received = ec ? absl::UnavailableError(ec.message()) : stream_->Receive(&frame, &fds);
    if (received.ok()) received = privsep::Validate(frame);
    // One descriptor exactly with a finished frame that says it carries the image archive.
    if (received.ok() && fds.size() != (frame.has_finished() && frame.finished().image_archive() ? 1u : 0u)) {
      received = absl::InvalidArgumentError(absl::StrCat("a frame with ", fds.size(), " descriptors"));
    }
    if (!received.ok()) {
      // The launcher is gone or misbehaves: coold stops (fail fast), builds keep running
      // and are adopted by the next one.
      LogError("build stream: %s; stopping", received.ToString());
      _exit(1);
    }
    if (frame.has_progress()) {
      if (frame.progress().dropped_lines() > 0) {
        v1::ClientMsg message;
        *message.mutable_build_event() = DroppedLinesEvent(frame.progress());
        sink_(std::move(message));
      }
      for (const std::string& line : frame.progress().event_lines()) {
        absl::StatusOr<v1::BuildEvent> event = BuildEventOf(frame.progress().request_id(), line);
        if (!event.ok()) {
          LogWarn("build %s: event line refused: %s", frame.progress().request_id(), event.status().ToString());
          continue;
        }
        v1::ClientMsg message;
        *message.mutable_build_event() = *std::move(event);
        sink_(std::move(message));
      }
    } else {
      v1::ClientMsg message;
      *message.mutable_response() = BuildResponse(frame.finished(), fds.empty() ? -1 : fds[0].get(), load_);
      // An adopted build (started before this process) has an outcome and no start here.
      std::optional<double> seconds;
      if (auto it = started_.find(frame.finished().request_id()); it != started_.end()) {
        seconds = metrics::SecondsSince(it->second);
        started_.erase(it);
      }
      const unsigned code = message.response().result().code();
      if (metrics_ != nullptr) metrics_->Build(code, seconds);
      // The message is the build's own text (its error file): quoted, so it cannot make a
      // line of its own.
      LogEvent(LogLevel::kInfo, "build_finished",
               {{"request_id", frame.finished().request_id()},
                {"status", code},
                {"outcome", BuildOutcome(code)},
                {"duration_ms", seconds ? absl::StrCat(static_cast<int64_t>(*seconds * 1000)) : std::string("-")},
                {"message", message.response().result().message()}});
      sink_(std::move(message));
    }
    WaitFrame();
  });
}

}  // namespace coolify::front
