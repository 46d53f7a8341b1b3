#include "services/front/followed_log.h"

#include <fcntl.h>

#include <string>
#include <utility>

#include "privsep/log.h"
#include "privsep/validate.h"
#include "proto/privsep.pb.h"

namespace coolify::front {

std::shared_ptr<FollowedLog> FollowedLog::Create(boost::asio::io_context& io, privsep::UniqueFd stream,
                                                 FrontMetrics* metrics) {
  return std::shared_ptr<FollowedLog>(new FollowedLog(io, std::move(stream), metrics));
}

FollowedLog::FollowedLog(boost::asio::io_context& io, privsep::UniqueFd stream, FrontMetrics* metrics)
    : readable_(io, fcntl(stream.get(), F_DUPFD_CLOEXEC, 0)), metrics_(metrics) {
  channel_.emplace(std::move(stream));
}

void FollowedLog::Next(Deliver deliver) {
  if (!channel_) return deliver("", true);
  // Waiting first keeps the receive from ever blocking the event loop.
  readable_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                       [self = shared_from_this(), deliver = std::move(deliver)](boost::system::error_code ec) mutable {
                         if (ec == boost::asio::error::operation_aborted) return;
                         if (ec || !self->channel_) return deliver("", true);
                         self->ReceiveFrame(std::move(deliver));
                       });
}

void FollowedLog::ReceiveFrame(Deliver deliver) {
  privsep::PodmanStreamFrame frame;
  absl::Status received = channel_->Receive(&frame);
  if (received.ok()) received = privsep::Validate(frame);
  if (!received.ok()) {
    LogWarn("followed log: %s", received.ToString());
    // Refused (not merely ended): the gatekeeper sent what a correct one never would.
    if (absl::IsInvalidArgument(received) && metrics_ != nullptr) metrics_->RejectedFrame("podman", "followed_log");
    Cancel();
    return deliver("", true);
  }
  switch (frame.frame_case()) {
    case privsep::PodmanStreamFrame::kStdoutData:
    case privsep::PodmanStreamFrame::kStderrData: {
      std::string piece = frame.has_stdout_data() ? std::move(*frame.mutable_stdout_data())
                                                  : std::move(*frame.mutable_stderr_data());
      if (piece.empty()) return Next(std::move(deliver));
      return deliver(std::move(piece), false);
    }
    default:
      // The body is already under way with status 200: an end in error can only be logged.
      if (frame.end().code() != 0) {
        LogWarn("followed log ended: code %d: %s", frame.end().code(), frame.end().message());
      }
      Cancel();
      return deliver("", true);
  }
}

void FollowedLog::Cancel() {
  boost::system::error_code ignored;
  readable_.close(ignored);
  channel_.reset();
}

}  // namespace coolify::front
