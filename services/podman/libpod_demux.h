// The Docker multiplexed stream format that Podman uses for container logs and exec
// output when no TTY is attached: a sequence of frames, each an 8-byte header
// {stream type (0 stdin, 1 stdout, 2 stderr, 3 system error), 0, 0, 0, payload size as
// big-endian uint32} followed by the payload.
//
// DemuxFrames is pure so that a fuzzer can drive it; a streaming caller keeps the bytes
// it did not consume (a partial frame) and calls again once more arrive.
#ifndef COOLD_SERVICES_PODMAN_LIBPOD_DEMUX_H_
#define COOLD_SERVICES_PODMAN_LIBPOD_DEMUX_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace coolify::podman {

enum class StreamKind : uint8_t { kStdin = 0, kStdout = 1, kStderr = 2, kSystemError = 3 };

struct Frame {
  StreamKind stream = StreamKind::kStdout;
  std::string data;
};

struct DemuxResult {
  std::vector<Frame> frames;
  size_t consumed = 0;  // bytes of input that formed complete frames
};

// Splits the complete frames at the start of `bytes`; a trailing partial frame is left
// unconsumed. An unknown stream type or non-zero padding is InvalidArgument (the stream
// is not multiplexed, or is corrupt); a frame larger than `max_frame_bytes` is
// ResourceExhausted and is refused from its header alone, before its payload arrives.
absl::StatusOr<DemuxResult> DemuxFrames(std::string_view bytes, size_t max_frame_bytes);

}  // namespace coolify::podman

#endif  // COOLD_SERVICES_PODMAN_LIBPOD_DEMUX_H_
