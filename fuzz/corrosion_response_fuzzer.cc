// What answers on the Corrosion address is untrusted: the first byte picks the parser
// (0: /v1/transactions JSON, 1: /v1/queries NDJSON), the rest is the body.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "services/endpoints/corrosion_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    auto rows = coolify::endpoints::ParseQueryResponse(body);
    if (rows.ok()) {
      for (const auto& row : rows->rows) {
        if (row.size() != rows->columns.size()) abort();
      }
    }
  } else {
    auto n = coolify::endpoints::ParseExecResponse(body, data[0] >> 1);
    if (n.ok() && n->size() != static_cast<size_t>(data[0] >> 1)) abort();
  }
  return 0;
}
