#include "privsep/policy_list.h"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coolify::privsep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The error message of a parse expected to fail.
template <typename T>
std::string ErrorOf(const absl::StatusOr<T>& result) {
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(result.status().message());
}

// ---- the shared grammar ----

TEST(PolicyEntriesTest, SplitsGroupsEntriesAndReasons) {
  auto entries = ParsePolicyEntries("x.list",
                                    "# header\n"
                                    "\n"
                                    "[first group]\n"
                                    "  read   # why: reading\n"
                                    "\t[second]\n"
                                    "write a0 == 1#no space before the hash\n");
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].group, "first group");
  EXPECT_EQ((*entries)[0].text, "read");
  EXPECT_EQ((*entries)[0].reason, "why: reading");
  EXPECT_EQ((*entries)[0].origin, "x.list:4");
  EXPECT_EQ((*entries)[1].group, "second");
  EXPECT_EQ((*entries)[1].text, "write a0 == 1");
  EXPECT_EQ((*entries)[1].reason, "no space before the hash");
  EXPECT_EQ((*entries)[1].origin, "x.list:6");
}

TEST(PolicyEntriesTest, EmptyListHasNoEntries) {
  auto entries = ParsePolicyEntries("x.list", "# nothing here\n\n");
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_THAT(*entries, IsEmpty());
}

TEST(PolicyEntriesTest, EntryWithoutReasonIsAnError) {
  EXPECT_EQ(ErrorOf(ParsePolicyEntries("x.list", "[g]\nread\n")),
            "x.list:2: entry without a reason (write it after \"#\" on the same line)");
  EXPECT_THAT(ErrorOf(ParsePolicyEntries("x.list", "[g]\nread  #   \n")),
              HasSubstr("x.list:2: entry without a reason"));
}

TEST(PolicyEntriesTest, EntryOutsideAGroupIsAnError) {
  EXPECT_EQ(ErrorOf(ParsePolicyEntries("x.list", "read  # why\n")),
            "x.list:1: entry before the first [group] heading");
}

TEST(PolicyEntriesTest, BadOrRepeatedGroupIsAnError) {
  EXPECT_THAT(ErrorOf(ParsePolicyEntries("x.list", "[g] # c\n")),
              HasSubstr("x.list:1: a group heading is [name] alone"));
  EXPECT_THAT(ErrorOf(ParsePolicyEntries("x.list", "[ ]\n")), HasSubstr("x.list:1: bad group"));
  EXPECT_THAT(ErrorOf(ParsePolicyEntries("x.list", "[g]\na # r\n[g]\n")),
              HasSubstr("x.list:3: group [g] appears twice"));
}

TEST(PolicyEntriesTest, TextMustBeUtf8WithoutControlCharacters) {
  auto ok = ParsePolicyEntries("x.list", "[g]\nread  # lecture \xc3\xa9t\xc3\xa9 \xe2\x9c\x93\n");
  EXPECT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ErrorOf(ParsePolicyEntries("x.list", "[g]\nread  # caf\xe9\n")), "x.list:2: not UTF-8");
  // Overlong encoding of '/'.
  EXPECT_EQ(ErrorOf(ParsePolicyEntries("x.list", "[g]\n# \xc0\xaf\n")), "x.list:2: not UTF-8");
  EXPECT_EQ(ErrorOf(ParsePolicyEntries("x.list", "[g]\r\nread  # r\n")),
            "x.list:1: control character in text");
}

// ---- seccomp ----

TEST(SeccompListTest, ParsesPlainFilteredAndErrnoEntries) {
  auto rules = ParseSeccompList(
      "s.list",
      "[g]\n"
      "read  # r\n"
      "socket a0 == AF_INET && a1 & SOCK_TYPE_MASK == SOCK_STREAM  # tcp\n"
      "socket a0 == AF_UNIX && a1 & 0xf == 5  # seqpacket, in numbers\n"
      "clone a0 == CLONE_VM|CLONE_THREAD  # flags joined with |\n"
      "clone3 return ENOSYS  # fallback\n");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 5u);

  EXPECT_EQ((*rules)[0].syscall, "read");
  EXPECT_EQ((*rules)[0].number, SYS_read);
  EXPECT_EQ((*rules)[0].error, 0);
  EXPECT_THAT((*rules)[0].conditions, IsEmpty());
  EXPECT_EQ((*rules)[0].origin, "s.list:2");

  EXPECT_EQ((*rules)[1].number, SYS_socket);
  EXPECT_THAT((*rules)[1].conditions,
              ElementsAre(SeccompCondition{0, ~uint64_t{0}, AF_INET},
                          SeccompCondition{1, 0xf, SOCK_STREAM}));
  EXPECT_THAT((*rules)[2].conditions,
              ElementsAre(SeccompCondition{0, ~uint64_t{0}, AF_UNIX},
                          SeccompCondition{1, 0xf, SOCK_SEQPACKET}));
  EXPECT_THAT((*rules)[3].conditions,
              ElementsAre(SeccompCondition{0, ~uint64_t{0}, CLONE_VM | CLONE_THREAD}));

  EXPECT_EQ((*rules)[4].number, SYS_clone3);
  EXPECT_EQ((*rules)[4].error, ENOSYS);
}

