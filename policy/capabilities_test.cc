#include "policy/capabilities.h"

#include <string>

#include "gtest/gtest.h"

namespace coolify::policy {
namespace {

TEST(CanonicalCapabilityTest, EverySpellingOfOneCapabilityIsTheSame) {
  for (const char* spelling :
       {"SYS_ADMIN", "sys_admin", "CAP_SYS_ADMIN", "cap_sys_admin", "Cap_Sys_Admin", " SYS_ADMIN",
        "SYS_ADMIN\t", "\n cap_SYS_admin \r"}) {
    SCOPED_TRACE(spelling);
    const absl::StatusOr<std::string> c = CanonicalCapability(spelling);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(*c, "SYS_ADMIN");
  }
}

TEST(CanonicalCapabilityTest, AllInAnySpelling) {
  for (const char* spelling : {"ALL", "all", "All", " all ", "CAP_ALL", "cap_all"}) {
    SCOPED_TRACE(spelling);
    EXPECT_EQ(CanonicalCapability(spelling).value_or(""), "ALL");
  }
}

TEST(CanonicalCapabilityTest, RefusesWhatIsNoCapability) {
  for (const char* spelling :
       {"", " ", "SYS ADMIN", "SYS_ADMIN_", "CAP_", "CAP_CAP_SYS_ADMIN",
        "\xC5\xBFys_admin" /* U+017F, which Go upper-cases to S */, "sys-admin", "41"}) {
    SCOPED_TRACE(spelling);
    EXPECT_EQ(CanonicalCapability(spelling).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(CanonicalCapability(std::string("SYS_ADMIN\0", 10)).ok());
}

TEST(CapabilitiesTest, KnownAndDefaultSets) {
  EXPECT_EQ(KnownCapabilities().size(), 41u);
  EXPECT_EQ(KnownCapabilities().front(), "CHOWN");
  EXPECT_EQ(KnownCapabilities().back(), "CHECKPOINT_RESTORE");
  EXPECT_EQ(DefaultCapabilities().size(), 11u);
  uint64_t bits = 0;
  for (std::string_view c : DefaultCapabilities()) {
    EXPECT_EQ(CanonicalCapability(c).value_or(""), c);
    bits |= uint64_t{1} << CapabilityIndex(c);
  }
  EXPECT_EQ(DefaultCapabilityBits(), bits);
  EXPECT_EQ(DefaultCapabilityBits() & (uint64_t{1} << CapabilityIndex("NET_RAW")), 0u);
  EXPECT_EQ(DefaultCapabilityBits() & (uint64_t{1} << CapabilityIndex("SYS_ADMIN")), 0u);
}

TEST(CapabilityIndexTest, KernelNumbers) {
  EXPECT_EQ(CapabilityIndex("CHOWN"), 0);
  EXPECT_EQ(CapabilityIndex(" cap_sys_admin "), 21);
  EXPECT_EQ(CapabilityIndex("CAP_CHECKPOINT_RESTORE"), 40);
  EXPECT_EQ(CapabilityIndex("all"), kAllCapabilitiesIndex);
  EXPECT_EQ(CapabilityIndex("CAP_ALL"), kAllCapabilitiesIndex);
  EXPECT_EQ(CapabilityIndex("SYS ADMIN"), kNoCapability);
  EXPECT_EQ(CapabilityIndex(std::string(100, 'A')), kNoCapability);
  EXPECT_EQ(CapabilityIndex(""), kNoCapability);
}

}  // namespace
}  // namespace coolify::policy
