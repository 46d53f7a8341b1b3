// The REST API's mapping of requests to commands: every bad input gets a clear 4xx naming
// what is wrong, before anything reaches a privileged process.
#include "services/front/rest_api.h"

#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "privsep/channel.h"
#include "proto/privsep.pb.h"
#include "services/commands/json_value.h"
#include "services/commands/verbs.h"

namespace coolify::front {
namespace {

namespace bhttp = boost::beast::http;

http::Request Make(bhttp::verb method, std::string path, std::string body = "") {
  http::Request request;
  request.method = method;
  request.method_text = std::string(bhttp::to_string(method));
  request.path = std::move(path);
  request.body = std::move(body);
  request.authorization = "Bearer 0123456789abcdef";
  return request;
}

class RestApiTest : public testing::Test {
 protected:
  // The router is never reached by ToCommand; it needs a channel only to exist.
  RestApiTest()
      : channel_(privsep::UniqueFd(-1)),
        firewall_(channel_),
        podman_(channel_),
        router_(firewall_, podman_),
        api_(router_, "0123456789abcdef") {}

  absl::StatusOr<v1::Command> Command(const http::Request& request) { return api_.ToCommand(request); }

  void ExpectRefused(const http::Request& request, absl::StatusCode code, const std::string& mentions) {
    auto command = Command(request);
    ASSERT_FALSE(command.ok()) << "accepted: " << command->DebugString();
    EXPECT_EQ(command.status().code(), code) << command.status();
    EXPECT_NE(std::string(command.status().message()).find(mentions), std::string::npos) << command.status();
  }

