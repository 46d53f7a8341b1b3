#include "services/builder/build_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "policy/api_json.h"
#include "privsep/unique_fd.h"

namespace coolify::build {
namespace {

std::string_view Std(absl::string_view s) { return std::string_view(s.data(), s.size()); }

// Serializes with the .proto field names, which is what the files document.
std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  // Every string of these messages is valid UTF-8 (sanitized or checked), so printing
  // cannot fail; an empty object would still be refused by the reader.
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

bool IsHex(absl::string_view s, size_t length) {
  if (s.size() != length) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

// A human line read back from a file: what SanitizeLine would leave unchanged.
absl::Status CheckLine(absl::string_view field, absl::string_view text, size_t max_bytes) {
  if (SanitizeLine(text, max_bytes) != text) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": too long or holds control characters"));
  }
  return absl::OkStatus();
}

absl::Status CheckDurations(const BuildDurations& d) {
  constexpr uint64_t kWeek = 7ULL * 24 * 3600 * 1000;
  for (uint64_t ms : {d.clone_ms(), d.base_ms(), d.build_ms(), d.export_ms(), d.total_ms()}) {
    if (ms > kWeek) return absl::InvalidArgumentError("durations: out of range");
  }
  return absl::OkStatus();
}

}  // namespace

bool IsPhase(absl::string_view phase) {
  return phase == "usage" || phase == "sandbox" || phase == "clone" || phase == "build" || phase == "export" ||
         phase == "done";
}

bool IsRequestId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return false;
  }
  return true;
}

bool IsImageReference(absl::string_view ref) {
  if (ref.empty() || ref.size() > 255) return false;
  if (!absl::ascii_islower(ref[0]) && !absl::ascii_isdigit(ref[0])) return false;
  for (char c : ref) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '/' && c != ':' && c != '@' && c != '-') {
      return false;
    }
  }
  return true;
}

std::string SanitizeLine(absl::string_view text, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    }
    // Overlong forms, surrogates and code points beyond U+10FFFF are not UTF-8 either.
    if (valid && length == 2 && c < 0xc2) valid = false;
    if (valid && length == 3) {
      unsigned char c1 = static_cast<unsigned char>(text[i + 1]);
      if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) valid = false;
    }
    if (valid && length == 4) {
      unsigned char c1 = static_cast<unsigned char>(text[i + 1]);
      if ((c == 0xf0 && c1 < 0x90) || c > 0xf4 || (c == 0xf4 && c1 >= 0x90)) valid = false;
    }
    if (!valid || (length == 1 && ((c < 0x20 && c != '\t') || c == 0x7f))) {
      length = 1;
      if (out.size() + 1 > max_bytes) break;
      out.push_back('?');
    } else {
      if (out.size() + length > max_bytes) break;
      out.append(text.data() + i, length);
    }
    i += length;
  }
  if (i < text.size() && max_bytes >= 3) {
    // Cut: say so, within the limit.
    while (out.size() + 3 > max_bytes) {
      size_t back = out.size() - 1;
      while (back > 0 && (static_cast<unsigned char>(out[back]) & 0xc0) == 0x80) --back;
      out.resize(back);
    }
    out += "...";
  }
  return out;
}

std::string EventLine(BuildEventRecord record) {
  record.set_line(SanitizeLine(record.line()));
  return ToJson(record) + "\n";
}

absl::StatusOr<BuildEventRecord> ParseEventLine(absl::string_view line) {
  if (line.size() > kMaxEventRecordBytes) return absl::InvalidArgumentError("event: line too long");
  BuildEventRecord record;
  if (absl::Status s = policy::ParseStrictJson(Std(line), &record, kMaxEventRecordBytes); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("event: ", s.message()));
  }
  if (!IsPhase(record.phase())) return absl::InvalidArgumentError("event: phase: unknown");
  if (absl::Status s = CheckLine("event: line", record.line(), kMaxEventLineBytes); !s.ok()) return s;
  if (record.unix_ms() <= 0) return absl::InvalidArgumentError("event: unix_ms: missing");
  if (record.duration_ms() > 7ULL * 24 * 3600 * 1000) return absl::InvalidArgumentError("event: duration_ms: out of range");
  return record;
}

std::string ResultJson(const BuildResultFile& result) { return ToJson(result) + "\n"; }
std::string ErrorJson(const BuildErrorFile& error) { return ToJson(error) + "\n"; }

absl::StatusOr<BuildResultFile> ParseResultFile(absl::string_view text) {
  if (text.size() > kMaxOutcomeBytes) return absl::InvalidArgumentError("result: too large");
  BuildResultFile result;
  if (absl::Status s = policy::ParseStrictJson(Std(text), &result, kMaxOutcomeBytes); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("result: ", s.message()));
  }
  if (!IsRequestId(result.request_id())) return absl::InvalidArgumentError("result: request_id: invalid");
  if (!IsHex(result.image_id(), 64)) return absl::InvalidArgumentError("result: image_id: not 64 hex digits");
  if (!absl::StartsWith(result.digest(), "sha256:") || !IsHex(result.digest().substr(7), 64)) {
    return absl::InvalidArgumentError("result: digest: not sha256:<64 hex digits>");
  }
  if (result.tags().empty() || static_cast<size_t>(result.tags_size()) > kMaxTags) {
    return absl::InvalidArgumentError("result: tags: 1..16 expected");
  }
  for (const std::string& tag : result.tags()) {
    if (!IsImageReference(tag)) return absl::InvalidArgumentError("result: tags: invalid image name");
  }
  if (absl::Status s = CheckDurations(result.durations()); !s.ok()) return s;
  return result;
}

absl::StatusOr<BuildErrorFile> ParseErrorFile(absl::string_view text) {
  if (text.size() > kMaxOutcomeBytes) return absl::InvalidArgumentError("error: too large");
  BuildErrorFile error;
  if (absl::Status s = policy::ParseStrictJson(Std(text), &error, kMaxOutcomeBytes); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("error: ", s.message()));
  }
  if (!IsRequestId(error.request_id())) return absl::InvalidArgumentError("error: request_id: invalid");
  if (!IsPhase(error.phase()) || error.phase() == "done") return absl::InvalidArgumentError("error: phase: unknown");
  if (error.reason().empty()) return absl::InvalidArgumentError("error: reason: missing");
  if (absl::Status s = CheckLine("error: reason", error.reason(), kMaxEventLineBytes); !s.ok()) return s;
  if (error.code() < 400 || error.code() > 599) return absl::InvalidArgumentError("error: code: not 400..599");
  if (absl::Status s = CheckDurations(error.durations()); !s.ok()) return s;
  return error;
}

absl::Status WriteFileAtomically(int dir_fd, const std::string& name, absl::string_view contents) {
  const std::string tmp = absl::StrCat(".", name, ".tmp");
  privsep::UniqueFd fd(openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) return absl::ErrnoToStatus(errno, absl::StrCat("create ", tmp));
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = write(fd.get(), contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("write ", tmp));
    done += static_cast<size_t>(n);
  }
  if (fsync(fd.get()) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("fsync ", tmp));
  fd.reset();
  if (renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("rename ", tmp, " to ", name));
  }
  if (fsync(dir_fd) != 0) return absl::ErrnoToStatus(errno, "fsync of the work directory");
  return absl::OkStatus();
}

}  // namespace coolify::build
