// Frames are validated from their header alone so that a hostile size cannot make the
// caller wait for, or buffer, gigabytes before the error is noticed.
#include "services/podman/libpod_demux.h"

#include "absl/status/status.h"

namespace coolify::podman {

absl::StatusOr<DemuxResult> DemuxFrames(std::string_view bytes, size_t max_frame_bytes) {
  constexpr size_t kHeader = 8;
  DemuxResult out;
  while (bytes.size() - out.consumed >= kHeader) {
    const auto* h = reinterpret_cast<const unsigned char*>(bytes.data() + out.consumed);
    if (h[0] > 3) return absl::InvalidArgumentError("multiplexed stream: unknown stream type");
    if (h[1] != 0 || h[2] != 0 || h[3] != 0) {
      return absl::InvalidArgumentError("multiplexed stream: non-zero header padding");
    }
    uint32_t size = (uint32_t{h[4]} << 24) | (uint32_t{h[5]} << 16) | (uint32_t{h[6]} << 8) |
                    uint32_t{h[7]};
    if (size > max_frame_bytes) {
      return absl::ResourceExhaustedError("multiplexed stream: frame exceeds its cap");
    }
    if (bytes.size() - out.consumed - kHeader < size) break;
    out.frames.push_back(Frame{static_cast<StreamKind>(h[0]),
                               std::string(bytes.substr(out.consumed + kHeader, size))});
    out.consumed += kHeader + size;
  }
  return out;
}

}  // namespace coolify::podman
