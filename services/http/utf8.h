// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF),
// which protobuf's string fields and JSON text require of whatever a request carries.
#ifndef COOLD_SERVICES_HTTP_UTF8_H_
#define COOLD_SERVICES_HTTP_UTF8_H_

#include <string>
#include <string_view>

namespace coolify::http {

// `text` with every byte that is not part of well-formed UTF-8 replaced by U+FFFD.
std::string WellFormedUtf8(std::string_view text);

// Whether `text` is well-formed UTF-8 throughout.
bool IsWellFormedUtf8(std::string_view text);

}  // namespace coolify::http

#endif  // COOLD_SERVICES_HTTP_UTF8_H_
