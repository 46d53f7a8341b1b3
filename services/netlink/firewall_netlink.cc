#include "services/netlink/firewall_netlink.h"

#include <endian.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>
#include <utility>

#include "absl/strings/str_format.h"

namespace coolify::netlink {

bool MessageFits(const nlmsghdr* nlh, int remaining) {
  return remaining >= 0 && mnl_nlmsg_ok(nlh, remaining) && nlh->nlmsg_len <= static_cast<uint32_t>(remaining);
}
namespace {

// Room for the largest datagram the kernel sends us: dump parts are at most 32 KiB
// (the kernel caps them at that), echoed rules and acks far less.
constexpr size_t kReceiveBufferSize = 64 * 1024;

// Receive-queue room per batch message: an ack is a separate skb (about 1 KiB of
// accounted memory) and an echoed rule adds up to another. The queue must hold every
// answer of a batch, because the kernel writes them all before sendmsg returns.
constexpr size_t kReceiveBytesPerMessage = 2048;

// How long to wait for the kernel's answer to a dump or a GET. The kernel answers
// synchronously, so hitting this means something is badly wrong.
constexpr int kReplyTimeoutMs = 10000;

absl::Status ErrnoStatus(int error, std::string_view what) {
  std::string message = absl::StrFormat("%s: %s", what, std::strerror(error));
  switch (error) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(message);
    case ENOMEM:
    case ENOBUFS:
    case ENOSPC:
    case EMSGSIZE:
      return absl::ResourceExhaustedError(message);
    case EBUSY:
    case EAGAIN:
    case EINTR:
      return absl::UnavailableError(message);
    case EINVAL:
    case EOPNOTSUPP:
    case ERANGE:
    case E2BIG:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

// What NETLINK_EXT_ACK added to an error: the kernel's message and the offset of the
// attribute it refused, when it gave them.
std::string ExtendedAckText(const nlmsghdr* nlh) {
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  // NETLINK_CAP_ACK is set, so the kernel does not copy the refused message's payload
  // into the ack; NLM_F_CAPPED says so. Without it, the TLVs follow that payload.
  size_t offset = sizeof(nlmsgerr);
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
  const nlattr* tb[NLMSGERR_ATTR_MAX + 1] = {};
  mnl_attr_parse(
      nlh, static_cast<unsigned int>(offset),
      [](const nlattr* attr, void* data) {
        const uint16_t type = mnl_attr_get_type(attr);
        if (type <= NLMSGERR_ATTR_MAX) static_cast<const nlattr**>(data)[type] = attr;
        return MNL_CB_OK;
      },
      tb);
  std::string text;
  if (tb[NLMSGERR_ATTR_MSG] != nullptr &&
      mnl_attr_validate(tb[NLMSGERR_ATTR_MSG], MNL_TYPE_NUL_STRING) >= 0) {
    text = absl::StrFormat(" (%s)", mnl_attr_get_str(tb[NLMSGERR_ATTR_MSG]));
  }
  if (tb[NLMSGERR_ATTR_OFFS] != nullptr &&
      mnl_attr_validate(tb[NLMSGERR_ATTR_OFFS], MNL_TYPE_U32) >= 0) {
    text += absl::StrFormat(" (refused attribute at byte %u of the message)",
                            mnl_attr_get_u32(tb[NLMSGERR_ATTR_OFFS]));
  }
  return text;
}

// The handle the kernel assigned, from an echoed NEWRULE message; 0 if absent.
uint64_t EchoedRuleHandle(const nlmsghdr* nlh) {
  const nlattr* handle = nullptr;
  mnl_attr_parse(
      nlh, sizeof(nfgenmsg),
      [](const nlattr* attr, void* data) {
        if (mnl_attr_get_type(attr) == NFTA_RULE_HANDLE &&
            mnl_attr_validate(attr, MNL_TYPE_U64) >= 0) {
          *static_cast<const nlattr**>(data) = attr;
        }
        return MNL_CB_OK;
      },
      &handle);
  return handle == nullptr ? 0 : be64toh(mnl_attr_get_u64(handle));
}

constexpr uint16_t NftType(uint16_t msg) {
  return static_cast<uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msg);
}

}  // namespace

size_t NftBatch::Add(uint16_t type, uint16_t family, uint16_t flags, PayloadBuilder build) {
  if (chunks_.empty() || kChunkSize - chunks_.back().used < kMaxMessageSize) {
    // Left uninitialised on purpose: every byte sent is written by the builders first.
    chunks_.push_back(Chunk{std::unique_ptr<char[]>(new char[kChunkSize]), 0});
  }
  Chunk& chunk = chunks_.back();
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(chunk.data.get() + chunk.used, type, family,
                                        static_cast<uint16_t>(NLM_F_ACK | flags), 0);
  build(nlh);
  chunk.used += NLMSG_ALIGN(nlh->nlmsg_len);
  messages_.push_back(nlh);
  return messages_.size() - 1;
}

void NftBatch::AddFlags(size_t message, uint16_t flags) {
  messages_[message]->nlmsg_flags |= flags;
}

NftSocket::NftSocket(mnl_socket* socket) : socket_(socket), receive_(kReceiveBufferSize) {
  // Sequence numbers only need to differ from those of earlier requests on this socket;
  // starting from the clock keeps a restarted process from matching stale answers.
  next_seq_ = static_cast<uint32_t>(time(nullptr));
}

NftSocket::NftSocket(NftSocket&& other) noexcept
    : socket_(std::exchange(other.socket_, nullptr)),
      next_seq_(other.next_seq_),
      send_buffer_(other.send_buffer_),
      receive_buffer_(other.receive_buffer_),
      receive_(std::move(other.receive_)) {}

NftSocket& NftSocket::operator=(NftSocket&& other) noexcept {
  if (this != &other) {
    if (socket_ != nullptr) mnl_socket_close(socket_);
    socket_ = std::exchange(other.socket_, nullptr);
    next_seq_ = other.next_seq_;
    send_buffer_ = other.send_buffer_;
    receive_buffer_ = other.receive_buffer_;
    receive_ = std::move(other.receive_);
  }
  return *this;
}

NftSocket::~NftSocket() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

absl::StatusOr<NftSocket> NftSocket::Open() {
  mnl_socket* socket = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (socket == nullptr) return ErrnoStatus(errno, "socket(NETLINK_NETFILTER)");
  NftSocket result(socket);
  if (mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID) < 0) {
    return ErrnoStatus(errno, "bind(NETLINK_NETFILTER)");
  }
  if (absl::Status configured = result.Configure(); !configured.ok()) return configured;
  return result;
}

