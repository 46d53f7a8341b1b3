#include "services/dns/resolver.h"

#include <vector>

#include "gtest/gtest.h"
#include "services/dns/query_testing.h"
#include "services/endpoints/endpoint.h"

namespace coolify::dns {
namespace {

using endpoints::EndpointRow;
using testing::Answer;
using testing::MakeQuery;
using testing::QueryOptions;
using testing::ReadAnswer;

EndpointRow Row(const std::string& ns, const std::string& name, const std::string& ip,
                const std::string& state = "running", const std::string& health = "healthy") {
  EndpointRow r;
  r.service_id = "svc-" + name;
  r.container_id = "0123456789ab" + std::to_string(ip.size());
  r.host_id = "host-a";
  r.namespace_name = ns;
  r.container_name = name;
  r.ip = ip;
  r.state = state;
  r.health = health;
  return r;
}

class ResolverTest : public ::testing::Test {
 protected:
  ResolverTest() : zone_(*ParseName("coolify.internal")), resolver_(zone_, "default", &table_, &stats_) {
    table_.Replace({
        Row("default", "web", "10.210.0.5"),
        Row("default", "web", "10.210.0.6", "running", "unknown"),
        Row("default", "sick", "10.210.0.7", "running", "unhealthy"),
        Row("default", "booting", "10.210.0.8", "running", "starting"),
        Row("default", "gone", "10.210.0.9", "exited", "unknown"),
        Row("alpha", "db", "10.211.0.5"),
    });
  }

  Answer Ask(const std::vector<uint8_t>& q, bool tcp = false, Action want = Action::kReply) {
    Query parsed;
    Outcome o = resolver_.Handle(q.data(), q.size(), tcp, &parsed, out_, sizeof(out_));
    EXPECT_EQ(o.action, want);
    return ReadAnswer(out_, o.size);
  }
  Answer Ask(const std::string& name, uint16_t qtype = kTypeA) {
    QueryOptions o;
    o.qtype = qtype;
    return Ask(MakeQuery(name, o));
  }

