#include "services/netlink/firewall_encoding.h"
#include "privsep/validate.h"

#include <arpa/inet.h>
#include <endian.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/if_ether.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_tables_compat.h>
#include <linux/netfilter/nfnetlink.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace coolify::netlink {
namespace {

// struct xt_comment_info from <linux/netfilter/xt_comment.h>: the comment, NUL-padded.
constexpr size_t kXtCommentInfoSize = 256;

// Offsets in the IPv4 header and the transport header.
constexpr uint32_t kIpSaddrOffset = 12;
constexpr uint32_t kIpDaddrOffset = 16;
constexpr uint32_t kDportOffset = 2;

// ---- encoding ---------------------------------------------------------------------

void PutU32(nlmsghdr* nlh, uint16_t type, uint32_t value) {
  mnl_attr_put_u32(nlh, type, htonl(value));
}

// One expression: NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { `data` } }.
template <typename F>
void PutExpr(nlmsghdr* nlh, const char* name, F data) {
  nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
  mnl_attr_put_strz(nlh, NFTA_EXPR_NAME, name);
  nlattr* attrs = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
  data();
  mnl_attr_nest_end(nlh, attrs);
  mnl_attr_nest_end(nlh, elem);
}

// A data register value: `type` { NFTA_DATA_VALUE bytes }.
void PutValue(nlmsghdr* nlh, uint16_t type, const void* data, size_t length) {
  nlattr* nest = mnl_attr_nest_start(nlh, type);
  mnl_attr_put(nlh, NFTA_DATA_VALUE, length, data);
  mnl_attr_nest_end(nlh, nest);
}

void PutMeta(nlmsghdr* nlh, uint32_t key) {
  PutExpr(nlh, "meta", [&] {
    PutU32(nlh, NFTA_META_KEY, key);
    PutU32(nlh, NFTA_META_DREG, NFT_REG_1);
  });
}

void PutPayload(nlmsghdr* nlh, uint32_t base, uint32_t offset, uint32_t length) {
  PutExpr(nlh, "payload", [&] {
    PutU32(nlh, NFTA_PAYLOAD_DREG, NFT_REG_1);
    PutU32(nlh, NFTA_PAYLOAD_BASE, base);
    PutU32(nlh, NFTA_PAYLOAD_OFFSET, offset);
    PutU32(nlh, NFTA_PAYLOAD_LEN, length);
  });
}

void PutCmpEq(nlmsghdr* nlh, const void* data, size_t length) {
  PutExpr(nlh, "cmp", [&] {
    PutU32(nlh, NFTA_CMP_SREG, NFT_REG_1);
    PutU32(nlh, NFTA_CMP_OP, NFT_CMP_EQ);
    PutValue(nlh, NFTA_CMP_DATA, data, length);
  });
}

// ip saddr / ip daddr == prefix, spelled as iptables-nft and nft both spell it.
void PutPrefixMatch(nlmsghdr* nlh, uint32_t offset, const Ipv4Prefix& prefix) {
  const uint32_t address = htonl(prefix.address);
  if (prefix.length > 0 && prefix.length % 8 == 0) {
    const uint32_t bytes = prefix.length / 8u;
    PutPayload(nlh, NFT_PAYLOAD_NETWORK_HEADER, offset, bytes);
    PutCmpEq(nlh, &address, bytes);
    return;
  }
  PutPayload(nlh, NFT_PAYLOAD_NETWORK_HEADER, offset, sizeof address);
  const uint32_t mask = htonl(prefix.Mask());
  const uint32_t zero = 0;
  PutExpr(nlh, "bitwise", [&] {
    PutU32(nlh, NFTA_BITWISE_SREG, NFT_REG_1);
    PutU32(nlh, NFTA_BITWISE_DREG, NFT_REG_1);
    PutU32(nlh, NFTA_BITWISE_LEN, sizeof address);
    PutValue(nlh, NFTA_BITWISE_MASK, &mask, sizeof mask);
    PutValue(nlh, NFTA_BITWISE_XOR, &zero, sizeof zero);
  });
  PutCmpEq(nlh, &address, sizeof address);
}

void PutL4Proto(nlmsghdr* nlh, Protocol protocol) {
  const uint8_t proto = static_cast<uint8_t>(protocol);
  PutMeta(nlh, NFT_META_L4PROTO);
  PutCmpEq(nlh, &proto, sizeof proto);
}

void PutDport(nlmsghdr* nlh, uint16_t port) {
  const uint16_t dport = htons(port);
  PutPayload(nlh, NFT_PAYLOAD_TRANSPORT_HEADER, kDportOffset, sizeof dport);
  PutCmpEq(nlh, &dport, sizeof dport);
}

void PutCommentMatch(nlmsghdr* nlh, const std::string& id) {
  char info[kXtCommentInfoSize] = {};
  memcpy(info, id.data(), std::min(id.size(), kXtCommentInfoSize - 1));
  PutExpr(nlh, "match", [&] {
    mnl_attr_put_strz(nlh, NFTA_MATCH_NAME, "comment");
    PutU32(nlh, NFTA_MATCH_REV, 0);
    mnl_attr_put(nlh, NFTA_MATCH_INFO, sizeof info, info);
  });
}

void PutCounter(nlmsghdr* nlh) {
  PutExpr(nlh, "counter", [&] {
    mnl_attr_put_u64(nlh, NFTA_COUNTER_BYTES, 0);
    mnl_attr_put_u64(nlh, NFTA_COUNTER_PACKETS, 0);
  });
}

void PutAccept(nlmsghdr* nlh) {
  PutExpr(nlh, "immediate", [&] {
    PutU32(nlh, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
    nlattr* data = mnl_attr_nest_start(nlh, NFTA_IMMEDIATE_DATA);
    nlattr* verdict = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);
    PutU32(nlh, NFTA_VERDICT_CODE, NF_ACCEPT);
    mnl_attr_nest_end(nlh, verdict);
    mnl_attr_nest_end(nlh, data);
  });
}

// The rule's comment as nft stores it: one user-data TLV (type, length, the string with
// its NUL).
void PutComment(nlmsghdr* nlh, const std::string& id) {
  std::string tlv;
  tlv.push_back(static_cast<char>(NFTNL_UDATA_RULE_COMMENT));
  tlv.push_back(static_cast<char>(id.size() + 1));
  tlv.append(id);
  tlv.push_back('\0');
  mnl_attr_put(nlh, NFTA_RULE_USERDATA, tlv.size(), tlv.data());
}

void PutChain(nlmsghdr* nlh, Plane plane) {
  const ChainLocation location = LocationOf(plane);
  mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, location.table);
  mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, location.chain);
}

