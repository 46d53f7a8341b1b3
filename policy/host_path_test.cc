#include "policy/host_path.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace coolify::policy {
namespace {

namespace fs = std::filesystem;

std::string Lexical(std::string_view path) {
  const absl::StatusOr<std::string> c = CanonicalizeLexically(path);
  return c.ok() ? *c : "error: " + std::string(c.status().message());
}

TEST(CanonicalizeLexicallyTest, RemovesEverySpellingTrick) {
  EXPECT_EQ(Lexical("/"), "/");
  EXPECT_EQ(Lexical("//"), "/");
  EXPECT_EQ(Lexical("/etc"), "/etc");
  EXPECT_EQ(Lexical("/etc/"), "/etc");
  EXPECT_EQ(Lexical("/etc///"), "/etc");
  EXPECT_EQ(Lexical("//etc//passwd"), "/etc/passwd");
  EXPECT_EQ(Lexical("/./etc/./passwd/."), "/etc/passwd");
  EXPECT_EQ(Lexical("/data/app/../../etc"), "/etc");
  EXPECT_EQ(Lexical("/data/app/../../../../../etc"), "/etc");
  EXPECT_EQ(Lexical("/.."), "/");
  EXPECT_EQ(Lexical("/data/.."), "/");
  EXPECT_EQ(Lexical("/data/..."), "/data/...");
  EXPECT_EQ(Lexical("/data/..x/.x"), "/data/..x/.x");
}

TEST(CanonicalizeLexicallyTest, RefusesWhatIsNoAbsolutePath) {
  for (const char* bad : {"", "etc", "./etc", "../etc", "~/x"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(CanonicalizeLexically(bad).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(CanonicalizeLexically(std::string("/etc\0/x", 7)).ok());
  EXPECT_FALSE(CanonicalizeLexically("/" + std::string(kMaxPathBytes, 'a')).ok());
  EXPECT_TRUE(CanonicalizeLexically("/" + std::string(kMaxPathBytes - 1, 'a')).ok());
}

TEST(IsUnderPrefixTest, ComparesWholeComponents) {
  EXPECT_TRUE(IsUnderPrefix("/srv/data", "/srv/data"));
  EXPECT_TRUE(IsUnderPrefix("/srv/data/x", "/srv/data"));
  EXPECT_FALSE(IsUnderPrefix("/srv/database", "/srv/data"));
  EXPECT_FALSE(IsUnderPrefix("/srv", "/srv/data"));
  EXPECT_TRUE(IsUnderPrefix("/anything", "/"));
  EXPECT_TRUE(IsUnderPrefix("/", "/"));
}

// A directory tree standing in for a host's root:
//   /data/allowed/{file, sub/, inner -> sub, escape -> /etc, up -> ../../etc,
//                  top -> /../../.., loop -> loop, dangling -> nowhere}
//   /etc/passwd
class OpenBeneathTest : public testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string templ = std::string(tmp != nullptr ? tmp : "/tmp") + "/rootXXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    root_ = templ;
    fs::create_directories(root_ / "data/allowed/sub");
    fs::create_directories(root_ / "etc");
    std::ofstream(root_ / "etc/passwd") << "root:x:0:0\n";
    std::ofstream(root_ / "data/allowed/file") << "x";
    fs::create_symlink("sub", root_ / "data/allowed/inner");
    fs::create_symlink("/etc", root_ / "data/allowed/escape");
    fs::create_symlink("../../etc", root_ / "data/allowed/up");
    fs::create_symlink("/../../..", root_ / "data/allowed/top");
    fs::create_symlink("loop", root_ / "data/allowed/loop");
    fs::create_symlink("nowhere", root_ / "data/allowed/dangling");
    root_fd_.reset(open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_fd_.valid());
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string Canonical(std::string_view path) {
    const absl::StatusOr<OpenedPath> opened = OpenBeneath(root_fd_.get(), path);
    return opened.ok() ? opened->canonical : "error: " + opened.status().ToString();
  }

  fs::path root_;
  privsep::UniqueFd root_fd_;
};

TEST_F(OpenBeneathTest, PlainPathsResolveToThemselves) {
  EXPECT_EQ(Canonical("/"), "/");
  EXPECT_EQ(Canonical("/data/allowed"), "/data/allowed");
  EXPECT_EQ(Canonical("//data/./allowed/sub/"), "/data/allowed/sub");
  EXPECT_EQ(Canonical("/data/allowed/file"), "/data/allowed/file");
}

TEST_F(OpenBeneathTest, SymlinksResolveWithinTheRoot) {
  EXPECT_EQ(Canonical("/data/allowed/inner"), "/data/allowed/sub");
  EXPECT_EQ(Canonical("/data/allowed/escape"), "/etc");
  EXPECT_EQ(Canonical("/data/allowed/escape/passwd"), "/etc/passwd");
  EXPECT_EQ(Canonical("/data/allowed/up"), "/etc");
  EXPECT_EQ(Canonical("/data/allowed/top"), "/");
  EXPECT_EQ(Canonical("/data/allowed/inner/../file"), "/data/allowed/file");
  EXPECT_EQ(Canonical("/data/allowed/escape/../data"), "/data");
}

TEST_F(OpenBeneathTest, DotDotNeverLeavesTheRoot) {
  EXPECT_EQ(Canonical("/../../../.."), "/");
  EXPECT_EQ(Canonical("/data/../../../etc"), "/etc");
}

TEST_F(OpenBeneathTest, Failures) {
  EXPECT_EQ(OpenBeneath(root_fd_.get(), "/data/missing").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(OpenBeneath(root_fd_.get(), "/data/allowed/dangling").status().code(),
            absl::StatusCode::kNotFound);
  const absl::Status loop = OpenBeneath(root_fd_.get(), "/data/allowed/loop").status();
  EXPECT_EQ(loop.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(loop.message().find("symbolic links"), absl::string_view::npos) << loop;
  EXPECT_EQ(OpenBeneath(root_fd_.get(), "/data/allowed/file/x").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(OpenBeneath(root_fd_.get(), "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(OpenBeneathTest, DescriptorIsTheObjectNamed) {
  const absl::StatusOr<OpenedPath> opened = OpenBeneath(root_fd_.get(), "/data/allowed/escape");
  ASSERT_TRUE(opened.ok()) << opened.status();
  struct stat direct;
  ASSERT_EQ(stat((root_ / "etc").c_str(), &direct), 0);
  EXPECT_EQ(opened->device, direct.st_dev);
  EXPECT_EQ(opened->inode, direct.st_ino);
  EXPECT_EQ(fcntl(opened->fd.get(), F_GETFL) & O_PATH, O_PATH);
}

TEST_F(OpenBeneathTest, PinningResolverKeepsItsFirstAnswer) {
  absl::StatusOr<std::unique_ptr<PinningHostPathResolver>> resolver =
      PinningHostPathResolver::Create(root_.string());
  ASSERT_TRUE(resolver.ok()) << resolver.status();
  EXPECT_EQ((*resolver)->Resolve("/data/allowed/sub").value_or(""), "/data/allowed/sub");
  const OpenedPath* pinned = (*resolver)->Pinned("/data/allowed/sub");
  ASSERT_NE(pinned, nullptr);
  const ino_t before = pinned->inode;

  // The directory is swapped for a symlink to /etc after the check: the resolver still
  // answers what it checked and holds, and opening the path again shows the swap.
  fs::rename(root_ / "data/allowed/sub", root_ / "data/allowed/old");
  fs::create_symlink("/etc", root_ / "data/allowed/sub");
  EXPECT_EQ((*resolver)->Resolve("/data/allowed/sub").value_or(""), "/data/allowed/sub");
  EXPECT_EQ((*resolver)->Pinned("/data/allowed/sub")->inode, before);
  const absl::StatusOr<OpenedPath> again = OpenBeneath(root_fd_.get(), "/data/allowed/sub");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->canonical, "/etc");
  EXPECT_NE(again->inode, before);
  EXPECT_EQ((*resolver)->Pinned("/nope"), nullptr);
}

TEST(PinningHostPathResolverTest, RootMustExist) {
  EXPECT_EQ(PinningHostPathResolver::Create("/nonexistent/root").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(PinningHostPathResolverTest, RealRootResolvesRealPaths) {
  absl::StatusOr<std::unique_ptr<PinningHostPathResolver>> resolver =
      PinningHostPathResolver::Create("/");
  ASSERT_TRUE(resolver.ok());
  EXPECT_EQ((*resolver)->Resolve("/").value_or(""), "/");
  EXPECT_EQ((*resolver)->Resolve("/proc/self/root").value_or(""), "/");
}

}  // namespace
}  // namespace coolify::policy
