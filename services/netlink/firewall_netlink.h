// A NETLINK_NETFILTER socket speaking nf_tables: transactional batches, dumps and single
// object lookups.
//
// Batch contract (Commit): the messages go to the kernel in ONE sendmsg framed by
// NFNL_MSG_BATCH_BEGIN/END. Every message carries NLM_F_ACK, so the kernel answers each
// one; acks are matched to messages by sequence number. nf_tables applies a batch as one
// transaction: if any message fails, or the commit itself fails, the kernel aborts the
// whole batch and the ruleset is exactly as before. Commit then returns the first error,
// naming the message that caused it; the error code follows the errno
// (ENOENT -> NotFound, EEXIST -> AlreadyExists, EPERM -> PermissionDenied, ...).
// If the kernel's answers cannot all be read (the receive queue overflowed), nobody can
// tell whether the batch committed: Commit returns DataLossError and the caller must
// re-read the kernel before trusting its own view.
//
// Rule messages sent with NLM_F_ECHO get the kernel's copy of the new rule back, from
// which Commit reads the handle the kernel assigned: learning handles costs nothing per
// existing rule, unlike listing the chain.
#ifndef COOLD_SERVICES_NETLINK_FIREWALL_NETLINK_H_
#define COOLD_SERVICES_NETLINK_FIREWALL_NETLINK_H_

#include <linux/netlink.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "privsep/unique_fd.h"

struct mnl_socket;

namespace coolify::netlink {

// mnl_nlmsg_ok, and a message length no longer than what is left: libmnl compares the
// length as a signed int, so one of 2 GiB or more would pass its check alone.
bool MessageFits(const nlmsghdr* nlh, int remaining);

// Writes a message's payload (attributes) after its nfgenmsg header.
using PayloadBuilder = absl::FunctionRef<void(nlmsghdr*)>;

// Names message `i` of a batch in errors ("add rule 3f2a... to ip filter COOLIFY-ALLOW").
// Called only when the kernel refuses a message, so a batch stores no text.
using MessageDescriber = absl::FunctionRef<std::string(size_t)>;

// Messages of one nf_tables batch, in order. They are built in place into fixed-size
// chunks, which are handed to sendmsg as they are: a big batch is neither zero-filled,
// moved when it grows, nor copied before sending.
class NftBatch {
 public:
  // Appends one nf_tables message (NFT_MSG_* `type`) for `family` with NLM_F_REQUEST |
  // NLM_F_ACK | `flags`; `build` writes at most kMaxMessageSize bytes in all. Returns
  // the message's position in the batch.
  size_t Add(uint16_t type, uint16_t family, uint16_t flags, PayloadBuilder build);

  // Sets `flags` on message `message` in addition to those it has.
  void AddFlags(size_t message, uint16_t flags);

  size_t size() const { return messages_.size(); }
  bool empty() const { return messages_.empty(); }

  static constexpr size_t kMaxMessageSize = 4096;

 private:
  friend class NftSocket;

  static constexpr size_t kChunkSize = 256 * 1024;
  struct Chunk {
    std::unique_ptr<char[]> data;
    size_t used = 0;
  };

  std::vector<Chunk> chunks_;
  std::vector<nlmsghdr*> messages_;  // into chunks_, whose storage never moves
};

struct BatchResult {
  // For each message of the batch, in order: the handle of the rule it created when it
  // was a NEWRULE sent with NLM_F_ECHO, else 0 (the kernel never assigns handle 0).
  std::vector<uint64_t> rule_handles;
};

class NftSocket {
 public:
  // Opens and binds a new socket. Needs no privilege; writing needs CAP_NET_ADMIN.
  static absl::StatusOr<NftSocket> Open();
  // Takes over `fd`, which must be an AF_NETLINK socket of protocol NETLINK_NETFILTER.
  static absl::StatusOr<NftSocket> Adopt(privsep::UniqueFd fd);

  NftSocket(NftSocket&& other) noexcept;
  NftSocket& operator=(NftSocket&& other) noexcept;
  NftSocket(const NftSocket&) = delete;
  NftSocket& operator=(const NftSocket&) = delete;
  ~NftSocket();

  // Sends `batch` as one transaction and reads every answer; see the contract above.
  // Stamps the messages' sequence numbers into `batch`. An empty batch is not sent.
  absl::StatusOr<BatchResult> Commit(NftBatch& batch, MessageDescriber describe);

  // Sends one NLM_F_DUMP request and calls `on_object` for every object of the answer.
  // AbortedError when the kernel flags the dump as interrupted by a concurrent change
  // (NLM_F_DUMP_INTR): the caller should dump again.
  absl::Status Dump(uint16_t type, uint16_t family, PayloadBuilder build,
                    absl::FunctionRef<absl::Status(const nlmsghdr*)> on_object);

  // Sends one non-dump GET and calls `on_object` with the answer. NotFoundError when the
  // object does not exist.
  absl::Status Get(uint16_t type, uint16_t family, PayloadBuilder build,
                   absl::FunctionRef<absl::Status(const nlmsghdr*)> on_object);

 private:
  explicit NftSocket(mnl_socket* socket);

  absl::Status Configure();
  absl::Status EnsureBufferSizes(size_t send_bytes, size_t receive_bytes);
  absl::Status SendRequest(uint16_t type, uint16_t family, uint16_t flags, uint32_t seq,
                           PayloadBuilder build);
  absl::Status ReadReplies(uint32_t seq, bool dump,
                           absl::FunctionRef<absl::Status(const nlmsghdr*)> on_object);

  mnl_socket* socket_ = nullptr;
  uint32_t next_seq_ = 0;
  int send_buffer_ = 0;     // bytes the kernel accepts in one sendmsg, as last set
  int receive_buffer_ = 0;  // receive queue size, as last set
  std::vector<char> receive_;
};

}  // namespace coolify::netlink

#endif  // COOLD_SERVICES_NETLINK_FIREWALL_NETLINK_H_