TEST(SeccompListTest, UnknownSystemCallIsAnError) {
  EXPECT_EQ(ErrorOf(ParseSeccompList("s.list", "[g]\nreadd  # typo\n")),
            "s.list:2: unknown system call \"readd\"");
  // Known to libseccomp, but not a system call of this architecture.
  EXPECT_EQ(ErrorOf(ParseSeccompList("s.list", "[g]\nsocketcall  # i386 only\n")),
            "s.list:2: unknown system call \"socketcall\"");
  EXPECT_THAT(ErrorOf(ParseSeccompList("s.list", "[g]\nREAD  # case\n")),
              HasSubstr("unknown system call"));
}

TEST(SeccompListTest, BadArgumentFilterIsAnError) {
  const char* const bad[] = {
      "read a6 == 1",          // No such argument.
      "read a0 = 1",           // Not an operator.
      "read a0 ==",            // Missing value.
      "read a0 == 1 &&",       // Dangling &&.
      "read a0 & 1 != 1",      // Not an operator.
      "read x0 == 1",          // Not an argument.
      "read a0 == 1 a1 == 2",  // Missing &&.
  };
  for (const char* entry : bad) {
    EXPECT_THAT(ErrorOf(ParseSeccompList("s.list", absl::StrCat("[g]\n", entry, "  # r\n"))),
                HasSubstr("s.list:2: bad argument filter"))
        << entry;
  }
  EXPECT_EQ(ErrorOf(ParseSeccompList("s.list", "[g]\nsocket a0 == AF_FOO  # r\n")),
            "s.list:2: unknown constant \"AF_FOO\"");
  EXPECT_EQ(ErrorOf(ParseSeccompList("s.list", "[g]\nsocket a0 == 0xzz  # r\n")),
            "s.list:2: bad number \"0xzz\"");
  EXPECT_EQ(ErrorOf(ParseSeccompList("s.list", "[g]\nsocket a0 == AF_UNIX|  # r\n")),
            "s.list:2: bad value \"AF_UNIX|\"");
  EXPECT_EQ(ErrorOf(ParseSeccompList("s.list", "[g]\nsocket a1 & 0 == 0  # r\n")),
            "s.list:2: mask 0 matches every value");
  EXPECT_EQ(ErrorOf(ParseSeccompList("s.list", "[g]\nsocket a1 & 0xf == 0x10  # r\n")),
            "s.list:2: value has bits outside the mask: never matches");
  EXPECT_EQ(ErrorOf(ParseSeccompList("s.list", "[g]\nsocket a0 == 1 && a0 == 2  # r\n")),
            "s.list:2: a0 is filtered twice in one entry");
}

TEST(SeccompListTest, UnknownErrnoIsAnError) {
  EXPECT_EQ(ErrorOf(ParseSeccompList("s.list", "[g]\nclone3 return ENOPE  # r\n")),
            "s.list:2: unknown errno \"ENOPE\"");
}

TEST(SeccompListTest, ConflictingEntriesAreErrors) {
  EXPECT_EQ(ErrorOf(ParseSeccompList("s.list", "[g]\nread  # r\n[h]\nread  # again\n")),
            "s.list:4: read repeats s.list:2");
  EXPECT_EQ(ErrorOf(ParseSeccompList("s.list", "[g]\nfcntl  # r\nfcntl a1 == F_GETFL  # r\n")),
            "s.list:3: fcntl is both unconditional and filtered (see s.list:2)");
  EXPECT_EQ(ErrorOf(ParseSeccompList(
                "s.list", "[g]\nclone a0 == 1  # r\nclone a0 == 2 return EPERM  # r\n")),
            "s.list:3: clone has another outcome at s.list:2");
}

// ---- capabilities ----

TEST(CapabilityListTest, ParsesUserAndCapabilities) {
  auto policy = ParseCapabilityList("c.list",
                                    "[identity]\nuser coold-netlink  # own user\n"
                                    "[caps]\nCAP_NET_ADMIN  # nft\nCAP_SYS_CHROOT  # chroot\n");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->user, "coold-netlink");
  EXPECT_THAT(policy->capabilities, ElementsAre(CAP_NET_ADMIN, CAP_SYS_CHROOT));
  EXPECT_EQ(CapabilityBits(policy->capabilities),
            (uint64_t{1} << CAP_NET_ADMIN) | (uint64_t{1} << CAP_SYS_CHROOT));
}

