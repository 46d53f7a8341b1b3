#include "privsep/policy_list.h"

#include <cap-ng.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace coolify::privsep {
namespace {

absl::Status Error(absl::string_view origin, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": ", what));
}

// Length of the well-formed UTF-8 sequence at the start of `s`, or 0.
size_t Utf8SequenceLength(absl::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i) & 0x3F);
  }
  // Overlong forms, UTF-16 surrogates and values beyond Unicode are not UTF-8.
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
  return n;
}

// Text is UTF-8 without control characters other than tab (a carriage return would
// otherwise end up inside an entry or a reason).
absl::Status CheckText(absl::string_view origin, absl::string_view line) {
  while (!line.empty()) {
    const unsigned char c = static_cast<unsigned char>(line[0]);
    if (c < 0x80 && ((c < 0x20 && c != '\t') || c == 0x7F)) {
      return Error(origin, "control character in text");
    }
    const size_t n = Utf8SequenceLength(line);
    if (n == 0) return Error(origin, "not UTF-8");
    line.remove_prefix(n);
  }
  return absl::OkStatus();
}

std::vector<absl::string_view> Words(absl::string_view text) {
  return absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
}

// ---- seccomp ----

// Constants seccomp entries may name: the values of the headers this is built against.
const absl::flat_hash_map<absl::string_view, uint64_t>& SeccompSymbols() {
  static const auto* symbols = new absl::flat_hash_map<absl::string_view, uint64_t>{
      // socket(2) domains, types and type flags. The type argument carries flags
      // beside the type; SOCK_TYPE_MASK (the kernel's) selects the type alone.
      {"AF_UNIX", AF_UNIX},
      {"AF_INET", AF_INET},
      {"AF_INET6", AF_INET6},
      {"AF_NETLINK", AF_NETLINK},
      {"SOCK_STREAM", SOCK_STREAM},
      {"SOCK_DGRAM", SOCK_DGRAM},
      {"SOCK_SEQPACKET", SOCK_SEQPACKET},
      {"SOCK_RAW", SOCK_RAW},
      {"SOCK_TYPE_MASK", 0xf},
      {"SOCK_CLOEXEC", SOCK_CLOEXEC},
      {"SOCK_NONBLOCK", SOCK_NONBLOCK},
      {"NETLINK_NETFILTER", NETLINK_NETFILTER},
      // fcntl(2) and ioctl(2) commands.
      {"F_GETFD", F_GETFD},
      {"F_SETFD", F_SETFD},
      {"F_GETFL", F_GETFL},
      {"F_SETFL", F_SETFL},
      {"F_DUPFD_CLOEXEC", F_DUPFD_CLOEXEC},
      {"F_GETLK", F_GETLK},
      {"F_SETLK", F_SETLK},
      {"F_SETLKW", F_SETLKW},
      {"FIONBIO", FIONBIO},
      {"FIONREAD", FIONREAD},
      // prctl(2) options.
      {"PR_SET_NAME", PR_SET_NAME},
      {"PR_GET_NAME", PR_GET_NAME},
      // Memory protection.
      {"PROT_EXEC", PROT_EXEC},
      // clone(2) flags and the exit signal in its low byte.
      {"CLONE_VM", CLONE_VM},
      {"CLONE_FS", CLONE_FS},
      {"CLONE_FILES", CLONE_FILES},
      {"CLONE_SIGHAND", CLONE_SIGHAND},
      {"CLONE_THREAD", CLONE_THREAD},
      {"CLONE_SYSVSEM", CLONE_SYSVSEM},
      {"CLONE_SETTLS", CLONE_SETTLS},
      {"CLONE_PARENT_SETTID", CLONE_PARENT_SETTID},
      {"CLONE_CHILD_SETTID", CLONE_CHILD_SETTID},
      {"CLONE_CHILD_CLEARTID", CLONE_CHILD_CLEARTID},
      {"CLONE_VFORK", CLONE_VFORK},
      {"SIGCHLD", SIGCHLD},
  };
  return *symbols;
}

