// A privsep channel: framed protobuf messages, with optional file descriptors, over one
// end of an AF_UNIX SOCK_SEQPACKET socket pair.
//
// Frame format, exactly one frame per datagram:
//
//   offset  size  field
//        0     4  magic           0x434F4C44 ("COLD"), little-endian: 44 4C 4F 43
//        4     2  version         kFrameVersion, little-endian
//        6     2  reserved        0
//        8     4  payload_length  little-endian, == datagram size - kFrameHeaderBytes
//       12     n  payload         the serialized message
//
// A frame is at most kMaxFrameBytes long and carries at most kMaxFdsPerFrame
// descriptors (SCM_RIGHTS). Decoding is strict: besides the header, the payload must
// parse as the expected type with no unknown field and no enum value its enum type
// does not define, at any depth. Semantic checks live in validate.h.
//
// The peer is not trusted. The first frame a channel rejects closes its socket for good
// ("cut off"): a peer that sends what a correct peer never would is compromised or broken,
// and either way gets no second chance to probe the decoder. The process that owns the
// channel then exits (dispatch.h), and the monitor stops coold.
#ifndef COOLD_PRIVSEP_CHANNEL_H_
#define COOLD_PRIVSEP_CHANNEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "google/protobuf/message.h"
#include "privsep/unique_fd.h"
#include "privsep/validate.h"

namespace coolify::privsep {

inline constexpr uint32_t kFrameMagic = 0x434F4C44;  // "COLD"
inline constexpr uint16_t kFrameVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 12;
inline constexpr size_t kMaxFrameBytes = 64 * 1024;  // Header and payload.
inline constexpr size_t kMaxFdsPerFrame = 4;

// A connected AF_UNIX SOCK_SEQPACKET pair, both ends close-on-exec.
absl::StatusOr<std::pair<UniqueFd, UniqueFd>> SeqpacketPair();

// `message` as one frame. InvalidArgumentError if the frame would exceed
// kMaxFrameBytes.
absl::StatusOr<std::vector<uint8_t>> EncodeFrame(const google::protobuf::Message& message);

// Parses one datagram into `out` (cleared first), strictly as described above. Pure:
// no I/O, no state, safe on arbitrary bytes. InvalidArgumentError naming what was wrong
// ("frame: unknown field 7 in coolify.privsep.HealthReport at health").
absl::Status DecodeFrame(absl::Span<const uint8_t> datagram, google::protobuf::Message* out);

// One end of a privsep socket pair. Blocking, not thread-safe.
class Channel {
 public:
  explicit Channel(UniqueFd fd);

  Channel(Channel&&) = default;
  Channel& operator=(Channel&&) = default;

  // Sends `message` with `fds` attached (the caller keeps its own copies).
  // InvalidArgumentError if the frame exceeds kMaxFrameBytes or there are more than
  // kMaxFdsPerFrame descriptors; UnavailableError if the peer has closed its end.
  absl::Status Send(const google::protobuf::Message& message, absl::Span<const int> fds = {});

  // As Send, but never waits for room in the socket's buffer: ResourceExhaustedError
  // when it is full (nothing was sent; poll() for POLLOUT and try again). For a process
  // that must keep serving whatever its reader does.
  absl::Status TrySend(const google::protobuf::Message& message, absl::Span<const int> fds = {});

  // Receives one frame into `out`. Descriptors that came with it are stored in `*fds`
  // (replacing its contents); with fds == nullptr none may come. UnavailableError("peer
  // closed") once the peer's end is closed. Anything else wrong with the frame
  // (truncated, control data truncated, unwanted descriptors, bad header, bad payload)
  // is a rejection: the descriptors that came with it are closed, the channel is cut
  // off, and the error is InvalidArgumentError naming what was wrong. Once cut off,
  // every call fails with PermissionDeniedError("channel cut off: <that reason>").
  absl::Status Receive(google::protobuf::Message* out, std::vector<UniqueFd>* fds = nullptr);

  // Rejects what the peer sent for `why` (an error), for checks above the frame level
  // (Client, Server and DispatchTable use it): cuts the channel off and returns `why`.
  absl::Status Reject(absl::Status why);

  // Records that a message was not sent because the receiver would have cut this end off
  // for it (Client's validator, the strict check, the frame size), and returns `why`.
  absl::Status RefuseToSend(absl::Status why) {
    ++refused_sends_;
    return why;
  }

