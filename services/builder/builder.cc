#include "services/builder/builder.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "privsep/landlock.h"
#include "privsep/log.h"
#include "privsep/unique_fd.h"
#include "services/builder/build_files.h"

extern char** environ;

namespace coolify::build {
namespace {

using privsep::UniqueFd;

// Where the build launcher's jail shows the base images the host offers every build.
constexpr char kBaseImagesDir[] = "/images";
// Where it shows them already loaded, when the build's slot has a store of them: a
// containers-storage, read-only (services/build/build_jail.h kJailBaseStoreDir).
constexpr char kBaseStore[] = "/base";

bool HasBaseStore() {
  struct stat st;
  return stat(kBaseStore, &st) == 0 && S_ISDIR(st.st_mode);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t MonotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::optional<std::string> ReadSmallFile(const std::string& path, size_t limit = 65536) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string text(limit, '\0');
  in.read(text.data(), static_cast<std::streamsize>(limit));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

// This process's memory cgroup: the v1 directory (hybrid hosts) or the v2 one.
struct MemoryCgroup {
  std::string dir;
  bool v1 = false;
};
std::optional<MemoryCgroup> OwnMemoryCgroup() {
  std::optional<std::string> cgroups = ReadSmallFile("/proc/self/cgroup");
  if (!cgroups) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*cgroups, '\n', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    if (parts[1] == "memory") return MemoryCgroup{absl::StrCat("/sys/fs/cgroup/memory", parts[2]), true};
    if (parts[0] == "0" && parts[1].empty() && ReadSmallFile(absl::StrCat("/sys/fs/cgroup", parts[2], "/memory.events"))) {
      return MemoryCgroup{absl::StrCat("/sys/fs/cgroup", parts[2]), false};
    }
  }
  return std::nullopt;
}

uint64_t ReadNumber(const std::string& path) {
  uint64_t n = 0;
  std::optional<std::string> text = ReadSmallFile(path);
  if (text) (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &n);
  return n;
}

// Starts counting memory-limit events from now (see MemoryLimitEvents).
void ResetMemoryPeak() {
  std::optional<MemoryCgroup> cg = OwnMemoryCgroup();
  if (!cg || !cg->v1) return;
  std::ofstream(cg->dir + "/memory.max_usage_in_bytes") << "0";
}

// How often this process's cgroup ran into its memory limit. cgroup v2: memory.events
// "oom_kill", which counts kills in the whole subtree (buildah's RUN containers run in
// cgroups runc nests below this one). cgroup v1 (hybrid hosts) counts an OOM kill only
// in the victim's own cgroup, which runc removes with the container; what stays here is
// the peak usage: 1 when it reached the limit since ResetMemoryPeak(), else 0.
uint64_t MemoryLimitEvents() {
  std::optional<MemoryCgroup> cg = OwnMemoryCgroup();
  if (!cg) return 0;
  if (cg->v1) {
    const uint64_t limit = ReadNumber(cg->dir + "/memory.limit_in_bytes");
    const uint64_t peak = ReadNumber(cg->dir + "/memory.max_usage_in_bytes");
    return limit > 0 && peak + (1 << 20) >= limit ? 1 : 0;
  }
  std::optional<std::string> events = ReadSmallFile(cg->dir + "/memory.events");
  for (absl::string_view event : absl::StrSplit(events.value_or(""), '\n')) {
    uint64_t n = 0;
    if (absl::ConsumePrefix(&event, "oom_kill ") && absl::SimpleAtoi(event, &n)) return n;
  }
  return 0;
}

// A process killed by SIGKILL, seen directly or through buildah's report of a RUN step
// ("exit status 137").
bool KilledHard(int wait_status, const std::deque<std::string>& tail) {
  if (WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL) return true;
  for (const std::string& line : tail) {
    if (absl::StrContains(line, "exit status 137") || absl::StrContains(line, "signal: killed")) return true;
  }
  return false;
}

// What the image archive buildah wrote says of the image: its manifest's digest (what
// `podman images --digests` shows once it is loaded) and its config's (the image id).
struct ArchivedImage {
  std::string manifest_digest;
  std::string config_digest;
};

bool IsSha256Digest(absl::string_view digest) {
  if (!absl::ConsumePrefix(&digest, "sha256:") || digest.size() != 64) return false;
  return std::all_of(digest.begin(), digest.end(), [](char c) { return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'); });
}

// The "digest" of a JSON object member `key` (index.json's only manifest, a manifest's
// config).
std::optional<std::string> DigestIn(const std::string& json, const std::string& key) {
  google::protobuf::Struct doc;
  if (!google::protobuf::util::JsonStringToMessage(json, &doc).ok()) return std::nullopt;
  auto member = doc.fields().find(key);
  if (member == doc.fields().end()) return std::nullopt;
  const google::protobuf::Value* object = &member->second;
  if (object->has_list_value()) {
    if (object->list_value().values_size() != 1) return std::nullopt;
    object = &object->list_value().values(0);
  }
  if (!object->has_struct_value()) return std::nullopt;
  auto digest = object->struct_value().fields().find("digest");
  if (digest == object->struct_value().fields().end() || !IsSha256Digest(digest->second.string_value())) {
    return std::nullopt;
  }
  return digest->second.string_value();
}

// Reads index.json and the manifest it names out of the OCI archive at `path` (ustar, as
// buildah writes it). Only the small members are read; layers are skipped.
absl::StatusOr<ArchivedImage> ReadArchivedImage(const std::string& path) {
  constexpr uint64_t kMaxMetadataBytes = 64 * 1024;
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return absl::ErrnoToStatus(errno, "open");
  std::map<std::string, std::string> small;  // member name -> contents
  for (int members = 0; members < 4096; ++members) {
    char header[512];
    if (read(fd.get(), header, sizeof(header)) != static_cast<ssize_t>(sizeof(header))) break;
    if (std::all_of(header, header + sizeof(header), [](char c) { return c == '\0'; })) break;
    const std::string name(header, strnlen(header, 100));
    uint64_t size = 0;
    for (int i = 124; i < 136 && header[i] >= '0' && header[i] <= '7'; ++i) size = size * 8 + static_cast<uint64_t>(header[i] - '0');
    const uint64_t padded = (size + 511) / 512 * 512;
    const bool regular = header[156] == '0' || header[156] == '\0';
    if (regular && size <= kMaxMetadataBytes && (name == "index.json" || absl::StartsWith(name, "blobs/sha256/"))) {
      std::string data(padded, '\0');
      if (read(fd.get(), data.data(), padded) != static_cast<ssize_t>(padded)) break;
      data.resize(size);
      small[name] = std::move(data);
    } else if (lseek(fd.get(), static_cast<off_t>(padded), SEEK_CUR) < 0) {
      break;
    }
  }
  auto index = small.find("index.json");
  if (index == small.end()) return absl::NotFoundError("no index.json");
  ArchivedImage image;
  std::optional<std::string> manifest = DigestIn(index->second, "manifests");
  if (!manifest) return absl::InvalidArgumentError("index.json names no one manifest");
  image.manifest_digest = *manifest;
  auto blob = small.find("blobs/sha256/" + manifest->substr(7));
  if (blob == small.end()) return absl::NotFoundError("no manifest " + *manifest);
  std::optional<std::string> config = DigestIn(blob->second, "config");
  if (!config) return absl::InvalidArgumentError("the manifest names no config");
  image.config_digest = *config;
  return image;
}

struct ToolRun {
  int wait_status = 0;
  bool terminated = false;  // SIGTERM/SIGINT arrived while it ran
  std::deque<std::string> tail;  // its last output lines, for the error's reason
};

class Build {
 public:
  Build(const BuilderOptions& o, UniqueFd dir, UniqueFd events, UniqueFd signals)
      : o_(o), dir_(std::move(dir)), events_(std::move(events)), signals_(std::move(signals)) {}

  int Run();

 private:
  void Emit(const std::string& phase, absl::string_view line, uint64_t duration_ms = 0);
  // A line of a tool's output: recorded until events.ndjson holds kMaxEventsFileBytes,
  // then one line says the cap was reached and the rest is not recorded.
  void EmitOutput(const std::string& phase, absl::string_view line);
  ToolRun RunTool(const std::string& phase, const std::vector<std::string>& argv, privsep::LandlockRuleset* landlock);
  int Fail(const std::string& phase, uint32_t code, const std::string& reason, int exit_code = kExitBuildError);
  // The failure of a tool that did not succeed, classified.
  int ToolFailed(const std::string& phase, const ToolRun& run, uint64_t oom_before, const std::string& what);
  std::vector<std::string> Environment(bool for_git) const;
  std::vector<std::string> Buildah() const;
  // Loads every base image offered in kBaseImagesDir; 0, or the failure's exit code.
  int LoadBaseImages();
  absl::StatusOr<privsep::LandlockRuleset> GitLandlock() const;
  // realpath of `relative` beneath `root`, which it must not leave; nullopt when missing.
  std::optional<std::string> Inside(const std::string& root, const std::string& relative, bool want_dir) const;

  const BuilderOptions& o_;
  UniqueFd dir_, events_, signals_;
  BuildDurations durations_;
  uint64_t started_ms_ = MonotonicMs();
  uint64_t last_progress_ms_ = 0;
  uint64_t events_bytes_ = 0;
  bool events_capped_ = false;
};

void Build::Emit(const std::string& phase, absl::string_view line, uint64_t duration_ms) {
  BuildEventRecord record;
  record.set_phase(phase);
  // A repository URL may carry a token; nothing the build reports repeats it.
  record.set_line(RedactUrlCredentials(std::string_view(line.data(), line.size())));
  record.set_unix_ms(NowMs());
  record.set_duration_ms(duration_ms);
  std::string text = EventLine(std::move(record));
  // O_APPEND and one write per line: a reader never sees two lines interleaved. A lost
  // progress line is not worth failing the build for; the outcome file is what counts.
  ssize_t n = write(events_.get(), text.data(), text.size());
  if (n > 0) events_bytes_ += static_cast<uint64_t>(n);
}

void Build::EmitOutput(const std::string& phase, absl::string_view line) {
  if (events_capped_) return;
  // The JSON around a line is well under 256 bytes.
  if (events_bytes_ + line.size() + 256 > kMaxEventsFileBytes) {
    events_capped_ = true;
    Emit(phase, absl::StrCat("events.ndjson reached its cap of ", kMaxEventsFileBytes >> 20,
                             " MiB: the rest of the tools' output is not recorded"));
    return;
  }
  Emit(phase, line);
}

std::vector<std::string> Build::Environment(bool for_git) const {
  std::vector<std::string> env = {
      "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
      absl::StrCat("HOME=", o_.work_dir, "/home"),
      absl::StrCat("TMPDIR=", o_.work_dir, "/tmp"),
      "LC_ALL=C",  // messages in English: errors are classified by their text
  };
  // containers/* configuration chosen by whoever started the builder (storage, registries,
  // engine defaults); nothing else of the caller's environment reaches the tools.
  for (const char* name : {"CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF"}) {
    if (const char* value = getenv(name); value != nullptr && !for_git) env.push_back(absl::StrCat(name, "=", value));
  }
  if (for_git) {
    env.push_back("GIT_TERMINAL_PROMPT=0");     // never wait for a password
    env.push_back("GIT_CONFIG_NOSYSTEM=1");     // no host configuration (hooks, helpers, aliases)
    env.push_back(absl::StartsWith(o_.repo_url, "file://") ? absl::StrCat("GIT_CONFIG_GLOBAL=", o_.work_dir, "/home/gitconfig")
                                                           : "GIT_CONFIG_GLOBAL=/dev/null");
    env.push_back("GIT_PROTOCOL_FROM_USER=0");  // transports only as GIT_ALLOW_PROTOCOL says
    env.push_back(o_.allow_file_urls ? "GIT_ALLOW_PROTOCOL=https:http:git:file" : "GIT_ALLOW_PROTOCOL=https:http:git");
  }
  return env;
}

absl::StatusOr<privsep::LandlockRuleset> Build::GitLandlock() const {
  using namespace privsep;  // the access-right constants
  const uint64_t kRead = kLandlockReadFile | kLandlockReadDir;
  const uint64_t kAll = kRead | kLandlockWriteFile | kLandlockRemoveDir | kLandlockRemoveFile | kLandlockMakeDir |
                        kLandlockMakeReg | kLandlockMakeSym | kLandlockRefer | kLandlockTruncate;
  std::vector<LandlockRule> rules = {
      {"/usr", kLandlockExecute | kRead, "git: programs and libraries"},
      {"/etc/ld.so.cache", kLandlockReadFile, "git: the loader's cache"},
      {"/etc/ssl", kRead, "git: CA certificates for https"},
      {"/etc/ca-certificates", kRead, "git: CA certificates for https"},
      {"/etc/resolv.conf", kLandlockReadFile, "git: name resolution"},
      {"/etc/hosts", kLandlockReadFile, "git: name resolution"},
      {"/etc/nsswitch.conf", kLandlockReadFile, "git: name resolution"},
      {"/etc/gai.conf", kLandlockReadFile, "git: address selection"},
      {"/etc/passwd", kLandlockReadFile, "git: its own user's name"},
      {"/etc/group", kLandlockReadFile, "git: its own group's name"},
      {"/dev/null", kLandlockReadFile | kLandlockWriteFile, "git: discarded input and output"},
      {"/dev/urandom", kLandlockReadFile, "git: random temporary names"},
      {absl::StrCat(o_.work_dir, "/src"), kAll, "git: the clone"},
      {absl::StrCat(o_.work_dir, "/home"), kAll, "git: HOME"},
      {absl::StrCat(o_.work_dir, "/tmp"), kAll, "git: TMPDIR"},
  };
  if (absl::StartsWith(o_.repo_url, "file://")) {
    // Read-only: the local repository being cloned, and nothing else of the host.
    rules.push_back({o_.repo_url.substr(7), kRead, "git: the local repository cloned"});
  }
  std::vector<std::string> notes;
  return LandlockRuleset::Build(rules, {}, {}, &notes);
}

ToolRun Build::RunTool(const std::string& phase, const std::vector<std::string>& argv,
                       privsep::LandlockRuleset* landlock) {
  ToolRun run;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    run.wait_status = -1;
    run.tail.push_back(absl::StrCat("pipe: ", strerror(errno)));
    return run;
  }
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  std::vector<std::string> env = Environment(argv[0] == "git");
  std::vector<char*> c_argv, c_env;
  for (const std::string& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  for (const std::string& e : env) c_env.push_back(const_cast<char*>(e.c_str()));
  c_env.push_back(nullptr);
  const std::string program = argv[0] == "git" ? "/usr/bin/git" : "/usr/bin/buildah";

  pid_t pid = fork();
  if (pid < 0) {
    run.wait_status = -1;
    run.tail.push_back(absl::StrCat("fork: ", strerror(errno)));
    return run;
  }
  if (pid == 0) {
    // Its own process group: a cancel reaches the tool and everything it started.
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Under memory pressure in the build's cgroup the kernel kills the tools first, so the
    // builder survives to say the memory limit was hit.
    if (int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC); fd >= 0) {
      (void)!write(fd, "1000", 4);
      close(fd);
    }
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(write_end.get(), 1) < 0 || dup2(write_end.get(), 2) < 0) _exit(127);
    if (chdir(o_.work_dir.c_str()) != 0) _exit(127);
    if (landlock != nullptr) {
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || !landlock->Enforce().ok()) {
        static const char kMessage[] = "builder: cannot confine git (landlock)\n";
        (void)!write(2, kMessage, sizeof(kMessage) - 1);
        _exit(127);
      }
    }
    execve(program.c_str(), c_argv.data(), c_env.data());
    _exit(127);
  }
  write_end.reset();