  privsep::Channel channel_;
  FirewallClient firewall_;
  PodmanClient podman_;
  CommandRouter router_;
  RestApi api_;
};

// The registry's routes are well-formed: methods known, every {param} and query name a
// field of the verb's message, no method and path twice.
TEST_F(RestApiTest, TheRegistrysRoutesAreWellFormed) { EXPECT_TRUE(CheckRestRoutes().ok()) << CheckRestRoutes(); }

// Every REST route the verb registry names reaches its verb, with each {param} in the
// field it names and each query name admitted; the path with another method is a 405.
TEST_F(RestApiTest, EveryRouteOfTheRegistryReachesItsVerb) {
  int routes = 0;
  for (const commands::Verb& verb : commands::Verbs()) {
    if (*verb.rest == '\0') continue;
    ++routes;
    const RestRoute* route = nullptr;
    for (const RestRoute& candidate : RestRoutes()) {
      if (candidate.verb == &verb) route = &candidate;
    }
    ASSERT_NE(route, nullptr) << verb.rest;
    std::string path;
    std::vector<std::pair<std::string, std::string>> params;
    for (const std::string& segment : route->segments) {
      std::string text = segment;
      if (segment.front() == '{') {
        text = absl::StrCat("p", params.size());
        params.emplace_back(segment.substr(1, segment.size() - 2), text);
      }
      absl::StrAppend(&path, "/", text);
    }
    const bhttp::verb method = bhttp::string_to_verb(route->method);
    http::Request request = Make(method, path, method == bhttp::verb::post ? "{}" : "");
    for (const std::string& key : route->query) request.query.emplace_back(key, "");
    auto command = Command(request);
    ASSERT_TRUE(command.ok()) << verb.rest << ": " << command.status();
    ASSERT_EQ(static_cast<int>(command->verb_case()), verb.field) << verb.rest;
    const auto* field = v1::Command::descriptor()->FindFieldByNumber(verb.field);
    const google::protobuf::Message& message = command->GetReflection()->GetMessage(*command, field);
    for (const auto& [name, value] : params) {
      const auto* param = message.GetDescriptor()->FindFieldByName(name);
      ASSERT_NE(param, nullptr) << verb.rest;
      EXPECT_EQ(message.GetReflection()->GetString(message, param), value) << verb.rest;
    }
    request.method = bhttp::verb::patch;
    request.method_text = "PATCH";
    auto patched = Command(request);
    EXPECT_EQ(http::HttpStatusOf(patched.status()), 405u) << verb.rest << ": " << patched.status();
  }
  EXPECT_GT(routes, 25);
}

// The router has a handler for every verb the registry gives the firewall writer or the
// front end itself, and for no other: a verb added without one fails here.
TEST_F(RestApiTest, EveryVerbOfTheRoutersOwnHasAHandler) {
  const std::vector<int> handled = CommandRouter::HandledVerbs();
  const std::set<int> handlers(handled.begin(), handled.end());
  EXPECT_EQ(handlers.size(), handled.size()) << "a verb with two handlers";
  for (const commands::Verb& verb : commands::Verbs()) {
    const bool routers = verb.server == commands::Server::kFirewall || verb.server == commands::Server::kFront;
    EXPECT_EQ(handlers.count(verb.field) == 1, routers) << verb.names[0];
  }
  for (int field : handlers) {
    v1::Command command;
    command.GetReflection()->MutableMessage(&command, v1::Command::descriptor()->FindFieldByNumber(field));
    EXPECT_NE(commands::VerbOf(command), nullptr) << field;
  }
}

// GET /metrics answers behind the same bearer token as every other route.
TEST_F(RestApiTest, MetricsNeedTheTokenAndAGet) {
  FrontMetrics metrics;
  api_.set_metrics(&metrics);
  auto answer = [this](http::Request request) {
    http::Response out;
    api_.Handle(std::move(request), [&out](http::Response response) { out = std::move(response); });
    return out;
  };
  http::Request anonymous = Make(bhttp::verb::get, "/metrics");
  anonymous.authorization.clear();
  EXPECT_EQ(answer(anonymous).status, 401u);
  http::Request wrong = Make(bhttp::verb::get, "/metrics");
  wrong.authorization = "Bearer 0123456789abcdeX";
  EXPECT_EQ(answer(wrong).status, 401u);
  EXPECT_EQ(answer(Make(bhttp::verb::post, "/metrics")).status, 405u);
  http::Response served = answer(Make(bhttp::verb::get, "/metrics"));
  EXPECT_EQ(served.status, 200u);
  EXPECT_EQ(served.content_type, metrics::kContentType);
  EXPECT_NE(served.body.find("# TYPE coold_commands_total counter\n"), std::string::npos) << served.body;
}

TEST_F(RestApiTest, AllowBodyBecomesTheCommand) {
  auto command = Command(Make(bhttp::verb::post, "/api/v1/firewall/allow",
                              R"({"namespace":"default","src":"10.0.0.1","dst":"10.0.0.2","proto":"tcp","port":80})"));
  ASSERT_TRUE(command.ok()) << command.status();
  ASSERT_TRUE(command->has_firewall_allow());
  EXPECT_EQ(command->firewall_allow().rule().dst(), "10.0.0.2");
  EXPECT_EQ(command->firewall_allow().rule().port(), 80u);
}

TEST_F(RestApiTest, ListTakesOnlyANamespace) {
  auto request = Make(bhttp::verb::get, "/api/v1/firewall/allow");
  request.query = {{"namespace", "alpha"}};
  auto command = Command(request);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->firewall_list().namespace_(), "alpha");
  request.query = {{"color", "red"}};
  ExpectRefused(request, absl::StatusCode::kInvalidArgument, "color: unknown query parameter");
}

TEST_F(RestApiTest, DeleteTakesTheIdFromThePath) {
  auto command = Command(Make(bhttp::verb::delete_, "/api/v1/firewall/allow/0123456789ab"));
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->firewall_delete().id(), "0123456789ab");
  // A caller's id is one path segment, decoded like any other.
  command = Command(Make(bhttp::verb::delete_, "/api/v1/firewall/allow/v5-caddy-ingress%3A80"));
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->firewall_delete().id(), "v5-caddy-ingress:80");
  ExpectRefused(Make(bhttp::verb::delete_, "/api/v1/firewall/allow/v5-cat\x98\x98"),
                absl::StatusCode::kInvalidArgument, "path: malformed segment");
  ExpectRefused(Make(bhttp::verb::delete_, "/api/v1/firewall/allow/"), absl::StatusCode::kInvalidArgument,
                "path: malformed segment");
  ExpectRefused(Make(bhttp::verb::delete_, "/api/v1/firewall/allow/a/b"), absl::StatusCode::kNotFound, "no route");
}

// A path segment that is not UTF-8 (escaped or not) could not cross the channel to a
// child, where a frame that does not parse is fatal: it is refused at the edge.
TEST_F(RestApiTest, PathSegmentsThatAreNotUtf8AreRefused) {
  ExpectRefused(Make(bhttp::verb::post, "/api/v1/containers/web%ff/stop"), absl::StatusCode::kInvalidArgument,
                "path: malformed segment");
  ExpectRefused(Make(bhttp::verb::post, "/api/v1/containers/w\xff" "b/stop"), absl::StatusCode::kInvalidArgument,
                "path: malformed segment");
  ExpectRefused(Make(bhttp::verb::get, "/api/v1/containers/%c0%80"), absl::StatusCode::kInvalidArgument,
                "path: malformed segment");
  auto command = Command(Make(bhttp::verb::post, "/api/v1/containers/caf%c3%a9/stop"));
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->containers_stop().id(), "caf\xc3\xa9");
}

