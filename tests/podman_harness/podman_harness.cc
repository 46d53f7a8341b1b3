// The heavy lifting stays in the shell script so that a person can reproduce a test's
// Podman by hand with the same command; this class only locates the script in the
// runfiles, runs it with an argv (never through a shell) and reports its output.
#include "tests/podman_harness/podman_harness.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace coolify::testing {
namespace {

std::string ScriptPath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "coold",
                      "/tests/podman_harness/podman_harness.sh");
}

// Runs argv, returns stdout; stderr is folded into the error when the command fails.
absl::StatusOr<std::string> Run(const std::vector<std::string>& argv) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  // Drain both pipes together so neither can fill up and block the child.
  std::string stdout_text, stderr_text;
  int fds[2] = {out[0], err[0]};
  std::string* dst[2] = {&stdout_text, &stderr_text};
  int open_count = 2;
  while (open_count > 0) {
    fd_set set;
    FD_ZERO(&set);
    for (int fd : fds) {
      if (fd >= 0) FD_SET(fd, &set);
    }
    if (select(FD_SETSIZE, &set, nullptr, nullptr, nullptr) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i] < 0 || !FD_ISSET(fds[i], &set)) continue;
      char buf[4096];
      ssize_t n = read(fds[i], buf, sizeof(buf));
      if (n > 0) {
        dst[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i]);
        fds[i] = -1;
        --open_count;
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const std::string& a : argv) absl::StrAppend(&cmd, a, " ");
    return absl::InternalError(absl::StrCat(cmd, "failed (status ", status, "):\n", stderr_text,
                                            stdout_text));
  }
  return stdout_text;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PodmanHarness>> PodmanHarness::Start(const std::string& runtime) {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string base = absl::StrCat(tmp ? tmp : "/tmp", "/podman.XXXXXX");
  if (mkdtemp(base.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", base, ": ", strerror(errno)));
  }
  std::unique_ptr<PodmanHarness> h(new PodmanHarness(base));
  absl::StatusOr<std::string> out = h->Script({"start", runtime});
  if (!out.ok()) return out.status();  // the destructor still cleans up what was made
  // The script prints the socket path as its last line.
  std::string text = *out;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  h->socket_path_ = text.substr(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
  return h;
}

PodmanHarness::~PodmanHarness() { (void)Script({"stop"}); }

absl::Status PodmanHarness::StopService() { return Script({"stop-service"}).status(); }
absl::Status PodmanHarness::StartService() { return Script({"start-service"}).status(); }

absl::StatusOr<int> PodmanHarness::ServicePid() const {
  std::ifstream in(dir_ + "/service.pid");
  int pid = 0;
  if (!(in >> pid) || pid <= 0) return absl::FailedPreconditionError("the Podman service is not running");
  return pid;
}

absl::StatusOr<std::string> PodmanHarness::Podman(const std::vector<std::string>& args) const {
  std::vector<std::string> all = {"podman"};
  all.insert(all.end(), args.begin(), args.end());
  return Script(all);
}

absl::StatusOr<std::string> PodmanHarness::Script(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"/bin/bash", ScriptPath(), args[0], dir_};
  argv.insert(argv.end(), args.begin() + 1, args.end());
  return Run(argv);
}

}  // namespace coolify::testing