  std::string pending;
  auto flush_line = [&](std::string line, bool carriage) {
    while (!line.empty() && (line.back() == ' ')) line.pop_back();
    if (line.empty()) return;
    run.tail.push_back(line);
    if (run.tail.size() > 8) run.tail.pop_front();
    // Progress counters redraw with '\r' many times a second: a few are enough.
    uint64_t now = MonotonicMs();
    if (carriage && now - last_progress_ms_ < 250) return;
    if (carriage) last_progress_ms_ = now;
    EmitOutput(phase, line);
  };
  bool open_pipe = true;
  while (open_pipe) {
    struct pollfd fds[2] = {{read_end.get(), POLLIN, 0}, {signals_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo info;
      if (read(signals_.get(), &info, sizeof(info)) == sizeof(info)) {
        run.terminated = true;
        kill(-pid, SIGTERM);
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[8192];
      ssize_t n = read(read_end.get(), buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        open_pipe = false;
        break;
      }
      pending.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t i = 0; i < pending.size(); ++i) {
        if (pending[i] == '\n' || pending[i] == '\r') {
          flush_line(pending.substr(start, i - start), pending[i] == '\r');
          start = i + 1;
        }
      }
      pending.erase(0, start);
      // A line without an end for this long is cut rather than held without bound.
      if (pending.size() > kMaxEventLineBytes) {
        flush_line(pending, false);
        pending.clear();
      }
    }
  }
  flush_line(pending, false);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // A tool that left processes behind in its group: they end with it.
  kill(-pid, SIGKILL);
  run.wait_status = status;
  return run;
}

int Build::Fail(const std::string& phase, uint32_t code, const std::string& reason, int exit_code) {
  durations_.set_total_ms(MonotonicMs() - started_ms_);
  BuildErrorFile error;
  error.set_request_id(o_.request_id);
  error.set_phase(phase);
  error.set_reason(SanitizeLine(RedactUrlCredentials(reason)));
  error.set_code(code);
  *error.mutable_durations() = durations_;
  Emit(phase, absl::StrCat("failed: ", reason));
  if (absl::Status s = WriteFileAtomically(dir_.get(), kErrorFile, ErrorJson(error)); !s.ok()) {
    std::fprintf(stderr, "builder: %s\n", s.ToString().c_str());
    return kExitUsage;
  }
  return exit_code;
}

int Build::ToolFailed(const std::string& phase, const ToolRun& run, uint64_t oom_before, const std::string& what) {
  if (run.terminated) return Fail(phase, 499, "cancelled", kExitTerminated);
  std::string last = run.tail.empty() ? "" : run.tail.back();
  if (MemoryLimitEvents() > oom_before && KilledHard(run.wait_status, run.tail)) {
    return Fail(phase, 507, absl::StrCat("memory limit hit: ", what, " was killed for memory"));
  }
  if (run.wait_status == -1) return Fail(phase, 500, absl::StrCat(what, ": ", last), kExitUsage);
  if (WIFSIGNALED(run.wait_status)) {
    return Fail(phase, 500, absl::StrCat(what, " was killed by signal ", WTERMSIG(run.wait_status)));
  }
  if (phase == "clone") {
    for (const std::string& line : run.tail) {
      if (absl::StrContains(line, "not found in upstream") || absl::StrContains(line, "couldn't find remote ref")) {
        return Fail(phase, 404, absl::StrCat("ref \"", o_.ref, "\" not found in ", o_.repo_url));
      }
    }
    return Fail(phase, 502, absl::StrCat("git clone of ", o_.repo_url, " failed: ", last));
  }
  return Fail(phase, 422, absl::StrCat(what, " failed: ", last));
}

std::optional<std::string> Build::Inside(const std::string& root, const std::string& relative, bool want_dir) const {
  std::string joined = relative.empty() ? root : absl::StrCat(root, "/", relative);
  char resolved[PATH_MAX];
  if (realpath(joined.c_str(), resolved) == nullptr) return std::nullopt;
  std::string path(resolved);
  // A symlink in the repository must not lead the build to a file of the host.
  if (path != root && !absl::StartsWith(path, root + "/")) return std::nullopt;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return std::nullopt;
  if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) return std::nullopt;
  return path;
}

int Build::LoadBaseImages() {
  // Loaded already, into the slot's store, by the launcher.
  if (!o_.storage_driver.empty() && HasBaseStore()) {
    Emit("build", absl::StrCat("base images from the read-only store ", kBaseStore));
    return 0;
  }
  DIR* dir = opendir(kBaseImagesDir);
  if (dir == nullptr) return 0;  // none offered
  std::vector<std::string> archives;
  while (dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (absl::EndsWith(name, ".tar") && name[0] != '.') archives.push_back(absl::StrCat(kBaseImagesDir, "/", name));
  }
  closedir(dir);
  std::sort(archives.begin(), archives.end());
  for (const std::string& archive : archives) {
    std::vector<std::string> pull = Buildah();
    for (const std::string& a : {std::string("pull"), std::string("--quiet"), "docker-archive:" + archive}) pull.push_back(a);
    ToolRun pulled = RunTool("build", pull, nullptr);
    if (pulled.terminated || pulled.wait_status != 0) return ToolFailed("build", pulled, 0, "loading base image " + archive);
  }
  return 0;
}

std::vector<std::string> Build::Buildah() const {
  std::vector<std::string> argv = {"buildah"};
  if (!o_.storage_root.empty()) argv.push_back("--root=" + o_.storage_root);
  if (!o_.storage_runroot.empty()) argv.push_back("--runroot=" + o_.storage_runroot);
  if (!o_.storage_driver.empty()) argv.push_back("--storage-driver=" + o_.storage_driver);
  // The base images as an additional image store: read-only to containers-storage, and
  // to the kernel (the jail's mount of it is locked read-only).
  if (!o_.storage_driver.empty() && HasBaseStore()) {
    argv.push_back(absl::StrCat("--storage-opt=", o_.storage_driver, ".imagestore=", kBaseStore));
  }
  return argv;
}

int Build::Run() {
  for (const char* sub : {"src", "home", "tmp"}) {
    if (mkdirat(dir_.get(), sub, 0700) != 0 && errno != EEXIST) {
      return Fail("clone", 500, absl::StrCat("mkdir ", sub, ": ", strerror(errno)), kExitUsage);
    }
  }
  // The clone.
  Emit("clone", absl::StrCat("git clone --depth 1 --branch ", o_.ref, " ", o_.repo_url));
  uint64_t phase_start = MonotonicMs();
  absl::StatusOr<privsep::LandlockRuleset> landlock = GitLandlock();
  if (!landlock.ok()) return Fail("clone", 500, absl::StrCat("landlock: ", landlock.status().message()), kExitUsage);
  const std::string src = absl::StrCat(o_.work_dir, "/src");
  std::vector<std::string> git = {"git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"};
  if (absl::StartsWith(o_.repo_url, "file://")) {
    // A local repository is the host's, whose owner the build's user namespace does not
    // map: git refuses it as of dubious ownership unless its global configuration
    // (which git reads for this setting, unlike `-c`) names it. It is read-only here,
    // and the exception names it alone.
    const std::string path = o_.repo_url.substr(7);
    UniqueFd home(openat(dir_.get(), "home", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (absl::Status s = WriteFileAtomically(home.get(), "gitconfig",
                                             absl::StrCat("[safe]\n\tdirectory = ", path, "\n\tdirectory = ", path, "/.git\n"));
        !s.ok()) {
      return Fail("clone", 500, std::string(s.message()), kExitUsage);
    }
  }
  for (const std::string& a : {std::string("clone"), std::string("--depth=1"), std::string("--single-branch"),
                               std::string("--no-tags"), std::string("--progress"), std::string("--branch"), o_.ref,
                               std::string("--"), o_.repo_url, src}) {
    git.push_back(a);
  }
  ToolRun clone = RunTool("clone", git, &*landlock);
  durations_.set_clone_ms(MonotonicMs() - phase_start);
  if (clone.terminated || clone.wait_status != 0) return ToolFailed("clone", clone, 0, "git clone");
  Emit("clone", "cloned", durations_.clone_ms());

  // What to build, found inside the clone only.
  char resolved_src[PATH_MAX];
  if (realpath(src.c_str(), resolved_src) == nullptr) return Fail("build", 500, "the clone vanished");
  const std::string root(resolved_src);
  std::optional<std::string> context = Inside(root, o_.subdirectory, /*want_dir=*/true);
  if (!context) return Fail("build", 404, absl::StrCat("subdirectory \"", o_.subdirectory, "\" not found in the repository"));
  std::string containerfile;
  if (o_.stack == Stack::kStatic) {
    if (!Inside(*context, o_.output_dir, /*want_dir=*/true)) {
      return Fail("build", 404, absl::StrCat("output directory \"", o_.output_dir, "\" not found in the repository"));
    }
    // Generated, outside the build context, from checked values only.
    std::string text = absl::StrCat("FROM ", o_.base_image, "\nCOPY ", o_.output_dir, "/ ", kStaticDocumentRoot, "\n");
    if (absl::Status s = WriteFileAtomically(dir_.get(), "Containerfile.static", text); !s.ok()) {
      return Fail("build", 500, std::string(s.message()), kExitUsage);
    }
    containerfile = absl::StrCat(o_.work_dir, "/Containerfile.static");
  } else {
    std::vector<std::string> names = {o_.dockerfile};
    if (o_.dockerfile.empty()) names = {"Dockerfile", "Containerfile"};
    for (const std::string& name : names) {
      if (std::optional<std::string> file = Inside(*context, name, /*want_dir=*/false)) {
        containerfile = *file;
        break;
      }
    }
    if (containerfile.empty()) {
      std::string where = o_.subdirectory.empty() ? "the repository's root" : absl::StrCat("\"", o_.subdirectory, "\"");
      return Fail("build", 404,
                  o_.dockerfile.empty() ? absl::StrCat("no Dockerfile or Containerfile in ", where)
                                        : absl::StrCat("Dockerfile \"", o_.dockerfile, "\" not found in ", where));
    }
  }

  // The base images this host offers every build (docker-archive files, which carry
  // their names), into the build's own storage, so FROM finds them without a registry.
  phase_start = MonotonicMs();
  if (int loaded = LoadBaseImages(); loaded != 0) return loaded;
  durations_.set_base_ms(MonotonicMs() - phase_start);
  Emit("build", "base images loaded", durations_.base_ms());

  // The build.
  phase_start = MonotonicMs();
  ResetMemoryPeak();
  uint64_t oom_before = MemoryLimitEvents();
  const std::string archive = absl::StrCat(o_.work_dir, "/", kImageArchiveFile);
  std::vector<std::string> bud = Buildah();
  // RUN steps run chrooted (buildah --isolation=chroot) in the builder's own namespaces:
  // the build's user namespace, where runc could not manage cgroups, and its network
  // namespace, whose routes the launcher's jail fixed. They get buildah's default
  // capabilities less CAP_SETPCAP, CAP_NET_RAW and CAP_AUDIT_WRITE, none of which the
  // build's bounding set holds (hardening/capabilities/build.list), and all of them
  // count only inside the build's user namespace.
  // The image is committed straight into an OCI archive with no name in it (no ":name"
  // after the path), not into the storage: loading it can give it no name (the
  // gatekeeper names it, under the build's namespace), and nothing is copied twice.
  for (const std::string& a : {std::string("bud"), std::string("--isolation=chroot"), std::string("--layers=false"),
                               std::string("--cap-drop=CAP_SETPCAP"), std::string("--cap-drop=CAP_NET_RAW"),
                               std::string("--cap-drop=CAP_AUDIT_WRITE"), "--tag=oci-archive:" + archive,
                               "--file=" + containerfile, std::string("--"), *context}) {
    bud.push_back(a);
  }
  // buildah asks runc for RLIMIT_NOFILE 1048576 in RUN steps unless told otherwise;
  // raising a limit needs CAP_SYS_RESOURCE, which builds do not hold, so RUN steps get
  // this process's own hard limit.
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_max != RLIM_INFINITY) {
    bud.insert(bud.end() - 2, absl::StrCat("--ulimit=nofile=", nofile.rlim_max, ":", nofile.rlim_max));
  }
  Emit("build", absl::StrCat("buildah bud for ", o_.image));
  ToolRun built = RunTool("build", bud, nullptr);
  durations_.set_build_ms(MonotonicMs() - phase_start);
  if (built.terminated || built.wait_status != 0) return ToolFailed("build", built, oom_before, "buildah bud");
  Emit("build", "built", durations_.build_ms());

  // The image's identity, as the archive holds it.
  phase_start = MonotonicMs();
  absl::StatusOr<ArchivedImage> archived = ReadArchivedImage(archive);
  if (!archived.ok()) return Fail("export", 500, absl::StrCat("the image archive: ", archived.status().message()));
  const std::string image_id = archived->config_digest.substr(7);
  const std::string digest = archived->manifest_digest;
  durations_.set_export_ms(MonotonicMs() - phase_start);
  Emit("export", absl::StrCat("image ", digest, " in ", kImageArchiveFile), durations_.export_ms());
  durations_.set_total_ms(MonotonicMs() - started_ms_);
  BuildResultFile result;
  result.set_request_id(o_.request_id);
  result.set_image_id(image_id);
  result.set_digest(digest);
  result.add_tags(o_.image);
  *result.mutable_durations() = durations_;
  if (absl::Status s = WriteFileAtomically(dir_.get(), kResultFile, ResultJson(result)); !s.ok()) {
    std::fprintf(stderr, "builder: %s\n", s.ToString().c_str());
    return kExitUsage;
  }
  Emit("done", absl::StrCat("image ", o_.image, " ", result.digest()), durations_.total_ms());
  return kExitOk;
}

// Opens (creating it if needed) the work directory, refusing a symlink.
absl::StatusOr<UniqueFd> OpenWorkDir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return absl::ErrnoToStatus(errno, "mkdir " + path);
  UniqueFd dir(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) return absl::ErrnoToStatus(errno, "open " + path);
  return dir;
}

}  // namespace

