// How a received value appears in an error or a violation.
//
// Requests come from outside and can hold anything, so a value is never shown raw: it is
// C-escaped (no control characters or invalid UTF-8 reach a log line or a JSON verdict
// unescaped) and cut to kMaxShownBytes, with "..." marking the cut.
#ifndef COOLD_POLICY_SHOWN_VALUE_H_
#define COOLD_POLICY_SHOWN_VALUE_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace coolify::policy {

inline constexpr size_t kMaxShownBytes = 128;

// `value` escaped and cut as described above, without quotes.
std::string ShownValue(std::string_view value);

// ShownValue in double quotes, for error texts: "\"/etc\"".
std::string Quoted(std::string_view value);

// This absl has its own string_view type, which std::string_view does not convert to
// implicitly.
inline absl::string_view AbslView(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace coolify::policy

#endif  // COOLD_POLICY_SHOWN_VALUE_H_
