#include "privsep/channel.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/unknown_field_set.h"

namespace coolify::privsep {
namespace {

// The channel's calls are blocking, but its descriptor may be non-blocking: an event loop
// watching the same socket (through a duplicate, which shares the file status flags) sets
// O_NONBLOCK. Then EAGAIN means "not yet": wait for the socket and try again.
bool WaitUntil(int fd, short events) {
  pollfd p = {fd, events, 0};
  while (poll(&p, 1, -1) < 0) {
    if (errno != EINTR) return false;
  }
  return true;
}

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// The header is little-endian whatever the host, so it is assembled byte by byte.
void StoreLe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void StoreLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint16_t LoadLe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t LoadLe32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

constexpr size_t kMaxPayloadBytes = kMaxFrameBytes - kFrameHeaderBytes;

// Room for exactly kMaxFdsPerFrame descriptors: a frame with more arrives with
// MSG_CTRUNC, and the kernel closes the ones that did not fit.
constexpr size_t kControlBytes = CMSG_SPACE(sizeof(int) * kMaxFdsPerFrame);

std::string At(const std::string& path) { return path.empty() ? "" : " at " + path; }

absl::Status CheckEnum(const FieldDescriptor& field, int value, const std::string& path) {
  if (field.enum_type()->FindValueByNumber(value) != nullptr) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("frame: value ", value, " of ",
                                                 field.full_name(), " is not a ",
                                                 field.enum_type()->full_name(), At(path)));
}

// ParseFromArray accepts more than the schema says: fields it does not know (including
// known numbers with the wrong wire type) are kept as unknown fields, and proto3 enums
// are open, so any number parses. Either would let a peer smuggle data past the
// validators, which only look at known fields and known values. `path` locates
// `message` inside the top-level message for the error text. Recursion is bounded by
// the parser's own nesting limit.
absl::Status CheckStrict(const Message& message, const std::string& path) {
  const Reflection& reflection = *message.GetReflection();
  const google::protobuf::UnknownFieldSet& unknown = reflection.GetUnknownFields(message);
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("frame: unknown field ",
                                                   unknown.field(0).number(), " in ",
                                                   message.GetDescriptor()->full_name(),
                                                   At(path)));
  }
  std::vector<const FieldDescriptor*> fields;
  reflection.ListFields(message, &fields);  // Set fields only; map fields as entries.
  for (const FieldDescriptor* field : fields) {
    const std::string field_path = path.empty() ? field->name() : path + "." + field->name();
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection.FieldSize(message, field); ++i) {
          absl::Status s = CheckEnum(*field, reflection.GetRepeatedEnumValue(message, field, i),
                                     absl::StrCat(field_path, "[", i, "]"));
          if (!s.ok()) return s;
        }
      } else if (absl::Status s = CheckEnum(*field, reflection.GetEnumValue(message, field),
                                            field_path);
                 !s.ok()) {
        return s;
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection.FieldSize(message, field); ++i) {
          absl::Status s = CheckStrict(reflection.GetRepeatedMessage(message, field, i),
                                       absl::StrCat(field_path, "[", i, "]"));
          if (!s.ok()) return s;
        }
      } else if (absl::Status s = CheckStrict(reflection.GetMessage(message, field),
                                              field_path);
                 !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status DecodeInto(absl::Span<const uint8_t> datagram, Message* out) {
  if (datagram.size() < kFrameHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat("frame: ", datagram.size(),
                                                   " bytes, shorter than the header"));
  }
  if (datagram.size() > kMaxFrameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame: ", datagram.size(), " bytes, over the limit of ", kMaxFrameBytes));
  }
  const uint8_t* header = datagram.data();
  if (const uint32_t magic = LoadLe32(header); magic != kFrameMagic) {
    return absl::InvalidArgumentError(absl::StrFormat("frame: bad magic 0x%08x", magic));
  }
  if (const uint16_t version = LoadLe16(header + 4); version != kFrameVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame: version ", version, ", want ", kFrameVersion));
  }
  if (const uint16_t reserved = LoadLe16(header + 6); reserved != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame: reserved header field is ", reserved, ", want 0"));
  }
  const size_t payload_length = datagram.size() - kFrameHeaderBytes;
  if (const uint32_t length = LoadLe32(header + 8); length != payload_length) {
    return absl::InvalidArgumentError(absl::StrCat("frame: header says ", length,
                                                   " payload bytes, datagram has ",
                                                   payload_length));
  }
  if (!out->ParseFromArray(header + kFrameHeaderBytes, static_cast<int>(payload_length))) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame: payload does not parse as ", out->GetDescriptor()->full_name()));
  }
  return CheckStrict(*out, "");
}

