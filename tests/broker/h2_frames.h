// HTTP/2 frames built by hand, for tests that speak to the broker's gRPC port below
// gRPC: the guard's unit test, its fuzzer's seeds and the attack tests.
#ifndef COOLD_TESTS_BROKER_H2_FRAMES_H_
#define COOLD_TESTS_BROKER_H2_FRAMES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace coolify::testing::h2 {

inline constexpr uint8_t kData = 0x0, kHeaders = 0x1, kPriority = 0x2, kRstStream = 0x3, kSettings = 0x4,
                         kPing = 0x6, kGoaway = 0x7, kWindowUpdate = 0x8, kContinuation = 0x9;
inline constexpr uint8_t kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4, kPadded = 0x8;

// The client connection preface (24 bytes).
std::string Preface();
// A frame: 9-byte header (length of `payload`, type, flags, stream) and `payload`.
std::string Frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload);
// A frame header alone, claiming `length` bytes of payload.
std::string FrameHeader(uint32_t length, uint8_t type, uint8_t flags, uint32_t stream);
// An empty SETTINGS frame.
std::string Settings();
// gRPC's 5-byte message prefix (flag, big-endian length) and `body`.
std::string GrpcMessage(const std::string& body, uint8_t flag = 0);
std::string GrpcPrefix(uint32_t length, uint8_t flag = 0);
// An HPACK header block of literal fields (never indexed, no Huffman), which any
// decoder reads without a table.
std::string HeaderBlock(const std::vector<std::pair<std::string, std::string>>& fields);
// The header block of a call to coolify.v1.Agent/Stream with `authorization`.
std::string AgentStreamHeaders(const std::string& authorization);
// RST_STREAM(CANCEL) on `stream`.
std::string RstStream(uint32_t stream);

// A parsed frame of what a server sent.
struct ParsedFrame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream = 0;
  std::string payload;
};
// The whole frames at the start of `bytes` (a trailing partial one is left out).
std::vector<ParsedFrame> ParseFrames(const std::string& bytes);
// The error code of the first GOAWAY in `bytes`, or -1 when there is none.
long GoawayCode(const std::string& bytes);

}  // namespace coolify::testing::h2

#endif  // COOLD_TESTS_BROKER_H2_FRAMES_H_
