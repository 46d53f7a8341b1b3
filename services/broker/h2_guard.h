// H2Guard: the limits gRPC 1.51 lacks, checked on the bytes a peer sends to the broker's
// gRPC port (after TLS, before gRPC reads them). A pure state machine: it is fed each chunk
// as it arrives and says how much of it may go on to gRPC, and whether the connection is
// fine, owes bytes by a deadline, or must be refused with a GOAWAY.
//
// It parses the connection preface, each 9-byte frame header, and of the payloads only
// what it must: DATA's pad length and the 5-byte gRPC message prefixes inside DATA (flag
// byte and length), per stream. It never decodes HPACK and never keeps a payload: its
// state is a few hundred bytes whatever the peer sends.
//
// Refused, with the GOAWAY code in brackets:
//   preface         the 24-byte client preface does not match          [PROTOCOL_ERROR]
//   frame_size      a frame longer than 16384 (the server never         [FRAME_SIZE_ERROR]
//                   advertises more than HTTP/2's default)
//   protocol        DATA or HEADERS on stream 0 or an even stream, a    [PROTOCOL_ERROR]
//                   pad length beyond the frame, a CONTINUATION out of
//                   place, any other frame inside a header block, a
//                   reserved message flag
//   compressed_message  a gRPC message with its compressed flag set    [PROTOCOL_ERROR]
//                   (the broker enables no compression)
//   message_size    a gRPC message prefix promising > 4 MiB, refused   [ENHANCE_YOUR_CALM]
//                   from its 5 bytes, before any of it is forwarded
//   header_block    a header block (HEADERS + CONTINUATIONs) beyond     [ENHANCE_YOUR_CALM]
//                   32 KiB or 16 CONTINUATION frames
//   new_streams     new streams faster than the stream budget          [ENHANCE_YOUR_CALM]
//   resets          RST_STREAM faster than the reset budget (rapid     [ENHANCE_YOUR_CALM]
//                   reset, CVE-2023-44487)
//   control_frames  SETTINGS / PING (each answered by the server),     [ENHANCE_YOUR_CALM]
//                   PRIORITY, empty DATA and unknown frames faster
//                   than their budget
//   partial_messages more streams in the middle of a message than the  [ENHANCE_YOUR_CALM]
//                   guard tracks (the server allows 4 concurrent streams)
//   frame_deadline  a frame or a header block begun and not finished   [ENHANCE_YOUR_CALM]
//                   within 10 s; the preface not whole 10 s after the
//                   connection was ready
//   message_deadline a gRPC message begun and not finished within 30 s [ENHANCE_YOUR_CALM]
// The listener (guarded_listener.h) adds tls_handshake and connection_cap.
#ifndef COOLD_SERVICES_BROKER_H2_GUARD_H_
#define COOLD_SERVICES_BROKER_H2_GUARD_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "services/commands/stream_limits.h"

namespace coolify::broker {

// HTTP/2 error codes (RFC 9113 section 7) the guard sends.
enum class H2Error : uint32_t {
  kNoError = 0x0,
  kProtocolError = 0x1,
  kFrameSizeError = 0x6,
  kEnhanceYourCalm = 0xb,
};

// Why a connection to the gRPC port was refused: the label of
// broker_refusals_total{reason} and of the log line.
enum class GuardRefusal : uint8_t {
  kPreface,
  kFrameSize,
  kProtocol,
  kCompressedMessage,
  kMessageSize,
  kHeaderBlock,
  kNewStreams,
  kResets,
  kControlFrames,
  kPartialMessages,
  kFrameDeadline,
  kMessageDeadline,
  // The listener's own, never the guard's:
  kTlsHandshake,   // failed, or not done within the handshake deadline
  kConnectionCap,  // more connections than the listener holds
  kAddressCap,     // more connections from one source than it holds from one
  kCount,
};
// "frame_size", ...: lower case, for metrics and logs.
std::string_view GuardRefusalName(GuardRefusal reason);

// A budget of events: `burst` at once, refilled at `per_second`. Eight bytes of state per
// budget, whatever the peer does (a window of timestamps would cost one per event).
struct H2Budget {
  double burst;
  double per_second;
};

struct H2GuardLimits {
  // HTTP/2's default SETTINGS_MAX_FRAME_SIZE; the broker's gRPC never advertises more.
  uint32_t max_frame_bytes = 16384;
  // The broker's gRPC message cap (SetMaxReceiveMessageSize).
  uint32_t max_message_bytes = commands::kMaxStreamMessageBytes;
  // gRPC's metadata cap is 16 KiB decoded; HPACK's encoding of it is smaller with
  // Huffman and a few bytes per field larger without: twice the cap bounds the memory
  // and leaves every honest header block through.
  uint32_t max_header_block_bytes = 32 * 1024;
  // A 32 KiB block needs 2 CONTINUATIONs at full frame size; 16 leaves room for clients
  // that split finer and stops floods of empty ones.
  uint32_t max_continuations = 16;
  // A host opens one stream per connection and a new one only after its last ended.
  H2Budget new_streams = {32, 2};
  // A host cancels its stream at most on shutdown; a rapid-reset flood resets thousands.
  H2Budget resets = {16, 1};
  // SETTINGS and PING cost the server an answer each; gRPC clients ping for keepalive
  // and bandwidth probes (a few per second while data flows). PRIORITY, empty DATA and
  // unknown frame types cost gRPC work and carry nothing.
  H2Budget control_frames = {256, 16};
  // A frame (or the preface, or a header block) must arrive whole this long after its
  // first byte: 16 KiB in 10 s is 1.6 KB/s, far below any host's link.
  std::chrono::milliseconds frame_deadline{10000};
  // A gRPC message must arrive whole this long after its prefix began: 4 MiB in 30 s
  // needs 140 KB/s, which gRPC's 64 KiB stream window reaches at up to 450 ms of RTT.
  std::chrono::milliseconds message_deadline{30000};
};

class H2Guard {
 public:
  using Clock = std::chrono::steady_clock;

