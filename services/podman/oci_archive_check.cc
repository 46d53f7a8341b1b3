#include "services/podman/oci_archive_check.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace coolify::podman {
namespace {

constexpr size_t kBlock = 512;

// Offsets of the ustar header fields used here.
constexpr size_t kNameOff = 0, kNameLen = 100;
constexpr size_t kSizeOff = 124, kSizeLen = 12;
constexpr size_t kChecksumOff = 148, kChecksumLen = 8;
constexpr size_t kTypeOff = 156;
constexpr size_t kLinkOff = 157, kLinkLen = 100;
constexpr size_t kMagicOff = 257;
constexpr size_t kPrefixOff = 345, kPrefixLen = 155;

bool AllZero(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '\0'; });
}

// An octal field: digits, then NUL or space padding to its end; base-256 and anything
// else refused.
bool Octal(absl::string_view field, uint64_t* out) {
  uint64_t v = 0;
  size_t i = 0;
  while (i < field.size() && field[i] == ' ') ++i;  // leading spaces, as some writers pad
  size_t digits = 0;
  for (; i < field.size() && field[i] >= '0' && field[i] <= '7'; ++i, ++digits) {
    if (v > (UINT64_MAX >> 3)) return false;
    v = (v << 3) | static_cast<uint64_t>(field[i] - '0');
  }
  if (digits == 0) return false;
  for (; i < field.size(); ++i) {
    if (field[i] != '\0' && field[i] != ' ') return false;
  }
  *out = v;
  return true;
}

bool IsBlobName(absl::string_view name) {
  constexpr absl::string_view kPrefix = "blobs/sha256/";
  if (name.size() != kPrefix.size() + 64 || name.substr(0, kPrefix.size()) != kPrefix) return false;
  for (char c : name.substr(kPrefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

absl::Status OciArchiveChecker::Refuse(std::string why) {
  error_ = absl::InvalidArgumentError(absl::StrCat("image archive refused: ", why));
  return error_;
}

absl::Status OciArchiveChecker::Header() {
  const absl::string_view h = block_;
  if (AllZero(h)) {
    if (++zero_blocks_ == 2) state_ = State::kEnd;
    return absl::OkStatus();
  }
  if (zero_blocks_ != 0) return Refuse("a header after a zero block");
  if (h.substr(kMagicOff, 8) != absl::string_view("ustar\0" "00", 8)) {
    return Refuse("not a POSIX ustar header (GNU or old tar)");
  }
  uint64_t checksum = 0;
  if (!Octal(h.substr(kChecksumOff, kChecksumLen), &checksum)) return Refuse("bad header checksum field");
  uint64_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    sum += (i >= kChecksumOff && i < kChecksumOff + kChecksumLen) ? ' ' : static_cast<unsigned char>(h[i]);
  }
  if (sum != checksum) return Refuse("header checksum mismatch");
  const char type = h[kTypeOff];
  if (type == 'x' || type == 'g') return Refuse("pax header");
  if (type == 'L' || type == 'K') return Refuse("GNU long name");
  if (type != '0' && type != '\0' && type != '5') return Refuse(absl::StrCat("member type '", std::string(1, type), "'"));
  if (!AllZero(h.substr(kLinkOff, kLinkLen))) return Refuse("a link name");
  if (!AllZero(h.substr(kPrefixOff, kPrefixLen))) return Refuse("a name prefix");
  absl::string_view name = h.substr(kNameOff, kNameLen);
  name = name.substr(0, std::min(name.find('\0'), name.size()));
  if (!Octal(h.substr(kSizeOff, kSizeLen), &size_)) return Refuse("bad size field");
  const bool dir = type == '5';
  if (dir ? !(name == "blobs/" || name == "blobs/sha256/")
          : !(name == "oci-layout" || name == "index.json" || IsBlobName(name))) {
    // manifest.json and repositories (a docker-archive's names) end here too.
    return Refuse(absl::StrCat(dir ? "directory" : "file", " \"", absl::CHexEscape(name), "\" is not part of an OCI layout"));
  }
  if (dir && size_ != 0) return Refuse("a directory with data");
  if (name == "index.json" && size_ > kMaxIndexJsonBytes) return Refuse("index.json larger than 64 KiB");
  if (name == "oci-layout" && size_ > 1024) return Refuse("oci-layout larger than 1 KiB");
  if (names_.size() >= kMaxArchiveMembers) return Refuse("more than 4096 members");
  if (!names_.insert(std::string(name)).second) return Refuse(absl::StrCat("\"", name, "\" twice"));
  capture_ = name == "index.json";
  remaining_ = size_;
  state_ = State::kData;
  if (remaining_ == 0) return MemberDone();
  return absl::OkStatus();
}

absl::Status OciArchiveChecker::MemberDone() {
  if (capture_) {
    // No escapes at all, so the key cannot be spelled another way.
    if (index_json_.find('\\') != std::string::npos) return Refuse("index.json holds a backslash");
    if (index_json_.find("annotations") != std::string::npos) return Refuse("index.json holds annotations");
    capture_ = false;
  }
  remaining_ = (kBlock - size_ % kBlock) % kBlock;
  state_ = remaining_ == 0 ? State::kHeader : State::kPadding;
  return absl::OkStatus();
}

absl::Status OciArchiveChecker::Feed(absl::string_view bytes) {
  if (!error_.ok()) return error_;
  while (!bytes.empty()) {
    switch (state_) {
      case State::kHeader: {
        const size_t n = std::min(bytes.size(), kBlock - block_.size());
        block_.append(bytes.data(), n);
        bytes.remove_prefix(n);
        if (block_.size() == kBlock) {
          absl::Status s = Header();
          block_.clear();
          if (!s.ok()) return s;
        }
        break;
      }
      case State::kData: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(bytes.size(), remaining_));
        if (capture_) index_json_.append(bytes.data(), n);
        bytes.remove_prefix(n);
        remaining_ -= n;
        if (remaining_ == 0) {
          if (absl::Status s = MemberDone(); !s.ok()) return s;
        }
        break;
      }
      case State::kPadding:
      case State::kEnd: {
        const size_t n = state_ == State::kEnd ? bytes.size()
                                               : static_cast<size_t>(std::min<uint64_t>(bytes.size(), remaining_));
        if (!AllZero(bytes.substr(0, n))) return Refuse(state_ == State::kEnd ? "data after the end" : "non-zero padding");
        bytes.remove_prefix(n);
        if (state_ == State::kPadding && (remaining_ -= n) == 0) state_ = State::kHeader;
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status OciArchiveChecker::Finish() {
  if (!error_.ok()) return error_;
  if (state_ != State::kEnd) return Refuse("the archive ends early");
  if (names_.count("index.json") == 0 || names_.count("oci-layout") == 0) return Refuse("no index.json or oci-layout");
  return absl::OkStatus();
}

}  // namespace coolify::podman
