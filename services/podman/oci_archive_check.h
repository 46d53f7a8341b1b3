// A check of an image archive as it streams to Podman, before Podman sees it whole.
//
// A build hands its image over as an unnamed OCI archive (`buildah bud
// --tag=oci-archive:<path>`). Podman's load takes a name from the archive when it carries one
// (index.json's org.opencontainers.image.ref.name annotation; a docker-archive's
// manifest.json or repositories, which Podman falls back to when the OCI load fails), and
// a name taken from a build could replace any image. So only the layout an unnamed OCI
// archive has passes:
//
//   - ustar headers (magic "ustar\0", version "00") with a valid checksum, an empty
//     prefix and link name; no pax ('x', 'g'), GNU long-name ('L', 'K') or any other type
//     than a regular file ('0', '\0') or a directory ('5');
//   - exactly the members `oci-layout`, `index.json`, `blobs/`, `blobs/sha256/` and
//     `blobs/sha256/<64 lowercase hex>`, each at most once, directories of size 0;
//   - index.json at most 64 KiB, holding no backslash (so no escaped key) and no
//     "annotations" key, so no name can ride in it; oci-layout at most 1 KiB;
//   - zero padding, the two zero blocks that end an archive, and only zeros after them.
//
// Pure and bounded: it holds one header, index.json's text and the member names, and at
// most kMaxArchiveMembers of those. Fuzzed (fuzz/oci_archive_fuzzer.cc).
#ifndef COOLD_SERVICES_PODMAN_OCI_ARCHIVE_CHECK_H_
#define COOLD_SERVICES_PODMAN_OCI_ARCHIVE_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace coolify::podman {

inline constexpr size_t kMaxArchiveMembers = 4096;
inline constexpr size_t kMaxIndexJsonBytes = 64 * 1024;

class OciArchiveChecker {
 public:
  // The next bytes of the archive. The first error is final: later calls return it.
  absl::Status Feed(absl::string_view bytes);
  // No more bytes: OK only when a whole archive, with its oci-layout and index.json, has
  // passed.
  absl::Status Finish();

 private:
  enum class State { kHeader, kData, kPadding, kEnd };
  absl::Status Refuse(std::string why);
  absl::Status Header();
  absl::Status MemberDone();

  State state_ = State::kHeader;
  absl::Status error_;
  std::string block_;        // the header being assembled
  int zero_blocks_ = 0;      // zero blocks seen in a row (two end the archive)
  uint64_t remaining_ = 0;   // bytes of the member's data (kData) or padding (kPadding) left
  uint64_t size_ = 0;        // the member's size
  bool capture_ = false;     // the member is index.json
  std::string index_json_;
  std::set<std::string> names_;
};

}  // namespace coolify::podman

#endif  // COOLD_SERVICES_PODMAN_OCI_ARCHIVE_CHECK_H_
