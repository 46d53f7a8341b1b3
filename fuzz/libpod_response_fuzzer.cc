// Podman's answers through the pure response parsers: the first byte picks the parser so
// that one corpus exercises all three, and the rest is the untrusted input.
//   0: ParseHttpResponseHead on the head FindHeadEnd delimits, then DecodeChunked on what
//      follows when the head says chunked
//   1: DecodeChunked on the whole input, and ChunkedDecoder fed in 7-byte pieces, which
//      must agree with it
//   2: DemuxFrames, re-run on each unconsumed remainder as a streaming caller would
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "services/podman/libpod_demux.h"
#include "services/podman/libpod_http_parse.h"

using coolify::podman::BodyFraming;
using coolify::podman::ChunkedDecoder;
using coolify::podman::DecodeChunked;
using coolify::podman::DemuxFrames;
using coolify::podman::FindHeadEnd;
using coolify::podman::ParseHttpResponseHead;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 3;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  constexpr uint64_t kCap = 1 << 16;
  switch (mode) {
    case 0: {
      size_t end = FindHeadEnd(in);
      if (end == 0) break;
      auto head = ParseHttpResponseHead(in.substr(0, end));
      if (head.ok() && head->framing == BodyFraming::kChunked) {
        (void)DecodeChunked(in.substr(end), kCap);
      }
      break;
    }
    case 1: {
      auto whole = DecodeChunked(in, kCap);
      ChunkedDecoder decoder(kCap);
      std::string out;
      size_t used = 0;
      bool failed = false;
      for (size_t i = 0; i < in.size() && !decoder.done(); i += 7) {
        auto n = decoder.Feed(in.substr(i, 7), &out);
        if (!n.ok()) {
          failed = true;
          break;
        }
        used += *n;
      }
      if (out.size() > kCap) abort();
      // Success on the whole input must mean the piecewise decoder finished with the
      // same bytes having consumed everything.
      if (whole.ok() && (failed || !decoder.done() || used != in.size() || out != *whole)) abort();
      break;
    }
    case 2: {
      std::string_view rest = in;
      for (int round = 0; round < 4; ++round) {
        auto r = DemuxFrames(rest, 4096);
        if (!r.ok() || r->consumed == 0) break;
        if (r->consumed > rest.size()) abort();
        for (const auto& frame : r->frames) {
          if (frame.data.size() > 4096) abort();
        }
        rest.remove_prefix(r->consumed);
      }
      break;
    }
  }
  return 0;
}