// ---- decoding ---------------------------------------------------------------------

// What BuildRulePayload writes, parsed back as the kernel's rules are: the reference a
// kernel rule is compared with.
NftnlRule Encoded(Plane plane, const Rule& rule, const std::string& id) {
  alignas(nlmsghdr) char buffer[4096];
  nlmsghdr* nlh =
      nftnl_nlmsg_build_hdr(buffer, NFT_MSG_NEWRULE, LocationOf(plane).family, 0, 0);
  BuildRulePayload(nlh, plane, rule, id);
  NftnlRule parsed(nftnl_rule_alloc());
  nftnl_rule_nlmsg_parse(nlh, parsed.get());
  return parsed;
}

std::vector<nftnl_expr*> Expressions(const nftnl_rule& rule) {
  std::vector<nftnl_expr*> result;
  nftnl_expr_iter* iter = nftnl_expr_iter_create(&rule);
  for (nftnl_expr* e = nftnl_expr_iter_next(iter); e != nullptr; e = nftnl_expr_iter_next(iter)) {
    result.push_back(e);
  }
  nftnl_expr_iter_destroy(iter);
  return result;
}

std::string_view ExprName(const nftnl_expr* e) {
  const char* name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
  return name == nullptr ? std::string_view() : std::string_view(name);
}

// An attribute as stored: absent, or its bytes.
std::optional<std::string> Attribute(const nftnl_expr* e, uint16_t type) {
  if (!nftnl_expr_is_set(e, type)) return std::nullopt;
  uint32_t length = 0;
  const void* data = nftnl_expr_get(e, type, &length);
  return std::string(static_cast<const char*>(data), length);
}

