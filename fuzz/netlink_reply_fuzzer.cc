// The firewall writer's reading of the rules it finds in its chains (DecodeRule and
// DescribeRule in services/netlink/firewall_encoding.h): ours, and whatever another
// program put there. The input describes a rule as the kernel holds it, expression by
// expression (values the kernel accepts, any bytes where the kernel keeps bytes), built
// with libnftnl as ParseRuleMessage builds it from the kernel's dump. Netlink framing is
// libnftnl's and the kernel's; what coold adds to it (CheckRuleMessageShape) is unit
// tested in //services/netlink:firewall_encoding_test.
//
// No input may crash; a rule taken as ours decodes to a tuple and id that, written again
// with BuildRulePayload and read back, decode to the same tuple and id, and a rule taken
// as ours on one plane is never taken as ours on the other.
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "services/netlink/firewall_encoding.h"
#include "services/netlink/firewall_rule.h"

namespace {

using coolify::netlink::BuildRulePayload;
using coolify::netlink::DecodedRule;
using coolify::netlink::DecodeRule;
using coolify::netlink::DescribeRule;
using coolify::netlink::LocationOf;
using coolify::netlink::NftnlRule;
using coolify::netlink::ParseRuleMessage;
using coolify::netlink::Plane;

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return used_ >= size_; }
  uint8_t Byte() { return used_ < size_ ? data_[used_++] : 0; }
  uint32_t U32() {
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) value = value << 8 | Byte();
    return value;
  }
  // A length byte (at most `max`), then that many bytes.
  std::string Bytes(size_t max) {
    const size_t length = std::min<size_t>(Byte(), max);
    std::string out;
    while (out.size() < length && !empty()) out.push_back(static_cast<char>(Byte()));
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t used_ = 0;
};

constexpr size_t kDataMax = 16;  // sizeof(nft_data): the kernel keeps no more

// One expression as the kernel would report it; nullptr for an input byte naming none.
nftnl_expr* ReadExpression(Reader& in) {
  static const char* const kNames[] = {"meta", "payload", "bitwise", "cmp", "match", "immediate", "counter", "ct"};
  const uint8_t kind = in.Byte() % (sizeof(kNames) / sizeof(kNames[0]));
  nftnl_expr* e = nftnl_expr_alloc(kNames[kind]);
  if (e == nullptr) return nullptr;
  auto set_data = [&](uint16_t type, size_t max) {
    const std::string bytes = in.Bytes(max);
    if (!bytes.empty()) nftnl_expr_set(e, type, bytes.data(), static_cast<uint32_t>(bytes.size()));
  };
  switch (kind) {
    case 0:
      nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, in.Byte() % (NFT_META_SDIFNAME + 1));
      nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, in.Byte() % 24);
      break;
    case 1:
      nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, in.Byte() % (NFT_PAYLOAD_INNER_HEADER + 1));
      nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, in.Byte());
      nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, in.Byte() % (kDataMax + 1));
      nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, in.Byte() % 24);
      break;
    case 2:
      nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, in.Byte() % 24);
      nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, in.Byte() % 24);
      nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, in.Byte() % (kDataMax + 1));
      if (in.Byte() & 1) nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_OP, in.Byte() % (NFT_BITWISE_RSHIFT + 1));
      set_data(NFTNL_EXPR_BITWISE_MASK, kDataMax);
      set_data(NFTNL_EXPR_BITWISE_XOR, kDataMax);
      break;
    case 3:
      nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, in.Byte() % 24);
      nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, in.Byte() % 6);  // NFT_CMP_EQ .. NFT_CMP_GTE
      set_data(NFTNL_EXPR_CMP_DATA, kDataMax);
      break;
    case 4: {
      const std::string name = in.Bytes(28);  // XT_EXTENSION_MAXNAMELEN - 1
      nftnl_expr_set_str(e, NFTNL_EXPR_MT_NAME, name.c_str());
      nftnl_expr_set_u32(e, NFTNL_EXPR_MT_REV, in.Byte());
      // xt_comment_info is 256 bytes: a length byte then up to 255, zero-padded when set.
      std::string info = in.Bytes(255);
      if (in.Byte() & 1) info.resize(256, '\0');
      void* copy = malloc(info.size() + 1);  // libnftnl takes ownership
      memcpy(copy, info.data(), info.size());
      nftnl_expr_set(e, NFTNL_EXPR_MT_INFO, copy, static_cast<uint32_t>(info.size()));
      break;
    }
    case 5:
      nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, in.Byte() % 24);
      if (in.Byte() & 1) {
        // NF_ACCEPT, NF_DROP (linux/netfilter.h, which clashes with netinet/in.h).
        static const int32_t kVerdicts[] = {1, 0, NFT_CONTINUE, NFT_RETURN};
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(kVerdicts[in.Byte() % 4]));
      } else {
        set_data(NFTNL_EXPR_IMM_DATA, kDataMax);
      }
      break;
    case 6:
      if (in.Byte() & 1) nftnl_expr_set_u64(e, NFTNL_EXPR_CTR_PACKETS, in.U32());
      break;
    default:
      nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, in.Byte() % (NFT_CT_ID + 1));
      nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, in.Byte() % 24);
      break;
  }
  return e;
}

void CheckRoundTrip(Plane plane, const DecodedRule& decoded) {
  std::vector<char> buffer(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer.data(), NFT_MSG_NEWRULE, LocationOf(plane).family, 0, 1);
  BuildRulePayload(nlh, plane, decoded.rule, decoded.id);
  absl::StatusOr<NftnlRule> again = ParseRuleMessage(nlh);
  if (!again.ok()) abort();
  absl::StatusOr<DecodedRule> redecoded = DecodeRule(plane, **again);
  if (!redecoded.ok()) abort();
  if (redecoded->id != decoded.id || redecoded->rule.src != decoded.rule.src ||
      redecoded->rule.dst != decoded.rule.dst || redecoded->rule.protocol != decoded.rule.protocol ||
      redecoded->rule.port != decoded.rule.port) {
    abort();
  }
}

}  // namespace

// Input: a flags byte (bit 0: the rule has user data), then expressions until the input
// ends (at most 32, the most a rule of ours holds being 12), then the user data.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  NftnlRule rule(nftnl_rule_alloc());
  nftnl_rule_set_u64(rule.get(), NFTNL_RULE_HANDLE, 1 + in.Byte());
  const bool has_user_data = in.Byte() & 1;
  const size_t expressions = in.Byte() % 33;
  for (size_t i = 0; i < expressions && !in.empty(); ++i) {
    if (nftnl_expr* e = ReadExpression(in)) nftnl_rule_add_expr(rule.get(), e);
  }
  if (has_user_data) {
    const std::string user_data = in.Bytes(255);
    nftnl_rule_set_data(rule.get(), NFTNL_RULE_USERDATA, user_data.data(), static_cast<uint32_t>(user_data.size()));
  }
  (void)DescribeRule(*rule);
  absl::StatusOr<DecodedRule> ip = DecodeRule(Plane::kIp, *rule);
  absl::StatusOr<DecodedRule> bridge = DecodeRule(Plane::kBridge, *rule);
  if (ip.ok() && bridge.ok()) abort();
  if (ip.ok()) CheckRoundTrip(Plane::kIp, *ip);
  if (bridge.ok()) CheckRoundTrip(Plane::kBridge, *bridge);
  return 0;
}