bool PeerGone(int error) { return error == EPIPE || error == ECONNRESET; }

}  // namespace

absl::StatusOr<std::pair<UniqueFd, UniqueFd>> SeqpacketPair() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return absl::ErrnoToStatus(errno, "socketpair");
  }
  return std::make_pair(UniqueFd(fds[0]), UniqueFd(fds[1]));
}

absl::StatusOr<std::vector<uint8_t>> EncodeFrame(const Message& message) {
  const size_t payload_length = message.ByteSizeLong();
  if (payload_length > kMaxPayloadBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame: ", message.GetDescriptor()->full_name(), " is ", payload_length,
                     " bytes, over the payload limit of ", kMaxPayloadBytes));
  }
  std::vector<uint8_t> frame(kFrameHeaderBytes + payload_length);
  StoreLe32(&frame[0], kFrameMagic);
  StoreLe16(&frame[4], kFrameVersion);
  StoreLe16(&frame[6], 0);
  StoreLe32(&frame[8], static_cast<uint32_t>(payload_length));
  if (!message.SerializeToArray(frame.data() + kFrameHeaderBytes,
                                static_cast<int>(payload_length))) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame: cannot serialize ", message.GetDescriptor()->full_name()));
  }
  return frame;
}

absl::Status DecodeFrame(absl::Span<const uint8_t> datagram, Message* out) {
  out->Clear();
  absl::Status status = DecodeInto(datagram, out);
  // Leave nothing half-parsed behind for a caller that ignores the error.
  if (!status.ok()) out->Clear();
  return status;
}

Channel::Channel(UniqueFd fd)
    : fd_(std::move(fd)),
      buffer_(std::make_unique<uint8_t[]>(kMaxFrameBytes + 1)) {}

absl::Status Channel::Send(const Message& message, absl::Span<const int> fds) {
  return SendFrame(message, fds, /*wait=*/true);
}

absl::Status Channel::TrySend(const Message& message, absl::Span<const int> fds) {
  return SendFrame(message, fds, /*wait=*/false);
}

absl::Status Channel::SendFrame(const Message& message, absl::Span<const int> fds, bool wait) {
  // Never send what the receiver's strict decode would refuse (an enum value outside its
  // type, say, which protobuf's JSON parser lets through): refusing it here is bad input;
  // sending it would get this process cut off as a misbehaving peer.
  if (absl::Status strict = CheckStrict(message, ""); !strict.ok()) {
    return RefuseToSend(absl::InvalidArgumentError(absl::StrCat("refusing to send: ", strict.message())));
  }
  if (cut_off()) return cut_off_status_;
  if (fds.size() > kMaxFdsPerFrame) {
    return RefuseToSend(absl::InvalidArgumentError(absl::StrCat("frame: ", fds.size(),
                                                                " descriptors, over the limit of ",
                                                                kMaxFdsPerFrame)));
  }
  absl::StatusOr<std::vector<uint8_t>> frame = EncodeFrame(message);
  if (!frame.ok()) return RefuseToSend(frame.status());

  iovec iov{frame->data(), frame->size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) uint8_t control[kControlBytes] = {};
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    // MSG_NOSIGNAL: a dead peer is an error to report, not a SIGPIPE to die of.
    n = sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | (wait ? 0 : MSG_DONTWAIT));
  } while ((n < 0 && errno == EINTR) || (n < 0 && errno == EAGAIN && wait && WaitUntil(fd_.get(), POLLOUT)));
  if (n < 0 && errno == EAGAIN) return absl::ResourceExhaustedError("the peer's buffer is full");
  if (n < 0) {
    if (PeerGone(errno)) return absl::UnavailableError("peer closed");
    return absl::ErrnoToStatus(errno, "sendmsg");
  }
  // SOCK_SEQPACKET sends a datagram whole or not at all.
  if (static_cast<size_t>(n) != frame->size()) {
    return absl::InternalError(absl::StrCat("sendmsg sent ", n, " of ", frame->size(), " bytes"));
  }
  return absl::OkStatus();
}