  WireName zone_;
  NameTable table_;
  Stats stats_;
  Resolver resolver_;
  uint8_t out_[65535];
};

TEST_F(ResolverTest, RunningHealthyOrUnknownAnswer) {
  Answer a = Ask("web.default.coolify.internal");
  EXPECT_EQ(a.rcode, 0);
  EXPECT_TRUE(a.aa);
  EXPECT_EQ(a.a, (std::vector<std::string>{"10.210.0.5", "10.210.0.6"}));
  EXPECT_EQ(a.ttls[0], 5u);
}

TEST_F(ResolverTest, CaseInsensitive) {
  Answer a = Ask("WEB.Default.COOLIFY.internal");
  EXPECT_EQ(a.a.size(), 2u);
  EXPECT_EQ(a.question, "WEB.Default.COOLIFY.internal");
}

TEST_F(ResolverTest, UnhealthyStartingExitedAreNxdomain) {
  EXPECT_EQ(Ask("sick.default.coolify.internal").rcode, 3);
  EXPECT_EQ(Ask("booting.default.coolify.internal").rcode, 3);
  EXPECT_EQ(Ask("gone.default.coolify.internal").rcode, 3);
  EXPECT_EQ(Ask("nobody.default.coolify.internal").rcode, 3);
}

TEST_F(ResolverTest, BareNameIsNxdomainOnPurpose) {
  Answer a = Ask("web.coolify.internal");
  EXPECT_EQ(a.rcode, 3);
  EXPECT_TRUE(a.a.empty());
}

TEST_F(ResolverTest, OtherNamespaceIsInvisible) {
  EXPECT_EQ(Ask("db.alpha.coolify.internal").rcode, 3);
  EXPECT_EQ(Ask("alpha.coolify.internal").rcode, 3);
  Resolver alpha(zone_, "alpha", &table_, &stats_);
  auto q = MakeQuery("db.alpha.coolify.internal");
  Query parsed;
  Outcome o = alpha.Handle(q.data(), q.size(), false, &parsed, out_, sizeof(out_));
  EXPECT_EQ(ReadAnswer(out_, o.size).a, std::vector<std::string>{"10.211.0.5"});
  q = MakeQuery("web.default.coolify.internal");
  o = alpha.Handle(q.data(), q.size(), false, &parsed, out_, sizeof(out_));
  EXPECT_EQ(ReadAnswer(out_, o.size).rcode, 3);
}

TEST_F(ResolverTest, AaaaAndOtherTypesAreNodata) {
  Answer a = Ask("web.default.coolify.internal", kTypeAAAA);
  EXPECT_EQ(a.rcode, 0);
  EXPECT_EQ(a.ancount, 0);
  EXPECT_EQ(Ask("web.default.coolify.internal", 16 /* TXT */).ancount, 0);
  EXPECT_EQ(Ask("web.default.coolify.internal", kTypeANY).ancount, 2);
  EXPECT_EQ(Ask("coolify.internal").rcode, 0);          // the apex exists
  EXPECT_EQ(Ask("default.coolify.internal").rcode, 0);  // so does our namespace
  EXPECT_EQ(Ask("nobody.default.coolify.internal", kTypeAAAA).rcode, 3);
}

TEST_F(ResolverTest, NamesOnlyEndingLikeTheZoneAreNotInIt) {
  Query parsed;
  auto q = MakeQuery("web.default.notcoolify.internal");
  EXPECT_EQ(resolver_.Handle(q.data(), q.size(), false, &parsed, out_, sizeof(out_)).action, Action::kForward);
  q = MakeQuery("a.b");  // as many labels as the zone, fewer octets
  EXPECT_EQ(resolver_.Handle(q.data(), q.size(), false, &parsed, out_, sizeof(out_)).action, Action::kForward);
  q = MakeQuery("xcoolify.internal");
  EXPECT_EQ(resolver_.Handle(q.data(), q.size(), false, &parsed, out_, sizeof(out_)).action, Action::kForward);
  q = MakeQuery("example.com");
  EXPECT_EQ(resolver_.Handle(q.data(), q.size(), false, &parsed, out_, sizeof(out_)).action, Action::kForward);
  EXPECT_EQ(stats_.forwarded.load(), 4u);
}

TEST_F(ResolverTest, NonInClassRefused) {
  QueryOptions o;
  o.qclass = 3;  // CHAOS
  EXPECT_EQ(Ask(MakeQuery("web.default.coolify.internal", o)).rcode, 5);
}

TEST_F(ResolverTest, TruncationOverUdpNotTcp) {
  std::vector<EndpointRow> rows;
  for (int i = 1; i <= 60; ++i) rows.push_back(Row("default", "big", "10.210.1." + std::to_string(i)));
  table_.Replace(rows);
  Answer udp = Ask("big.default.coolify.internal");
  EXPECT_TRUE(udp.tc);
  EXPECT_EQ(udp.ancount, 0);
  QueryOptions o;
  o.edns_udp_size = 1232;  // 60 * 16 fits in 1232
  Answer edns = Ask(MakeQuery("big.default.coolify.internal", o));
  EXPECT_FALSE(edns.tc);
  EXPECT_EQ(edns.ancount, 60);
  Answer tcp = Ask(MakeQuery("big.default.coolify.internal"), true);
  EXPECT_FALSE(tcp.tc);
  EXPECT_EQ(tcp.ancount, 60);
  EXPECT_EQ(stats_.truncated.load(), 1u);
}

TEST_F(ResolverTest, TableUpdatesAreSeen) {
  EXPECT_EQ(Ask("new.default.coolify.internal").rcode, 3);
  table_.Replace({Row("default", "new", "10.210.0.20")});
  EXPECT_EQ(Ask("new.default.coolify.internal").a, std::vector<std::string>{"10.210.0.20"});
  EXPECT_EQ(Ask("web.default.coolify.internal").rcode, 3);
}

TEST_F(ResolverTest, MalformedAnsweredOrDropped) {
  EXPECT_EQ(Ask(std::vector<uint8_t>{1, 2, 3}, false, Action::kDrop).ok, false);
  auto q = MakeQuery("web.default.coolify.internal");
  q[5] = 0;
  EXPECT_EQ(Ask(q).rcode, 1);
  q = MakeQuery("web.default.coolify.internal");
  q[2] |= 0x80;
  Ask(q, false, Action::kDrop);
  EXPECT_EQ(stats_.dropped.load(), 2u);
  EXPECT_EQ(stats_.formerr.load(), 1u);
}

TEST(LookupName, Diagnostics) {
  NameTable table;
  EndpointRow r;
  r.service_id = "s";
  r.container_id = "0123456789ab";
  r.host_id = "h";
  r.namespace_name = "default";
  r.container_name = "web";
  r.ip = "10.210.0.5";
  r.state = "running";
  r.health = "healthy";
  table.Replace({r});
  WireName zone = *ParseName("coolify.internal");
  auto hit = LookupName(table, zone, "Web.default.coolify.internal.");
  ASSERT_TRUE(hit.ok()) << hit.status();
  EXPECT_EQ(hit->rcode, Rcode::kNoError);
  EXPECT_EQ(hit->namespace_name, "default");
  EXPECT_EQ(hit->addresses, std::vector<std::string>{"10.210.0.5"});
  EXPECT_EQ(LookupName(table, zone, "web.coolify.internal")->rcode, Rcode::kNxDomain);
  EXPECT_EQ(LookupName(table, zone, "example.com").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LookupName(table, zone, "bad name").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coolify::dns
