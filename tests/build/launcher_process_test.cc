// The real coold-build (sandboxed, as the monitor starts it) with the real builder, git and
// buildah, against a reader that does not read: a build printing 100 MB while nobody has
// opened the build stream, and builds printing without end on a stream opened and never
// read. The launcher keeps answering health, enforces the build's timeout and a cancel,
// and its memory stays bounded; what it could not send is dropped oldest first and
// counted, never the finished report.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "privsep/channel.h"
#include "privsep/spawn.h"
#include "privsep/validate.h"
#include "proto/privsep.pb.h"
#include "services/build/launcher.h"
#include "services/builder/build_files.h"
#include "tests/build/build_testing.h"
#include "tests/podman_harness/podman_harness.h"
#include "tests/shell_testing.h"

namespace coolify::testing {
namespace {

using privsep::BuildLauncherReply;
using privsep::BuildLauncherRequest;
using privsep::Channel;
using privsep::UniqueFd;

// coold-build holds its code, libraries, one 64 KiB frame being encoded and, per build, at
// most kMaxHeldProgressBytes of lines in its queue and as many in one update (plus string
// overhead). Measured here: under 11 MiB (VmHWM) through both tests. The bound leaves room for
// allocator slack and is far below what an unbounded queue reached (195 MB in 72 s).
constexpr uint64_t kMaxLauncherKiB = 32 * 1024;

// A line of 100 bytes with `yes`: the token makes the build's processes findable.
std::string Printer(const std::string& token, const std::string& limit) {
  return absl::StrCat("FROM localhost/busybox:latest\nRUN yes ", token, "-", std::string(80, 'x'), limit, "\n");
}

// "VmRSS" or "VmHWM" of `pid`, in KiB; 0 when unreadable.
uint64_t MemoryKiB(pid_t pid, const std::string& field) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (!absl::StartsWith(line, field + ":")) continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t kib = 0;
    if (parts.size() >= 2 && absl::SimpleAtoi(absl::StripAsciiWhitespace(parts[parts.size() - 2]), &kib)) return kib;
  }
  return 0;
}

class LauncherProcess {
 public:
  LauncherProcess(const PodmanHarness& podman, const std::string& builds_dir, int timeout_seconds) {
    std::vector<std::string> args = {"--builds-dir=" + builds_dir,
                                     "--builder=" + Runfile("services/builder/builder"),
                                     "--backend=native",
                                     "--capacity=2",
                                     "--memory-max=1073741824",
                                     absl::StrCat("--timeout-seconds=", timeout_seconds),
                                     "--kill-grace-seconds=3",
                                     "--images-dir=" + BaseImagesDir(podman),
                                     absl::StrCat("--uid-base=", TestUidBase()),
                                     "--allow-file-urls",
                                     "--namespace=test"};
    auto pair = privsep::SeqpacketPair();
    EXPECT_TRUE(pair.ok()) << pair.status();
    if (!pair.ok()) return;
    // A launcher that stops answering fails the call after this long, not the test run.
    timeval limit = {60, 0};
    setsockopt(pair->first.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    auto exe = privsep::OpenExecutable(Runfile("services/build/coold-build"));
    UniqueFd builder(open(Runfile("services/builder/builder").c_str(), O_PATH | O_CLOEXEC));
    EXPECT_TRUE(exe.ok() && builder) << "coold-build or builder missing";
    if (!exe.ok() || !builder) return;
    auto child = privsep::Spawn(exe->get(), "coold-build", args, {pair->second.get(), builder.get()});
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return;
    pid_ = child->pid;
    channel_ = std::make_unique<Channel>(std::move(pair->first));
    client_ = std::make_unique<privsep::Client<BuildLauncherRequest, BuildLauncherReply>>(*channel_);
  }
  ~LauncherProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  pid_t pid() const { return pid_; }

  absl::StatusOr<BuildLauncherReply> Call(BuildLauncherRequest request, std::vector<UniqueFd>* fds = nullptr) {
    if (!client_) return absl::FailedPreconditionError("coold-build did not start");
    return client_->Call(std::move(request), {}, fds);
  }

  // A health answer with the launcher's own report.
  bool Healthy() {
    BuildLauncherRequest health;
    health.mutable_health();
    absl::StatusOr<BuildLauncherReply> reply = Call(health);
    return reply.ok() && reply->has_health() && reply->health().pid() == pid_;
  }

  absl::Status Start(const privsep::BuildSpec& spec) {
    BuildLauncherRequest start;
    *start.mutable_start()->mutable_spec() = spec;
    return Status(Call(start));
  }
  absl::Status Cancel(const std::string& id) {
    BuildLauncherRequest cancel;
    cancel.mutable_cancel()->set_request_id(id);
    return Status(Call(cancel));
  }
  // The build stream's socket.
  absl::StatusOr<UniqueFd> Watch() {
    BuildLauncherRequest watch;
    watch.mutable_watch();
    std::vector<UniqueFd> fds;
    absl::StatusOr<BuildLauncherReply> reply = Call(watch, &fds);
    if (!reply.ok()) return reply.status();
    if (fds.size() != 1) return absl::InternalError("no stream descriptor");
    return std::move(fds[0]);
  }

 private:
  static absl::Status Status(const absl::StatusOr<BuildLauncherReply>& reply) {
    if (!reply.ok()) return reply.status();
    if (reply->status().code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(reply->status().code()), reply->status().message());
    }
    return absl::OkStatus();
  }

