#include "services/commands/dispatch_codec.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace coolify::commands {
namespace {

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(ParseDispatch, ImagesPullWithCentralsFieldName) {
  auto d = ParseDispatch(R"({"host_id":"100.64.0.5","request_id":"r-1","command":{"type":"images.pull","reference":"localhost/web:v2"}})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->host_id, "100.64.0.5");
  EXPECT_EQ(d->request_id, "r-1");
  EXPECT_EQ(d->type, "images.pull");
  EXPECT_EQ(d->command.images_pull().ref(), "localhost/web:v2");
}

TEST(ParseDispatch, OurFieldNamesToo) {
  auto d = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"images.pull","ref":"busybox"}})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->command.images_pull().ref(), "busybox");
}

TEST(ParseDispatch, FirewallAllowIsTheRuleFlat) {
  auto d = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"firewall.allow","namespace":"default","src":"10.0.0.1","dst":"10.0.0.2","proto":"tcp","port":80}})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->command.firewall_allow().rule().port(), 80u);
  EXPECT_EQ(d->command.firewall_allow().rule().dst(), "10.0.0.2");
}

TEST(ParseDispatch, AliasesMapToOneVerb) {
  auto d = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"firewall.revoke","id":"0123456789ab"}})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->type, "firewall.delete");
  EXPECT_EQ(d->command.firewall_delete().id(), "0123456789ab");
  EXPECT_EQ(VerbNames(d->command), (std::vector<std::string>{"firewall.delete", "firewall.revoke"}));
  EXPECT_EQ(RequiredCapability(d->command), v1::CAPABILITY_FIREWALL);
}

TEST(ParseDispatch, ContainersCreateInCentralsShape) {
  auto d = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"containers.create",
    "name":"web","image":"localhost/web:v2","env":["A=1","B=x=y"],"networks":["coolify-default-mesh"],
    "volumes":["data:/var/lib/data:ro"],"ports":[{"host_ip":"100.64.0.5","host_port":8080,"container_port":80,"protocol":"tcp"}],
    "restart_policy":"always","capabilities":["NET_BIND_SERVICE"],"network_mode":"bridge"}})");
  ASSERT_TRUE(d.ok()) << d.status();
  const v1::ContainerSpec& spec = d->command.containers_create().spec();
  EXPECT_EQ(spec.name(), "web");
  ASSERT_EQ(spec.env_size(), 2);
  EXPECT_EQ(spec.env(1).key(), "B");
  EXPECT_EQ(spec.env(1).value(), "x=y");
  EXPECT_EQ(spec.networks(0).network(), "coolify-default-mesh");
  EXPECT_EQ(spec.volumes(0).volume(), "data");
  EXPECT_TRUE(spec.volumes(0).read_only());
  EXPECT_EQ(spec.ports(0).protocol(), v1::PORT_PROTOCOL_TCP);
  EXPECT_EQ(spec.restart_policy(), v1::RESTART_POLICY_ALWAYS);
  EXPECT_EQ(spec.cap_add(0), "NET_BIND_SERVICE");
  EXPECT_FALSE(spec.host_network());
}

TEST(ParseDispatch, HostNetworkModeAndBindVolumeReachThePolicyAsTyped) {
  auto d = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"containers.create",
    "name":"web","image":"x","network_mode":"host","volumes":["/etc:/host-etc"]}})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->command.containers_create().spec().host_network());
  EXPECT_EQ(d->command.containers_create().spec().binds(0).source(), "/etc");
}

TEST(ParseDispatch, LogsAcceptsBothStreams) {
  auto d = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"containers.logs","id":"abc","tail":10,"stdout":true,"stderr":true}})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->command.containers_logs().tail(), 10u);
  auto refused = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"containers.logs","id":"abc","stderr":false}})");
  EXPECT_EQ(Message(refused.status()), "command.stderr: only true is served: both streams are returned");
}

TEST(ParseDispatch, BadInputNamesWhatIsWrong) {
  struct Case {
    const char* body;
    const char* error;
  } cases[] = {
      {R"({"host_id":"h1","request_id":"r1","command":{"type":"images.explode"}})",
       "command.type: unknown type \"images.explode\""},
      {R"({"host_id":"h1","request_id":"r1","command":{"type":"images.pull","ref":"x","bogus":1}})",
       "command.bogus: unknown field"},
      {R"({"host_id":"h1","request_id":"r1","extra":1,"command":{"type":"images.list"}})", "extra: unknown field"},
      {R"({"host_id":"h1","request_id":"r1","command":{"ref":"x"}})", "command.type: missing"},
      {R"({"host_id":"h1","request_id":"r1","command":{"type":7}})", "command.type: expected a string"},
      {R"({"host_id":"h1","request_id":"r1"})", "command: missing"},
      {R"({"host_id":"h1","command":{"type":"images.list"}})", "request_id: missing"},
      {R"({"request_id":"r1","command":{"type":"images.list"}})", "host_id: missing"},
      {R"({"host_id":"h1","request_id":"../x","command":{"type":"images.list"}})",
       "request_id: \"../x\" must start with a letter or digit"},
      {R"({"host_id":"h 1","request_id":"r1","command":{"type":"images.list"}})",
       "host_id: \"h 1\" may hold only A-Z a-z 0-9 _ . - :"},
      {R"({"host_id":"h1","request_id":"r1","command":{"type":"images.pull","reference":"a","ref":"b"}})",
       "command.reference: given with ref"},
      {R"({"host_id":"h1","request_id":"r1","command":{"type":"containers.create","name":"w","image":"x","env":["NOVALUE"]}})",
       "command.env[0]: expected KEY=VALUE"},
      {R"({"host_id":"h1","request_id":"r1","command":{"type":"containers.create","name":"w","image":"x","network_mode":"container:abc"}})",
       "command.network_mode: \"container:abc\" is not host or bridge"},
  };
  for (const Case& c : cases) {
    auto d = ParseDispatch(c.body);
    ASSERT_FALSE(d.ok()) << c.body;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_EQ(Message(d.status()), c.error) << c.body;
  }
}