// The attributes that define what an expression does, per expression type. The kernel
// reports every attribute it keeps, so what a tool did not send comes back only as the
// kernel's default; the one such default among our expressions is bitwise's operation
// (NFT_BITWISE_BOOL, 0), compared as a value below.
struct ExprAttributes {
  std::string_view name;
  std::vector<uint16_t> attributes;
};

const std::vector<ExprAttributes>& ComparedAttributes() {
  static const auto* table = new std::vector<ExprAttributes>{
      {"meta", {NFTNL_EXPR_META_KEY, NFTNL_EXPR_META_DREG, NFTNL_EXPR_META_SREG}},
      {"cmp", {NFTNL_EXPR_CMP_SREG, NFTNL_EXPR_CMP_OP, NFTNL_EXPR_CMP_DATA}},
      {"payload",
       {NFTNL_EXPR_PAYLOAD_DREG, NFTNL_EXPR_PAYLOAD_BASE, NFTNL_EXPR_PAYLOAD_OFFSET,
        NFTNL_EXPR_PAYLOAD_LEN, NFTNL_EXPR_PAYLOAD_SREG, NFTNL_EXPR_PAYLOAD_CSUM_TYPE,
        NFTNL_EXPR_PAYLOAD_CSUM_OFFSET, NFTNL_EXPR_PAYLOAD_FLAGS}},
      {"bitwise",
       {NFTNL_EXPR_BITWISE_SREG, NFTNL_EXPR_BITWISE_DREG, NFTNL_EXPR_BITWISE_LEN,
        NFTNL_EXPR_BITWISE_MASK, NFTNL_EXPR_BITWISE_XOR, NFTNL_EXPR_BITWISE_DATA}},
      {"match", {NFTNL_EXPR_MT_NAME, NFTNL_EXPR_MT_REV, NFTNL_EXPR_MT_INFO}},
      {"immediate",
       {NFTNL_EXPR_IMM_DREG, NFTNL_EXPR_IMM_DATA, NFTNL_EXPR_IMM_VERDICT, NFTNL_EXPR_IMM_CHAIN,
        NFTNL_EXPR_IMM_CHAIN_ID}},
      // A counter's attributes are its live packet and byte counts.
      {"counter", {}},
  };
  return *table;
}

bool SameExpression(const nftnl_expr* a, const nftnl_expr* b) {
  const std::string_view name = ExprName(a);
  if (name != ExprName(b)) return false;
  for (const ExprAttributes& entry : ComparedAttributes()) {
    if (entry.name != name) continue;
    for (uint16_t attribute : entry.attributes) {
      if (Attribute(a, attribute) != Attribute(b, attribute)) return false;
    }
    if (name == "bitwise") {
      auto op = [](const nftnl_expr* e) {
        return nftnl_expr_is_set(e, NFTNL_EXPR_BITWISE_OP)
                   ? nftnl_expr_get_u32(e, NFTNL_EXPR_BITWISE_OP)
                   : uint32_t{NFT_BITWISE_BOOL};
      };
      if (op(a) != op(b)) return false;
    }
    return true;
  }
  return false;  // an expression type we never write
}

std::optional<std::string> RuleUserData(const nftnl_rule& rule) {
  if (!nftnl_rule_is_set(&rule, NFTNL_RULE_USERDATA)) return std::nullopt;
  uint32_t length = 0;
  const void* data = nftnl_rule_get_data(&rule, NFTNL_RULE_USERDATA, &length);
  return std::string(static_cast<const char*>(data), length);
}

// What the register holds after the last load, as far as decoding cares.
enum class Loaded { kNothing, kL4Proto, kSaddr, kDaddr, kDport, kOther };

// A prefix from the loaded bytes, the mask bitwise applied (if any) and the compared
// bytes. Non-contiguous masks come out as some prefix whose re-encoding differs, so the
// final comparison refuses them.
Ipv4Prefix PrefixFrom(const std::string& data, const std::optional<std::string>& mask) {
  std::array<uint8_t, 4> address{};
  std::array<uint8_t, 4> netmask{};
  memcpy(address.data(), data.data(), std::min<size_t>(data.size(), 4));
  if (mask) {
    memcpy(netmask.data(), mask->data(), std::min<size_t>(mask->size(), 4));
  } else {
    for (size_t i = 0; i < std::min<size_t>(data.size(), 4); ++i) netmask[i] = 0xff;
  }
  uint32_t a = 0;
  uint32_t m = 0;
  for (size_t i = 0; i < 4; ++i) {
    a = a << 8 | address[i];
    m = m << 8 | netmask[i];
  }
  return Ipv4Prefix{a & m, static_cast<uint8_t>(__builtin_popcount(m))};
}

}  // namespace