  pid_t pid_ = -1;
  std::unique_ptr<Channel> channel_;
  std::unique_ptr<privsep::Client<BuildLauncherRequest, BuildLauncherReply>> client_;
};

// What the stream brought for one build.
struct Received {
  uint64_t lines = 0;
  uint64_t dropped = 0;
  uint64_t frames_after_finished = 0;
  bool finished = false;
  privsep::BuildFinished outcome;
  size_t descriptors = 0;  // that came with the finished frame
};

// Reads the stream until every build of `ids` has finished.
std::map<std::string, Received> ReadUntilFinished(UniqueFd stream_fd, const std::vector<std::string>& ids) {
  timeval limit = {120, 0};
  setsockopt(stream_fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  Channel stream(std::move(stream_fd));
  std::map<std::string, Received> got;
  auto all_done = [&] {
    for (const std::string& id : ids) {
      if (!got[id].finished) return false;
    }
    return true;
  };
  while (!all_done()) {
    privsep::BuildStreamFrame frame;
    std::vector<UniqueFd> fds;
    absl::Status s = stream.Receive(&frame, &fds);
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) break;
    EXPECT_TRUE(privsep::Validate(frame).ok());
    if (frame.has_progress()) {
      Received& r = got[frame.progress().request_id()];
      if (r.finished) ++r.frames_after_finished;
      r.lines += frame.progress().event_lines_size();
      r.dropped += frame.progress().dropped_lines();
    } else {
      Received& r = got[frame.finished().request_id()];
      r.finished = true;
      r.outcome = frame.finished();
      r.descriptors = fds.size();
    }
  }
  return got;
}

class LauncherProcessTest : public ::testing::Test {
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
    dir_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    token_ = absl::StrCat("flood", getpid());
  }

  privsep::BuildSpec Request(const std::string& id, const std::string& dockerfile) {
    privsep::BuildSpec r;
    r.set_request_id(id);
    r.set_kind(privsep::BUILD_KIND_DOCKERFILE);
    r.set_repo_url(MakeRepo(SearchableDir("process-" + id), {{"Dockerfile", dockerfile}}));
    r.set_git_ref("main");
    r.set_target_image("localhost/test/" + id + ":v1");
    return r;
  }

  // True once the build's cgroup is gone: the launcher removes it when the build is over
  // and every process of it has ended.
  static bool Over(const std::string& id, std::chrono::milliseconds limit) {
    std::string test = "test";
    for (const char* hierarchy : {"unified/", "memory/", "cpu/", "pids/", ""}) {
      test += absl::StrCat(test == "test" ? "" : " -o", " -e /sys/fs/cgroup/", hierarchy, "coolify-builds/coolify-build-", id);
    }
    return EventuallyFails(test, limit);
  }

  static PodmanHarness* podman_;
  std::string dir_, token_;
};

PodmanHarness* LauncherProcessTest::podman_ = nullptr;

TEST_F(LauncherProcessTest, HundredMegabytesWithNobodyReading) {
  LauncherProcess launcher(*podman_, dir_ + "/builds", 1800);
  ASSERT_GT(launcher.pid(), 0);
  ASSERT_TRUE(launcher.Healthy());
  const std::string id = absl::StrCat("flood-", getpid());
  // 1,000,000 lines of 100 bytes; no BuildWatch yet, so nothing is read at all.
  ASSERT_TRUE(launcher.Start(Request(id, Printer(token_, " | head -c 100000000"))).ok());
  uint64_t peak_rss = 0;
  const std::string work = dir_ + "/builds/" + id;
  struct stat st;
  for (int i = 0; i < 3000 && stat((work + "/result.json").c_str(), &st) != 0 &&
                  stat((work + "/error.json").c_str(), &st) != 0;
       ++i) {
    ASSERT_TRUE(launcher.Healthy()) << "the launcher stopped answering while the build printed";
    peak_rss = std::max(peak_rss, MemoryKiB(launcher.pid(), "VmRSS"));
    usleep(200 * 1000);
  }
  ASSERT_TRUE(Over(id, std::chrono::minutes(2)));
  ASSERT_TRUE(launcher.Healthy());
  const uint64_t hwm = MemoryKiB(launcher.pid(), "VmHWM");
  EXPECT_GT(hwm, 0u);
  EXPECT_LT(hwm, kMaxLauncherKiB) << "peak VmRSS seen " << peak_rss << " KiB";
  std::printf("coold-build: VmHWM %lu KiB, highest VmRSS sampled %lu KiB\n", static_cast<unsigned long>(hwm),
              static_cast<unsigned long>(peak_rss));

  // The durable record stops at its cap and says so; the build itself succeeded.
  ASSERT_EQ(stat((work + "/events.ndjson").c_str(), &st), 0);
  EXPECT_LE(static_cast<uint64_t>(st.st_size), build::kMaxEventsFileBytes + build::kMaxEventsClosingBytes);
  EXPECT_EQ(Shell("grep -c 'events.ndjson reached its cap of 16 MiB' " + work + "/events.ndjson").out, "1\n");

  // Opened now: the queue's newest lines, the count of those dropped, then the outcome.
  absl::StatusOr<UniqueFd> stream = launcher.Watch();
  ASSERT_TRUE(stream.ok()) << stream.status();
  std::map<std::string, Received> got = ReadUntilFinished(std::move(*stream), {id});
  const Received& r = got[id];
  EXPECT_EQ(r.outcome.outcome_file(), "result.json") << r.outcome.outcome() << r.outcome.note();
  // The image archive comes with it, for the name the build was started for.
  EXPECT_TRUE(r.outcome.image_archive());
  EXPECT_EQ(r.descriptors, 1u);
  EXPECT_EQ(r.outcome.image_name(), "localhost/test/" + id + ":v1");
  EXPECT_GT(r.dropped, 0u);
  EXPECT_GT(r.lines, 0u);
  // Every line the builder recorded was either sent or counted as dropped.
  CommandRun recorded = Shell("wc -l < " + work + "/events.ndjson");
  uint64_t lines = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(recorded.out), &lines)) << recorded.out;
  EXPECT_EQ(r.lines + r.dropped, lines);
  EXPECT_EQ(r.frames_after_finished, 0u);
}