TEST_F(RestApiTest, UnknownFieldsAreRefusedByName) {
  ExpectRefused(Make(bhttp::verb::post, "/api/v1/firewall/allow",
                     R"({"namespace":"default","src":"10.0.0.1","dst":"10.0.0.2","proto":"tcp","port":80,"comment":"x"})"),
                absl::StatusCode::kInvalidArgument, "comment: unknown field");
  ExpectRefused(Make(bhttp::verb::post, "/api/v1/firewall/allow/bulk", R"({"rules":[],"dry_run":true})"),
                absl::StatusCode::kInvalidArgument, "dry_run: unknown field");
}

TEST_F(RestApiTest, MalformedBodiesAreRefused) {
  ExpectRefused(Make(bhttp::verb::post, "/api/v1/firewall/allow", ""), absl::StatusCode::kInvalidArgument, "empty");
  ExpectRefused(Make(bhttp::verb::post, "/api/v1/firewall/allow", "{not json"), absl::StatusCode::kInvalidArgument,
                "body");
  ExpectRefused(Make(bhttp::verb::post, "/api/v1/firewall/allow", R"({"port":"eighty"})"),
                absl::StatusCode::kInvalidArgument, "body");
  ExpectRefused(Make(bhttp::verb::post, "/api/v1/firewall/allow", R"({"port":-1})"),
                absl::StatusCode::kInvalidArgument, "body");
}

TEST_F(RestApiTest, OversizeBulkIsRefused) {
  std::string body = R"({"rules":[)";
  for (int i = 0; i <= kMaxRulesPerRequest; ++i) {
    if (i) body += ",";
    body += R"({"port":1})";
  }
  body += "]}";
  ExpectRefused(Make(bhttp::verb::post, "/api/v1/firewall/allow/bulk", body), absl::StatusCode::kResourceExhausted,
                "at most");
}

TEST_F(RestApiTest, WrongMethodsAndPathsAreRefused) {
  ExpectRefused(Make(bhttp::verb::put, "/api/v1/firewall/allow"), absl::StatusCode::kUnimplemented, "not allowed");
  ExpectRefused(Make(bhttp::verb::get, "/api/v1/firewall/reconcile"), absl::StatusCode::kUnimplemented,
                "not allowed");
  ExpectRefused(Make(bhttp::verb::post, "/api/v1/firewall/allow/0123456789ab"), absl::StatusCode::kUnimplemented,
                "not allowed");
  ExpectRefused(Make(bhttp::verb::get, "/api/v1/nothing"), absl::StatusCode::kNotFound, "no route");
}

TEST_F(RestApiTest, PodmanRoutesBecomeTheirVerbs) {
  auto create = Command(Make(bhttp::verb::post, "/api/v1/containers", R"({"name":"web","image":"localhost/web:v2"})"));
  ASSERT_TRUE(create.ok()) << create.status();
  EXPECT_EQ(create->containers_create().spec().image(), "localhost/web:v2");

  auto stop = Command(Make(bhttp::verb::post, "/api/v1/containers/web/stop", R"({"timeout_seconds":3})"));
  ASSERT_TRUE(stop.ok()) << stop.status();
  EXPECT_EQ(stop->containers_stop().id(), "web");
  EXPECT_EQ(stop->containers_stop().timeout_seconds(), 3u);

  // The id comes from the path; a body cannot name another container.
  auto exec = Command(Make(bhttp::verb::post, "/api/v1/containers/web/exec", R"({"id":"other","cmd":["true"]})"));
  ASSERT_TRUE(exec.ok()) << exec.status();
  EXPECT_EQ(exec->containers_exec().id(), "web");

  auto health = Command(Make(bhttp::verb::post, "/api/v1/containers/web/healthcheck/run"));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_TRUE(health->has_containers_healthcheck_run());

  auto logs = Make(bhttp::verb::get, "/api/v1/containers/web/logs");
  logs.query = {{"follow", "true"}, {"tail", "10"}};
  auto logs_command = Command(logs);
  ASSERT_TRUE(logs_command.ok()) << logs_command.status();
  EXPECT_TRUE(logs_command->containers_logs().follow());
  EXPECT_EQ(logs_command->containers_logs().tail(), 10u);

  auto remove = Make(bhttp::verb::delete_, "/api/v1/containers/web%2F..%2Fx");
  remove.query = {{"force", "true"}};
  auto remove_command = Command(remove);
  ASSERT_TRUE(remove_command.ok()) << remove_command.status();
  // Decoded here; the gatekeeper validates and percent-encodes it again before Podman sees it.
  EXPECT_EQ(remove_command->containers_delete().id(), "web/../x");
  EXPECT_TRUE(remove_command->containers_delete().force());

  auto pull = Command(Make(bhttp::verb::post, "/api/v1/images/pull", R"({"ref":"localhost/busybox:latest"})"));
  ASSERT_TRUE(pull.ok()) << pull.status();
  EXPECT_EQ(pull->images_pull().ref(), "localhost/busybox:latest");
  EXPECT_TRUE(Command(Make(bhttp::verb::get, "/api/v1/host/info"))->has_host_info());
  EXPECT_TRUE(Command(Make(bhttp::verb::get, "/api/v1/networks"))->has_networks_list());
}

