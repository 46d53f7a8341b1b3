#include "privsep/spawn.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace coolify::privsep {
namespace {

// Above any descriptor the monitor holds at spawn time, so the shuffle below never
// overwrites a source before it is moved.
constexpr int kShuffleBase = 512;

[[noreturn]] void ChildFail(const char* step) {
  // Only async-signal-safe calls between fork and exec: no strerror, so the errno is
  // written as a number.
  const int error = errno;
  char number[16];
  int at = sizeof(number);
  number[--at] = '\n';
  int value = error;
  do {
    number[--at] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && at > 0);
  const char prefix[] = "spawn: ";
  ssize_t r = write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
  r = write(STDERR_FILENO, step, strlen(step));
  r = write(STDERR_FILENO, ": errno ", 8);
  r = write(STDERR_FILENO, number + at, sizeof(number) - static_cast<size_t>(at));
  (void)r;
  _exit(127);
}

}  // namespace

absl::StatusOr<UniqueFd> OpenExecutable(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_PATH | O_CLOEXEC));
  if (!fd) {
    return absl::NotFoundError(absl::StrCat("cannot open child binary ", path, ": ", strerror(errno)));
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  }
  // A binary that anyone but root can rewrite would hand root to that user.
  if ((geteuid() == 0 && st.st_uid != 0) || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " must be owned by root and not group- or world-writable"));
  }
  return fd;
}

absl::StatusOr<ChildProcess> Spawn(int executable, const std::string& argv0,
                                   const std::vector<std::string>& args,
                                   const std::vector<int>& passed_fds) {
  if (passed_fds.size() > 16) return absl::InvalidArgumentError("too many descriptors to pass");
  // Built before fork: the child may only make async-signal-safe calls.
  std::vector<char*> argv = {const_cast<char*>(argv0.c_str())};
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  char* const envp[] = {nullptr};

  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    // The monitor blocks the signals it reads through a signalfd; a blocked mask survives
    // exec, so the child would otherwise never see SIGTERM.
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, nullptr) != 0) ChildFail("sigprocmask");
    // Ignored dispositions survive exec too.
    signal(SIGPIPE, SIG_DFL);
    // The executable's descriptor may sit on a target number too: move it out of the way
    // first (close-on-exec, so it ends with execveat).
    int exe = fcntl(executable, F_DUPFD_CLOEXEC, kShuffleBase + 64);
    if (exe < 0) ChildFail("dup executable");
    // Move every passed descriptor out of the way first, then into place: a source may
    // already sit on a target number.
    for (size_t i = 0; i < passed_fds.size(); ++i) {
      if (fcntl(passed_fds[i], F_DUPFD, kShuffleBase + static_cast<int>(i)) !=
          kShuffleBase + static_cast<int>(i)) {
        ChildFail("dup passed descriptor");
      }
    }
    for (size_t i = 0; i < passed_fds.size(); ++i) {
      if (dup2(kShuffleBase + static_cast<int>(i), kFirstPassedFd + static_cast<int>(i)) < 0) {
        ChildFail("dup2");
      }
    }
    unsigned int first_closed = kFirstPassedFd + static_cast<unsigned int>(passed_fds.size());
    if (syscall(SYS_close_range, first_closed, static_cast<unsigned int>(kShuffleBase + 63), 0) != 0 ||
        syscall(SYS_close_range, static_cast<unsigned int>(kShuffleBase + 65), ~0U, 0) != 0) {
      ChildFail("close_range");
    }
    syscall(SYS_execveat, exe, "", argv.data(), envp, AT_EMPTY_PATH);
    ChildFail("execveat");
  }

  ChildProcess child;
  child.pid = pid;
  child.pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!child.pidfd) {
    kill(pid, SIGKILL);
    return absl::InternalError(absl::StrCat("pidfd_open: ", strerror(errno)));
  }
  return child;
}

}  // namespace coolify::privsep