TEST(ParseDispatch, DuplicateKeysAndGarbageRefused) {
  EXPECT_FALSE(ParseDispatch(R"({"host_id":"h1","host_id":"h2","request_id":"r1","command":{"type":"images.list"}})").ok());
  EXPECT_FALSE(ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"images.list","type":"host.info"}})").ok());
  EXPECT_FALSE(ParseDispatch("not json").ok());
  EXPECT_FALSE(ParseDispatch("").ok());
}

TEST(ParseBuildDispatch, StaticBuild) {
  auto b = ParseBuildDispatch(R"({"request_id":"b-1","command":{"type":"static_build","repo_url":"https://example.com/r.git","git_ref":"main","target_image":"localhost/site:1","output_dir":"public"}})");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->host_id, "");
  EXPECT_EQ(b->build.stack(), v1::BUILD_STACK_STATIC);
  EXPECT_EQ(b->build.request_id(), "b-1");
  EXPECT_EQ(b->build.output_dir(), "public");
}

TEST(ParseBuildDispatch, BadInput) {
  struct Case {
    const char* body;
    const char* error;
  } cases[] = {
      {R"({"request_id":"b1","command":{"type":"nix_build","repo_url":"u","git_ref":"m","target_image":"t"}})",
       "command.type: unknown build type \"nix_build\"; expected static_build or dockerfile_build"},
      {R"({"request_id":"b1","command":{"type":"static_build","git_ref":"m","target_image":"t"}})",
       "command.repo_url: missing"},
      {R"({"request_id":"b1","command":{"type":"static_build","repo_url":"u","git_ref":"m","target_image":"t","stack":1}})",
       "command.stack: unknown field"},
      {R"({"request_id":"b1","command":{"type":"dockerfile_build","repo_url":"u","git_ref":"m","target_image":"t","base_image":"x"}})",
       "command.base_image: only for static_build"},
      {R"({"request_id":"b1","command":{"type":"cancel"}})",
       "command.type: cancel goes to POST /v1/build/{request_id}/cancel"},
      {R"({"request_id":"b1","command":{"type":"static_build","repo_url":"u","git_ref":"m","target_image":"t","cache":true}})",
       "command.cache: unknown field"},
  };
  for (const Case& c : cases) {
    auto b = ParseBuildDispatch(c.body);
    ASSERT_FALSE(b.ok()) << c.body;
    EXPECT_EQ(Message(b.status()), c.error) << c.body;
  }
}

TEST(Envelopes, OkErrorAndBuild) {
  v1::CommandResult ok;
  ok.set_code(201);
  (*ok.mutable_data()->mutable_struct_value()->mutable_fields())["id"].set_string_value("abc");
  Envelope e = CommandEnvelope("r1", ok);
  EXPECT_EQ(e.http_status, 200u);
  EXPECT_EQ(e.body, R"({"request_id":"r1","status":"ok","data":{"id":"abc"}})");

  v1::CommandResult denied;
  denied.set_code(403);
  denied.set_message("privileged: \"true\" denied");
  e = CommandEnvelope("r2", denied);
  EXPECT_EQ(e.http_status, 403u);
  EXPECT_EQ(e.body, R"({"request_id":"r2","status":"error","code":403,"message":"privileged: \"true\" denied"})");

  v1::CommandResult built;
  built.set_code(200);
  auto& f = *built.mutable_data()->mutable_struct_value()->mutable_fields();
  f["digest"].set_string_value("sha256:aa");
  f["registry_ref"].set_string_value("localhost/site:1");
  f["duration_ms"].set_number_value(1234);
  e = BuildEnvelope("b1", built);
  EXPECT_EQ(e.body, R"({"request_id":"b1","status":"ok","digest":"sha256:aa","registry_ref":"localhost/site:1","duration_ms":1234})");

  // Bytes that are not UTF-8 never make an envelope invalid JSON.
  e = ErrorEnvelope("b3", 502, std::string("bad \xb6 byte \xed\xa0\x80 surrogate"));
  EXPECT_EQ(e.body, "{\"request_id\":\"b3\",\"status\":\"error\",\"code\":502,\"message\":\"bad \xEF\xBF\xBD byte "
                    "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD surrogate\"}");

  e = ErrorEnvelope("b2", 503, "stream gone");
  EXPECT_EQ(e.http_status, 503u);
}

