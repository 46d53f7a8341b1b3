// The rows a reconcile wants, from Podman's answers (the reconcile against a real Podman
// is in tests/sync_e2e_test.cc).
#include "services/front/endpoint_sync.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace coolify::front {
namespace {

const std::string kWebId(64, 'a');
const std::string kDbId(64, 'b');
const std::string kOtherId(64, 'c');

v1::CooldConfig Config() {
  v1::CooldConfig config;
  config.set_host_id("host-1");
  auto* ns = config.add_namespaces();
  ns->set_name("default");
  ns->set_network("coolify-default-mesh");
  ns = config.add_namespaces();
  ns->set_name("alpha");
  ns->set_network("coolify-alpha-mesh");
  return config;
}

std::string List() {
  return R"([{"Id":")" + kWebId + R"(","Networks":["coolify-default-mesh"]},)" +  //
         R"({"Id":")" + kDbId + R"(","Networks":["coolify-alpha-mesh","podman"]},)" +
         R"({"Id":")" + kOtherId + R"(","Networks":["podman"]},)" +  // not a namespace's
         R"({"Names":["no-id"]}])";
}

std::map<std::string, std::string> Inspections() {
  return {
      {kWebId, R"({"Name":"web","State":{"Status":"Running","Health":{"Status":"Healthy"}},)"
               R"("Config":{"Labels":{"coolify.service":"shop"}},)"
               R"("NetworkSettings":{"Networks":{"coolify-default-mesh":{"IPAddress":"10.210.0.5"}}}})"},
      {kDbId, R"({"Name":"/db","State":{"Status":"exited"},"Config":{"Labels":{}},)"
              R"("NetworkSettings":{"Networks":{"podman":{"IPAddress":"10.88.0.2"},)"
              R"("coolify-alpha-mesh":{"IPAddress":"10.211.0.7"}}}})"},
  };
}

TEST(DesiredRowsTest, ContainersOnNamespaceNetworksBecomeRows) {
  std::map<std::string, std::string> inspections = Inspections();
  std::vector<std::string> inspected;
  auto inspect = [&](const std::string& id, const std::string&) -> absl::StatusOr<std::string> {
    inspected.push_back(id);
    return inspections.at(id);
  };
  auto rows = DesiredRows(List(), inspect, Config(), {});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  // Only containers on a namespace's network are inspected at all.
  EXPECT_EQ(inspected, (std::vector<std::string>{kWebId, kDbId}));
  const endpoints::EndpointRow& web = (*rows)[0];
  EXPECT_EQ(web.service_id, "shop");  // from the label
  EXPECT_EQ(web.container_id, kWebId);
  EXPECT_EQ(web.host_id, "host-1");
  EXPECT_EQ(web.namespace_name, "default");
  EXPECT_EQ(web.container_name, "web");
  EXPECT_EQ(web.ip, "10.210.0.5");
  EXPECT_EQ(web.state, "running");
  EXPECT_EQ(web.health, "healthy");
  const endpoints::EndpointRow& db = (*rows)[1];
  EXPECT_EQ(db.service_id, "db");  // no label: its name
  EXPECT_EQ(db.container_name, "db");
  EXPECT_EQ(db.namespace_name, "alpha");
  EXPECT_EQ(db.ip, "10.211.0.7");  // its address on the namespace's network, not podman's
  EXPECT_EQ(db.health, "unknown");
}

TEST(DesiredRowsTest, RegisteredRowsKeepTheirServiceAndPort) {
  std::map<std::string, std::string> inspections = Inspections();
  auto inspect = [&](const std::string& id, const std::string&) -> absl::StatusOr<std::string> { return inspections.at(id); };
  endpoints::EndpointRow registered;
  registered.service_id = "checkout";
  registered.container_id = kWebId;
  registered.port = 8080;
  auto rows = DesiredRows(List(), inspect, Config(), {registered});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].service_id, "checkout");
  EXPECT_EQ((*rows)[0].port, 8080u);
  EXPECT_EQ((*rows)[0].ip, "10.210.0.5");
}

TEST(DesiredRowsTest, AStoppedContainerKeepsItsRowWithItsNewState) {
  // Podman's view of a stopped container: no attachment, no address.
  std::map<std::string, std::string> inspections = {
      {kWebId, R"({"Name":"web","State":{"Status":"exited"},"Config":{},"NetworkSettings":{"Networks":{}}})"}};
  auto inspect = [&](const std::string& id, const std::string&) -> absl::StatusOr<std::string> { return inspections.at(id); };
  const std::string list = R"([{"Id":")" + kWebId + R"(","Networks":[]}])";
  // Never announced before: nothing to keep.
  auto none = DesiredRows(list, inspect, Config(), {});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  endpoints::EndpointRow known;
  known.service_id = "web";
  known.container_id = kWebId;
  known.namespace_name = "default";
  known.ip = "10.210.0.5";
  known.state = "running";
  auto kept = DesiredRows(list, inspect, Config(), {known});
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ((*kept)[0].state, "exited");
  EXPECT_EQ((*kept)[0].ip, "10.210.0.5");
  EXPECT_EQ((*kept)[0].namespace_name, "default");
}

TEST(DesiredRowsTest, FailuresAreErrorsAndVanishedContainersAreSkipped) {
  auto gone = [&](const std::string& id, const std::string&) -> absl::StatusOr<std::string> {
    if (id == kWebId) return absl::NotFoundError("gone");
    return Inspections().at(id);
  };
  auto rows = DesiredRows(List(), gone, Config(), {});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].container_id, kDbId);

  // Podman unreachable mid-way: an error, so the caller writes nothing this tick.
  auto down = [](const std::string&, const std::string&) -> absl::StatusOr<std::string> { return absl::UnavailableError("down"); };
  EXPECT_TRUE(absl::IsUnavailable(DesiredRows(List(), down, Config(), {}).status()));
  auto any = [](const std::string&, const std::string&) -> absl::StatusOr<std::string> { return std::string("{}"); };
  EXPECT_FALSE(DesiredRows("not json", any, Config(), {}).ok());
  EXPECT_FALSE(DesiredRows(R"({"Id":"x"})", any, Config(), {}).ok());
  auto garbage = [](const std::string&, const std::string&) -> absl::StatusOr<std::string> { return std::string("{"); };
  EXPECT_FALSE(DesiredRows(List(), garbage, Config(), {}).ok());
}

}  // namespace
}  // namespace coolify::front
