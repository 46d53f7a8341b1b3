#include "services/endpoints/endpoint.h"

#include "gtest/gtest.h"

namespace coolify::endpoints {
namespace {

EndpointRow Good() {
  EndpointRow r;
  r.service_id = "web";
  r.container_id = "0123456789abcdef";
  r.host_id = "host-a";
  r.namespace_name = "default";
  r.container_name = "web-1";
  r.ip = "10.210.0.5";
  r.port = 80;
  r.state = "running";
  r.health = "healthy";
  return r;
}

std::string Error(void (*mutate)(EndpointRow&)) {
  EndpointRow r = Good();
  mutate(r);
  return std::string(ValidateEndpointRow(r).message());
}

TEST(ValidateEndpointRow, AcceptsAGoodRow) { EXPECT_TRUE(ValidateEndpointRow(Good()).ok()); }

TEST(ValidateEndpointRow, EveryBadFieldNamed) {
  EXPECT_EQ(Error([](EndpointRow& r) { r.service_id = "-web"; }),
            "service_id: expected 1..128 of [A-Za-z0-9_.-], starting with a letter or digit, got \"-web\"");
  EXPECT_EQ(Error([](EndpointRow& r) { r.container_id = "XYZ"; }),
            "container_id: expected 12..64 lower-case hex digits, got \"XYZ\"");
  EXPECT_NE(Error([](EndpointRow& r) { r.host_id = "Host A"; }).find("host_id"), std::string::npos);
  EXPECT_NE(Error([](EndpointRow& r) { r.namespace_name = "1ns"; }).find("namespace"), std::string::npos);
  EXPECT_EQ(Error([](EndpointRow& r) { r.container_name = "web.evil"; }),
            "container_name: expected a DNS label: 1..63 of [A-Za-z0-9_-], starting with a letter or digit, got "
            "\"web.evil\"");
  EXPECT_NE(Error([](EndpointRow& r) { r.ip = "10.0.0.01"; }).find("ip"), std::string::npos);
  EXPECT_EQ(Error([](EndpointRow& r) { r.port = 70000; }), "port: expected 0 (none) or 1..65535, got \"70000\"");
  EXPECT_EQ(Error([](EndpointRow& r) { r.state = "zombie"; }),
            "state: expected a Podman container state (running, exited, ...), got \"zombie\"");
  EXPECT_EQ(Error([](EndpointRow& r) { r.health = ""; }),
            "health: expected healthy, unhealthy, starting or unknown, got \"\"");
}

TEST(ServesDns, RunningAndHealthyOrUnknown) {
  EndpointRow r = Good();
  EXPECT_TRUE(ServesDns(r));
  r.health = "unknown";
  EXPECT_TRUE(ServesDns(r));
  r.health = "starting";
  EXPECT_FALSE(ServesDns(r));
  r.health = "unhealthy";
  EXPECT_FALSE(ServesDns(r));
  r.health = "healthy";
  r.state = "exited";
  EXPECT_FALSE(ServesDns(r));
}

TEST(RowFromRegister, EmptyHealthIsUnknown) {
  v1::ServicesRegister req;
  req.set_service_id("web");
  req.set_container_id("0123456789ab");
  req.set_namespace_("default");
  req.set_container_name("web");
  req.set_ip("10.210.0.5");
  req.set_state("running");
  EndpointRow r = RowFromRegister(req);
  EXPECT_EQ(r.health, "unknown");
  EXPECT_EQ(r.namespace_name, "default");
  EXPECT_TRUE(r.host_id.empty());
}

}  // namespace
}  // namespace coolify::endpoints