// VALUE := TERM[|TERM]..., TERM := decimal | 0xhex | symbol.
absl::StatusOr<uint64_t> ParseValue(absl::string_view origin, absl::string_view text) {
  uint64_t value = 0;
  for (absl::string_view term : absl::StrSplit(text, '|')) {
    uint64_t v;
    if (term.empty()) return Error(origin, absl::StrCat("bad value \"", text, "\""));
    if (absl::ascii_isdigit(static_cast<unsigned char>(term[0]))) {
      const bool ok = absl::StartsWith(term, "0x") ? absl::SimpleHexAtoi(term.substr(2), &v)
                                                   : absl::SimpleAtoi(term, &v);
      if (!ok) return Error(origin, absl::StrCat("bad number \"", term, "\""));
    } else {
      const auto it = SeccompSymbols().find(term);
      if (it == SeccompSymbols().end()) {
        return Error(origin, absl::StrCat("unknown constant \"", term, "\""));
      }
      v = it->second;
    }
    value |= v;
  }
  return value;
}

// The errno whose symbolic name is `name` (ENOSYS, EPERM, ...), or 0.
int ErrnoByName(absl::string_view name) {
  for (int e = 1; e < 4096; ++e) {
    const char* n = strerrorname_np(e);
    if (n != nullptr && name == n) return e;
  }
  return 0;
}

// COND := aN == VALUE | aN & VALUE == VALUE, already split into words.
absl::StatusOr<SeccompCondition> ParseCondition(absl::string_view origin,
                                                const std::vector<absl::string_view>& w) {
  const auto bad = [&]() {
    return Error(origin, absl::StrCat("bad argument filter \"", absl::StrJoin(w, " "),
                                      "\" (want aN == VALUE or aN & MASK == VALUE)"));
  };
  if (w.empty() || w[0].size() != 2 || w[0][0] != 'a' || w[0][1] < '0' || w[0][1] > '5') {
    return bad();
  }
  SeccompCondition c;
  c.arg = static_cast<unsigned>(w[0][1] - '0');
  if (w.size() == 3 && w[1] == "==") {
    absl::StatusOr<uint64_t> v = ParseValue(origin, w[2]);
    if (!v.ok()) return v.status();
    c.value = *v;
    return c;
  }
  if (w.size() == 5 && w[1] == "&" && w[3] == "==") {
    absl::StatusOr<uint64_t> m = ParseValue(origin, w[2]);
    if (!m.ok()) return m.status();
    absl::StatusOr<uint64_t> v = ParseValue(origin, w[4]);
    if (!v.ok()) return v.status();
    if (*m == 0) return Error(origin, "mask 0 matches every value");
    if ((*v & ~*m) != 0) return Error(origin, "value has bits outside the mask: never matches");
    c.mask = *m;
    c.value = *v;
    return c;
  }
  return bad();
}

absl::StatusOr<SeccompRule> ParseSeccompEntry(const PolicyEntry& entry) {
  std::vector<absl::string_view> words = Words(entry.text);
  SeccompRule rule;
  rule.origin = entry.origin;
  rule.syscall = std::string(words[0]);
  const bool name_ok = std::all_of(rule.syscall.begin(), rule.syscall.end(), [](char ch) {
    return absl::ascii_islower(static_cast<unsigned char>(ch)) ||
           absl::ascii_isdigit(static_cast<unsigned char>(ch)) || ch == '_';
  });
  // Negative numbers are libseccomp's pseudo-syscalls: calls other architectures have
  // (socketcall, ...) but this one does not.
  rule.number = name_ok ? seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, rule.syscall.c_str())
                        : __NR_SCMP_ERROR;
  if (rule.number < 0) {
    return Error(entry.origin, absl::StrCat("unknown system call \"", rule.syscall, "\""));
  }
  words.erase(words.begin());

  if (words.size() >= 2 && words[words.size() - 2] == "return") {
    rule.error = ErrnoByName(words.back());
    if (rule.error == 0) {
      return Error(entry.origin, absl::StrCat("unknown errno \"", words.back(), "\""));
    }
    words.resize(words.size() - 2);
  }

  std::set<unsigned> args;
  std::vector<absl::string_view> cond;
  for (size_t i = 0; i <= words.size(); ++i) {
    if (i < words.size() && words[i] != "&&") {
      cond.push_back(words[i]);
      continue;
    }
    if (i == words.size() && cond.empty() && rule.conditions.empty()) break;
    absl::StatusOr<SeccompCondition> c = ParseCondition(entry.origin, cond);
    if (!c.ok()) return c.status();
    if (!args.insert(c->arg).second) {
      return Error(entry.origin, absl::StrCat("a", c->arg, " is filtered twice in one entry"));
    }
    rule.conditions.push_back(*c);
    cond.clear();
  }
  return rule;
}

