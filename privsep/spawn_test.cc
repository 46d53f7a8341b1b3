// Spawn lays out exactly the passed descriptors from fd 3, whatever numbers they and the
// executable's descriptor had in the parent.
#include "privsep/spawn.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace coolify::privsep {
namespace {

TEST(SpawnTest, PassesExactlyTheGivenDescriptorsInOrder) {
  // The executable's descriptor takes the lowest free number, which the passed descriptors
  // then cover: the shuffle must move it out of the way before laying them out.
  auto exe = OpenExecutable("/bin/sh");
  ASSERT_TRUE(exe.ok()) << exe.status();
  const int passed = std::max(3, exe->get() - 2);
  std::vector<UniqueFd> readers;
  std::vector<UniqueFd> writers;
  for (int i = 0; i < passed; ++i) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    readers.emplace_back(p[0]);
    writers.emplace_back(p[1]);
  }
  std::vector<int> fds;
  // Reversed, so several sources sit on each other's targets as well.
  for (int i = passed - 1; i >= 0; --i) fds.push_back(writers[i].get());

  std::string script;
  for (int i = 0; i < passed; ++i) absl::StrAppend(&script, "echo ", 3 + i, " >&", 3 + i, "; ");
  // Nothing else may be open: no descriptor above the passed ones.
  absl::StrAppend(&script, "for n in $(seq ", 3 + passed, " 600); do [ -e /proc/self/fd/$n ] && exit 7; done; exit 0");
  auto child = Spawn(exe->get(), "sh", {"-c", script}, fds);
  ASSERT_TRUE(child.ok()) << child.status();
  writers.clear();
  int status = 0;
  ASSERT_EQ(waitpid(child->pid, &status, 0), child->pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "a descriptor beyond the passed ones was open";
  for (int i = 0; i < passed; ++i) {
    char buf[16] = {};
    ssize_t n = read(readers[passed - 1 - i].get(), buf, sizeof(buf) - 1);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), absl::StrCat(3 + i, "\n")) << "fd " << 3 + i;
  }
}

TEST(SpawnTest, RefusesAWritableBinary) {
  char path[] = "/tmp/spawn-test-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_EQ(chmod(path, 0777), 0);
  auto exe = OpenExecutable(path);
  EXPECT_FALSE(exe.ok());
  EXPECT_NE(std::string(exe.status().message()).find("writable"), std::string::npos) << exe.status();
  unlink(path);
}

}  // namespace
}  // namespace coolify::privsep
