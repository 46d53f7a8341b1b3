// What a build leaves in its work directory (events.ndjson lines, result.json,
// error.json), as coold's front end parses it: whatever a compromised build writes, the
// parsers must not crash, and whatever they accept must be well formed and survive a
// round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_split.h"
#include "fuzz/protobuf_logs.h"
#include "services/builder/build_files.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  coolify::fuzz::KeepOnlyFatalProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coolify::build;
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    auto event = ParseEventLine(line);
    if (!event.ok()) continue;
    Check(IsPhase(event->phase()));
    std::string again = EventLine(*event);
    Check(!again.empty() && again.back() == '\n');
    again.pop_back();
    auto reparsed = ParseEventLine(again);
    Check(reparsed.ok() && reparsed->SerializeAsString() == event->SerializeAsString());
  }
  if (auto result = ParseResultFile(text); result.ok()) {
    Check(IsRequestId(result->request_id()) && result->image_id().size() == 64);
    auto reparsed = ParseResultFile(ResultJson(*result));
    Check(reparsed.ok() && reparsed->SerializeAsString() == result->SerializeAsString());
  }
  if (auto error = ParseErrorFile(text); error.ok()) {
    Check(error->code() >= 400 && error->code() <= 599 && !error->reason().empty());
    auto reparsed = ParseErrorFile(ErrorJson(*error));
    Check(reparsed.ok() && reparsed->SerializeAsString() == error->SerializeAsString());
  }
  // The sanitizer's output is a fixed point within its limit.
  const std::string clean = SanitizeLine(text, 512);
  Check(clean.size() <= 512 && SanitizeLine(clean, 512) == clean);
  return 0;
}