// ---- Landlock ----

const std::map<absl::string_view, uint64_t>& LandlockAccessNames() {
  static const auto* names = new std::map<absl::string_view, uint64_t>{
      {"execute", kLandlockExecute},       {"write_file", kLandlockWriteFile},
      {"read_file", kLandlockReadFile},    {"read_dir", kLandlockReadDir},
      {"remove_dir", kLandlockRemoveDir},  {"remove_file", kLandlockRemoveFile},
      {"make_char", kLandlockMakeChar},    {"make_dir", kLandlockMakeDir},
      {"make_reg", kLandlockMakeReg},      {"make_sock", kLandlockMakeSock},
      {"make_fifo", kLandlockMakeFifo},    {"make_block", kLandlockMakeBlock},
      {"make_sym", kLandlockMakeSym},      {"refer", kLandlockRefer},
      {"truncate", kLandlockTruncate},     {"ioctl_dev", kLandlockIoctlDev},
  };
  return *names;
}

// Absolute and normalized: no empty, "." or ".." components, no trailing slash.
bool IsCleanAbsolutePath(absl::string_view path) {
  if (path.empty() || path[0] != '/') return false;
  if (path == "/") return true;
  for (absl::string_view part : absl::StrSplit(path.substr(1), '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<PolicyEntry>> ParsePolicyEntries(absl::string_view path,
                                                            absl::string_view text) {
  std::vector<PolicyEntry> entries;
  absl::flat_hash_set<std::string> groups;
  std::string group;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    const std::string origin = absl::StrCat(path, ":", ++number);
    if (absl::Status s = CheckText(origin, line); !s.ok()) return s;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      if (line.back() != ']') return Error(origin, "a group heading is [name] alone on its line");
      const absl::string_view name = absl::StripAsciiWhitespace(line.substr(1, line.size() - 2));
      if (name.empty() || absl::StrContains(name, '[') || absl::StrContains(name, ']')) {
        return Error(origin, "bad group name");
      }
      if (!groups.insert(std::string(name)).second) {
        return Error(origin, absl::StrCat("group [", name, "] appears twice"));
      }
      group = std::string(name);
      continue;
    }
    const size_t hash = line.find('#');
    const absl::string_view reason =
        hash == absl::string_view::npos ? "" : absl::StripAsciiWhitespace(line.substr(hash + 1));
    if (reason.empty()) {
      return Error(origin, "entry without a reason (write it after \"#\" on the same line)");
    }
    if (group.empty()) return Error(origin, "entry before the first [group] heading");
    // The line does not start with '#', so the entry before it is never empty.
    entries.push_back(PolicyEntry{group,
                                  std::string(absl::StripAsciiWhitespace(line.substr(0, hash))),
                                  std::string(reason), origin});
  }
  return entries;
}

absl::StatusOr<std::vector<SeccompRule>> ParseSeccompList(absl::string_view path,
                                                         absl::string_view text) {
  absl::StatusOr<std::vector<PolicyEntry>> entries = ParsePolicyEntries(path, text);
  if (!entries.ok()) return entries.status();
  std::vector<SeccompRule> rules;
  for (const PolicyEntry& entry : *entries) {
    absl::StatusOr<SeccompRule> rule = ParseSeccompEntry(entry);
    if (!rule.ok()) return rule.status();
    for (const SeccompRule& other : rules) {
      if (other.number != rule->number) continue;
      if (other.conditions == rule->conditions) {
        return Error(entry.origin, absl::StrCat(rule->syscall, " repeats ", other.origin));
      }
      if (other.conditions.empty() || rule->conditions.empty()) {
        return Error(entry.origin,
                     absl::StrCat(rule->syscall, " is both unconditional and filtered (see ",
                                  other.origin, ")"));
      }
      if (other.error != rule->error) {
        return Error(entry.origin, absl::StrCat(rule->syscall, " has another outcome at ",
                                                other.origin));
      }
    }
    rules.push_back(*std::move(rule));
  }
  return rules;
}