TEST(ParseDispatch, NginxDeployOfCentralWithAliasesAndSearchDomain) {
  auto d = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"containers.create",
    "name":"web","image":"nginx:alpine","networks":["coolify-default-mesh"],"network_aliases":["web"],
    "dns_search":["default.coolify.internal"],"restart_policy":"unless-stopped"}})");
  ASSERT_TRUE(d.ok()) << d.status();
  const v1::ContainerSpec& spec = d->command.containers_create().spec();
  ASSERT_EQ(spec.networks_size(), 1);
  EXPECT_EQ(spec.networks(0).aliases(0), "web");
  EXPECT_EQ(spec.dns_search(0), "default.coolify.internal");
  EXPECT_EQ(spec.restart_policy(), v1::RESTART_POLICY_UNLESS_STOPPED);
  auto orphan = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"containers.create",
    "image":"nginx","network_aliases":["web"]}})");
  EXPECT_EQ(orphan.status().message(), "command.network_aliases: needs networks to be named");
}

TEST(ParseDispatch, FirewallAllowCarriesTheCallersId) {
  auto d = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"firewall.allow","id":"v5-caddy-ingress:80",
    "namespace":"default","src":"0.0.0.0/0","dst":"coolify-v5-caddy","proto":"tcp","port":80}})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->command.firewall_allow().id(), "v5-caddy-ingress:80");
  EXPECT_EQ(d->command.firewall_allow().rule().dst(), "coolify-v5-caddy");
}

TEST(ParseDispatch, CatalogueVerbsNoCooldServesAreUnimplementedInCentralsWording) {
  for (const char* verb : {"ingress.apply", "ingress.stop", "corrosion.tables"}) {
    auto d = ParseDispatch(absl::StrCat(R"({"host_id":"h1","request_id":"r1","command":{"type":")", verb,
                                        R"(","kind":"caddy","jwt":"x"}})"));
    EXPECT_EQ(d.status().code(), absl::StatusCode::kUnimplemented) << verb;
    EXPECT_EQ(d.status().message(), absl::StrCat("primitive ", verb, " is not supported by host"));
  }
  auto unknown = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"no.such.verb"}})");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseDispatch, HostJwtSetCarriesTheTokenToHostsThatAdvertiseIt) {
  auto d = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"host.jwt.set","jwt":"a.b.c"}})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->command.host_jwt_set().jwt(), "a.b.c");
  EXPECT_EQ(RequiredCapability(d->command), v1::CAPABILITY_TOKEN_SET);
  auto extra = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"host.jwt.set","jwt":"a.b.c","x":1}})");
  EXPECT_FALSE(extra.ok());
}

TEST(ParseDispatch, ContainersListAndCooldLogsAreVerbsOfTheirOwn) {
  auto list = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"containers.list"}})");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->command.has_containers_list());
  EXPECT_EQ(RequiredCapability(list->command), v1::CAPABILITY_PODMAN);
  auto logs = ParseDispatch(R"({"host_id":"h1","request_id":"r1","command":{"type":"coold.logs","tail":200}})");
  ASSERT_TRUE(logs.ok()) << logs.status();
  EXPECT_EQ(logs->command.coold_logs().tail(), 200u);
  EXPECT_EQ(RequiredCapability(logs->command), v1::CAPABILITY_LOGS);
}

TEST(RequestIdOf, EchoesOnlyAValidIdFromABodyThatParses) {
  EXPECT_EQ(RequestIdOf(R"({"request_id":"abc-1","command":{"type":"x"}})"), "abc-1");
  EXPECT_EQ(RequestIdOf(R"({"request_id":"bad id","command":{}})"), "");
  EXPECT_EQ(RequestIdOf(R"({"request_id":7})"), "");
  EXPECT_EQ(RequestIdOf(R"({"request_id":"abc)"), "");
}

TEST(DispatchLaneResult, FirewallListIsTheListItself) {
  v1::Command list;
  list.mutable_firewall_list();
  v1::CommandResult result;
  result.set_code(200);
  google::protobuf::Value rule;
  (*rule.mutable_struct_value()->mutable_fields())["id"].set_string_value("v5-caddy-ingress:80");
  *(*result.mutable_data()->mutable_struct_value()->mutable_fields())["rules"].mutable_list_value()->add_values() = rule;
  EXPECT_EQ(ValueJson(DispatchLaneResult(list, result).data()), R"([{"id":"v5-caddy-ingress:80"}])");
  v1::Command info;
  info.mutable_host_info();
  EXPECT_EQ(ValueJson(DispatchLaneResult(info, result).data()), R"({"rules":[{"id":"v5-caddy-ingress:80"}]})");
}

}  // namespace
}  // namespace coolify::commands
