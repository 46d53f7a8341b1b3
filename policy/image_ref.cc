#include "policy/image_ref.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "policy/shown_value.h"

namespace coolify::policy {
namespace {

constexpr size_t kMaxNameBytes = 255;
constexpr size_t kMaxTagBytes = 128;
constexpr std::string_view kDigestAlgorithm = "sha256:";
constexpr size_t kDigestHexBytes = 64;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsHostPart(std::string_view part) {
  if (part.empty() || !IsAlnum(part.front()) || !IsAlnum(part.back())) return false;
  for (char c : part) {
    if (!IsAlnum(c) && c != '-') return false;
  }
  return true;
}

bool IsRegistry(std::string_view registry) {
  std::string_view host = registry;
  if (const size_t colon = registry.find(':'); colon != std::string_view::npos) {
    const std::string_view port = registry.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    for (char c : port) {
      if (!IsDigit(c)) return false;
    }
    host = registry.substr(0, colon);
  }
  size_t start = 0;
  while (true) {
    const size_t dot = host.find('.', start);
    if (!IsHostPart(host.substr(start, dot == std::string_view::npos ? dot : dot - start))) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// path = lower-alnum *( separator lower-alnum ), separator = "." / "_" / "__" / 1*"-".
bool IsPathComponent(std::string_view part) {
  if (part.empty() || !IsLowerAlnum(part.front()) || !IsLowerAlnum(part.back())) return false;
  size_t i = 0;
  while (i < part.size()) {
    if (IsLowerAlnum(part[i])) {
      ++i;
      continue;
    }
    // A separator run between two alphanumerics.
    const size_t run_start = i;
    while (i < part.size() && !IsLowerAlnum(part[i])) ++i;
    const std::string_view run = part.substr(run_start, i - run_start);
    const bool dashes = run.find_first_not_of('-') == std::string_view::npos;
    if (!(run == "." || run == "_" || run == "__" || dashes)) return false;
  }
  return true;
}

bool IsTag(std::string_view tag) {
  if (tag.empty() || tag.size() > kMaxTagBytes) return false;
  for (size_t i = 0; i < tag.size(); ++i) {
    const char c = tag[i];
    const bool word = IsAlnum(c) || c == '_';
    if (!(word || (i > 0 && (c == '.' || c == '-')))) return false;
  }
  return true;
}

bool IsDigest(std::string_view digest) {
  if (digest.substr(0, kDigestAlgorithm.size()) != kDigestAlgorithm) return false;
  const std::string_view hex = digest.substr(kDigestAlgorithm.size());
  if (hex.size() != kDigestHexBytes) return false;
  for (char c : hex) {
    if (!(IsDigit(c) || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::Status RefError(std::string_view reference, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(Quoted(reference), " is not an image reference: ", AbslView(what)));
}

}  // namespace

std::string ImageRef::Qualified() const {
  return absl::StrCat(registry, "/", repository, tag.empty() ? "" : ":", tag,
                      digest.empty() ? "" : "@", digest);
}

bool IsRegistryName(std::string_view registry) {
  for (char c : registry) {
    if (c >= 'A' && c <= 'Z') return false;
  }
  return IsRegistry(registry);
}

absl::StatusOr<ImageRef> ParseImageRef(std::string_view reference) {
  if (reference.empty()) return RefError(reference, "empty");
  ImageRef ref;
  std::string_view rest = reference;
  if (const size_t at = rest.find('@'); at != std::string_view::npos) {
    ref.digest = std::string(rest.substr(at + 1));
    if (!IsDigest(ref.digest)) return RefError(reference, "the digest is not sha256:<64 hex>");
    rest = rest.substr(0, at);
  }
  const size_t last_slash = rest.rfind('/');
  if (const size_t colon = rest.rfind(':');
      colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || colon > last_slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    if (!IsTag(ref.tag)) return RefError(reference, "bad tag");
    rest = rest.substr(0, colon);
  }
  if (rest.size() > kMaxNameBytes) return RefError(reference, "name longer than 255 bytes");
  std::string_view path = rest;
  const size_t first_slash = rest.find('/');
  if (first_slash != std::string_view::npos) {
    const std::string_view first = rest.substr(0, first_slash);
    const bool has_upper =
        first.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos;
    if (first.find_first_of(".:") != std::string_view::npos || first == "localhost" || has_upper) {
      if (!IsRegistry(first)) return RefError(reference, "bad registry");
      ref.registry = absl::AsciiStrToLower(AbslView(first));
      path = rest.substr(first_slash + 1);
    }
  }
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string_view part =
        path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (!IsPathComponent(part)) {
      return RefError(reference, absl::StrCat("bad path component ", Quoted(part)));
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (ref.registry.empty() || ref.registry == "index.docker.io") ref.registry = "docker.io";
  ref.repository = std::string(path);
  if (ref.registry == "docker.io" && path.find('/') == std::string_view::npos) {
    ref.repository = absl::StrCat("library/", ref.repository);
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

}  // namespace coolify::policy
