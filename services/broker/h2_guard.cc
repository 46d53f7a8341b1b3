#include "services/broker/h2_guard.h"

#include <algorithm>

namespace coolify::broker {
namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Frame types (RFC 9113 section 6) and the flags the guard reads.
constexpr uint8_t kData = 0x0;
constexpr uint8_t kHeaders = 0x1;
constexpr uint8_t kPriority = 0x2;
constexpr uint8_t kRstStream = 0x3;
constexpr uint8_t kSettings = 0x4;
constexpr uint8_t kPushPromise = 0x5;
constexpr uint8_t kPing = 0x6;
constexpr uint8_t kGoaway = 0x7;
constexpr uint8_t kWindowUpdate = 0x8;
constexpr uint8_t kContinuation = 0x9;
constexpr uint8_t kFlagEndStream = 0x1;
constexpr uint8_t kFlagAck = 0x1;
constexpr uint8_t kFlagEndHeaders = 0x4;
constexpr uint8_t kFlagPadded = 0x8;

constexpr std::string_view kNames[] = {
    "preface",          "frame_size",      "protocol",       "compressed_message", "message_size",
    "header_block",     "new_streams",     "resets",         "control_frames",     "partial_messages",
    "frame_deadline",   "message_deadline", "tls_handshake", "connection_cap",
    "address_cap",
};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(GuardRefusal::kCount));

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

std::string_view GuardRefusalName(GuardRefusal reason) {
  size_t i = static_cast<size_t>(reason);
  return i < static_cast<size_t>(GuardRefusal::kCount) ? kNames[i] : "unknown";
}

H2Guard::H2Guard(const H2GuardLimits& limits)
    : limits_(limits),
      new_streams_{limits.new_streams.burst, Clock::time_point::min()},
      resets_{limits.resets.burst, Clock::time_point::min()},
      control_frames_{limits.control_frames.burst, Clock::time_point::min()} {}

H2Guard::Verdict H2Guard::Refuse(GuardRefusal reason, H2Error code) {
  refused_ = true;
  refusal_.kind = Verdict::Kind::kRefuse;
  refusal_.reason = reason;
  refusal_.code = code;
  refusal_.deadline = Clock::time_point::max();
  return refusal_;
}

