#include "privsep/proc_status.h"

#include <fcntl.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "privsep/unique_fd.h"

namespace coolify::privsep {
namespace {

using ::testing::HasSubstr;

// /proc/<pid>/status of a process of coold-netlink on Linux 6.18 (abridged only where
// marked), sandboxed: CAP_NET_ADMIN kept, no_new_privs, seccomp filter.
constexpr char kSandboxed[] =
    "Name:\tcoold\n"
    "Umask:\t0077\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t4242\n"
    "Ngid:\t0\n"
    "Pid:\t4242\n"
    "PPid:\t4200\n"
    "TracerPid:\t0\n"
    "Uid:\t995\t995\t995\t995\n"
    "Gid:\t994\t994\t994\t994\n"
    "FDSize:\t64\n"
    "Groups:\t \n"
    "NStgid:\t4242\n"
    "NSpid:\t4242\n"
    "NSpgid:\t4200\n"
    "NSsid:\t4200\n"
    "Kthread:\t0\n"
    "VmPeak:\t    9060 kB\n"
    "VmSize:\t    9060 kB\n"
    "Threads:\t1\n"
    "SigQ:\t0/96365\n"
    "SigPnd:\t0000000000000000\n"
    "ShdPnd:\t0000000000000000\n"
    "SigBlk:\t0000000000000000\n"
    "SigIgn:\t0000000000001000\n"
    "SigCgt:\t0000000000000000\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t0000000000001000\n"
    "CapEff:\t0000000000001000\n"
    "CapBnd:\t0000000000001000\n"
    "CapAmb:\t0000000000000000\n"
    "NoNewPrivs:\t1\n"
    "Seccomp:\t2\n"
    "Seccomp_filters:\t1\n"
    "Speculation_Store_Bypass:\tthread force mitigated\n"
    "Cpus_allowed:\t3\n"
    "Cpus_allowed_list:\t0-1\n"
    "voluntary_ctxt_switches:\t3\n"
    "nonvoluntary_ctxt_switches:\t1\n";

TEST(ParseProcStatusTest, SandboxedProcess) {
  auto status = ParseProcStatus(kSandboxed);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->uid, 995u);
  EXPECT_EQ(status->gid, 994u);
  EXPECT_EQ(status->groups, 0u);
  EXPECT_EQ(status->threads, 1u);
  EXPECT_EQ(status->cap_inh, 0u);
  EXPECT_EQ(status->cap_prm, 0x1000u);
  EXPECT_EQ(status->cap_eff, 0x1000u);
  EXPECT_EQ(status->cap_bnd, 0x1000u);
  EXPECT_EQ(status->cap_amb, 0u);
  EXPECT_TRUE(status->no_new_privs);
  EXPECT_EQ(status->seccomp, 2u);
}

TEST(ParseProcStatusTest, RootWithGroupsAndFullCapabilities) {
  std::string text = absl::StrReplaceAll(
      kSandboxed, {{"Uid:\t995\t995\t995\t995", "Uid:\t0\t1000\t0\t0"},
                   {"Groups:\t \n", "Groups:\t0 4 27 \n"},
                   {"CapPrm:\t0000000000001000", "CapPrm:\t000001fffeffffff"},
                   {"NoNewPrivs:\t1", "NoNewPrivs:\t0"},
                   {"Seccomp:\t2", "Seccomp:\t0"},
                   {"Threads:\t1", "Threads:\t17"}});
  auto status = ParseProcStatus(text);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->uid, 0u);  // The real one, not the effective 1000.
  EXPECT_EQ(status->groups, 3u);
  EXPECT_EQ(status->cap_prm, 0x000001fffeffffffu);
  EXPECT_FALSE(status->no_new_privs);
  EXPECT_EQ(status->seccomp, 0u);
  EXPECT_EQ(status->threads, 17u);
}

TEST(ParseProcStatusTest, MissingFieldIsAnError) {
  for (const char* line : {"Uid:\t995\t995\t995\t995\n", "Groups:\t \n", "CapAmb:\t0000000000000000\n",
                           "NoNewPrivs:\t1\n", "Seccomp:\t2\n", "Threads:\t1\n"}) {
    auto status = ParseProcStatus(absl::StrReplaceAll(kSandboxed, {{line, ""}}));
    ASSERT_FALSE(status.ok()) << line;
    EXPECT_THAT(status.status().message(), HasSubstr("no ")) << line;
  }
}

TEST(ParseProcStatusTest, MalformedFieldIsAnError) {
  const std::pair<const char*, const char*> cases[] = {
      {"CapEff:\t0000000000001000", "CapEff:\t1000"},
      {"CapEff:\t0000000000001000", "CapEff:\t000000000000100g"},
      {"Uid:\t995\t995\t995\t995", "Uid:\t995"},
      {"Uid:\t995\t995\t995\t995", "Uid:\t-1\t995\t995\t995"},
      {"Groups:\t \n", "Groups:\t1 x\n"},
      {"NoNewPrivs:\t1", "NoNewPrivs:\t2"},
      {"Seccomp:\t2", "Seccomp:\t3"},
      {"Threads:\t1", "Threads:\tone"},
  };
  for (const auto& [from, to] : cases) {
    auto status = ParseProcStatus(absl::StrReplaceAll(kSandboxed, {{from, to}}));
    ASSERT_FALSE(status.ok()) << to;
    EXPECT_THAT(status.status().message(), HasSubstr("malformed")) << to;
  }
}

TEST(ParseProcStatusTest, RepeatedFieldIsAnError) {
  auto status = ParseProcStatus(std::string(kSandboxed) + "Seccomp:\t0\n");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.status().message(), HasSubstr("Seccomp appears twice"));
}

TEST(ReadProcStatusTest, ReadsThisProcess) {
  auto status = ReadProcStatus(getpid());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->uid, getuid());
  EXPECT_EQ(status->gid, getgid());
  EXPECT_EQ(status->groups, static_cast<uint32_t>(getgroups(0, nullptr)));
}

TEST(ReadProcStatusTest, MissingProcessIsAnError) {
  EXPECT_FALSE(ReadProcStatus(-1).ok());
}

// A descriptor opened once reads fresh text every time: what a sandboxed process,
// which can no longer open /proc, relies on.
TEST(ReadProcStatusTest, DescriptorReadsCurrentState) {
  UniqueFd fd(open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  auto before = ReadProcStatusFd(fd.get());
  ASSERT_TRUE(before.ok()) << before.status();

  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread thread([&] {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
  });
  auto during = ReadProcStatusFd(fd.get());
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_one();
  thread.join();
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->threads, before->threads + 1);

  auto after = ReadProcStatusFd(fd.get());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->threads, before->threads);
}

TEST(ReadProcStatusTest, NotAStatusFileIsAnError) {
  UniqueFd fd(open("/proc/self/stat", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  EXPECT_FALSE(ReadProcStatusFd(fd.get()).ok());
}

}  // namespace
}  // namespace coolify::privsep
