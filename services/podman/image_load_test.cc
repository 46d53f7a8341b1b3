// The image hand-over through the real coold-podman (sandboxed, with its namespaces on
// its command line) and an isolated Podman: only localhost/<namespace>/<name>:<tag> of its
// own namespaces can be given, only an unnamed OCI archive passes, and whatever is
// refused leaves Podman's images exactly as they were (ids and names).
#include "services/podman/image_load.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "privsep/channel.h"
#include "privsep/spawn.h"
#include "proto/privsep.pb.h"
#include "services/podman/oci_archive_testing.h"
#include "tests/podman_harness/podman_harness.h"
#include "tests/shell_testing.h"

namespace coolify::podman {
namespace {

using coolify::testing::PodmanHarness;
using privsep::PodmanReply;
using privsep::PodmanRequest;
using privsep::UniqueFd;
using testing::OciLayout;
using testing::TarWriter;

TEST(LoadedImageId, OnlyOneIdAndNothingElse) {
  const std::string id(64, 'a');
  EXPECT_EQ(*LoadedImageId(R"({"Names":["sha256:)" + id + "\"]}\n"), id);
  EXPECT_FALSE(LoadedImageId(R"({"Names":["localhost/busybox:latest","sha256:)" + id + "\"]}").ok());
  EXPECT_FALSE(LoadedImageId(R"({"Names":["sha256:)" + id + R"(","sha256:)" + id + "\"]}").ok());
  EXPECT_FALSE(LoadedImageId(R"({"Names":["localhost/busybox:latest"]})").ok());
  EXPECT_FALSE(LoadedImageId(R"({"Names":[]})").ok());
  EXPECT_FALSE(LoadedImageId(R"({"Names":["sha256:)" + std::string(64, 'A') + "\"]}").ok());
}

class ImageLoadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = PodmanHarness::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    podman_ = started->release();
  }
  static void TearDownTestSuite() {
    delete podman_;
    podman_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(podman_, nullptr);
    dir_ = absl::StrCat(getenv("TEST_TMPDIR"), "/", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(coolify::testing::Shell("rm -rf " + dir_ + " && mkdir -p " + dir_).status, 0);
    auto pair = privsep::SeqpacketPair();
    ASSERT_TRUE(pair.ok());
    timeval limit = {120, 0};
    setsockopt(pair->first.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    auto exe = privsep::OpenExecutable(coolify::testing::Runfile("services/podman/coold-podman"));
    ASSERT_TRUE(exe.ok()) << exe.status();
    // The gatekeeper's namespaces are its own configuration: "web" and "default".
    auto child = privsep::Spawn(exe->get(), "coold-podman",
                                {podman_->socket_path(), "embedded:baseline", "127.0.0.1", "8443", "web", "default"},
                                {pair->second.get()});
    ASSERT_TRUE(child.ok()) << child.status();
    pid_ = child->pid;
    channel_ = std::make_unique<privsep::Channel>(std::move(pair->first));
    client_ = std::make_unique<privsep::Client<PodmanRequest, PodmanReply>>(*channel_);
    // Its dispatch table serves image_load once the handshake (a health request) is done.
    PodmanRequest health;
    health.mutable_health();
    absl::StatusOr<PodmanReply> reply = client_->Call(health);
    ASSERT_TRUE(reply.ok() && reply->has_health()) << reply.status();
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Asks coold-podman to load `archive` (written to a file, as a build leaves it) as `name`.
  absl::StatusOr<privsep::PodmanImageLoaded> Load(const std::string& name, const std::string& archive) {
    const std::string path = absl::StrCat(dir_, "/image-", ++archives_, ".tar");
    std::ofstream(path, std::ios::binary) << archive;
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return absl::InternalError("open archive");
    PodmanRequest request;
    request.mutable_image_load()->set_name(name);
    absl::StatusOr<PodmanReply> reply = client_->Call(request, {fd.get()});
    if (!reply.ok()) return reply.status();
    if (reply->status().code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(reply->status().code()), reply->status().message());
    }
    return reply->image_loaded();
  }

  // Every image Podman holds: full id and names, one line each, sorted.
  static std::string Images() {
    auto out = podman_->Podman({"images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"});
    EXPECT_TRUE(out.ok()) << out.status();
    std::vector<std::string> lines = absl::StrSplit(out.value_or(""), '\n', absl::SkipEmpty());
    std::sort(lines.begin(), lines.end());
    return absl::StrJoin(lines, "\n");
  }
  static std::string IdOf(const std::string& name) {
    auto out = podman_->Podman({"image", "inspect", "--format", "{{.Id}}", name});
    return out.ok() ? *out : "";
  }

  static PodmanHarness* podman_;
  std::string dir_;
  pid_t pid_ = -1;
  int archives_ = 0;
  std::unique_ptr<privsep::Channel> channel_;
  std::unique_ptr<privsep::Client<PodmanRequest, PodmanReply>> client_;
};

PodmanHarness* ImageLoadTest::podman_ = nullptr;

TEST_F(ImageLoadTest, AGoodArchiveIsLoadedUnderItsNameAndANewBuildTakesTheName) {
  const std::string before = Images();
  absl::StatusOr<privsep::PodmanImageLoaded> first = Load("localhost/web/site:v1", OciLayout("v", "1\n").End());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->name(), "localhost/web/site:v1");
  EXPECT_EQ(IdOf("localhost/web/site:v1"), first->image_id() + "\n");
  // A later build of the namespace takes the name; the earlier image keeps none.
  absl::StatusOr<privsep::PodmanImageLoaded> second = Load("localhost/web/site:v1", OciLayout("v", "2\n").End());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(second->image_id(), first->image_id());
  EXPECT_EQ(IdOf("localhost/web/site:v1"), second->image_id() + "\n");
  auto names = podman_->Podman({"image", "inspect", "--format", "{{.RepoTags}}", first->image_id()});
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(*names, "[]\n");
  (void)podman_->Podman({"rmi", "-f", first->image_id(), second->image_id()});
  EXPECT_EQ(Images(), before);
}