absl::StatusOr<NftSocket> NftSocket::Adopt(privsep::UniqueFd fd) {
  int domain = 0;
  int protocol = 0;
  socklen_t length = sizeof domain;
  if (getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &length) != 0) {
    return ErrnoStatus(errno, "getsockopt(SO_DOMAIN) on the netlink descriptor");
  }
  length = sizeof protocol;
  if (getsockopt(fd.get(), SOL_SOCKET, SO_PROTOCOL, &protocol, &length) != 0) {
    return ErrnoStatus(errno, "getsockopt(SO_PROTOCOL) on the netlink descriptor");
  }
  if (domain != AF_NETLINK || protocol != NETLINK_NETFILTER) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "descriptor %d is not a NETLINK_NETFILTER socket (domain %d, protocol %d)", fd.get(),
        domain, protocol));
  }
  mnl_socket* socket = mnl_socket_fdopen(fd.get());
  if (socket == nullptr) return ErrnoStatus(errno, "mnl_socket_fdopen");
  fd.release();  // now owned by `socket`
  NftSocket result(socket);
  if (absl::Status configured = result.Configure(); !configured.ok()) return configured;
  return result;
}

absl::Status NftSocket::Configure() {
  const int fd = mnl_socket_get_fd(socket_);
  const int on = 1;
  // Extended acks carry the kernel's reason and the offending attribute; capped acks
  // leave out the echo of our own message, which keeps a big batch's acks small.
  if (setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on) != 0) {
    return ErrnoStatus(errno, "setsockopt(NETLINK_EXT_ACK)");
  }
  if (setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof on) != 0) {
    return ErrnoStatus(errno, "setsockopt(NETLINK_CAP_ACK)");
  }
  // The kernel reports twice what it was asked for; the halves are what we asked.
  socklen_t length = sizeof send_buffer_;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer_, &length) != 0 ||
      getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_, &length) != 0) {
    return ErrnoStatus(errno, "getsockopt(SO_SNDBUF/SO_RCVBUF)");
  }
  send_buffer_ /= 2;
  receive_buffer_ /= 2;
  return absl::OkStatus();
}