ChainLocation LocationOf(Plane plane) {
  return plane == Plane::kIp ? ChainLocation{NFPROTO_IPV4, "filter", "COOLIFY-ALLOW"}
                             : ChainLocation{NFPROTO_BRIDGE, "coolify_bridge", "coolify_allow"};
}

std::string PlaneName(Plane plane) {
  const ChainLocation location = LocationOf(plane);
  return absl::StrFormat("%s %s %s", plane == Plane::kIp ? "ip" : "bridge", location.table,
                         location.chain);
}

void BuildRulePayload(nlmsghdr* nlh, Plane plane, const Rule& rule, const std::string& id) {
  PutChain(nlh, plane);
  nlattr* expressions = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
  if (plane == Plane::kIp) {
    PutL4Proto(nlh, rule.protocol);
    // iptables-nft leaves out an address that matches everything.
    if (rule.src.length > 0) PutPrefixMatch(nlh, kIpSaddrOffset, rule.src);
    if (rule.dst.length > 0) PutPrefixMatch(nlh, kIpDaddrOffset, rule.dst);
    PutDport(nlh, rule.port);
    PutCommentMatch(nlh, id);
    PutCounter(nlh);
    PutAccept(nlh);
    mnl_attr_nest_end(nlh, expressions);
    // iptables-nft tells nft_compat the rule's protocol, as ip_tables would.
    nlattr* compat = mnl_attr_nest_start(nlh, NFTA_RULE_COMPAT);
    PutU32(nlh, NFTA_RULE_COMPAT_PROTO, static_cast<uint8_t>(rule.protocol));
    PutU32(nlh, NFTA_RULE_COMPAT_FLAGS, 0);
    mnl_attr_nest_end(nlh, compat);
    return;
  }
  const uint16_t ethertype = htons(ETH_P_IP);
  PutMeta(nlh, NFT_META_PROTOCOL);
  PutCmpEq(nlh, &ethertype, sizeof ethertype);
  PutPrefixMatch(nlh, kIpSaddrOffset, rule.src);
  PutPrefixMatch(nlh, kIpDaddrOffset, rule.dst);
  PutL4Proto(nlh, rule.protocol);
  PutDport(nlh, rule.port);
  PutAccept(nlh);
  mnl_attr_nest_end(nlh, expressions);
  PutComment(nlh, id);
}

void BuildRuleHandlePayload(nlmsghdr* nlh, Plane plane, uint64_t handle) {
  PutChain(nlh, plane);
  mnl_attr_put_u64(nlh, NFTA_RULE_HANDLE, htobe64(handle));
}

void BuildChainRulesPayload(nlmsghdr* nlh, Plane plane) { PutChain(nlh, plane); }

void BuildIpTablePayload(nlmsghdr* nlh) {
  nftnl_table* table = nftnl_table_alloc();
  nftnl_table_set_str(table, NFTNL_TABLE_NAME, LocationOf(Plane::kIp).table);
  nftnl_table_nlmsg_build_payload(nlh, table);
  nftnl_table_free(table);
}

void BuildChainPayload(nlmsghdr* nlh, Plane plane) {
  const ChainLocation location = LocationOf(plane);
  nftnl_chain* chain = nftnl_chain_alloc();
  nftnl_chain_set_str(chain, NFTNL_CHAIN_TABLE, location.table);
  nftnl_chain_set_str(chain, NFTNL_CHAIN_NAME, location.chain);
  nftnl_chain_nlmsg_build_payload(nlh, chain);
  nftnl_chain_free(chain);
}

