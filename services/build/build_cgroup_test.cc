// A build's cgroup, made as the launcher makes it: root with only the launcher's
// capabilities (hardening/capabilities/build.list), which leave out CAP_DAC_OVERRIDE.
// On a hybrid host the roots of the v1 controllers and of the v2 tree are mode 0555, so
// the launcher can make a build's cgroup only in a parent the monitor prepared.
#include "services/build/build_cgroup.h"

#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "privsep/capabilities.h"

namespace coolify::build {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool IsHybrid() { return !Exists("/sys/fs/cgroup/cgroup.controllers"); }

// Runs BuildCgroup::Create and Remove in a child that holds what the launcher holds;
// its exit status: 0 made and removed, 1 not made, 2 could not become the launcher.
int CreateAsTheLauncher(const std::string& parent) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (!privsep::ChangeIdentity({0, 0}, {CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_KILL}).ok()) _exit(2);
    absl::StatusOr<BuildCgroup> cgroup = BuildCgroup::Create(parent, "coolify-build-probe", {});
    if (!cgroup.ok()) _exit(1);
    _exit(cgroup->Remove().ok() ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class BuildCgroupTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* hierarchy : {"unified", "memory", "cpu", "pids", ""}) {
      rmdir(absl::StrCat("/sys/fs/cgroup/", hierarchy, hierarchy[0] ? "/" : "", parent_).c_str());
    }
  }

  const std::string parent_ = absl::StrCat("coolify-builds-cgroup-test-", getpid());
};

TEST_F(BuildCgroupTest, TheLauncherMakesABuildsCgroupInAParentTheMonitorPrepared) {
  ASSERT_EQ(getuid(), 0u) << "needs root, as coold's monitor runs";
  if (IsHybrid()) {
    // Without the monitor's parent the launcher's mkdir in a 0555 root is refused.
    EXPECT_EQ(CreateAsTheLauncher(parent_), 1);
    EXPECT_FALSE(Exists(absl::StrCat("/sys/fs/cgroup/memory/", parent_)));
  }
  ASSERT_TRUE(BuildCgroup::PrepareParent(parent_).ok());
  EXPECT_EQ(CreateAsTheLauncher(parent_), 0);
  // Prepared twice (every start of coold) is not an error.
  EXPECT_TRUE(BuildCgroup::PrepareParent(parent_).ok());
}

}  // namespace
}  // namespace coolify::build
