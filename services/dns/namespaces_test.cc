#include "services/dns/namespaces.h"

#include "gtest/gtest.h"

namespace coolify::dns {
namespace {

TEST(ParseNamespaces, SeedDefaultAndList) {
  auto d = ParseNamespaces("default:coolify-default-mesh:0.0.0.0");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE((*d)[0].HasDnsListener());
  auto two = ParseNamespaces("default:coolify-default-mesh:10.210.0.1,alpha:coolify-alpha-mesh:10.211.0.1");
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].name, "alpha");
  EXPECT_EQ((*two)[1].network, "coolify-alpha-mesh");
  EXPECT_EQ((*two)[1].gateway, "10.211.0.1");
}

TEST(ParseNamespaces, ClearErrors) {
  auto msg = [](const char* text) { return std::string(ParseNamespaces(text).status().message()); };
  EXPECT_EQ(msg(""), "COOLD_NAMESPACES: empty; expected <name>:<network>:<gateway-ip>,…");
  EXPECT_EQ(msg("default:net"), "COOLD_NAMESPACES: expected <name>:<network>:<gateway-ip>, got \"default:net\"");
  EXPECT_NE(msg("Default:net:10.0.0.1").find("namespace name"), std::string::npos);
  EXPECT_NE(msg("a:bad net:10.0.0.1").find("bad network name \"bad net\""), std::string::npos);
  EXPECT_NE(msg("a:net:10.0.0.256").find("gateway"), std::string::npos);
  EXPECT_EQ(msg("a:n1:10.0.0.1,a:n2:10.0.0.2"), "COOLD_NAMESPACES: namespace \"a\" twice");
  EXPECT_EQ(msg("a:n1:10.0.0.1,b:n2:10.0.0.1"),
            "COOLD_NAMESPACES: gateway 10.0.0.1 given to both \"a\" and \"b\"");
  EXPECT_FALSE(ParseNamespaces("a:n1:10.0.0.1,").ok());
}

TEST(ParseUpstream, Forms) {
  auto u = ParseUpstream("1.1.1.1:53");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->ip, "1.1.1.1");
  EXPECT_EQ(u->port, 53);
  EXPECT_EQ(ParseUpstream("9.9.9.9")->port, 53);
  EXPECT_EQ(ParseUpstream("127.0.0.1:5353")->port, 5353);
  EXPECT_FALSE(ParseUpstream("1.1.1.1:0").ok());
  EXPECT_FALSE(ParseUpstream("1.1.1.1:65536").ok());
  EXPECT_FALSE(ParseUpstream("1.1.1.1:").ok());
  EXPECT_FALSE(ParseUpstream("dns.google:53").ok());
  EXPECT_EQ(ParseUpstream("0.0.0.0:53").status().message(), "COOLD_DNS_UPSTREAM: 0.0.0.0 is not an upstream");
}

TEST(ParseZoneVariable, NamesTheVariable) {
  EXPECT_TRUE(ParseZoneVariable("coolify.internal").ok());
  EXPECT_EQ(ParseZoneVariable("bad..zone").status().message(),
            "COOLD_DNS_ZONE: DNS name \"bad..zone\": labels are 1..63 characters");
}

}  // namespace
}  // namespace coolify::dns
