#include "services/endpoints/store_config.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace coolify::endpoints {
namespace {

absl::StatusOr<StoreConfig> Parse(std::map<std::string, std::string> vars) {
  return ParseStoreConfig([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(ParseStoreConfig, Defaults) {
  auto c = Parse({});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, StoreConfig::Kind::kSqlite);
  EXPECT_EQ(c->sqlite_path, "/var/lib/coolify/endpoints/endpoints.db");
  EXPECT_EQ(c->corrosion.ip, "127.0.0.1");
  EXPECT_EQ(c->corrosion.port, 8080);
}

TEST(ParseStoreConfig, Corrosion) {
  auto c = Parse({{"COOLD_ENDPOINT_STORE", "corrosion"}, {"COOLD_CORROSION_API", "http://10.0.0.2:9090/"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->kind, StoreConfig::Kind::kCorrosion);
  EXPECT_EQ(c->corrosion.ip, "10.0.0.2");
  EXPECT_EQ(c->corrosion.port, 9090);
}

TEST(ParseStoreConfig, ClearErrors) {
  EXPECT_EQ(Parse({{"COOLD_ENDPOINT_STORE", "redis"}}).status().message(),
            "COOLD_ENDPOINT_STORE: expected sqlite or corrosion, got \"redis\"");
  EXPECT_EQ(Parse({{"COOLD_ENDPOINT_DB", "endpoints.db"}}).status().message(),
            "COOLD_ENDPOINT_DB: must be an absolute file path, got \"endpoints.db\"");
  EXPECT_EQ(Parse({{"COOLD_CORROSION_API", "corrosion.local:8080"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse({{"COOLD_CORROSION_API", "127.0.0.1"}}).status().message(),
            "COOLD_CORROSION_API: expected IPv4:PORT, got \"127.0.0.1\"");
  EXPECT_EQ(Parse({{"COOLD_CORROSION_API", "127.0.0.1:0"}}).status().message(),
            "COOLD_CORROSION_API: port must be 1..65535 in \"127.0.0.1:0\"");
}

}  // namespace
}  // namespace coolify::endpoints