  struct Verdict {
    enum class Kind { kOk, kDeadline, kRefuse };
    Kind kind = Kind::kOk;
    // kDeadline: when the earliest partly received frame or message times out (call
    // Expired then). Also set with kOk to Clock::time_point::max().
    Clock::time_point deadline = Clock::time_point::max();
    // kRefuse: the reason and the GOAWAY's code.
    GuardRefusal reason = GuardRefusal::kCount;
    H2Error code = H2Error::kNoError;
  };

  explicit H2Guard(const H2GuardLimits& limits = {});

  // The next `data` the peer sent, at `now`. `*forward` is set to how many of its
  // leading bytes may be given to gRPC: all of them unless refused, then those before
  // the frame that was refused. After a refusal every further call refuses again. The
  // first call, empty or not, starts the preface's deadline: the listener makes one
  // when the connection is ready, so a peer that sends nothing is refused too.
  Verdict Feed(std::string_view data, Clock::time_point now, size_t* forward);
  // At a deadline a verdict gave: refuses when anything is still partly received.
  Verdict Expired(Clock::time_point now);

  // The GOAWAY frame for a refusal: the last stream id seen, `code`, and the reason's
  // name as debug data.
  std::string Goaway(const Verdict& refusal) const;

  uint32_t last_stream_id() const { return last_stream_id_; }

 private:
  // A stream in the middle of a gRPC message: only those need state.
  struct PartialMessage {
    uint32_t stream_id = 0;  // 0: slot free
    uint8_t prefix_have = 0;  // of the 5 prefix bytes
    std::array<uint8_t, 5> prefix{};
    uint32_t remaining = 0;  // message bytes still to come once the prefix is whole
    Clock::time_point started;
  };
  struct Bucket {
    double tokens;
    Clock::time_point last;
  };
  static constexpr size_t kMaxPartialMessages = 8;

  Verdict Refuse(GuardRefusal reason, H2Error code);
  bool Take(Bucket& bucket, const H2Budget& budget, Clock::time_point now);
  // Frame header complete: checks it; kOk to go on with its payload.
  Verdict OnFrameHeader(Clock::time_point now);
  // Frame payload bytes [payload_done_, payload_done_ + n) of the current frame.
  Verdict OnPayload(const uint8_t* data, size_t n, Clock::time_point now);
  Verdict OnMessageBytes(const uint8_t* data, size_t n, Clock::time_point now);
  void EndStream(uint32_t stream_id);
  PartialMessage* Find(uint32_t stream_id);
  Verdict Pending() const;

  const H2GuardLimits limits_;
  bool refused_ = false;
  Verdict refusal_;
  bool started_ = false;
  size_t preface_have_ = 0;
  Clock::time_point preface_started_;
  // The current frame: its header as it arrives, then what is parsed of it.
  std::array<uint8_t, 9> header_{};
  uint8_t header_have_ = 0;
  Clock::time_point frame_started_;
  uint32_t length_ = 0;
  uint8_t type_ = 0;
  uint8_t flags_ = 0;
  uint32_t stream_id_ = 0;
  uint32_t payload_done_ = 0;
  // DATA: its pad length (once read) and where its data bytes end.
  uint32_t data_end_ = 0;
  // An open header block: its stream (0: none), bytes and CONTINUATIONs so far.
  uint32_t block_stream_ = 0;
  uint32_t block_bytes_ = 0;
  uint32_t block_continuations_ = 0;
  Clock::time_point block_started_;
  uint32_t last_stream_id_ = 0;
  std::array<PartialMessage, kMaxPartialMessages> partial_{};
  Bucket new_streams_;
  Bucket resets_;
  Bucket control_frames_;
};

// Where a byte stream of HTTP/2 frames stands between frames: the server's side, so the
// listener can put its GOAWAY after a whole frame, never inside one. The server's side
// starts with its SETTINGS frame (servers send no 24-byte preface).
class H2FrameBoundary {
 public:
  // Reads `n` more bytes of the stream.
  void Consume(const uint8_t* data, size_t n);
  // Bytes still to come before the stream is between two frames (0: it is now). Known
  // only once a frame's 9-byte header is whole; before that, its missing header bytes.
  size_t ToBoundary() const;

 private:
  std::array<uint8_t, 9> header_{};
  uint8_t header_have_ = 0;
  uint32_t payload_left_ = 0;
};

}  // namespace coolify::broker

#endif  // COOLD_SERVICES_BROKER_H2_GUARD_H_
