// A streaming JSON writer: appends text to a string as values are written, with no
// document tree in between. The renderer uses it because building and then
// serializing a tree costs more than the whole policy evaluation (bench/gatekeeper).
//
// The caller writes a well-formed sequence (Key before each member value, containers
// closed in order); the writer adds commas and escapes strings. Strings are escaped as
// RFC 8259 requires ("\"", "\\", control characters as \u00XX); a byte sequence that
// is not UTF-8 (impossible in a parsed protobuf string, but possible in a message built
// in code) is written as U+FFFD, so the output is always valid JSON.
#ifndef COOLD_POLICY_JSON_WRITER_H_
#define COOLD_POLICY_JSON_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace coolify::policy {

class JsonWriter {
 public:
  // Nesting deeper than this is a caller bug; the renderer needs four levels.
  static constexpr int kMaxDepth = 16;

  // `reserve` bytes are allocated up front; the text grows beyond as needed.
  explicit JsonWriter(size_t reserve = 256);

  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }

  // The member name of the next value in the current object.
  void Key(std::string_view key);

  void String(std::string_view value);
  void Bool(bool value);
  void Int(int64_t value);
  void Uint(uint64_t value);

  // Shorthands for a member: Key then the value.
  void Member(std::string_view key, std::string_view value) {
    Key(key);
    String(value);
  }
  void Member(std::string_view key, const char* value) {
    Key(key);
    String(value);
  }
  void Member(std::string_view key, bool value) {
    Key(key);
    Bool(value);
  }
  void Member(std::string_view key, int64_t value) {
    Key(key);
    Int(value);
  }
  void Member(std::string_view key, uint64_t value) {
    Key(key);
    Uint(value);
  }
  void Member(std::string_view key, uint32_t value) {
    Key(key);
    Uint(value);
  }

  // The text written so far.
  std::string_view text() const { return std::string_view(buffer_.get(), size_); }
  std::string Take() const { return std::string(text()); }

 private:
  void Open(char bracket);
  void Close(char bracket);
  // A comma before any value but the first in its container, unless a key preceded it.
  void BeforeValue();
  void Escaped(std::string_view s);
  // Makes room for `n` more bytes. The text lives in a plain buffer rather than a
  // std::string: appending byte by byte to a std::string costs a capacity check and a
  // terminator store each time, which dominated rendering.
  void Reserve(size_t n) {
    if (size_ + n > capacity_) Grow(n);
  }
  void Grow(size_t n);
  void Put(char c) { buffer_[size_++] = c; }
  void Put(std::string_view s);

  std::unique_ptr<char[]> buffer_;
  size_t size_ = 0;
  size_t capacity_ = 0;
  int depth_ = 0;
  bool has_member_[kMaxDepth + 1] = {};
  bool after_key_ = false;
};

}  // namespace coolify::policy

#endif  // COOLD_POLICY_JSON_WRITER_H_
