// coold's REST API as a client reaches it: the request's method, target and body
// (untrusted, once the bearer token is known) into the route table and the typed bodies
// (services/front/rest_api.h, RestApi::ToCommand). Input: "METHOD TARGET\n" then the
// body. No input may crash, a refusal is always a 4xx or 501 naming a reason, and an
// accepted request is one command that survives a protobuf round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "google/protobuf/util/message_differencer.h"
#include "fuzz/protobuf_logs.h"
#include "privsep/channel.h"
#include "services/front/command_router.h"
#include "services/front/firewall_client.h"
#include "services/front/podman_client.h"
#include "services/front/rest_api.h"
#include "services/http/server.h"
#include "services/http/status.h"

namespace {

using coolify::front::CommandRouter;
using coolify::front::FirewallClient;
using coolify::front::PodmanClient;
using coolify::front::RestApi;

// ToCommand never reaches the router, which needs a channel only to exist.
struct Api {
  coolify::privsep::Channel channel{coolify::privsep::UniqueFd(-1)};
  FirewallClient firewall{channel};
  PodmanClient podman{channel};
  CommandRouter router{firewall, podman};
  RestApi api{router, "0123456789abcdef"};
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  coolify::fuzz::KeepOnlyFatalProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Api* const api = new Api;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t newline = in.find('\n');
  const std::string_view line = in.substr(0, newline);
  coolify::http::Request request;
  const size_t space = line.find(' ');
  if (space == std::string_view::npos) return 0;
  request.method_text = std::string(line.substr(0, space));
  request.method = boost::beast::http::string_to_verb(request.method_text);
  // The server splits and decodes every target this way before a handler sees it.
  coolify::http::SplitTarget(line.substr(space + 1), request);
  request.authorization = "Bearer 0123456789abcdef";
  request.content_type = "application/json";
  if (newline != std::string_view::npos) request.body = std::string(in.substr(newline + 1));

  absl::StatusOr<coolify::v1::Command> command = api->api.ToCommand(request);
  if (!command.ok()) {
    const unsigned status = coolify::http::HttpStatusOf(command.status());
    if ((status < 400 || status > 499) && status != 501) abort();
    if (command.status().message().empty()) abort();
    return 0;
  }
  if (command->verb_case() == coolify::v1::Command::VERB_NOT_SET) abort();
  std::string bytes;
  if (!command->SerializeToString(&bytes)) abort();
  coolify::v1::Command again;
  if (!again.ParseFromString(bytes)) abort();
  if (!google::protobuf::util::MessageDifferencer::Equals(*command, again)) abort();
  return 0;
}
