#include "policy/explain.h"

#include <string>

#include "gtest/gtest.h"
#include "policy/policy_file.h"

namespace coolify::policy {
namespace {

bool HasRow(const std::string& table, const std::string& key, const std::string& value) {
  const size_t at = table.find("\n" + key + " ");
  if (at == std::string::npos && table.rfind(key + " ", 0) != 0) return false;
  const size_t start = at == std::string::npos ? 0 : at + 1;
  const std::string line = table.substr(start, table.find('\n', start) - start);
  return line.find(value) != std::string::npos;
}

TEST(ExplainTest, BaselineTable) {
  const std::string table = ExplainPolicy(*EmbeddedPolicy(kBaselineProfile));
  EXPECT_TRUE(HasRow(table, "policy", "baseline")) << table;
  EXPECT_TRUE(HasRow(table, "privileged containers", "denied")) << table;
  EXPECT_TRUE(HasRow(table, "host network", "denied")) << table;
  EXPECT_TRUE(HasRow(table, "capabilities held", "CHOWN, DAC_OVERRIDE")) << table;
  EXPECT_TRUE(HasRow(table, "capabilities addable", "AUDIT_WRITE, MKNOD")) << table;
  EXPECT_TRUE(HasRow(table, "host paths", "/data/coolify/volumes (read-write)")) << table;
  EXPECT_TRUE(HasRow(table, "runtimes", "runc, crun (default crun)")) << table;
  EXPECT_TRUE(HasRow(table, "registries", "any")) << table;
  EXPECT_TRUE(HasRow(table, "namespace default", "80, 443, 1024-65535 on 0.0.0.0")) << table;
  EXPECT_TRUE(HasRow(table, "namespace * (any other)", "publishes host ports none")) << table;
  EXPECT_TRUE(HasRow(table, "max pids", "32768")) << table;
  EXPECT_FALSE(HasRow(table, "max memory", "no cap")) << table;
  EXPECT_TRUE(HasRow(table, "volume drivers", "local (options: UID, GID)")) << table;
  EXPECT_TRUE(HasRow(table, "network drivers", "isolate=true|strict")) << table;
  // Values line up in one column.
  const size_t column = table.find("baseline");
  EXPECT_EQ(table.find("denied"), table.find('\n') + 1 + column);
}

TEST(ExplainTest, RestrictedTable) {
  const std::string table = ExplainPolicy(*EmbeddedPolicy(kRestrictedProfile));
  EXPECT_TRUE(HasRow(table, "capabilities held", "none (all dropped)")) << table;
  EXPECT_TRUE(HasRow(table, "non-root user", "required")) << table;
  EXPECT_TRUE(HasRow(table, "read-only root", "required")) << table;
  EXPECT_TRUE(HasRow(table, "max memory", "8589934592 bytes")) << table;
}

}  // namespace
}  // namespace coolify::policy