TEST_F(ImageLoadTest, NamesOutsideTheNamespacesAreRefusedAndNothingChanges) {
  const std::string busybox = IdOf(PodmanHarness::kBusyboxImage);
  ASSERT_FALSE(busybox.empty());
  const std::string before = Images();
  struct Case {
    std::string name, message;
  } cases[] = {
      {"localhost/busybox:latest", "image name: no namespace"},
      {"docker.io/library/nginx:alpine", "image name: not under localhost/"},
      {"localhost/other/app:v1", "image name: \"other\" is not a namespace of this host"},
      {"localhost/web/app", "image name: no tag"},
      {"localhost/web/app@sha256:" + std::string(64, '0'), "image name: bad name"},
      {"localhost/web/app:v1\nX", "image name: bad tag"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<privsep::PodmanImageLoaded> r = Load(c.name, OciLayout("x", "y").End());
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << c.name << ": " << r.status();
    EXPECT_EQ(std::string(r.status().message()).rfind(c.message, 0), 0u) << c.name << ": " << r.status();
  }
  EXPECT_EQ(IdOf(PodmanHarness::kBusyboxImage), busybox);
  EXPECT_EQ(Images(), before);
}

TEST_F(ImageLoadTest, ArchivesThatCouldNameAnImageAreCutOffAndLoadNothing) {
  // The vector, shown for real without the gatekeeper: Podman names an image from an
  // archive's ref.name annotation.
  const std::string annotated =
      OciLayout("x", "forged\n", R"(,"annotations":{"org.opencontainers.image.ref.name":"localhost/web/forged:v1"})").End();
  const std::string path = dir_ + "/annotated.tar";
  std::ofstream(path, std::ios::binary) << annotated;
  auto direct = podman_->Podman({"load", "-i", path});
  ASSERT_TRUE(direct.ok()) << direct.status();
  ASSERT_NE(IdOf("localhost/web/forged:v1"), "") << "podman load no longer takes the annotation's name";
  (void)podman_->Podman({"rmi", "-f", "localhost/web/forged:v1"});

  const std::string busybox = IdOf(PodmanHarness::kBusyboxImage);
  const std::string before = Images();
  // A layer of 3 MiB first, so the refusal comes after Podman has had pieces of the body:
  // it must still load nothing, because it never gets the end.
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  struct Case {
    const char* what;
    std::string archive, message;
  } cases[] = {
      {"ref.name annotation",
       OciLayout("big", big, R"(,"annotations":{"org.opencontainers.image.ref.name":"localhost/busybox:latest"})").End(),
       "index.json holds annotations"},
      {"docker manifest.json",
       OciLayout("big", big).Add("manifest.json", R"([{"Config":"c","RepoTags":["localhost/busybox:latest"],"Layers":[]}])").End(),
       "\"manifest.json\" is not part of an OCI layout"},
      {"pax header", OciLayout("big", big).Add("PaxHeader/index.json", "30 path=index.json\n", 'x').End(), "pax header"},
      {"duplicate index.json",
       OciLayout("big", big).Add("index.json", R"({"schemaVersion":2,"manifests":[]})").End(), "\"index.json\" twice"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<privsep::PodmanImageLoaded> r = Load("localhost/web/forged:v2", c.archive);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << c.what << ": " << r.status();
    EXPECT_NE(std::string(r.status().message()).find(c.message), std::string::npos) << c.what << ": " << r.status();
    EXPECT_EQ(Images(), before) << c.what << ": an image or a name appeared";
    EXPECT_EQ(IdOf(PodmanHarness::kBusyboxImage), busybox) << c.what;
  }
  // The same archive without the forgery loads (the refusals were the check's, not the
  // archive's shape).
  absl::StatusOr<privsep::PodmanImageLoaded> good = Load("localhost/web/forged:v2", OciLayout("big", big).End());
  ASSERT_TRUE(good.ok()) << good.status();
  (void)podman_->Podman({"rmi", "-f", good->image_id()});
  EXPECT_EQ(Images(), before);
}

}  // namespace
}  // namespace coolify::podman
