// What the listener's per-source cap counts a peer under (SourceKey).
#include "services/broker/guarded_listener.h"

#include "boost/asio/ip/address.hpp"
#include "gtest/gtest.h"

namespace coolify::broker {
namespace {

std::string Key(const char* address) { return SourceKey(boost::asio::ip::make_address(address)); }

TEST(SourceKeyTest, AnIPv4PeerCountsUnderItsAddress) {
  EXPECT_EQ(Key("203.0.113.7"), "203.0.113.7");
  EXPECT_NE(Key("203.0.113.7"), Key("203.0.113.8"));
}

TEST(SourceKeyTest, AnIPv4PeerOfTheDualStackSocketCountsAsIPv4) {
  EXPECT_EQ(Key("::ffff:203.0.113.7"), "203.0.113.7");
}

// A site is given at least a /64: its addresses are one source, however many it uses.
TEST(SourceKeyTest, AnIPv6PeerCountsUnderItsSlash64) {
  EXPECT_EQ(Key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(Key("2001:db8:1:2::1"), Key("2001:db8:1:2:ffff::9"));
  EXPECT_NE(Key("2001:db8:1:2::1"), Key("2001:db8:1:3::1"));
}

}  // namespace
}  // namespace coolify::broker
