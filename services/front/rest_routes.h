// coold's REST routes, made from the verb registry (services/commands/verbs.h): each
// verb's "METHOD /api/v1/path/{param}?query&names" is a route, and a request matching it
// becomes that verb's typed command in one pass. The rules are the same for every route:
//   - the most specific path wins (a literal segment before a {param}); a known path with
//     another method is 405 naming the methods it has, an unknown one 404;
//   - a GET takes no body; a POST whose path names no object takes its message as a JSON
//     body (or the registry's `body` field of it: a create's ContainerSpec); any other
//     request may send the message as a body, which the path then overrides;
//   - each {param} sets the message's string field of that name, percent-decoded;
//   - only the route's query names are admitted: a string names the field unless the body
//     names another value, a bool is true/1 or false/0, a number is decimal;
//   - a body's "rules" list holds at most kMaxRulesPerRequest rules (413).
// Every refusal names its field as a Status payload (services/http/status.h).
#ifndef COOLD_SERVICES_FRONT_REST_ROUTES_H_
#define COOLD_SERVICES_FRONT_REST_ROUTES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/commands.pb.h"
#include "services/commands/verbs.h"
#include "services/http/server.h"

namespace coolify::front {

// Rules in one bulk or reconcile body; more is answered 413.
inline constexpr int kMaxRulesPerRequest = 50000;

// One route of the REST API, as parsed from a registry entry's `rest`.
struct RestRoute {
  const commands::Verb* verb = nullptr;
  std::string method;                  // "GET"
  std::vector<std::string> segments;   // "api", "v1", "containers", "{id}", "start"
  std::vector<std::string> query;      // "namespace", "force"
};

// Every route of the registry, in its order.
const std::vector<RestRoute>& RestRoutes();

// OK when every route names its method, only fields of its verb's message that a path or
// query can set (strings; bools and numbers for a query), and no two routes one method
// and path. For the tests: a bad registry entry fails them, not a request.
absl::Status CheckRestRoutes();

// The request as its verb's command, or the refusal (404, 405, 400, 413).
absl::StatusOr<v1::Command> CommandOfRequest(const http::Request& request);

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_REST_ROUTES_H_
