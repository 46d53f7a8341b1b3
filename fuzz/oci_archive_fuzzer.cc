// The check an image archive passes on its way from a build to Podman
// (services/podman/oci_archive_check.h): whatever a build wrote, it must not crash, must
// hold only bounded state, and must give the same verdict however the bytes are cut into
// pieces, since the hand-over streams them as they come.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "services/podman/oci_archive_check.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

absl::Status Verdict(absl::string_view archive, size_t piece) {
  coolify::podman::OciArchiveChecker checker;
  for (size_t at = 0; at < archive.size(); at += piece) {
    if (absl::Status s = checker.Feed(archive.substr(at, piece)); !s.ok()) return s;
  }
  return checker.Finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view archive(reinterpret_cast<const char*>(data), size);
  const absl::Status whole = Verdict(archive, archive.size() + 1);
  // A piece size from the input itself: 1..256 bytes.
  const size_t piece = size == 0 ? 1 : 1 + data[size - 1];
  const absl::Status pieces = Verdict(archive, piece);
  Check(whole.ok() == pieces.ok() && whole.message() == pieces.message());
  if (whole.ok()) {
    // An accepted archive holds at least a header and the two end blocks (zeros may
    // follow the end in any number: readers stop at it), and names its index.
    Check(size >= 3 * 512);
    Check(archive.find("index.json") != absl::string_view::npos);
  } else {
    Check(!whole.message().empty());
  }
  return 0;
}
