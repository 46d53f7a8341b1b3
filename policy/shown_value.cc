#include "policy/shown_value.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace coolify::policy {

std::string ShownValue(std::string_view value) {
  return absl::StrCat(absl::CHexEscape(AbslView(value.substr(0, kMaxShownBytes))),
                      value.size() > kMaxShownBytes ? "..." : "");
}

std::string Quoted(std::string_view value) { return absl::StrCat("\"", ShownValue(value), "\""); }

}  // namespace coolify::policy
