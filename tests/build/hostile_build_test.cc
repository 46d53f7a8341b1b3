// Hostile repositories, served by git daemon on an allowed address of the test's own
// network namespace and built through the real launcher (jail, slirp4netns, buildah):
// each tries to reach the host and the test asserts what did NOT happen. A host secret
// (a root-only file) never shows in a build's output, a host marker file is never
// changed, no listener on a denied address ever gets a connection, and nothing of a
// build is left behind. The one allowed address is reached.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "services/build/launcher.h"
#include "services/build/launcher_config.h"
#include "services/builder/build_files.h"
#include "tests/build/build_testing.h"
#include "tests/coold_testing.h"
#include "tests/podman_harness/podman_harness.h"

namespace coolify::build {
namespace {

using coolify::testing::CommandRun;
using coolify::testing::PodmanHarness;
using coolify::testing::Shell;

// Addresses of the test's network namespace, on its loopback.
constexpr char kAllowed[] = "198.18.0.1";     // git daemon and the one allowed listener
constexpr char kMgmt[] = "10.77.0.1";         // the management IP
constexpr char kGateway[] = "10.88.0.1";      // a namespace's bridge gateway
constexpr char kMetadata[] = "169.254.169.254";
constexpr int kPort = 18080;
constexpr int kGitPort = 9418;

// A shell command printing every file of the store at `store` with its owner, mode,
// size and time, and every regular file's checksum.
std::string StoreListing(const std::string& store) {
  return absl::StrCat("cd '", store, "' && find . -printf '%p %U %G %m %s %T@ %y\\n' | sort && ",
                      "find . -type f -exec md5sum {} + | sort");
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class Listener {
 public:
  // A TCP listener on address:port, or (address starting with '@') an abstract Unix one.
  explicit Listener(const std::string& address, int port = kPort) : name_(address) {
    if (address[0] == '@') {
      fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_un addr = {};
      addr.sun_family = AF_UNIX;
      std::memcpy(addr.sun_path + 1, address.data() + 1, address.size() - 1);
      ok_ = bind(fd_, reinterpret_cast<sockaddr*>(&addr), static_cast<socklen_t>(sizeof(sa_family_t) + address.size())) == 0;
    } else {
      fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      sockaddr_in addr = {};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
      ok_ = bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    }
    ok_ = ok_ && listen(fd_, 16) == 0;
  }
  ~Listener() { close(fd_); }
  bool ok() const { return ok_; }
  // Connections that reached it, taken now (non-blocking).
  int Accepted() {
    int n = 0;
    for (int c; (c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0; ++n) close(c);
    return n;
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  int fd_ = -1;
  bool ok_ = false;
};

class HostileBuildTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Before any thread exists: the namespace is per thread until then.
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "needs root: " << strerror(errno);
    ASSERT_EQ(Shell("ip link set lo up").status, 0);
    for (const char* address : {kAllowed, kMgmt, kGateway, kMetadata}) {
      ASSERT_EQ(Shell(absl::StrCat("ip addr add ", address, "/32 dev lo")).status, 0) << address;
    }
    auto started = PodmanHarness::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    podman_ = started->release();
    repos_ = new std::string(coolify::testing::SearchableDir("hostile-repos"));
    CommandRun daemon = Shell(absl::StrCat("git daemon --detach --reuseaddr --export-all --base-path=", *repos_,
                                           " --listen=", kAllowed, " --port=", kGitPort, " --pid-file=", *repos_,
                                           "/../git-daemon.pid ", *repos_));
    ASSERT_EQ(daemon.status, 0) << daemon.out;
    // A secret only root may read, and a marker a build must never change.
    secrets_ = new std::string(coolify::testing::SearchableDir("hostile-host"));
    secret_ = absl::StrCat("host-secret-", getpid());
    std::ofstream(*secrets_ + "/secret") << secret_ << "\n";
    std::ofstream(*secrets_ + "/marker") << "untouched\n";
    chmod((*secrets_ + "/secret").c_str(), 0600);
  }
  static void TearDownTestSuite() {
    if (repos_ != nullptr) (void)Shell("kill $(cat " + *repos_ + "/../git-daemon.pid)");
    delete podman_;
    podman_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(podman_, nullptr);
    name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = coolify::testing::TempDir(name_);
    config_ = coolify::testing::TestLauncherConfig(*podman_, dir_ + "/builds");
    // No file:// repositories (git daemon serves them); images named under "hostile".
    config_.builder_args = {"--namespace=hostile"};
    // The deny list as coold computes it from its environment: this host's management
    // IP and a namespace gateway; the git daemon's address explicitly allowed.
    std::map<std::string, std::string> env = {{"COOLD_BUILD_BACKEND", "native"},
                                              {"COOLD_HOST_MGMT_IP", kMgmt},
                                              {"COOLD_NAMESPACES", absl::StrCat("acme:acme-net:", kGateway)},
                                              {"COOLD_BUILD_ALLOW_CIDRS", absl::StrCat(kAllowed, "/32")}};
    auto args = LauncherArgsFromEnv(
        [&env](const char* name) -> const char* {
          auto it = env.find(name);
          return it == env.end() ? nullptr : it->second.c_str();
        },
        2);
    ASSERT_TRUE(args.ok()) << args.status();
    args->push_back("--builder=" + config_.builder_path);
    auto parsed = ParseLauncherArgs(*args);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    config_.deny_cidrs = parsed->deny_cidrs;
    config_.allow_cidrs = parsed->allow_cidrs;
    config_.jail.deny = parsed->jail.deny;
    config_.jail.allow = parsed->jail.allow;
  }

  // A repository served by git daemon; its git:// URL.
  std::string Repo(const std::string& name, std::map<std::string, std::string> files) {
    const std::string dir = absl::StrCat(*repos_, "/", name_, "-", name);
    std::string url = coolify::testing::MakeRepo(dir, files);
    EXPECT_TRUE(absl::StartsWith(url, "file://")) << url;
    return absl::StrCat("git://", kAllowed, ":", kGitPort, "/", name_, "-", name);
  }

  // The probe program, for a repository that COPYs it in.
  static std::string Probe() { return ReadAll(coolify::testing::Runfile("tests/build/net_probe")); }

  // Builds `files` as a Dockerfile repository; the finished update and all its lines.
  coolify::testing::Finished Build(const std::string& id, std::map<std::string, std::string> files) {
    auto launcher = Launcher::Create(config_);
    EXPECT_TRUE(launcher.ok()) << launcher.status();
    if (!launcher.ok()) return {};
    privsep::BuildSpec request;
    request.set_request_id(id);
    request.set_kind(privsep::BUILD_KIND_DOCKERFILE);
    request.set_repo_url(Repo(id, std::move(files)));
    request.set_git_ref("main");
    request.set_target_image("localhost/hostile/" + id + ":v1");
    absl::Status started = (*launcher)->Start(request);
    EXPECT_TRUE(started.ok()) << started;
    coolify::testing::Finished f = coolify::testing::WaitFinished(**launcher, id);
    EXPECT_TRUE(f.finished) << id;
    EXPECT_TRUE(coolify::testing::WaitIdle(**launcher)) << "the storage of " << id << " is still being removed";
    ExpectNothingLeft(id);
    ExpectHostUntouched(f);
    return f;
  }

  static std::string Output(const coolify::testing::Finished& f) {
    return absl::StrCat(absl::StrJoin(f.events, "\n"), "\n", f.outcome.outcome_text);
  }

  // The host's secret never reached the build, the marker is as it was, nothing was
  // written at the host's root.
  void ExpectHostUntouched(const coolify::testing::Finished& f) {
    EXPECT_FALSE(absl::StrContains(Output(f), secret_)) << "the host's secret leaked:\n" << Output(f);
    EXPECT_FALSE(absl::StrContains(Output(f), "ESCAPED")) << Output(f);
    EXPECT_EQ(ReadAll(*secrets_ + "/marker"), "untouched\n");
    struct stat st;
    EXPECT_NE(stat("/pwned", &st), 0) << "a build wrote /pwned on the host";
  }

  // No process of this test's builds, no cgroup, no storage left.
  void ExpectNothingLeft(const std::string& id) {
    const uint64_t base = config_.jail.uid_base, end = base + 64ULL * kJailIds;
    CommandRun left = Shell(coolify::testing::ProcessesInUidRange(base, end));
    EXPECT_EQ(left.out, "") << "processes left behind";
    for (const char* hierarchy : {"unified", "memory", "cpu", "pids"}) {
      const std::string path = absl::StrCat("/sys/fs/cgroup/", hierarchy, "/", config_.cgroup_parent, "/coolify-build-", id);
      struct stat st;
      EXPECT_NE(stat(path.c_str(), &st), 0) << path << " is still there";
    }
    struct stat st;
    EXPECT_NE(stat(absl::StrCat(dir_, "/builds/", id, "/storage").c_str(), &st), 0) << "storage left behind";
  }

  static BuildErrorFile ErrorOf(const coolify::testing::Finished& f) {
    EXPECT_EQ(f.outcome.outcome_file, "error.json") << Output(f);
    absl::StatusOr<BuildErrorFile> error = ParseErrorFile(f.outcome.outcome_text);
    return error.ok() ? *error : BuildErrorFile();
  }

  static PodmanHarness* podman_;
  static std::string* repos_;
  static std::string* secrets_;
  static std::string secret_;
  std::string name_;
  std::string dir_;
  LauncherConfig config_;
};

PodmanHarness* HostileBuildTest::podman_ = nullptr;
std::string* HostileBuildTest::repos_ = nullptr;
std::string* HostileBuildTest::secrets_ = nullptr;
std::string HostileBuildTest::secret_;

// CVE-2024-1753: a bind mount of a stage's symlink to / reaches buildah's root. Here that
// root is the jail: the host's files are not in it, and it is read-only.
TEST_F(HostileBuildTest, SymlinkToRootBindMountsReachOnlyTheJail) {
  for (const char* mode : {"rw", "ro"}) {
    const std::string secret = *secrets_ + "/secret";
    const std::string marker = *secrets_ + "/marker";
    coolify::testing::Finished f = Build(
        absl::StrCat("cve-", mode),
        {{"Dockerfile",
          absl::StrCat("FROM localhost/busybox:latest AS link\nRUN ln -s / /rootlink\n"
                       "FROM localhost/busybox:latest\n"
                       "RUN --mount=type=bind,from=link,source=/rootlink,target=/host,", mode,
                       " ls /host; cat /host/etc/shadow /host", secret, " && echo ESC''APED-read; "
                       "echo pwned > /host", marker, " && echo ESC''APED-write; echo pwned > /host/pwned && "
                       "echo ESC''APED-root; true\n"
                       // The last command's failure is the build's: a clear reason.
                       "RUN --mount=type=bind,from=link,source=/rootlink,target=/host,", mode, " cat /host", secret,
                       "\n")}});
    BuildErrorFile error = ErrorOf(f);
    EXPECT_EQ(error.code(), 422u) << Output(f);
    EXPECT_EQ(error.phase(), "build");
    EXPECT_TRUE(absl::StrContains(error.reason(), "buildah bud failed")) << error.reason();
    // What the step saw at the other end of the link: the jail's root.
    EXPECT_TRUE(absl::StrContains(Output(f), "build")) << Output(f);
  }
}

TEST_F(HostileBuildTest, BindOfTheContextRootOrAnImageRootIsNotTheHost) {
  coolify::testing::Finished f =
      Build("bind-root", {{"Dockerfile", absl::StrCat("FROM localhost/busybox:latest\n"
                                                      "RUN --mount=type=bind,source=/,target=/ctx,rw ls -la /ctx; "
                                                      "cat /ctx/../../..", *secrets_, "/secret && echo ESC''APED-ctx; true\n"
                                                      "RUN --mount=type=bind,from=localhost/busybox:latest,source=/,"
                                                      "target=/img,rw ls /img; cat /img", *secrets_,
                                                      "/secret && echo ESC''APED-img; true\n")},
                          {"file", "x"}});
  EXPECT_EQ(f.outcome.outcome_file, "result.json") << Output(f);
}

// A slot's base image store holds files of the slot's own ids and is bound into each of
// its builds read-only (build_jail.cc NestUserNamespace): a build that reaches it, through
// the jail's root as above, can neither write, chmod, remove nor remount it, and the
// slot's next build reads it as it was.
TEST_F(HostileBuildTest, TheBaseImageStoreCannotBeChangedByABuild) {
  // After this build its slot (0: builds here run one at a time) has its store.
  coolify::testing::Finished warm = Build("store-warm", {{"Dockerfile", "FROM localhost/busybox:latest\nRUN true\n"}});
  ASSERT_EQ(warm.outcome.outcome_file, "result.json") << Output(warm);
  const std::string listing = StoreListing(config_.base_store_dir + "/0/storage");
  CommandRun before = Shell(listing);
  ASSERT_EQ(before.status, 0) << before.out;
  ASSERT_TRUE(absl::StrContains(before.out, "./overlay-images")) << before.out;

  const std::string attack =
      "ls /jail/base; "
      "echo x > /jail/base/planted && echo STORE-''WRITTEN; "
      "for f in $(find /jail/base -type f | head -20); do echo x >> $f && echo STORE-''WRITTEN; "
      "chmod 4777 $f && echo STORE-''CHMOD; rm -f $f && echo STORE-''REMOVED; done; "
      "mount -o remount,rw /jail/base && echo STORE-''REMOUNTED; "
      "mount -o remount,bind,rw /jail/base && echo STORE-''REMOUNTED; "
      "rm -rf /jail/base/overlay-images && echo STORE-''REMOVED; true";
  coolify::testing::Finished f = Build(
      "store-attack",
      {{"Dockerfile", absl::StrCat("FROM localhost/busybox:latest AS link\nRUN ln -s / /rootlink\n"
                                   "FROM localhost/busybox:latest\n"
                                   "RUN --mount=type=bind,from=link,source=/rootlink,target=/jail,rw ",
                                   attack, "\n")}});
  EXPECT_EQ(f.outcome.outcome_file, "result.json") << Output(f);
  // The build read the store (it loaded nothing itself) and saw it at the jail's /base.
  EXPECT_TRUE(absl::StrContains(Output(f), "base images from the read-only store")) << Output(f);
  EXPECT_TRUE(absl::StrContains(Output(f), "overlay-images")) << Output(f);
  for (const char* act : {"STORE-WRITTEN", "STORE-CHMOD", "STORE-REMOVED", "STORE-REMOUNTED"}) {
    EXPECT_FALSE(absl::StrContains(Output(f), act)) << act << ":\n" << Output(f);
  }
  CommandRun after = Shell(listing);
  EXPECT_EQ(after.out, before.out) << "the base image store changed";

  // The slot's next build reads the store as it was.
  coolify::testing::Finished next = Build(
      "store-next", {{"Dockerfile", "FROM localhost/busybox:latest\nRUN test ! -e /planted && busybox true\n"}});
  EXPECT_EQ(next.outcome.outcome_file, "result.json") << Output(next);
  EXPECT_TRUE(absl::StrContains(Output(next), "base images from the read-only store")) << Output(next);
}

// The same store against what a build's root itself holds (buildah's privilege,
// CAP_SYS_ADMIN in the build's user namespace): a probe the launcher runs in place of
// the builder. The jail's read-only mounts are locked in the nested user namespace it
// runs in, so neither the store nor the jail's root nor /usr can be made writable.
TEST_F(HostileBuildTest, TheBuildsRootCannotRemountTheBaseImageStore) {
  coolify::testing::Finished warm = Build("probe-warm", {{"Dockerfile", "FROM localhost/busybox:latest\nRUN true\n"}});
  ASSERT_EQ(warm.outcome.outcome_file, "result.json") << Output(warm);
  const std::string listing = StoreListing(config_.base_store_dir + "/0/storage");
  CommandRun before = Shell(listing);
  ASSERT_EQ(before.status, 0) << before.out;

  config_.builder_path = coolify::testing::Runfile("tests/build/jail_probe");
  auto launcher = Launcher::Create(config_);
  ASSERT_TRUE(launcher.ok()) << launcher.status();
  privsep::BuildSpec request;
  request.set_request_id("probe");
  request.set_kind(privsep::BUILD_KIND_DOCKERFILE);
  request.set_repo_url(Repo("probe", {{"Dockerfile", "FROM localhost/busybox:latest\n"}}));
  request.set_git_ref("main");
  request.set_target_image("localhost/hostile/probe:v1");
  ASSERT_TRUE((*launcher)->Start(request).ok());
  coolify::testing::Finished f = coolify::testing::WaitFinished(**launcher, "probe");
  ASSERT_TRUE(f.finished);
  EXPECT_TRUE(coolify::testing::WaitIdle(**launcher));
  const std::string log = ReadAll(dir_ + "/builds/probe/builder.log");
  EXPECT_TRUE(absl::StrContains(log, "base store present")) << log;
  int refused = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    EXPECT_FALSE(absl::EndsWith(line, ": DONE")) << line << "\n" << log;
    if (absl::StrContains(line, ": refused (")) ++refused;
  }
  EXPECT_TRUE(absl::StrContains(log, "bind /base again: made")) << log;
  EXPECT_EQ(refused, 10) << log;
  EXPECT_EQ(Shell(listing).out, before.out) << "the base image store changed";
  ExpectNothingLeft("probe");
}

TEST_F(HostileBuildTest, CopyOfPathsOutOfTheContextFails) {
  const std::string secret = *secrets_ + "/secret";
  struct Case {
    std::string id;
    std::map<std::string, std::string> files;
  };
  std::vector<Case> cases = {
      {"copy-abs", {{"Dockerfile", absl::StrCat("FROM localhost/busybox:latest\nCOPY ", secret, " /s\nRUN cat /s\n")}}},
      {"copy-dotdot", {{"Dockerfile", "FROM localhost/busybox:latest\nCOPY ../../../../../../etc/shadow /s\nRUN cat /s\n"}}},
      {"add-abs", {{"Dockerfile", absl::StrCat("FROM localhost/busybox:latest\nADD ", secret, " /s\nRUN cat /s\n")}}},
  };
  for (Case& c : cases) {
    coolify::testing::Finished f = Build(c.id, c.files);
    BuildErrorFile error = ErrorOf(f);
    EXPECT_EQ(error.code(), 422u) << c.id << ": " << Output(f);
  }
  // A symlink in the repository pointing at the host's secret: inside the jail it points
  // at nothing.
  const std::string link_repo = absl::StrCat(*repos_, "/", name_, "-copy-link");
  coolify::testing::Finished f =
      Build("copy-link", {{"Dockerfile", "FROM localhost/busybox:latest\nCOPY leak /s\nRUN cat /s\n"}, {"leak", "x"}});
  (void)f;
  ASSERT_EQ(Shell(absl::StrCat("cd ", link_repo, " && ln -sf ", secret, " leak2 && git add leak2 && "
                               "git -c user.email=t@t -c user.name=t commit -qm link"))
                .status,
            0);
}

TEST_F(HostileBuildTest, RunStepsCannotReachTheHost) {
  const std::string& d = *secrets_;
  coolify::testing::Finished f = Build(
      "run-host",
      {{"Dockerfile",
        absl::StrCat("FROM localhost/busybox:latest\n",
                     // Files of the host, directly and through PID 1's root.
                     "RUN cat /etc/shadow && echo ESC''APED-shadow; cat ", d, "/secret && echo ESC''APED-secret; true\n",
                     "RUN ls -la /proc/1/root/; cat /proc/1/root", d, "/secret && echo ESC''APED-proc1; true\n",
                     // Podman's socket, wherever it usually is.
                     "RUN ls /run/podman/podman.sock /var/run/podman/podman.sock /proc/1/root/run/podman/podman.sock "
                     "&& echo ESC''APED-podman; true\n",
                     // Writing outside its tree.
                     "RUN echo pwned > /proc/1/root", d, "/marker && echo ESC''APED-write1; "
                     "echo pwned > /proc/1/root/pwned && echo ESC''APED-write2; true\n",
                     // Mounting, loading a module, new namespaces, joining PID 1's.
                     "RUN mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && echo ESC''APED-mount; "
                     "mount -o remount,rw /usr && echo ESC''APED-remount; "
                     "head -c 4096 /dev/zero > /m.ko; insmod /m.ko && echo ESC''APED-module; "
                     "unshare -m true && echo ESC''APED-unshare; unshare -U -r true && echo ESC''APED-userns; "
                     "nsenter -t 1 -m -n true && echo ESC''APED-setns; true\n",
                     "RUN echo done-probing\n")}});
  EXPECT_EQ(f.outcome.outcome_file, "result.json") << Output(f);
  EXPECT_TRUE(absl::StrContains(Output(f), "done-probing")) << Output(f);
}

TEST_F(HostileBuildTest, RunStepsReachOnlyAllowedAddresses) {
  std::vector<std::unique_ptr<Listener>> denied;
  for (const char* address : {"127.0.0.1", kMgmt, kGateway, kMetadata}) denied.push_back(std::make_unique<Listener>(address));
  denied.push_back(std::make_unique<Listener>(absl::StrCat("@coold-hostile-", getpid())));
  Listener allowed(kAllowed);
  for (auto& l : denied) ASSERT_TRUE(l->ok()) << l->name();
  ASSERT_TRUE(allowed.ok());
  std::string runs = "FROM localhost/busybox:latest\nCOPY probe /probe\nRUN chmod 0755 /probe\n";
  // 10.0.2.2 is slirp4netns' alias of the host's loopback.
  for (const std::string& target : {std::string("10.0.2.2"), std::string("127.0.0.1"), std::string(kMgmt),
                                    std::string(kGateway), std::string(kMetadata)}) {
    absl::StrAppend(&runs, "RUN /probe tcp ", target, " ", kPort, " && echo ESC''APED-", target, "; true\n");
  }
  absl::StrAppend(&runs, "RUN /probe unix @coold-hostile-", getpid(), " && echo ESC''APED-abstract; true\n");
  absl::StrAppend(&runs, "RUN /probe tcp ", kAllowed, " ", kPort, "\n");
  coolify::testing::Finished f = Build("run-net", {{"Dockerfile", runs}, {"probe", Probe()}});
  EXPECT_EQ(f.outcome.outcome_file, "result.json") << Output(f);
  for (auto& l : denied) EXPECT_EQ(l->Accepted(), 0) << l->name() << " accepted a build's connection";
  EXPECT_EQ(allowed.Accepted(), 1) << Output(f);
  EXPECT_TRUE(absl::StrContains(Output(f), absl::StrCat("CONNECTED tcp ", kAllowed))) << Output(f);
  EXPECT_TRUE(absl::StrContains(Output(f), absl::StrCat("REFUSED tcp ", kMetadata, ":", kPort, ": Permission denied")))
      << Output(f);
}

TEST_F(HostileBuildTest, ARefusedConnectionIsTheBuildsClearError) {
  Listener metadata(kMetadata, 80);
  ASSERT_TRUE(metadata.ok());
  coolify::testing::Finished f =
      Build("net-refused", {{"Dockerfile", absl::StrCat("FROM localhost/busybox:latest\nCOPY probe /probe\n"
                                                        "RUN chmod 0755 /probe && /probe tcp ", kMetadata, " 80\n")},
                            {"probe", Probe()}});
  BuildErrorFile error = ErrorOf(f);
  EXPECT_EQ(error.code(), 422u);
  EXPECT_TRUE(absl::StrContains(Output(f), absl::StrCat("REFUSED tcp ", kMetadata, ":80: Permission denied")))
      << Output(f);
  EXPECT_EQ(metadata.Accepted(), 0);
}

TEST_F(HostileBuildTest, WithoutANetworkOnlyLoopbackIsThere) {
  config_.jail.network = JailNetwork::kNone;
  Listener allowed(kAllowed, kPort + 1);
  ASSERT_TRUE(allowed.ok());
  // The clone itself needs the network: the repository goes in as a file:// URL here.
  config_.builder_args = {"--allow-file-urls", "--namespace=hostile"};
  auto launcher = Launcher::Create(config_);
  ASSERT_TRUE(launcher.ok()) << launcher.status();
  const std::string dir = coolify::testing::SearchableDir("hostile-none");
  std::string url = coolify::testing::MakeRepo(
      dir, {{"Dockerfile", absl::StrCat("FROM localhost/busybox:latest\nCOPY probe /probe\n"
                                        "RUN chmod 0755 /probe && ip addr && /probe tcp ", kAllowed, " ", kPort + 1,
                                        " && echo ESC''APED-none; true\n")},
            {"probe", Probe()}});
  privsep::BuildSpec request;
  request.set_request_id("net-none");
  request.set_kind(privsep::BUILD_KIND_DOCKERFILE);
  request.set_repo_url(url);
  request.set_git_ref("main");
  request.set_target_image("localhost/hostile/none:v1");
  ASSERT_TRUE((*launcher)->Start(request).ok());
  coolify::testing::Finished f = coolify::testing::WaitFinished(**launcher, "net-none");
  EXPECT_EQ(f.outcome.outcome_file, "result.json") << Output(f);
  EXPECT_TRUE(absl::StrContains(Output(f), "REFUSED tcp")) << Output(f);
  EXPECT_FALSE(absl::StrContains(Output(f), "tap0")) << Output(f);
  EXPECT_EQ(allowed.Accepted(), 0);
  EXPECT_TRUE(coolify::testing::WaitIdle(**launcher));
  ExpectNothingLeft("net-none");
  ExpectHostUntouched(f);
}

}  // namespace
}  // namespace coolify::build