absl::Status NftSocket::EnsureBufferSizes(size_t send_bytes, size_t receive_bytes) {
  const int fd = mnl_socket_get_fd(socket_);
  // A batch travels in one sendmsg, which netlink refuses when it exceeds the send
  // buffer; the answers must all fit the receive queue. The *FORCE variants pass the
  // system-wide caps and need CAP_NET_ADMIN, which a firewall writer holds anyway.
  if (send_bytes > static_cast<size_t>(send_buffer_)) {
    const int size = static_cast<int>(send_bytes);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0) {
      return ErrnoStatus(errno, absl::StrFormat("setsockopt(SO_SNDBUFFORCE, %d)", size));
    }
    send_buffer_ = size;
  }
  if (receive_bytes > static_cast<size_t>(receive_buffer_)) {
    const int size = static_cast<int>(receive_bytes);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
      return ErrnoStatus(errno, absl::StrFormat("setsockopt(SO_RCVBUFFORCE, %d)", size));
    }
    receive_buffer_ = size;
  }
  return absl::OkStatus();
}

absl::StatusOr<BatchResult> NftSocket::Commit(NftBatch& batch, MessageDescriber describe) {
  BatchResult result;
  const size_t count = batch.size();
  result.rule_handles.assign(count, 0);
  if (count == 0) return result;

  const uint32_t begin_seq = next_seq_;
  next_seq_ += static_cast<uint32_t>(count + 2);
  for (size_t i = 0; i < count; ++i) {
    batch.messages_[i]->nlmsg_seq = begin_seq + 1 + static_cast<uint32_t>(i);
  }
  alignas(nlmsghdr) char begin[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(nfgenmsg))];
  alignas(nlmsghdr) char end[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(nfgenmsg))];
  const nlmsghdr* begin_nlh = nftnl_batch_begin(begin, begin_seq);
  const nlmsghdr* end_nlh = nftnl_batch_end(end, begin_seq + static_cast<uint32_t>(count) + 1);

  std::vector<iovec> iov;
  iov.reserve(batch.chunks_.size() + 2);
  iov.push_back({begin, begin_nlh->nlmsg_len});
  size_t total = begin_nlh->nlmsg_len + end_nlh->nlmsg_len;
  for (const NftBatch::Chunk& chunk : batch.chunks_) {
    iov.push_back({chunk.data.get(), chunk.used});
    total += chunk.used;
  }
  iov.push_back({end, end_nlh->nlmsg_len});
  if (absl::Status sized = EnsureBufferSizes(total, count * kReceiveBytesPerMessage);
      !sized.ok()) {
    return sized;
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  msghdr msg{};
  msg.msg_name = &kernel;
  msg.msg_namelen = sizeof kernel;
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  const int fd = mnl_socket_get_fd(socket_);
  if (sendmsg(fd, &msg, 0) < 0) return ErrnoStatus(errno, "sendmsg(nf_tables batch)");

  // The kernel processes a batch inside sendmsg: every ack and echo is queued before
  // sendmsg returns, so draining the queue without blocking reads all of them.
  struct FirstError {
    size_t message;  // == count for the batch as a whole (the commit failed)
    int error;
    std::string extack;
  };
  std::optional<FirstError> first_error;
  size_t acked = 0;
  bool lost = false;
  for (;;) {
    const ssize_t n = recv(fd, receive_.data(), receive_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // the queue overflowed: some answers are gone
        lost = true;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return ErrnoStatus(errno, "recv(nf_tables batch answers)");
    }
    int remaining = static_cast<int>(n);
    for (const nlmsghdr* nlh = reinterpret_cast<const nlmsghdr*>(receive_.data());
         MessageFits(nlh, remaining); nlh = mnl_nlmsg_next(nlh, &remaining)) {
      // Position relative to the batch header; unsigned arithmetic survives wrap-around.
      const uint32_t position = nlh->nlmsg_seq - begin_seq;
      if (position > count) continue;  // an answer to an earlier request
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (position == 0) {
          // An error on the batch header: the commit itself failed.
          if (err->error != 0 && !first_error) {
            first_error = FirstError{count, -err->error, ExtendedAckText(nlh)};
          }
          continue;
        }
        ++acked;
        if (err->error != 0 && !first_error) {
          first_error = FirstError{position - 1, -err->error, ExtendedAckText(nlh)};
        }
      } else if (nlh->nlmsg_type == NftType(NFT_MSG_NEWRULE) && position != 0) {
        result.rule_handles[position - 1] = EchoedRuleHandle(nlh);
      }
    }
  }
  // A refused message or a failed commit means the kernel aborted the batch, whatever
  // else was lost.
  if (first_error) {
    const std::string what =
        first_error->message == count
            ? std::string("nf_tables refused to commit the batch")
            : absl::StrFormat("nf_tables refused to %s", describe(first_error->message));
    return ErrnoStatus(first_error->error,
                       absl::StrFormat("%s%s; the batch of %d messages was rolled back, "
                                       "the kernel is unchanged",
                                       what, first_error->extack, count));
  }
  if (lost || acked != count) {
    return absl::DataLossError(absl::StrFormat(
        "nf_tables answered %d of %d messages%s: the batch's outcome is unknown", acked, count,
        lost ? " (receive queue overflow)" : ""));
  }
  return result;
}

