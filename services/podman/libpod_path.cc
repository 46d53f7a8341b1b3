// Validation comes before encoding on purpose: encoding alone would make "../images"
// harmless on the wire, but a name Podman would never accept is still a caller bug or an
// attack, and refusing it here gives the caller a clear InvalidArgument instead of a
// confusing 404 from Podman.
#include "services/podman/libpod_path.h"

#include "absl/strings/str_cat.h"

namespace coolify::podman {
namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

absl::Status Invalid(SegmentKind kind, std::string_view why) {
  const char* what = "value";
  switch (kind) {
    case SegmentKind::kLiteral: what = "path literal"; break;
    case SegmentKind::kName: what = "name or id"; break;
    case SegmentKind::kExecId: what = "exec id"; break;
    case SegmentKind::kImageRef: what = "image reference"; break;
    case SegmentKind::kQueryText: what = "query value"; break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("invalid ", what, ": ", absl::string_view(why.data(), why.size())));
}

bool IsLowerWord(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateSegment(SegmentKind kind, std::string_view value) {
  if (value.empty()) return Invalid(kind, "empty");
  switch (kind) {
    case SegmentKind::kLiteral:
      if (!IsLowerWord(value)) return Invalid(kind, "not [a-z_]+");
      return absl::OkStatus();
    case SegmentKind::kName:
      if (value.size() > 128) return Invalid(kind, "longer than 128 characters");
      if (!IsAlnum(value[0])) return Invalid(kind, "must start with a letter or digit");
      for (char c : value) {
        if (!IsAlnum(c) && c != '_' && c != '.' && c != '-') {
          return Invalid(kind, "only letters, digits, '_', '.' and '-' are allowed");
        }
      }
      return absl::OkStatus();
    case SegmentKind::kExecId:
      if (value.size() != 64) return Invalid(kind, "not 64 hex digits");
      for (char c : value) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
          return Invalid(kind, "not 64 hex digits");
        }
      }
      return absl::OkStatus();
    case SegmentKind::kImageRef:
      if (value.size() > 512) return Invalid(kind, "longer than 512 characters");
      if (!IsAlnum(value[0])) return Invalid(kind, "must start with a letter or digit");
      if (value.back() == '/') return Invalid(kind, "trailing '/'");
      if (value.find("//") != std::string_view::npos) return Invalid(kind, "empty path component");
      if (value.find("..") != std::string_view::npos) return Invalid(kind, "'..'");
      for (char c : value) {
        if (!IsAlnum(c) && c != '.' && c != '_' && c != '/' && c != ':' && c != '@' && c != '+' &&
            c != '-') {
          return Invalid(kind, "character outside [A-Za-z0-9._/:@+-]");
        }
      }
      return absl::OkStatus();
    case SegmentKind::kQueryText:
      if (value.size() > 1024) return Invalid(kind, "longer than 1024 characters");
      for (unsigned char c : value) {
        if (c < 0x20 || c >= 0x7f) return Invalid(kind, "control or non-ASCII character");
      }
      return absl::OkStatus();
  }
  return Invalid(kind, "unknown kind");
}

std::string PercentEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (IsAlnum(static_cast<char>(c)) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

absl::StatusOr<std::string> BuildTarget(std::initializer_list<PathPart> parts,
                                        const std::vector<QueryParam>& query) {
  std::string target(kLibpodPrefix);
  for (const PathPart& part : parts) {
    if (part.kind == SegmentKind::kQueryText) {
      return absl::InvalidArgumentError("free text cannot be a path segment");
    }
    if (absl::Status s = ValidateSegment(part.kind, part.value); !s.ok()) return s;
    target.push_back('/');
    target += PercentEncode(part.value);
  }
  char sep = '?';
  for (const QueryParam& param : query) {
    if (!IsLowerWord(param.key)) return absl::InvalidArgumentError("invalid query key");
    if (absl::Status s = ValidateSegment(param.kind, param.value); !s.ok()) return s;
    target.push_back(sep);
    sep = '&';
    target.append(param.key.data(), param.key.size());
    target.push_back('=');
    target += PercentEncode(param.value);
  }
  return target;
}

}  // namespace coolify::podman