TEST_F(LauncherProcessTest, StreamOpenedAndNeverRead) {
  LauncherProcess launcher(*podman_, dir_ + "/builds", 25);
  ASSERT_GT(launcher.pid(), 0);
  ASSERT_TRUE(launcher.Healthy());  // the handshake its dispatch table starts in
  absl::StatusOr<UniqueFd> stream = launcher.Watch();
  ASSERT_TRUE(stream.ok()) << stream.status();
  // Two builds printing without end: one runs into the 25 s timeout, one is cancelled.
  const std::string timed = absl::StrCat("stall-", getpid()), cancelled = absl::StrCat("stop-", getpid());
  ASSERT_TRUE(launcher.Start(Request(timed, Printer(token_ + "a", ""))).ok());
  ASSERT_TRUE(launcher.Start(Request(cancelled, Printer(token_ + "b", ""))).ok());
  // Both print (their RUN steps run), and the stream is not read.
  const std::string both = "pgrep -f '[y]es " + token_ + "a' && pgrep -f '[y]es " + token_ + "b'";
  for (int i = 0; i < 600 && Shell(both).status != 0; ++i) {
    ASSERT_TRUE(launcher.Healthy());
    usleep(100 * 1000);
  }
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(launcher.Healthy()) << "the launcher stopped answering with an unread stream";
    usleep(100 * 1000);
  }
  ASSERT_TRUE(launcher.Cancel(cancelled).ok());
  uint64_t peak_rss = 0;
  // Health is asked all along while the builds end.
  for (int i = 0; i < 1200 && Shell("pgrep -f '[y]es " + token_ + "a'").status == 0; ++i) {
    ASSERT_TRUE(launcher.Healthy());
    peak_rss = std::max(peak_rss, MemoryKiB(launcher.pid(), "VmRSS"));
    usleep(100 * 1000);
  }
  EXPECT_TRUE(Over(timed, std::chrono::minutes(1))) << "the timeout was not enforced";
  EXPECT_TRUE(Over(cancelled, std::chrono::minutes(1))) << "the cancel was not enforced";
  EXPECT_TRUE(EventuallyFails("pgrep -f '[y]es " + token_ + "'")) << "a RUN step outlived its build";
  ASSERT_TRUE(launcher.Healthy());
  const uint64_t hwm = MemoryKiB(launcher.pid(), "VmHWM");
  EXPECT_GT(hwm, 0u);
  EXPECT_LT(hwm, kMaxLauncherKiB) << "peak VmRSS seen " << peak_rss << " KiB";
  std::printf("coold-build: VmHWM %lu KiB, highest VmRSS sampled %lu KiB\n", static_cast<unsigned long>(hwm),
              static_cast<unsigned long>(peak_rss));

  std::map<std::string, Received> got = ReadUntilFinished(std::move(*stream), {timed, cancelled});
  EXPECT_EQ(got[timed].outcome.note(), "timed out after 25s");
  EXPECT_EQ(got[cancelled].outcome.note(), "cancelled");
  EXPECT_GT(got[timed].dropped + got[cancelled].dropped, 0u) << "the stream never filled";
  for (const std::string& id : {timed, cancelled}) {
    EXPECT_EQ(got[id].outcome.outcome_file(), "error.json") << id;
    EXPECT_EQ(got[id].descriptors, 0u) << id;
    EXPECT_EQ(got[id].frames_after_finished, 0u) << id;
  }
}

}  // namespace
}  // namespace coolify::testing
