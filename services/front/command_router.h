// One command model, two transports: the local REST API and the broker stream both turn
// their input into a v1::Command and run it here, and both report the v1::CommandResult
// the same way (code with HTTP semantics, message, JSON-shaped data).
#ifndef COOLD_SERVICES_FRONT_COMMAND_ROUTER_H_
#define COOLD_SERVICES_FRONT_COMMAND_ROUTER_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/commands.pb.h"
#include "services/http/status.h"
#include "services/front/firewall_client.h"
#include "services/front/front_metrics.h"
#include "services/front/podman_client.h"

namespace coolify::front {

// coold.logs: lines when the request names no tail, and the most it may name.
inline constexpr uint32_t kDefaultCooldLogLines = 200;
inline constexpr uint32_t kMaxCooldLogLines = 1000;

// Serves the services and dns verbs (ServiceDirectory), when the front end has them.
using ServiceRoute = std::function<v1::CommandResult(const v1::Command& command)>;

class CommandRouter {
 public:
  CommandRouter(FirewallClient& firewall, PodmanClient& podman, ServiceRoute services = {})
      : firewall_(firewall), podman_(podman), services_(std::move(services)) {}

  // Runs `command` from `lane`; with metrics set, counts it (front_metrics.h) and leaves
  // its event line.
  v1::CommandResult Route(const v1::Command& command, Lane lane = Lane::kRest);
  // As Route from the REST API, which answers JSON text: a gatekeeper answer the router
  // relays as it came is read and printed in one pass into `*data_text`
  // (commands::ReprintJson), and the result carries no data; the Value tree is what the
  // broker stream needs, and building it only to print it took most of the front end's
  // time on a container inspect. Any other result is Route's, `*data_text` left empty.
  v1::CommandResult RouteToText(const v1::Command& command, std::string* data_text);
  void set_metrics(FrontMetrics* metrics) { metrics_ = metrics; }

  // The Command fields (commands.proto) the router has a handler of its own for: the
  // verbs the registry gives the firewall writer and the front end, no more and no fewer.
  static std::vector<int> HandledVerbs();

 private:
  // `data_text`: as RouteToText, or nullptr for a result with its data.
  v1::CommandResult Counted(const v1::Command& command, Lane lane, std::string* data_text);
  v1::CommandResult RouteVerb(const v1::Command& command, std::string* data_text);
  struct Handler;
  static const std::vector<Handler>& Handlers();

  // The handlers of Handlers(), one per verb.
  v1::CommandResult Allow(const v1::Command& command);
  v1::CommandResult DeleteRule(const v1::Command& command);
  v1::CommandResult ListRules(const v1::Command& command);
  v1::CommandResult Bulk(const v1::Command& command);
  v1::CommandResult Reconcile(const v1::Command& command);
  v1::CommandResult ContainersList(const v1::Command& command);
  v1::CommandResult CooldLogs(const v1::Command& command);
  v1::CommandResult JwtSetWithoutKeys(const v1::Command& command);

  v1::CommandResult Podman(const v1::Command& command, std::string* data_text = nullptr);
  // The address a firewall rule's `field` names by container `name`: the container's
  // address on a network of `rule_namespace` ("" = default).
  absl::StatusOr<std::string> ContainerAddress(const char* field, const std::string& name,
                                               const std::string& rule_namespace);

  FirewallClient& firewall_;
  PodmanClient& podman_;
  ServiceRoute services_;
  FrontMetrics* metrics_ = nullptr;
};

// The one Status -> HTTP map, and the field a 400 is about (services/http/status.h).
using http::FieldOf;
using http::HttpStatusOf;

// {code, message} for a failed Status.
v1::CommandResult ErrorResult(const absl::Status& status);


}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_COMMAND_ROUTER_H_
