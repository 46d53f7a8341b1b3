// A followed container log as an HTTP body: the PodmanStreamFrames the gatekeeper sends on
// the stream's socket become the body's pieces, plain demultiplexed stdout and stderr text
// in the order Podman sent it. Dropping the stream (the client went away) closes the
// socket, which is how the gatekeeper learns to stop following.
#ifndef COOLD_SERVICES_FRONT_FOLLOWED_LOG_H_
#define COOLD_SERVICES_FRONT_FOLLOWED_LOG_H_

#include <memory>
#include <optional>

#include "boost/asio/io_context.hpp"
#include "boost/asio/posix/stream_descriptor.hpp"
#include "privsep/channel.h"
#include "privsep/unique_fd.h"
#include "services/front/front_metrics.h"
#include "services/http/server.h"

namespace coolify::front {

class FollowedLog : public http::BodyStream, public std::enable_shared_from_this<FollowedLog> {
 public:
  // `stream` is the socket PodmanClient::Follow returned.
  // `metrics` (may be null) counts a frame refused here.
  static std::shared_ptr<FollowedLog> Create(boost::asio::io_context& io, privsep::UniqueFd stream,
                                             FrontMetrics* metrics = nullptr);

  void Next(Deliver deliver) override;
  void Cancel() override;

 private:
  FollowedLog(boost::asio::io_context& io, privsep::UniqueFd stream, FrontMetrics* metrics);
  void ReceiveFrame(Deliver deliver);

  std::optional<privsep::Channel> channel_;
  boost::asio::posix::stream_descriptor readable_;  // a duplicate of the channel's socket, to wait on
  FrontMetrics* metrics_;
};

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_FOLLOWED_LOG_H_
