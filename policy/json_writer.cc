#include "policy/json_writer.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>

namespace coolify::policy {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Bytes that cannot be copied as they are: control characters, '"', '\\', and every
// byte of a multi-byte sequence (checked as UTF-8 before it is copied).
struct SpecialBytes {
  bool special[256] = {};
  constexpr SpecialBytes() {
    for (int c = 0; c < 0x20; ++c) special[c] = true;
    special[static_cast<unsigned char>('"')] = true;
    special[static_cast<unsigned char>('\\')] = true;
    for (int c = 0x80; c < 0x100; ++c) special[c] = true;
  }
};
constexpr SpecialBytes kSpecial;

// Whether any of the eight bytes in `word` is special: the classic SWAR tests for a
// byte below 0x20, equal to '"' or '\\', or with its high bit set. Most of a spec is
// plain ASCII, so skipping eight bytes per test is what makes escaping cheap.
bool AnySpecial(uint64_t word) {
  constexpr uint64_t kOnes = 0x0101010101010101u;
  constexpr uint64_t kHigh = 0x8080808080808080u;
  const auto has_zero_byte = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const uint64_t below_space = (word - kOnes * 0x20) & ~word & kHigh;
  return (below_space | has_zero_byte(word ^ (kOnes * '"')) | has_zero_byte(word ^ (kOnes * '\\')) |
          (word & kHigh)) != 0;
}
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// The length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0.
size_t Utf8Length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  const auto continuation = [&](size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return k < s.size() && byte(k) >= lo && byte(k) <= hi;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF) return continuation(i + 1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    const unsigned char lo = b0 == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = b0 == 0xED ? 0x9F : 0xBF;
    return continuation(i + 1, lo, hi) && continuation(i + 2) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    const unsigned char lo = b0 == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = b0 == 0xF4 ? 0x8F : 0xBF;
    return continuation(i + 1, lo, hi) && continuation(i + 2) && continuation(i + 3) ? 4 : 0;
  }
  return 0;
}

}  // namespace

JsonWriter::JsonWriter(size_t reserve)
    : buffer_(new char[reserve > 0 ? reserve : 1]), capacity_(reserve > 0 ? reserve : 1) {}

void JsonWriter::Grow(size_t n) {
  const size_t capacity = std::max(capacity_ * 2, size_ + n);
  std::unique_ptr<char[]> bigger(new char[capacity]);
  std::memcpy(bigger.get(), buffer_.get(), size_);
  buffer_ = std::move(bigger);
  capacity_ = capacity;
}

void JsonWriter::Put(std::string_view s) {
  Reserve(s.size());
  std::memcpy(buffer_.get() + size_, s.data(), s.size());
  size_ += s.size();
}

void JsonWriter::Open(char bracket) {
  BeforeValue();
  if (depth_ == kMaxDepth) std::abort();  // A renderer bug, never input-dependent.
  Reserve(1);
  Put(bracket);
  has_member_[++depth_] = false;
}

void JsonWriter::Close(char bracket) {
  --depth_;
  Reserve(1);
  Put(bracket);
}

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (depth_ > 0 && has_member_[depth_]) {
    Reserve(1);
    Put(',');
  }
  has_member_[depth_] = true;
}

void JsonWriter::Key(std::string_view key) {
  BeforeValue();
  Escaped(key);
  Reserve(1);
  Put(':');
  after_key_ = true;
}

void JsonWriter::String(std::string_view value) {
  BeforeValue();
  Escaped(value);
}

void JsonWriter::Bool(bool value) {
  BeforeValue();
  Put(value ? std::string_view("true") : std::string_view("false"));
}

void JsonWriter::Int(int64_t value) {
  BeforeValue();
  char digits[24];
  Put(std::string_view(digits, std::to_chars(digits, digits + sizeof digits, value).ptr - digits));
}

void JsonWriter::Uint(uint64_t value) {
  BeforeValue();
  char digits[24];
  Put(std::string_view(digits, std::to_chars(digits, digits + sizeof digits, value).ptr - digits));
}

void JsonWriter::Escaped(std::string_view s) {
  // The worst case: every byte a control character, written as six ("\u00XX").
  Reserve(6 * s.size() + 2);
  char* out = buffer_.get() + size_;
  *out++ = '"';
  size_t run = 0;  // Start of the pending run of bytes copied as they are.
  size_t i = 0;
  const auto flush = [&] {
    std::memcpy(out, s.data() + run, i - run);
    out += i - run;
  };
  while (true) {
    // Skip plain bytes, eight at a time while there are eight, then one at a time.
    while (i + 8 <= s.size()) {
      uint64_t word;
      std::memcpy(&word, s.data() + i, sizeof word);
      if (AnySpecial(word)) break;
      i += 8;
    }
    while (i < s.size() && !kSpecial.special[static_cast<unsigned char>(s[i])]) ++i;
    if (i == s.size()) break;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8Length(s, i);
      if (n != 0) {
        i += n;
        continue;
      }
    }
    flush();
    if (c == '"' || c == '\\') {
      *out++ = '\\';
      *out++ = static_cast<char>(c);
    } else if (c < 0x20) {
      std::memcpy(out, "\\u00", 4);
      out[4] = kHex[c >> 4];
      out[5] = kHex[c & 0xF];
      out += 6;
    } else {
      // Three bytes for one, well within the six reserved per input byte.
      std::memcpy(out, kReplacement.data(), kReplacement.size());
      out += kReplacement.size();
    }
    run = ++i;
  }
  flush();
  *out++ = '"';
  size_ = static_cast<size_t>(out - buffer_.get());
}

}  // namespace coolify::policy