TEST_F(RestApiTest, PodmanRoutesRefuseBadRequests) {
  ExpectRefused(Make(bhttp::verb::post, "/api/v1/containers", R"({"name":"web","privileged_mode":true})"),
                absl::StatusCode::kInvalidArgument, "privileged_mode: unknown field");
  ExpectRefused(Make(bhttp::verb::put, "/api/v1/containers/web"), absl::StatusCode::kUnimplemented, "not allowed");
  ExpectRefused(Make(bhttp::verb::post, "/api/v1/containers/web/attach"), absl::StatusCode::kNotFound, "no route");
  auto logs = Make(bhttp::verb::get, "/api/v1/containers/web/logs");
  logs.query = {{"follow", "maybe"}};
  ExpectRefused(logs, absl::StatusCode::kInvalidArgument, "follow");
  logs.query = {{"since", "1h"}};
  ExpectRefused(logs, absl::StatusCode::kInvalidArgument, "since: unknown query parameter");
  ExpectRefused(Make(bhttp::verb::post, "/api/v1/containers/%zz/start"), absl::StatusCode::kInvalidArgument, "path");
  ExpectRefused(Make(bhttp::verb::get, "/api/v1/host/secrets"), absl::StatusCode::kNotFound, "no route");
  ExpectRefused(Make(bhttp::verb::get, "/api/v1/images", "{}"), absl::StatusCode::kInvalidArgument, "takes none");
}

TEST_F(RestApiTest, FollowedLogsGoToTheFollowerOnly) {
  auto logs = Make(bhttp::verb::get, "/api/v1/containers/web/logs");
  logs.query = {{"follow", "true"}, {"timestamps", "true"}};
  http::Response response;
  // Without a follower (as on a transport that answers once) a follow is 501.
  api_.Handle(logs, [&response](http::Response r) { response = std::move(r); });
  EXPECT_EQ(response.status, 501u) << response.body;

  v1::Command seen;
  RestApi following(router_, "0123456789abcdef", [&seen](const v1::Command& command) {
    seen = command;
    return http::Response{200, "", "text/plain", nullptr, {}};
  });
  following.Handle(logs, [&response](http::Response r) { response = std::move(r); });
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.content_type, "text/plain");
  EXPECT_EQ(seen.containers_logs().id(), "web");
  EXPECT_TRUE(seen.containers_logs().follow());
  EXPECT_TRUE(seen.containers_logs().timestamps());

  // The command router (the broker stream's way in) answers once, so it refuses a follow
  // before anything reaches the gatekeeper (whose channel here is closed).
  v1::CommandResult refused = router_.Route(seen);
  EXPECT_EQ(refused.code(), 400u);
  EXPECT_NE(refused.message().find("follow"), std::string::npos) << refused.message();
}

TEST_F(RestApiTest, MissingOrWrongTokenIs401) {
  for (const char* authorization : {"", "Bearer", "Bearer wrong-token-0000", "Basic 0123456789abcdef",
                                    "Bearer 0123456789abcdeF", "Bearer 0123456789abcdef0"}) {
    auto request = Make(bhttp::verb::get, "/api/v1/firewall/allow");
    request.authorization = authorization;
    http::Response response;
    api_.Handle(request, [&response](http::Response r) { response = std::move(r); });
    EXPECT_EQ(response.status, 401u) << authorization;
    EXPECT_NE(response.body.find("bearer token"), std::string::npos);
  }
}