bool H2Guard::Take(Bucket& bucket, const H2Budget& budget, Clock::time_point now) {
  if (bucket.last != Clock::time_point::min() && now > bucket.last) {
    double seconds = std::chrono::duration<double>(now - bucket.last).count();
    bucket.tokens = std::min(budget.burst, bucket.tokens + seconds * budget.per_second);
  }
  bucket.last = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

H2Guard::PartialMessage* H2Guard::Find(uint32_t stream_id) {
  for (PartialMessage& p : partial_) {
    if (p.stream_id == stream_id) return &p;
  }
  return nullptr;
}

// The stream sends no more DATA (END_STREAM, or reset): a message cut short there is
// gRPC's to report on the stream, not the guard's to wait for.
void H2Guard::EndStream(uint32_t stream_id) {
  if (PartialMessage* p = Find(stream_id)) *p = PartialMessage{};
}

H2Guard::Verdict H2Guard::Pending() const {
  Verdict v;
  auto earliest = Clock::time_point::max();
  if (started_ && preface_have_ < kPreface.size()) {
    earliest = std::min(earliest, preface_started_ + limits_.frame_deadline);
  }
  if (header_have_ > 0) earliest = std::min(earliest, frame_started_ + limits_.frame_deadline);
  if (block_stream_ != 0) earliest = std::min(earliest, block_started_ + limits_.frame_deadline);
  for (const PartialMessage& p : partial_) {
    if (p.stream_id != 0) earliest = std::min(earliest, p.started + limits_.message_deadline);
  }
  v.deadline = earliest;
  v.kind = earliest == Clock::time_point::max() ? Verdict::Kind::kOk : Verdict::Kind::kDeadline;
  return v;
}

H2Guard::Verdict H2Guard::Expired(Clock::time_point now) {
  if (refused_) return refusal_;
  Verdict pending = Pending();
  if (pending.kind != Verdict::Kind::kDeadline || now < pending.deadline) return pending;
  // Which one expired decides the label: a message is the longer wait.
  for (const PartialMessage& p : partial_) {
    if (p.stream_id != 0 && now >= p.started + limits_.message_deadline) {
      return Refuse(GuardRefusal::kMessageDeadline, H2Error::kEnhanceYourCalm);
    }
  }
  return Refuse(GuardRefusal::kFrameDeadline, H2Error::kEnhanceYourCalm);
}

H2Guard::Verdict H2Guard::Feed(std::string_view data, Clock::time_point now, size_t* forward) {
  *forward = 0;
  if (refused_) return refusal_;
  if (!started_) {
    // The preface is owed from the first call on, bytes or not.
    started_ = true;
    preface_started_ = now;
  }
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  const size_t size = data.size();
  size_t at = 0;
  // Bytes before the frame being read when this call began, or before one begun in it.
  size_t frame_begin = 0;
  while (at < size) {
    if (preface_have_ < kPreface.size()) {
      size_t n = std::min(size - at, kPreface.size() - preface_have_);
      if (data.substr(at, n) != kPreface.substr(preface_have_, n)) {
        return Refuse(GuardRefusal::kPreface, H2Error::kProtocolError);
      }
      preface_have_ += n;
      at += n;
      frame_begin = at;
      continue;
    }
    if (header_have_ < header_.size()) {
      if (header_have_ == 0) {
        frame_started_ = now;
        frame_begin = at;
      }
      size_t n = std::min(size - at, header_.size() - header_have_);
      std::copy(p + at, p + at + n, header_.begin() + header_have_);
      header_have_ += static_cast<uint8_t>(n);
      at += n;
      if (header_have_ < header_.size()) break;
      Verdict v = OnFrameHeader(now);
      if (v.kind == Verdict::Kind::kRefuse) {
        *forward = frame_begin;
        return v;
      }
    }
    size_t n = std::min<size_t>(size - at, length_ - payload_done_);
    Verdict v = OnPayload(p + at, n, now);
    if (v.kind == Verdict::Kind::kRefuse) {
      *forward = frame_begin;
      return v;
    }
    payload_done_ += static_cast<uint32_t>(n);
    at += n;
    if (payload_done_ == length_) {
      header_have_ = 0;  // the frame is whole
      frame_begin = at;
    }
  }
  *forward = size;
  Verdict pending = Pending();
  // A deadline already passed is refused now, not at the caller's next timer.
  if (pending.kind == Verdict::Kind::kDeadline && now >= pending.deadline) return Expired(now);
  return pending;
}

H2Guard::Verdict H2Guard::OnFrameHeader(Clock::time_point now) {
  length_ = (uint32_t{header_[0]} << 16) | (uint32_t{header_[1]} << 8) | uint32_t{header_[2]};
  type_ = header_[3];
  flags_ = header_[4];
  stream_id_ = Be32(&header_[5]) & 0x7fffffffu;
  payload_done_ = 0;
  data_end_ = 0;
  if (length_ > limits_.max_frame_bytes) return Refuse(GuardRefusal::kFrameSize, H2Error::kFrameSizeError);

  // Inside a header block only its CONTINUATIONs may come (RFC 9113 section 6.10).
  if (block_stream_ != 0) {
    if (type_ != kContinuation || stream_id_ != block_stream_) {
      return Refuse(GuardRefusal::kProtocol, H2Error::kProtocolError);
    }
    block_bytes_ += length_;
    if (++block_continuations_ > limits_.max_continuations || block_bytes_ > limits_.max_header_block_bytes) {
      return Refuse(GuardRefusal::kHeaderBlock, H2Error::kEnhanceYourCalm);
    }
    if (flags_ & kFlagEndHeaders) block_stream_ = 0;
    return Verdict{};
  }

  switch (type_) {
    case kData:
      if (stream_id_ == 0 || stream_id_ % 2 == 0) return Refuse(GuardRefusal::kProtocol, H2Error::kProtocolError);
      if ((flags_ & kFlagPadded) && length_ == 0) return Refuse(GuardRefusal::kProtocol, H2Error::kProtocolError);
      if (!(flags_ & kFlagPadded)) data_end_ = length_;
      if (length_ == 0 && !(flags_ & kFlagEndStream) &&
          !Take(control_frames_, limits_.control_frames, now)) {
        return Refuse(GuardRefusal::kControlFrames, H2Error::kEnhanceYourCalm);
      }
      if (length_ == 0 && (flags_ & kFlagEndStream)) EndStream(stream_id_);
      return Verdict{};
    case kHeaders:
      if (stream_id_ == 0 || stream_id_ % 2 == 0) return Refuse(GuardRefusal::kProtocol, H2Error::kProtocolError);
      if (length_ > limits_.max_header_block_bytes) {
        return Refuse(GuardRefusal::kHeaderBlock, H2Error::kEnhanceYourCalm);
      }
      if (stream_id_ > last_stream_id_) {
        if (!Take(new_streams_, limits_.new_streams, now)) {
          return Refuse(GuardRefusal::kNewStreams, H2Error::kEnhanceYourCalm);
        }
        last_stream_id_ = stream_id_;
      }
      if (!(flags_ & kFlagEndHeaders)) {
        block_stream_ = stream_id_;
        block_bytes_ = length_;
        block_continuations_ = 0;
        block_started_ = now;
      }
      // A HEADERS with END_STREAM ends what the client sends on the stream (trailers,
      // or a call without messages).
      if (flags_ & kFlagEndStream) EndStream(stream_id_);
      return Verdict{};
    case kContinuation:
      return Refuse(GuardRefusal::kProtocol, H2Error::kProtocolError);
    case kRstStream:
      if (!Take(resets_, limits_.resets, now)) return Refuse(GuardRefusal::kResets, H2Error::kEnhanceYourCalm);
      EndStream(stream_id_);
      return Verdict{};
    case kSettings:
    case kPing:
      if (!(flags_ & kFlagAck) && !Take(control_frames_, limits_.control_frames, now)) {
        return Refuse(GuardRefusal::kControlFrames, H2Error::kEnhanceYourCalm);
      }
      return Verdict{};
    case kWindowUpdate:
    case kGoaway:
      return Verdict{};
    case kPushPromise:
      // Clients never push (RFC 9113 section 8.4).
      return Refuse(GuardRefusal::kProtocol, H2Error::kProtocolError);
    case kPriority:
    default:  // unknown types are ignored by the receiver, and cost it a read
      if (!Take(control_frames_, limits_.control_frames, now)) {
        return Refuse(GuardRefusal::kControlFrames, H2Error::kEnhanceYourCalm);
      }
      return Verdict{};
  }
}

H2Guard::Verdict H2Guard::OnPayload(const uint8_t* data, size_t n, Clock::time_point now) {
  if (type_ != kData || n == 0) return Verdict{};
  size_t i = 0;
  if ((flags_ & kFlagPadded) && payload_done_ == 0) {
    // The pad length, then data, then that many bytes of padding.
    uint32_t pad = data[0];
    if (pad + 1 > length_) return Refuse(GuardRefusal::kProtocol, H2Error::kProtocolError);
    data_end_ = length_ - pad;
    i = 1;
  }
  const uint32_t done = payload_done_ + static_cast<uint32_t>(i);
  if (done < data_end_) {
    size_t take = std::min<size_t>(n - i, data_end_ - done);
    Verdict v = OnMessageBytes(data + i, take, now);
    if (v.kind == Verdict::Kind::kRefuse) return v;
  }
  if (payload_done_ + n == length_ && (flags_ & kFlagEndStream)) EndStream(stream_id_);
  return Verdict{};
}

// DATA bytes of stream stream_id_: gRPC messages, each a 5-byte prefix (flag, length)
// and that many bytes.
H2Guard::Verdict H2Guard::OnMessageBytes(const uint8_t* data, size_t n, Clock::time_point now) {
  PartialMessage* m = Find(stream_id_);
  size_t i = 0;
  while (i < n) {
    if (m == nullptr) {
      m = Find(0);
      if (m == nullptr) return Refuse(GuardRefusal::kPartialMessages, H2Error::kEnhanceYourCalm);
      m->stream_id = stream_id_;
      m->started = now;
    }
    if (m->prefix_have < m->prefix.size()) {
      size_t take = std::min(n - i, m->prefix.size() - m->prefix_have);
      std::copy(data + i, data + i + take, m->prefix.begin() + m->prefix_have);
      m->prefix_have += static_cast<uint8_t>(take);
      i += take;
      if (m->prefix_have < m->prefix.size()) break;
      if (m->prefix[0] == 1) return Refuse(GuardRefusal::kCompressedMessage, H2Error::kProtocolError);
      if (m->prefix[0] != 0) return Refuse(GuardRefusal::kProtocol, H2Error::kProtocolError);
      m->remaining = Be32(&m->prefix[1]);
      if (m->remaining > limits_.max_message_bytes) {
        return Refuse(GuardRefusal::kMessageSize, H2Error::kEnhanceYourCalm);
      }
    }
    size_t take = std::min<size_t>(n - i, m->remaining);
    m->remaining -= static_cast<uint32_t>(take);
    i += take;
    if (m->remaining == 0) {
      *m = PartialMessage{};  // whole: the stream is between messages again
      m = nullptr;
    }
  }
  return Verdict{};
}

std::string H2Guard::Goaway(const Verdict& refusal) const {
  std::string_view debug = GuardRefusalName(refusal.reason);
  const uint32_t length = 8 + static_cast<uint32_t>(debug.size());
  const uint32_t code = static_cast<uint32_t>(refusal.code);
  std::string frame;
  frame.reserve(9 + length);
  auto put32 = [&frame](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) frame.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  frame.push_back(static_cast<char>((length >> 16) & 0xff));
  frame.push_back(static_cast<char>((length >> 8) & 0xff));
  frame.push_back(static_cast<char>(length & 0xff));
  frame.push_back(static_cast<char>(kGoaway));
  frame.push_back(0);  // flags
  put32(0);            // stream 0
  put32(last_stream_id_);
  put32(code);
  frame.append(debug);
  return frame;
}

void H2FrameBoundary::Consume(const uint8_t* data, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (payload_left_ > 0) {
      size_t take = std::min<size_t>(n - i, payload_left_);
      payload_left_ -= static_cast<uint32_t>(take);
      i += take;
      continue;
    }
    size_t take = std::min(n - i, header_.size() - header_have_);
    std::copy(data + i, data + i + take, header_.begin() + header_have_);
    header_have_ += static_cast<uint8_t>(take);
    i += take;
    if (header_have_ == header_.size()) {
      payload_left_ = (uint32_t{header_[0]} << 16) | (uint32_t{header_[1]} << 8) | uint32_t{header_[2]};
      header_have_ = 0;
    }
  }
}

size_t H2FrameBoundary::ToBoundary() const {
  if (header_have_ > 0) return header_.size() - header_have_;
  return payload_left_;
}

}  // namespace coolify::broker