  // The socket, for poll(); -1 once cut off.
  int fd() const { return fd_.get(); }
  int rejected() const { return rejected_; }
  // Messages refused before sending (RefuseToSend), since the channel was made.
  uint64_t refused_sends() const { return refused_sends_; }
  bool cut_off() const { return !cut_off_status_.ok(); }

 private:
  absl::Status ReceiveFrame(google::protobuf::Message* out, std::vector<UniqueFd>* fds);
  absl::Status SendFrame(const google::protobuf::Message& message, absl::Span<const int> fds, bool wait);

  UniqueFd fd_;
  int rejected_ = 0;  // 0 or 1: the first rejection is the last.
  uint64_t refused_sends_ = 0;
  absl::Status cut_off_status_;           // OK until cut off.
  std::unique_ptr<uint8_t[]> buffer_;     // kMaxFrameBytes + 1, to detect oversize.
};

// The calling side of a request/reply protocol (e.g. Client<PodmanRequest, PodmanReply>).
// Request types have protocol_version, request_id and a oneof op; reply types have
// request_id and status (proto/privsep.proto). One call at a time.
template <typename RequestT, typename ReplyT>
class Client {
 public:
  explicit Client(Channel& channel) : channel_(channel) {}

  // Stamps `request` with kProtocolVersion, a fresh request id and the role it is meant
  // for (kRecipient<RequestT>), sends it with `fds`,
  // and waits for the reply (descriptors that come with it go to `*reply_fds`; with
  // reply_fds == nullptr none may come). A reply that fails Validate() or answers
  // another request is rejected (see Channel::Reject) and fails the call. The reply's
  // own status field is the operation's outcome and is left to the caller.
  absl::StatusOr<ReplyT> Call(RequestT request, absl::Span<const int> fds = {},
                              std::vector<UniqueFd>* reply_fds = nullptr) {
    const uint64_t id = ++last_request_id_;
    request.set_protocol_version(kProtocolVersion);
    request.set_request_id(id);
    request.set_role(kRecipient<RequestT>);
    // The receiver validates every request and exits at the first that fails (a
    // compromised sender, as far as it can tell); a request that would fail is refused
    // here, to the caller, as bad input. What only the receiver's dispatch table knows
    // (phase, once-only ops, descriptor counts) the caller's own protocol keeps to.
    if (absl::Status s = Validate(request); !s.ok()) return channel_.RefuseToSend(std::move(s));
    if (absl::Status s = channel_.Send(request, fds); !s.ok()) return s;
    ReplyT reply;
    if (absl::Status s = channel_.Receive(&reply, reply_fds); !s.ok()) return s;
    if (reply.request_id() != id) {
      if (reply_fds != nullptr) reply_fds->clear();
      return channel_.Reject(absl::InvalidArgumentError(
          absl::StrCat("unsolicited response: ", ReplyT::descriptor()->full_name(),
                       " for request ", reply.request_id(), " while waiting for ", id)));
    }
    if (absl::Status s = Validate(reply); !s.ok()) {
      if (reply_fds != nullptr) reply_fds->clear();
      return channel_.Reject(std::move(s));
    }
    return reply;
  }

 private:
  Channel& channel_;
  uint64_t last_request_id_ = 0;
};

// The serving side of a request/reply protocol (see Client).
template <typename RequestT, typename ReplyT>
class Server {
 public:
  explicit Server(Channel& channel) : channel_(channel) {}

  // Waits for the next request, descriptors to `*fds` as in Channel::Receive. A request
  // that fails Validate() is rejected (see Channel::Reject). Children serve through a
  // DispatchTable (dispatch.h), which adds what Validate() cannot know: phase, once-only
  // ops and descriptor counts.
  absl::StatusOr<RequestT> Next(std::vector<UniqueFd>* fds = nullptr) {
    RequestT request;
    if (absl::Status s = channel_.Receive(&request, fds); !s.ok()) return s;
    if (absl::Status s = Validate(request); !s.ok()) {
      if (fds != nullptr) fds->clear();
      return channel_.Reject(std::move(s));
    }
    return request;
  }

  // Sends `reply`; its request_id should be that of the request it answers.
  absl::Status Reply(const ReplyT& reply, absl::Span<const int> fds = {}) {
    return channel_.Send(reply, fds);
  }

 private:
  Channel& channel_;
};

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_CHANNEL_H_