namespace {

// Whether every attribute of `nest` is well-formed for mnl, `name` (when non-zero) is
// among them, and it ends in NUL within its length.
bool NestIsWellFormed(const nlattr* nest, uint16_t name) {
  struct Check {
    uint16_t name;
    bool named = false;
    bool ok = true;
  } check{name};
  const int parsed = mnl_attr_parse_nested(
      nest,
      [](const nlattr* attr, void* data) -> int {
        auto* c = static_cast<Check*>(data);
        if (c->name == 0 || mnl_attr_get_type(attr) != c->name) return MNL_CB_OK;
        c->named = true;
        c->ok = mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0;
        return c->ok ? MNL_CB_OK : MNL_CB_ERROR;
      },
      &check);
  return parsed >= 0 && check.ok && (name == 0 || check.named);
}

// What libnftnl takes on trust when it parses a rule: the table, chain and expression
// names are NUL-terminated strings, and every expression has a name (it looks the
// expression type up by name, and dereferences a missing one). The kernel always sends
// rules this way; anything else is refused here instead of crashing the writer.
absl::Status CheckRuleMessageShape(const nlmsghdr* nlh) {
  if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(struct nfgenmsg)) return absl::InternalError("rule message too short");
  const nlattr* expressions = nullptr;
  int remaining = static_cast<int>(nlh->nlmsg_len - NLMSG_HDRLEN - NLMSG_ALIGN(sizeof(struct nfgenmsg)));
  for (const nlattr* attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(struct nfgenmsg)));
       mnl_attr_ok(attr, remaining); attr = mnl_attr_next(attr)) {
    remaining -= static_cast<int>(MNL_ALIGN(attr->nla_len));
    const uint16_t type = mnl_attr_get_type(attr);
    if ((type == NFTA_RULE_TABLE || type == NFTA_RULE_CHAIN) && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0) {
      return absl::InternalError("nf_tables sent a rule whose table or chain is not a string");
    }
    if (type == NFTA_RULE_EXPRESSIONS) expressions = attr;
  }
  if (expressions == nullptr) return absl::OkStatus();
  if (mnl_attr_validate(expressions, MNL_TYPE_NESTED) < 0 || !NestIsWellFormed(expressions, 0)) {
    return absl::InternalError("nf_tables sent a rule whose expressions are not a list");
  }
  // Each element: a nest that names its expression.
  const bool each_named = mnl_attr_parse_nested(
                              expressions,
                              [](const nlattr* element, void*) -> int {
                                if (mnl_attr_get_type(element) != NFTA_LIST_ELEM) return MNL_CB_OK;
                                return mnl_attr_validate(element, MNL_TYPE_NESTED) >= 0 &&
                                               NestIsWellFormed(element, NFTA_EXPR_NAME)
                                           ? MNL_CB_OK
                                           : MNL_CB_ERROR;
                              },
                              nullptr) >= 0;
  if (!each_named) return absl::InternalError("nf_tables sent a rule with a malformed expression or an unnamed expression");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<NftnlRule> ParseRuleMessage(const nlmsghdr* nlh) {
  if (absl::Status shape = CheckRuleMessageShape(nlh); !shape.ok()) return shape;
  NftnlRule rule(nftnl_rule_alloc());
  if (nftnl_rule_nlmsg_parse(nlh, rule.get()) < 0) {
    return absl::InternalError("nf_tables sent a rule libnftnl cannot parse");
  }
  return rule;
}