absl::Status NftSocket::SendRequest(uint16_t type, uint16_t family, uint16_t flags,
                                    uint32_t seq, PayloadBuilder build) {
  alignas(nlmsghdr) char buffer[NftBatch::kMaxMessageSize];
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer, type, family, flags, seq);
  build(nlh);
  if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) < 0) {
    return ErrnoStatus(errno, "sendto(nf_tables request)");
  }
  return absl::OkStatus();
}

absl::Status NftSocket::ReadReplies(
    uint32_t seq, bool dump, absl::FunctionRef<absl::Status(const nlmsghdr*)> on_object) {
  const int fd = mnl_socket_get_fd(socket_);
  bool interrupted = false;
  absl::Status callback_status;
  for (;;) {
    pollfd p = {fd, POLLIN, 0};
    const int ready = poll(&p, 1, kReplyTimeoutMs);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return ErrnoStatus(errno, "poll(nf_tables socket)");
    if (ready == 0) return absl::DeadlineExceededError("nf_tables did not answer");
    const ssize_t n = recv(fd, receive_.data(), receive_.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "recv(nf_tables answer)");
    }
    int remaining = static_cast<int>(n);
    for (const nlmsghdr* nlh = reinterpret_cast<const nlmsghdr*>(receive_.data());
         MessageFits(nlh, remaining); nlh = mnl_nlmsg_next(nlh, &remaining)) {
      if (nlh->nlmsg_seq != seq) continue;  // a late answer to an earlier request
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (err->error != 0) {
          return ErrnoStatus(-err->error,
                             absl::StrFormat("nf_tables request%s", ExtendedAckText(nlh)));
        }
        if (!dump) return callback_status;
      } else if (nlh->nlmsg_type == NLMSG_DONE) {
        if (interrupted) {
          return absl::AbortedError("nf_tables dump interrupted by a concurrent change");
        }
        return callback_status;
      } else {
        if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
        // Keep reading after a callback error: the rest of the answer must leave the
        // queue, or it would sit there in front of the next request's.
        if (callback_status.ok()) callback_status = on_object(nlh);
      }
    }
  }
}

absl::Status NftSocket::Dump(uint16_t type, uint16_t family, PayloadBuilder build,
                             absl::FunctionRef<absl::Status(const nlmsghdr*)> on_object) {
  const uint32_t seq = next_seq_++;
  if (absl::Status sent = SendRequest(type, family, NLM_F_DUMP, seq, build); !sent.ok()) {
    return sent;
  }
  return ReadReplies(seq, /*dump=*/true, on_object);
}

absl::Status NftSocket::Get(uint16_t type, uint16_t family, PayloadBuilder build,
                            absl::FunctionRef<absl::Status(const nlmsghdr*)> on_object) {
  const uint32_t seq = next_seq_++;
  if (absl::Status sent = SendRequest(type, family, NLM_F_ACK, seq, build); !sent.ok()) {
    return sent;
  }
  return ReadReplies(seq, /*dump=*/false, on_object);
}

}  // namespace coolify::netlink
