// The broker's dispatch JSON (services/commands): any body Laravel's side can send, to a
// typed command or build request, and back out as an envelope. No input may crash; a
// body that parses must carry ids of the documented grammar, a verb with a name and a
// capability, and render to envelopes that are valid JSON.
#include <cstddef>
#include <cstdint>
#include <string>

#include "boost/json/parse.hpp"
#include "fuzz/protobuf_logs.h"
#include "services/commands/dispatch_codec.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void CheckJson(const std::string& text) {
  boost::system::error_code ec;
  boost::json::parse(text, ec);
  Check(!ec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  coolify::fuzz::KeepOnlyFatalProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coolify;
  std::string body(reinterpret_cast<const char*>(data), size);
  auto dispatch = commands::ParseDispatch(body);
  if (dispatch.ok()) {
    Check(commands::ValidateRequestId(dispatch->request_id).ok());
    Check(commands::ValidateHostId(dispatch->host_id).ok());
    Check(!commands::VerbNames(dispatch->command).empty());
    Check(commands::VerbNames(dispatch->command).front() == dispatch->type);
    Check(commands::RequiredCapability(dispatch->command) != v1::CAPABILITY_UNSPECIFIED);
  } else {
    Check(!dispatch.status().message().empty());
  }
  auto build = commands::ParseBuildDispatch(body);
  if (build.ok()) {
    Check(commands::ValidateRequestId(build->request_id).ok());
    Check(build->build.request_id() == build->request_id);
    Check(!build->build.repo_url().empty() && !build->build.target_image().empty());
  }
  // Whatever the body was, the envelopes built from it are JSON.
  v1::CommandResult result;
  result.set_code(size % 2 == 0 ? 200 : 502);
  result.set_message(body);
  result.mutable_data()->set_string_value(body);
  std::string id = dispatch.ok() ? dispatch->request_id : body;
  CheckJson(commands::CommandEnvelope(id, result).body);
  CheckJson(commands::BuildEnvelope(id, result).body);
  CheckJson(commands::ErrorEnvelope(id, 400, body).body);
  return 0;
}
