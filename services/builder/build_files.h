// The files of one build's work directory and their one reader and writer.
//
//   events.ndjson  one BuildEventRecord per line, appended as the build goes
//   result.json    BuildResultFile, written once, atomically, when the build succeeded
//   error.json     BuildErrorFile, written once, atomically, when it failed or was cancelled
//   image.tar      the image, an OCI archive without a name, written before result.json
//
// The builder writes them; coold's front end parses them (a build runs untrusted code, so
// what it wrote is untrusted and is never parsed by a privileged process). Parsing is
// strict: protobuf's JSON mapping with unknown fields and duplicate keys refused, then
// each field checked against its grammar, so a reader acts only on well-formed values.
#ifndef COOLD_SERVICES_BUILDER_BUILD_FILES_H_
#define COOLD_SERVICES_BUILDER_BUILD_FILES_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/build.pb.h"

namespace coolify::build {

inline constexpr char kEventsFile[] = "events.ndjson";
inline constexpr char kResultFile[] = "result.json";
inline constexpr char kErrorFile[] = "error.json";
// The built image as an unnamed OCI archive, for the launcher to hand to Podman.
inline constexpr char kImageArchiveFile[] = "image.tar";

// A progress line longer than this is cut (and marked with "..."), so one event always
// fits a channel frame.
inline constexpr size_t kMaxEventLineBytes = 4096;
// An events.ndjson line, JSON and all, is at most this long.
inline constexpr size_t kMaxEventRecordBytes = 16384;
// events.ndjson holds at most this much of the tools' output (git's and buildah's lines):
// beyond it the builder records one line saying so and nothing more of their output, only
// its own closing lines (the end of a phase, the failure, "done"), at most
// kMaxEventsClosingBytes more. The build goes on; its outcome does not depend on it.
inline constexpr size_t kMaxEventsFileBytes = 16 << 20;
inline constexpr size_t kMaxEventsClosingBytes = 256 * 1024;
// result.json and error.json are at most this long.
inline constexpr size_t kMaxOutcomeBytes = 65536;
inline constexpr size_t kMaxTags = 16;

// True for the phases a build goes through: clone, build, export, done (and usage, the
// phase of an error found before anything ran, and sandbox, that of a jail that could
// not be made).
bool IsPhase(absl::string_view phase);

// A request id: [A-Za-z0-9_-], 1..64 characters. It names a work directory and a cgroup,
// so nothing else may reach a path.
bool IsRequestId(absl::string_view id);

// An image name with an optional tag or digest: [a-z0-9] first, then [a-zA-Z0-9._/:@-],
// at most 255 characters.
bool IsImageReference(absl::string_view ref);

// `text` cut to at most `max_bytes` on a UTF-8 boundary, invalid UTF-8 and control
// characters other than tab replaced by '?', so it always serializes.
std::string SanitizeLine(absl::string_view text, size_t max_bytes = kMaxEventLineBytes);

// One events.ndjson line, '\n' included. The record's line is sanitized first.
std::string EventLine(BuildEventRecord record);
// One line of events.ndjson, without its '\n'.
absl::StatusOr<BuildEventRecord> ParseEventLine(absl::string_view line);

std::string ResultJson(const BuildResultFile& result);
std::string ErrorJson(const BuildErrorFile& error);
absl::StatusOr<BuildResultFile> ParseResultFile(absl::string_view text);
absl::StatusOr<BuildErrorFile> ParseErrorFile(absl::string_view text);

// Writes `contents` as `name` in the directory `dir_fd` so a reader sees either nothing or
// all of it, even across a crash: a temporary file, fsync, rename over `name`, fsync of
// the directory.
absl::Status WriteFileAtomically(int dir_fd, const std::string& name, absl::string_view contents);

}  // namespace coolify::build

#endif  // COOLD_SERVICES_BUILDER_BUILD_FILES_H_