TEST_F(RestApiTest, ResultsBecomeJsonBodies) {
  v1::CommandResult result;
  result.set_code(201);
  (*result.mutable_data()->mutable_struct_value()->mutable_fields())["id"].set_string_value("0123456789ab");
  http::Response response = ToHttpResponse(result);
  EXPECT_EQ(response.status, 201u);
  EXPECT_EQ(response.body, R"({"id":"0123456789ab"})");

  v1::CommandResult error;
  error.set_code(400);
  error.set_message("src: \"10.0.0.256\" is not an IPv4 address");
  error.set_field("src");
  response = ToHttpResponse(error);
  EXPECT_EQ(response.status, 400u);
  EXPECT_NE(response.body.find(R"("field":"src")"), std::string::npos) << response.body;
  // The field is the one the result carries, never read out of its message.
  error.clear_field();
  response = ToHttpResponse(error);
  EXPECT_EQ(response.body.find(R"("field")"), std::string::npos) << response.body;
}

// A gatekeeper's answer relayed as it came reaches the REST API printed straight from its
// reading (RouteToText), the same bytes ReprintJson gives and the same value the broker
// stream's Route carries; answers the router reads (an error, a log) keep their data.
TEST(RouteToTextTest, RelayedAnswersArePrintedOnceOthersKeepTheirData) {
  auto pair = privsep::SeqpacketPair();
  ASSERT_TRUE(pair.ok()) << pair.status();
  const std::string inspect =
      R"({"Id":"0123","State":{"Status":"running","Pid":4321,"Health":null},"Config":{"Labels":{"a":"<b>"}},"Args":["1000"]})";
  struct Answer {
    unsigned status;
    std::string body;
  };
  const std::vector<Answer> answers = {
      {200, inspect},
      {200, inspect},
      {403, R"({"error":"denied by policy","violations":[{"field":"id","rule":"namespace"}]})"},
      {200, R"({"stdout":"out\n","stderr":"err\n"})"},
      {200, "not json"},
  };
  // The gatekeeper's end: answers each call in turn.
  std::thread gatekeeper([end = std::move(pair->second), &answers]() mutable {
    privsep::Channel channel(std::move(end));
    privsep::Server<privsep::PodmanRequest, privsep::PodmanReply> server(channel);
    for (const Answer& answer : answers) {
      absl::StatusOr<privsep::PodmanRequest> request = server.Next();
      if (!request.ok()) return;
      privsep::PodmanReply reply;
      reply.set_request_id(request->request_id());
      reply.mutable_response()->set_http_status(answer.status);
      reply.mutable_response()->set_body(answer.body);
      if (!server.Reply(reply).ok()) return;
    }
  });
  privsep::Channel channel(std::move(pair->first));
  PodmanClient podman(channel);
  FirewallClient firewall(channel);
  CommandRouter router(firewall, podman);
  v1::Command command;
  command.mutable_containers_inspect()->set_id("web");

  std::string text;
  v1::CommandResult result = router.RouteToText(command, &text);
  EXPECT_EQ(result.code(), 200u);
  EXPECT_FALSE(result.has_data());
  EXPECT_EQ(text, *commands::ReprintJson(inspect));
  EXPECT_EQ(ToHttpResponse(result, text).body, text);

  v1::CommandResult broker = router.Route(command, Lane::kBroker);
  EXPECT_EQ(broker.code(), 200u);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(broker.data(), *commands::ParseJsonValue(text)));

  result = router.RouteToText(command, &text);
  EXPECT_EQ(result.code(), 403u);
  EXPECT_EQ(text, "");
  EXPECT_EQ(result.message(), "denied by policy");
  EXPECT_NE(ToHttpResponse(result, text).body.find(R"("rule":"namespace")"), std::string::npos);

  v1::Command logs;
  logs.mutable_containers_logs()->set_id("web");
  result = router.RouteToText(logs, &text);
  EXPECT_EQ(text, "");
  EXPECT_EQ(result.data().struct_value().fields().at("output").string_value(), "out\nerr\n");

  result = router.RouteToText(command, &text);
  EXPECT_EQ(result.code(), 500u);
  EXPECT_EQ(text, "");
  gatekeeper.join();
}

}  // namespace
}  // namespace coolify::front