absl::StatusOr<IdentityPolicy> ParseCapabilityList(absl::string_view path, absl::string_view text) {
  absl::StatusOr<std::vector<PolicyEntry>> entries = ParsePolicyEntries(path, text);
  if (!entries.ok()) return entries.status();
  IdentityPolicy policy;
  for (const PolicyEntry& entry : *entries) {
    const std::vector<absl::string_view> words = Words(entry.text);
    if (words[0] == "user") {
      if (words.size() != 2) return Error(entry.origin, "want: user NAME");
      const absl::string_view name = words[1];
      const bool name_ok =
          absl::ascii_islower(static_cast<unsigned char>(name[0])) &&
          std::all_of(name.begin(), name.end(), [](char ch) {
            return absl::ascii_islower(static_cast<unsigned char>(ch)) ||
                   absl::ascii_isdigit(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
          });
      if (!name_ok) return Error(entry.origin, absl::StrCat("bad user name \"", name, "\""));
      if (!policy.user.empty()) return Error(entry.origin, "second user line");
      policy.user = std::string(name);
      continue;
    }
    const bool in_namespace = words[0] == "namespace";
    if (in_namespace && words.size() != 2) return Error(entry.origin, "want: namespace CAP_NAME");
    const absl::string_view name = in_namespace ? words[1] : words[0];
    const bool name_ok =
        words.size() == (in_namespace ? 2u : 1u) && absl::StartsWith(name, "CAP_") &&
        std::all_of(name.begin(), name.end(), [](char ch) {
          return absl::ascii_isupper(static_cast<unsigned char>(ch)) ||
                 absl::ascii_isdigit(static_cast<unsigned char>(ch)) || ch == '_';
        });
    const int cap =
        name_ok ? capng_name_to_capability(std::string(name.substr(4)).c_str()) : -1;
    if (cap < 0 || cap >= 64) {
      return Error(entry.origin, absl::StrCat("unknown capability \"", entry.text, "\""));
    }
    std::vector<int>& set = in_namespace ? policy.namespace_capabilities : policy.capabilities;
    if (std::find(set.begin(), set.end(), cap) != set.end()) {
      return Error(entry.origin, absl::StrCat(name, " appears twice"));
    }
    set.push_back(cap);
  }
  if (policy.user.empty()) return Error(path, "no \"user NAME\" line");
  return policy;
}

absl::StatusOr<std::vector<LandlockRule>> ParseLandlockList(absl::string_view path,
                                                           absl::string_view text) {
  absl::StatusOr<std::vector<PolicyEntry>> entries = ParsePolicyEntries(path, text);
  if (!entries.ok()) return entries.status();
  std::vector<LandlockRule> rules;
  for (const PolicyEntry& entry : *entries) {
    const std::vector<absl::string_view> words = Words(entry.text);
    if (words.size() == 1 && words[0] == kNoRuleset) {
      if (entries->size() != 1) return Error(entry.origin, absl::StrCat(kNoRuleset, " must be the list's only entry"));
      rules.push_back({kNoRuleset, 0, entry.origin});
      continue;
    }
    if (words.size() == 1 && words[0] == kTcpConnectPassedPorts) {
      for (const LandlockRule& other : rules) {
        if (other.path == kTcpConnectPassedPorts) {
          return Error(entry.origin, absl::StrCat(kTcpConnectPassedPorts, " already at ", other.origin));
        }
      }
      rules.push_back({kTcpConnectPassedPorts, 0, entry.origin});
      continue;
    }
    if (words.size() != 2) return Error(entry.origin, "want: /PATH ACCESS[,ACCESS]...");
    LandlockRule rule;
    rule.origin = entry.origin;
    rule.path = std::string(words[0]);
    if (rule.path != kPassedDirectories && !IsCleanAbsolutePath(rule.path)) {
      return Error(entry.origin, absl::StrCat("\"", rule.path,
                                              "\" is not a normalized absolute path"));
    }
    for (absl::string_view access : absl::StrSplit(words[1], ',')) {
      const auto it = LandlockAccessNames().find(access);
      if (it == LandlockAccessNames().end()) {
        return Error(entry.origin, absl::StrCat("unknown access right \"", access, "\""));
      }
      if ((rule.access & it->second) != 0) {
        return Error(entry.origin, absl::StrCat(access, " appears twice"));
      }
      rule.access |= it->second;
    }
    for (const LandlockRule& other : rules) {
      if (other.path == rule.path) {
        return Error(entry.origin, absl::StrCat(rule.path, " already has a rule at ",
                                                other.origin));
      }
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

}  // namespace coolify::privsep
