#include "services/dns/message.h"

#include <vector>

#include "gtest/gtest.h"
#include "services/dns/query_testing.h"

namespace coolify::dns {
namespace {

using testing::MakeQuery;
using testing::QueryOptions;
using testing::ReadAnswer;

ParseStatus Parse(const std::vector<uint8_t>& v, Query* q) { return ParseQuery(v.data(), v.size(), q); }

TEST(ParseQuery, PlainQueryLowerCasesTheName) {
  Query q;
  auto v = MakeQuery("Web.Default.Coolify.INTERNAL");
  ASSERT_EQ(Parse(v, &q), ParseStatus::kOk);
  EXPECT_EQ(q.id, 0x1234);
  EXPECT_TRUE(q.rd);
  EXPECT_EQ(q.qname.label_count, 4);
  EXPECT_EQ(q.qname.label(0), "web");
  EXPECT_EQ(q.qname.label(3), "internal");
  EXPECT_EQ(q.qtype, kTypeA);
  EXPECT_FALSE(q.has_edns);
  EXPECT_EQ(q.UdpLimit(), 512u);
  EXPECT_EQ(q.question_end, v.size());
}

TEST(ParseQuery, Edns) {
  Query q;
  QueryOptions o;
  o.edns_udp_size = 4096;
  ASSERT_EQ(Parse(MakeQuery("a.b", o), &q), ParseStatus::kOk);
  EXPECT_TRUE(q.has_edns);
  EXPECT_EQ(q.edns_udp_size, 4096);
  EXPECT_EQ(q.UdpLimit(), kOurUdpSize);  // capped at what we send
  o.edns_udp_size = 100;                 // below the classic limit: 512 still holds
  ASSERT_EQ(Parse(MakeQuery("a.b", o), &q), ParseStatus::kOk);
  EXPECT_EQ(q.UdpLimit(), 512u);
  o.edns_version = 1;
  EXPECT_EQ(Parse(MakeQuery("a.b", o), &q), ParseStatus::kBadVers);
}

TEST(ParseQuery, ShortOrResponseIsDropped) {
  Query q;
  std::vector<uint8_t> v(11, 0);
  EXPECT_EQ(Parse(v, &q), ParseStatus::kDrop);
  v = MakeQuery("a.b");
  v[2] |= 0x80;  // QR: a response
  EXPECT_EQ(Parse(v, &q), ParseStatus::kDrop);
}

TEST(ParseQuery, MalformedIsFormErr) {
  Query q;
  auto base = MakeQuery("web.default.coolify.internal");
  auto v = base;
  v[5] = 2;  // two questions
  EXPECT_EQ(Parse(v, &q), ParseStatus::kFormErr);
  v = base;
  v[5] = 0;  // none
  EXPECT_EQ(Parse(v, &q), ParseStatus::kFormErr);
  v = base;
  v.resize(v.size() - 1);  // truncated class
  EXPECT_EQ(Parse(v, &q), ParseStatus::kFormErr);
  v = base;
  v.push_back(0);  // trailing byte
  EXPECT_EQ(Parse(v, &q), ParseStatus::kFormErr);
  EXPECT_TRUE(q.question_parsed);
  v = base;
  v[7] = 1;  // an answer record in a query
  EXPECT_EQ(Parse(v, &q), ParseStatus::kFormErr);
  v = base;
  v[12] = 0x40;  // reserved label type
  EXPECT_EQ(Parse(v, &q), ParseStatus::kFormErr);
  v = base;
  v[12] = 70;  // label runs past the end
  EXPECT_EQ(Parse(v, &q), ParseStatus::kFormErr);
}

TEST(ParseQuery, CompressionPointersRefusedEvenSelfLoops) {
  Query q;
  std::vector<uint8_t> v = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                            0xC0, 0x0C,  // points at itself
                            0, 1, 0, 1};
  EXPECT_EQ(Parse(v, &q), ParseStatus::kFormErr);
}

TEST(ParseQuery, NameOver255OctetsIsFormErr) {
  std::string name;
  for (int i = 0; i < 5; ++i) name += std::string(60, 'a') + ".";
  name += "b";  // 5 * 61 + 2 + 1 > 255
  Query q;
  EXPECT_EQ(Parse(MakeQuery(name), &q), ParseStatus::kFormErr);
}

TEST(ParseQuery, OptRecordRules) {
  Query q;
  QueryOptions o;
  o.edns_udp_size = 1232;
  auto v = MakeQuery("a.b", o);
  auto two = v;
  two[11] = 2;  // a second OPT
  two.insert(two.end(), v.end() - 11, v.end());
  EXPECT_EQ(Parse(two, &q), ParseStatus::kFormErr);
  auto named = MakeQuery("a.b");
  named[11] = 1;
  const uint8_t opt[] = {1, 'x', 0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0};  // OPT not owned by the root
  named.insert(named.end(), opt, opt + sizeof(opt));
  EXPECT_EQ(Parse(named, &q), ParseStatus::kFormErr);
  auto bad_option = v;
  bad_option[bad_option.size() - 1] = 4;  // rdlength 4, no data
  EXPECT_EQ(Parse(bad_option, &q), ParseStatus::kFormErr);
  auto option = v;
  option[option.size() - 1] = 4;
  const uint8_t cookie_hdr[] = {0, 10, 0, 0};  // option 10, length 0
  option.insert(option.end(), cookie_hdr, cookie_hdr + 4);
  EXPECT_EQ(Parse(option, &q), ParseStatus::kOk);
}

TEST(ParseQuery, OtherOpcodeIsNotImp) {
  Query q;
  auto v = MakeQuery("a.b");
  v[2] |= 2 << 3;  // opcode 2 (STATUS)
  EXPECT_EQ(Parse(v, &q), ParseStatus::kNotImp);
}

TEST(BuildResponse, AnswerEchoesQuestionAsSent) {
  Query q;
  QueryOptions o;
  o.edns_udp_size = 1232;
  auto v = MakeQuery("WeB.default.coolify.internal", o);
  ASSERT_EQ(Parse(v, &q), ParseStatus::kOk);
  uint32_t addrs[] = {0x0AD20005, 0x0AD20006};
  uint8_t out[1500];
  size_t n = BuildResponse(q, v.data(), Rcode::kNoError, true, addrs, 2, q.UdpLimit(), out, sizeof(out));
  auto a = ReadAnswer(out, n);
  ASSERT_TRUE(a.ok);
  EXPECT_TRUE(a.qr);
  EXPECT_TRUE(a.aa);
  EXPECT_FALSE(a.tc);
  EXPECT_EQ(a.rcode, 0);
  EXPECT_EQ(a.question, "WeB.default.coolify.internal");
  EXPECT_EQ(a.a, (std::vector<std::string>{"10.210.0.5", "10.210.0.6"}));
  EXPECT_EQ(a.ttls, (std::vector<uint32_t>{5, 5}));
  EXPECT_TRUE(a.has_opt);
}

TEST(BuildResponse, TruncatesWhenOverTheLimit) {
  Query q;
  auto v = MakeQuery("web.default.coolify.internal");
  ASSERT_EQ(Parse(v, &q), ParseStatus::kOk);
  std::vector<uint32_t> addrs(40, 0x0A000001);  // 12 + 34 + 40 * 16 > 512
  uint8_t out[4096];
  size_t n = BuildResponse(q, v.data(), Rcode::kNoError, true, addrs.data(), addrs.size(), q.UdpLimit(), out,
                           sizeof(out));
  auto a = ReadAnswer(out, n);
  EXPECT_TRUE(a.tc);
  EXPECT_EQ(a.ancount, 0);
  EXPECT_LE(n, 512u);
  n = BuildResponse(q, v.data(), Rcode::kNoError, true, addrs.data(), addrs.size(), 65535, out, sizeof(out));
  a = ReadAnswer(out, n);
  EXPECT_FALSE(a.tc);
  EXPECT_EQ(a.ancount, 40);
}

TEST(BuildResponse, BadVersCarriesExtendedRcode) {
  Query q;
  QueryOptions o;
  o.edns_udp_size = 1232;
  o.edns_version = 3;
  auto v = MakeQuery("a.b", o);
  ASSERT_EQ(Parse(v, &q), ParseStatus::kBadVers);
  uint8_t out[512];
  size_t n = BuildResponse(q, v.data(), Rcode::kBadVers, false, nullptr, 0, 512, out, sizeof(out));
  auto a = ReadAnswer(out, n);
  EXPECT_EQ(a.rcode, 16);
}

TEST(BuildResponse, FormErrWithoutQuestion) {
  Query q;
  auto v = MakeQuery("a.b");
  v[5] = 3;
  ASSERT_EQ(Parse(v, &q), ParseStatus::kFormErr);
  uint8_t out[512];
  size_t n = BuildResponse(q, v.data(), Rcode::kFormErr, false, nullptr, 0, 512, out, sizeof(out));
  auto a = ReadAnswer(out, n);
  EXPECT_EQ(a.rcode, 1);
  EXPECT_EQ(a.qdcount, 0);
  EXPECT_EQ(a.id, 0x1234);
}

TEST(ParseName, Grammar) {
  EXPECT_TRUE(ParseName("coolify.internal").ok());
  EXPECT_EQ(ParseName("Coolify.Internal")->label(0), "coolify");
  EXPECT_EQ(ParseName("").status().message(), "DNS name \"\": empty");
  EXPECT_FALSE(ParseName("coolify.internal.").ok());
  EXPECT_FALSE(ParseName("a..b").ok());
  EXPECT_FALSE(ParseName("a b").ok());
  EXPECT_FALSE(ParseName(std::string(64, 'a')).ok());
}

TEST(SameQuestion, MatchesCaseInsensitively) {
  Query q;
  auto v = MakeQuery("example.com");
  ASSERT_EQ(Parse(v, &q), ParseStatus::kOk);
  auto upper = MakeQuery("EXAMPLE.com");
  upper[2] |= 0x80;
  EXPECT_TRUE(SameQuestion(q, upper.data(), upper.size()));
  auto other = MakeQuery("example.org");
  EXPECT_FALSE(SameQuestion(q, other.data(), other.size()));
  QueryOptions aaaa;
  aaaa.qtype = kTypeAAAA;
  auto other_type = MakeQuery("example.com", aaaa);
  EXPECT_FALSE(SameQuestion(q, other_type.data(), other_type.size()));
}

}  // namespace
}  // namespace coolify::dns