TEST(CapabilityListTest, NamespaceEntriesAreASetOfTheirOwn) {
  auto policy = ParseCapabilityList("c.list",
                                    "[identity]\nuser root  # r\n[caps]\nCAP_SETUID  # maps\n"
                                    "[inside]\nnamespace CAP_SYS_ADMIN  # mounts\nnamespace CAP_SETUID  # USER\n");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_THAT(policy->capabilities, ElementsAre(CAP_SETUID));
  EXPECT_THAT(policy->namespace_capabilities, ElementsAre(CAP_SYS_ADMIN, CAP_SETUID));
  EXPECT_EQ(ErrorOf(ParseCapabilityList("c.list", "[i]\nuser root  # r\nnamespace  # r\n")),
            "c.list:3: want: namespace CAP_NAME");
  EXPECT_EQ(ErrorOf(ParseCapabilityList("c.list", "[i]\nuser root  # r\nnamespace CAP_NOPE  # r\n")),
            "c.list:3: unknown capability \"namespace CAP_NOPE\"");
  EXPECT_EQ(ErrorOf(ParseCapabilityList(
                "c.list", "[i]\nuser root  # r\nnamespace CAP_KILL  # r\nnamespace CAP_KILL  # r\n")),
            "c.list:4: CAP_KILL appears twice");
}

TEST(CapabilityListTest, UnknownCapabilityIsAnError) {
  const char* const bad[] = {"CAP_NET_ADMINN", "CAP_", "NET_ADMIN", "cap_net_admin",
                             "CAP_NET_ADMIN CAP_KILL"};
  for (const char* entry : bad) {
    EXPECT_EQ(ErrorOf(ParseCapabilityList(
                  "c.list", absl::StrCat("[i]\nuser root  # r\n", entry, "  # r\n"))),
              absl::StrCat("c.list:3: unknown capability \"", entry, "\""));
  }
}

TEST(CapabilityListTest, UserLineIsRequiredOnceAndWellFormed) {
  EXPECT_EQ(ErrorOf(ParseCapabilityList("c.list", "[c]\nCAP_KILL  # r\n")),
            "c.list: no \"user NAME\" line");
  EXPECT_EQ(ErrorOf(ParseCapabilityList("c.list", "[i]\nuser root  # r\nuser root  # r\n")),
            "c.list:3: second user line");
  EXPECT_EQ(ErrorOf(ParseCapabilityList("c.list", "[i]\nuser  # r\n")), "c.list:2: want: user NAME");
  EXPECT_EQ(ErrorOf(ParseCapabilityList("c.list", "[i]\nuser Root$  # r\n")),
            "c.list:2: bad user name \"Root$\"");
  EXPECT_EQ(ErrorOf(ParseCapabilityList("c.list",
                                        "[i]\nuser root  # r\nCAP_KILL  # r\nCAP_KILL  # r\n")),
            "c.list:4: CAP_KILL appears twice");
}

// ---- Landlock ----

TEST(LandlockListTest, ParsesPathsAndRights) {
  auto rules = ParseLandlockList("l.list",
                                 "[g]\n/etc/hosts read_file  # r\n"
                                 "/var/lib/x make_reg,write_file,remove_file  # r\n");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_EQ((*rules)[0].path, "/etc/hosts");
  EXPECT_EQ((*rules)[0].access, kLandlockReadFile);
  EXPECT_EQ((*rules)[0].origin, "l.list:2");
  EXPECT_EQ((*rules)[1].access, kLandlockMakeReg | kLandlockWriteFile | kLandlockRemoveFile);
}

TEST(LandlockListTest, EmptyListMeansNoAccess) {
  auto rules = ParseLandlockList("l.list", "# No filesystem.\n");
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_THAT(*rules, IsEmpty());
}

TEST(LandlockListTest, BadEntriesAreErrors) {
  EXPECT_EQ(ErrorOf(ParseLandlockList("l.list", "[g]\n/etc/hosts read  # r\n")),
            "l.list:2: unknown access right \"read\"");
  EXPECT_EQ(ErrorOf(ParseLandlockList("l.list", "[g]\n/etc/hosts read_file,  # r\n")),
            "l.list:2: unknown access right \"\"");
  EXPECT_EQ(ErrorOf(ParseLandlockList("l.list", "[g]\n/etc/hosts read_file,read_file  # r\n")),
            "l.list:2: read_file appears twice");
  EXPECT_EQ(ErrorOf(ParseLandlockList("l.list", "[g]\n/etc/hosts  # r\n")),
            "l.list:2: want: /PATH ACCESS[,ACCESS]...");
  for (const char* path : {"etc/hosts", "/etc/../hosts", "/etc//hosts", "/etc/", "/./etc"}) {
    EXPECT_EQ(ErrorOf(ParseLandlockList("l.list", absl::StrCat("[g]\n", path, " read_file  # r\n"))),
              absl::StrCat("l.list:2: \"", path, "\" is not a normalized absolute path"));
  }
  EXPECT_EQ(ErrorOf(ParseLandlockList("l.list",
                                      "[g]\n/etc read_file  # r\n/etc read_dir  # r\n")),
            "l.list:3: /etc already has a rule at l.list:2");
}

}  // namespace
}  // namespace coolify::privsep
