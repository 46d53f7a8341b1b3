#include "tests/broker/h2_frames.h"

namespace coolify::testing::h2 {
namespace {

void Put32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

// HPACK's integer with an N-bit prefix (RFC 7541 section 5.1), first byte's high bits
// `high`.
void PutInt(std::string& out, uint8_t high, int prefix_bits, size_t value) {
  const size_t max = (size_t{1} << prefix_bits) - 1;
  if (value < max) {
    out.push_back(static_cast<char>(high | value));
    return;
  }
  out.push_back(static_cast<char>(high | max));
  value -= max;
  while (value >= 128) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

}  // namespace

std::string Preface() { return "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"; }

std::string FrameHeader(uint32_t length, uint8_t type, uint8_t flags, uint32_t stream) {
  std::string out;
  out.push_back(static_cast<char>((length >> 16) & 0xff));
  out.push_back(static_cast<char>((length >> 8) & 0xff));
  out.push_back(static_cast<char>(length & 0xff));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  Put32(out, stream);
  return out;
}

std::string Frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  return FrameHeader(static_cast<uint32_t>(payload.size()), type, flags, stream) + payload;
}

std::string Settings() { return Frame(kSettings, 0, 0, ""); }

std::string GrpcPrefix(uint32_t length, uint8_t flag) {
  std::string out(1, static_cast<char>(flag));
  Put32(out, length);
  return out;
}

std::string GrpcMessage(const std::string& body, uint8_t flag) {
  return GrpcPrefix(static_cast<uint32_t>(body.size()), flag) + body;
}

std::string HeaderBlock(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    out.push_back(0x10);  // literal, never indexed, new name
    PutInt(out, 0, 7, name.size());
    out += name;
    PutInt(out, 0, 7, value.size());
    out += value;
  }
  return out;
}

std::string AgentStreamHeaders(const std::string& authorization) {
  return HeaderBlock({{":method", "POST"},
                      {":scheme", "http"},
                      {":path", "/coolify.v1.Agent/Stream"},
                      {":authority", "broker"},
                      {"content-type", "application/grpc"},
                      {"te", "trailers"},
                      {"authorization", authorization}});
}

std::string RstStream(uint32_t stream) {
  std::string code;
  Put32(code, 0x8);  // CANCEL
  return Frame(kRstStream, 0, stream, code);
}

std::vector<ParsedFrame> ParseFrames(const std::string& bytes) {
  std::vector<ParsedFrame> frames;
  size_t at = 0;
  while (bytes.size() - at >= 9) {
    auto b = [&](size_t i) { return static_cast<uint8_t>(bytes[at + i]); };
    uint32_t length = (uint32_t{b(0)} << 16) | (uint32_t{b(1)} << 8) | b(2);
    if (bytes.size() - at - 9 < length) break;
    ParsedFrame f;
    f.type = b(3);
    f.flags = b(4);
    f.stream = ((uint32_t{b(5)} << 24) | (uint32_t{b(6)} << 16) | (uint32_t{b(7)} << 8) | b(8)) & 0x7fffffffu;
    f.payload = bytes.substr(at + 9, length);
    frames.push_back(std::move(f));
    at += 9 + length;
  }
  return frames;
}

long GoawayCode(const std::string& bytes) {
  for (const ParsedFrame& f : ParseFrames(bytes)) {
    if (f.type != kGoaway || f.payload.size() < 8) continue;
    auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(f.payload[i])); };
    return static_cast<long>((b(4) << 24) | (b(5) << 16) | (b(6) << 8) | b(7));
  }
  return -1;
}

}  // namespace coolify::testing::h2