absl::StatusOr<DecodedRule> DecodeRule(Plane plane, const nftnl_rule& kernel_rule) {
  DecodedRule decoded;
  decoded.handle = nftnl_rule_get_u64(&kernel_rule, NFTNL_RULE_HANDLE);
  // A rule without an address match matches any address (iptables-nft's /0).
  decoded.rule.src = Ipv4Prefix{0, 0};
  decoded.rule.dst = Ipv4Prefix{0, 0};
  bool have_proto = false;
  bool have_port = false;
  Loaded loaded = Loaded::kNothing;
  std::optional<std::string> mask;
  std::string comment;

  // First pass: read the candidate tuple and comment wherever they are. Whether the
  // rule is exactly ours is decided by re-encoding the candidate and comparing.
  for (const nftnl_expr* e : Expressions(kernel_rule)) {
    const std::string_view name = ExprName(e);
    if (name == "meta") {
      mask.reset();
      loaded = nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY) == NFT_META_L4PROTO ? Loaded::kL4Proto
                                                                             : Loaded::kOther;
    } else if (name == "payload") {
      mask.reset();
      const uint32_t base = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_BASE);
      const uint32_t offset = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET);
      if (base == NFT_PAYLOAD_NETWORK_HEADER && offset == kIpSaddrOffset) {
        loaded = Loaded::kSaddr;
      } else if (base == NFT_PAYLOAD_NETWORK_HEADER && offset == kIpDaddrOffset) {
        loaded = Loaded::kDaddr;
      } else if (base == NFT_PAYLOAD_TRANSPORT_HEADER && offset == kDportOffset) {
        loaded = Loaded::kDport;
      } else {
        loaded = Loaded::kOther;
      }
    } else if (name == "bitwise") {
      mask = Attribute(e, NFTNL_EXPR_BITWISE_MASK);
    } else if (name == "cmp") {
      const std::string data = Attribute(e, NFTNL_EXPR_CMP_DATA).value_or("");
      switch (loaded) {
        case Loaded::kL4Proto:
          if (data.size() == 1 && (static_cast<uint8_t>(data[0]) == IPPROTO_TCP ||
                                   static_cast<uint8_t>(data[0]) == IPPROTO_UDP)) {
            decoded.rule.protocol = static_cast<Protocol>(data[0]);
            have_proto = true;
          }
          break;
        case Loaded::kSaddr:
          decoded.rule.src = PrefixFrom(data, mask);
          break;
        case Loaded::kDaddr:
          decoded.rule.dst = PrefixFrom(data, mask);
          break;
        case Loaded::kDport:
          if (data.size() == 2) {
            decoded.rule.port = static_cast<uint16_t>(static_cast<uint8_t>(data[0]) << 8 |
                                                      static_cast<uint8_t>(data[1]));
            have_port = true;
          }
          break;
        case Loaded::kNothing:
        case Loaded::kOther:
          break;
      }
    } else if (name == "match" && plane == Plane::kIp) {
      const std::optional<std::string> info = Attribute(e, NFTNL_EXPR_MT_INFO);
      if (info) comment = std::string(info->c_str());  // up to the first NUL
    }
  }
  if (plane == Plane::kBridge) {
    // The comment TLV: type, length (including the NUL), the string, NUL.
    const std::optional<std::string> udata = RuleUserData(kernel_rule);
    if (udata && udata->size() > 2 && (*udata)[0] == NFTNL_UDATA_RULE_COMMENT) {
      comment = std::string(udata->c_str() + 2);
    }
  }

  if (!have_proto) return absl::NotFoundError("no tcp/udp protocol match");
  if (!have_port) return absl::NotFoundError("no destination port match");
  if (!privsep::ValidateFirewallRuleId("comment", comment).ok()) {
    return absl::NotFoundError("its comment is not a rule id");
  }
  decoded.id = comment;
  // A caller's id stays the rule's id across Load(): it is the comment, not a hash.
  if (!privsep::IsDerivedRuleId(comment)) decoded.rule.caller_id = comment;

  const NftnlRule expected = Encoded(plane, decoded.rule, decoded.id);
  const std::vector<nftnl_expr*> want = Expressions(*expected);
  const std::vector<nftnl_expr*> have = Expressions(kernel_rule);
  if (want.size() != have.size()) {
    return absl::NotFoundError("it differs from our encoding of its tuple");
  }
  for (size_t i = 0; i < want.size(); ++i) {
    if (!SameExpression(want[i], have[i])) {
      return absl::NotFoundError(absl::StrFormat(
          "it differs from our encoding of its tuple at expression %d (%s)", i,
          ExprName(have[i])));
    }
  }
  if (RuleUserData(*expected) != RuleUserData(kernel_rule)) {
    return absl::NotFoundError("its user data differs from our encoding");
  }
  return decoded;
}

std::string DescribeRule(const nftnl_rule& rule) {
  char buffer[4096];
  nftnl_rule_snprintf(buffer, sizeof buffer, &rule, NFTNL_OUTPUT_DEFAULT, 0);
  std::string text = absl::StrReplaceAll(buffer, {{"\n", " "}, {"  ", " "}});
  return std::string(absl::StripTrailingAsciiWhitespace(text));
}

}  // namespace coolify::netlink
