#include "services/podman/image_load.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "privsep/log.h"
#include "services/builder/options.h"
#include "services/podman/libpod_path.h"
#include "services/podman/oci_archive_check.h"

namespace coolify::podman {

absl::StatusOr<std::string> LoadedImageId(absl::string_view body) {
  // Podman's JSON with its blanks removed must be exactly this: one name, the image id.
  constexpr absl::string_view kHead = R"({"Names":["sha256:)", kTail = R"("]})";
  if (body.size() > 4096) return absl::InvalidArgumentError("podman's load answer is too long");
  std::string compact;
  for (char c : body) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) compact.push_back(c);
  }
  absl::string_view rest = compact;
  if (!absl::ConsumePrefix(&rest, kHead) || !absl::ConsumeSuffix(&rest, kTail) || rest.size() != 64 ||
      rest.find_first_not_of("0123456789abcdef") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("podman's load answer does not name exactly one image id: ", compact.substr(0, 200)));
  }
  return std::string(rest);
}

absl::StatusOr<privsep::PodmanImageLoaded> LoadImage(const LibpodClient& client,
                                                     const std::vector<std::string>& namespaces,
                                                     const std::string& name, int archive_fd) {
  absl::StatusOr<build::TargetImage> target = build::ParseTargetImage(name, namespaces);
  if (!target.ok()) {
    // The builder's grammar speaks of its flag; here the name is the request's.
    absl::string_view why = target.status().message();
    absl::ConsumePrefix(&why, "--image: ");
    LogWarn("image name %s refused: %s", absl::CHexEscape(name), why);
    return absl::InvalidArgumentError(absl::StrCat("image name: ", why));
  }
  struct stat st;
  if (fstat(archive_fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError("image archive: not a regular file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0 || size > kMaxImageArchiveBytes) return absl::InvalidArgumentError("image archive: empty or over 64 GiB");

  absl::StatusOr<std::string> load = BuildTarget({{SegmentKind::kLiteral, "images"}, {SegmentKind::kLiteral, "load"}});
  if (!load.ok()) return load.status();
  OciArchiveChecker checker;
  std::string piece(256 * 1024, '\0');
  uint64_t offset = 0;
  absl::Status refused;
  absl::StatusOr<HttpResult> loaded = client.Upload(*load, "application/x-tar", size, [&]() -> absl::StatusOr<std::string_view> {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(piece.size(), size - offset));
    ssize_t n;
    do {
      n = pread(archive_fd, piece.data(), want, static_cast<off_t>(offset));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return absl::InvalidArgumentError("image archive: shorter than its size");
    const std::string_view bytes(piece.data(), static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
    // Checked before Podman gets them; the last piece only once the whole archive passed.
    if (absl::Status s = checker.Feed(absl::string_view(bytes.data(), bytes.size())); !s.ok()) return refused = s;
    if (offset == size) {
      if (absl::Status s = checker.Finish(); !s.ok()) return refused = s;
    }
    return bytes;
  });
  if (!refused.ok()) {
    LogWarn("image %s refused: %s", name, refused.ToString());
    return refused;
  }
  if (!loaded.ok()) return loaded.status();
  if (absl::Status s = StatusFromResponse(loaded->status, loaded->body); !s.ok()) return s;
  absl::StatusOr<std::string> id = LoadedImageId(loaded->body);
  if (!id.ok()) return id.status();

  absl::StatusOr<std::string> tag = BuildTarget(
      {{SegmentKind::kLiteral, "images"}, {SegmentKind::kName, *id}, {SegmentKind::kLiteral, "tag"}},
      {{"repo", SegmentKind::kImageRef, target->repository}, {"tag", SegmentKind::kQueryText, target->tag}});
  if (!tag.ok()) return tag.status();
  absl::StatusOr<HttpResult> tagged = client.Call(Method::kPost, *tag);
  if (!tagged.ok()) return tagged.status();
  if (absl::Status s = StatusFromResponse(tagged->status, tagged->body); !s.ok()) return s;
  LogInfo("image %s handed over as %s", *id, name);
  privsep::PodmanImageLoaded result;
  result.set_image_id(*id);
  result.set_name(name);
  return result;
}

}  // namespace coolify::podman