absl::Status Channel::Receive(Message* out, std::vector<UniqueFd>* fds) {
  if (cut_off()) return cut_off_status_;
  if (fds != nullptr) fds->clear();
  return ReceiveFrame(out, fds);
}

absl::Status Channel::ReceiveFrame(Message* out, std::vector<UniqueFd>* fds) {
  // One byte more than any valid frame, so an oversize datagram shows up as MSG_TRUNC
  // rather than as a frame that happens to fill the buffer.
  iovec iov{buffer_.get(), kMaxFrameBytes + 1};
  alignas(cmsghdr) uint8_t control[kControlBytes];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    // MSG_CMSG_CLOEXEC: received descriptors must not leak into anything this process
    // executes before it gets to close them.
    n = recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
  } while ((n < 0 && errno == EINTR) || (n < 0 && errno == EAGAIN && WaitUntil(fd_.get(), POLLIN)));
  if (n < 0) {
    if (PeerGone(errno)) return absl::UnavailableError("peer closed");
    return absl::ErrnoToStatus(errno, "recvmsg");
  }

  // Own every descriptor before looking at anything else, so that every return below
  // closes them unless they are handed to the caller.
  std::vector<UniqueFd> received;
  bool foreign_control = false;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
      foreign_control = true;
      continue;
    }
    const size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received_fd;
      std::memcpy(&received_fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
      received.emplace_back(received_fd);
    }
  }

  // Frames are never empty, and a SOCK_SEQPACKET socket whose peer is gone reads as
  // end-of-file.
  if (n == 0) return absl::UnavailableError("peer closed");
  if (msg.msg_flags & MSG_TRUNC) {
    return Reject(absl::InvalidArgumentError(
        absl::StrCat("frame: datagram truncated, over the limit of ", kMaxFrameBytes, " bytes")));
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    return Reject(absl::InvalidArgumentError(absl::StrCat(
        "frame: control data truncated, more than ", kMaxFdsPerFrame, " descriptors")));
  }
  if (foreign_control) {
    return Reject(absl::InvalidArgumentError("frame: control message other than SCM_RIGHTS"));
  }
  if (fds == nullptr && !received.empty()) {
    return Reject(absl::InvalidArgumentError(
        absl::StrCat("frame: ", received.size(), " descriptors where none were expected")));
  }
  if (absl::Status s = DecodeFrame(absl::MakeConstSpan(buffer_.get(), static_cast<size_t>(n)), out);
      !s.ok()) {
    return Reject(std::move(s));
  }
  if (fds != nullptr) *fds = std::move(received);
  return absl::OkStatus();
}

absl::Status Channel::Reject(absl::Status why) {
  if (cut_off()) return cut_off_status_;
  ++rejected_;
  // Closing the socket is what makes the cut-off final: the peer reads end-of-file, and
  // nothing it sends later reaches this process.
  fd_.reset();
  cut_off_status_ = absl::PermissionDeniedError(absl::StrCat("channel cut off: ", why.message()));
  return why;
}

}  // namespace coolify::privsep