int ReportUsageError(const BuilderOptions& options, const std::string& reason) {
  absl::StatusOr<UniqueFd> dir = OpenWorkDir(options.work_dir);
  if (!dir.ok()) return kExitUsage;
  BuildErrorFile error;
  error.set_request_id(options.request_id);
  error.set_phase("usage");
  error.set_reason(SanitizeLine(RedactUrlCredentials(reason)));
  error.set_code(400);
  (void)WriteFileAtomically(dir->get(), kErrorFile, ErrorJson(error));
  return kExitUsage;
}

int RunBuild(const BuilderOptions& options) {
  // Descriptors the launcher left open (the network helper's lifeline) stay with this
  // process and are not handed to git, buildah or a RUN step.
  syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  absl::StatusOr<UniqueFd> dir = OpenWorkDir(options.work_dir);
  if (!dir.ok()) {
    std::fprintf(stderr, "builder: %s\n", dir.status().ToString().c_str());
    return kExitUsage;
  }
  // One build per work directory: an outcome already there is never overwritten.
  for (const char* name : {kResultFile, kErrorFile}) {
    struct stat st;
    if (fstatat(dir->get(), name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      std::fprintf(stderr, "builder: %s/%s exists: this work directory has been used\n", options.work_dir.c_str(), name);
      return kExitUsage;
    }
  }
  UniqueFd events(openat(dir->get(), kEventsFile, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!events) {
    std::fprintf(stderr, "builder: open %s: %s\n", kEventsFile, strerror(errno));
    return kExitUsage;
  }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  UniqueFd signals(signalfd(-1, &mask, SFD_CLOEXEC));
  if (!signals) {
    std::fprintf(stderr, "builder: signalfd: %s\n", strerror(errno));
    return kExitUsage;
  }
  Build build(options, std::move(*dir), std::move(events), std::move(signals));
  return build.Run();
}

}  // namespace coolify::build
