#include "tests/coold_testing.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace coolify::testing {

RestAnswer RestCall(int port, const std::string& token, const std::string& method, const std::string& path,
                    const std::string& body) {
  std::string command = "curl -sS --max-time 60 -X " + method + " -H 'Authorization: Bearer " + token +
                        "' -w '\\n%{http_code}' ";
  if (!body.empty()) {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string file = std::string(tmp != nullptr ? tmp : "/tmp") + "/rest-call-body.json";
    std::ofstream(file) << body;
    command += "-H 'Content-Type: application/json' --data-binary @" + file + " ";
  }
  std::string out = Shell(command + "'http://127.0.0.1:" + std::to_string(port) + path + "'").out;
  const size_t last = out.rfind('\n');
  RestAnswer answer;
  answer.status = last == std::string::npos ? 0 : atoi(out.substr(last + 1).c_str());
  answer.body = last == std::string::npos ? out : out.substr(0, last);
  return answer;
}

CooldUnderTest::CooldUnderTest(std::vector<std::string> env, std::vector<std::string> args,
                               bool own_network_namespace, const std::string& network_namespace) {
  bool has_libexec = false;
  for (const std::string& e : env) has_libexec = has_libexec || e.rfind("COOLD_LIBEXEC_DIR=", 0) == 0;
  if (!has_libexec) env.push_back("COOLD_LIBEXEC_DIR=" + Runfile("services"));
  const int netns_fd = network_namespace.empty() ? -1 : open(network_namespace.c_str(), O_RDONLY | O_CLOEXEC);
  if (!network_namespace.empty() && netns_fd < 0) return;
  // The SQLite endpoint store, unless the test names one: a directory of its own that the
  // front end's user can reach by path (SQLite resolves the path it is given), which
  // $TEST_TMPDIR under /root is not.
  // Builds' work directories likewise, unless named: never the host's /var/lib/coolify.
  bool has_db = false, has_builds = false;
  for (const std::string& e : env) {
    has_db = has_db || e.rfind("COOLD_ENDPOINT_DB=", 0) == 0;
    has_builds = has_builds || e.rfind("COOLD_BUILDS_DIR=", 0) == 0;
  }
  if (!has_db || !has_builds) {
    char dir[] = "/tmp/coold-state.XXXXXX";
    if (mkdtemp(dir) != nullptr && chmod(dir, 0755) == 0) {
      owned_state_dir_ = dir;
      if (!has_db) env.push_back("COOLD_ENDPOINT_DB=" + owned_state_dir_ + "/endpoints.db");
      if (!has_builds) env.push_back("COOLD_BUILDS_DIR=" + owned_state_dir_ + "/builds");
    }
  }
  std::string binary = Runfile("services/monitor/coold");
  args.insert(args.begin(), binary);
  // Built before fork: the child only execs.
  std::vector<char*> envp, argv;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    if (own_network_namespace && unshare(CLONE_NEWNET) != 0) _exit(126);
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) _exit(126);
    dup2(pipefd[1], STDERR_FILENO);
    execve(binary.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  close(pipefd[1]);
  if (netns_fd >= 0) close(netns_fd);
  stderr_fd_ = pipefd[0];
}

CooldUnderTest::~CooldUnderTest() {
  if (pid_ > 0 && !exited_) Kill();
  if (stderr_fd_ >= 0) close(stderr_fd_);
  if (!owned_state_dir_.empty()) (void)Shell("rm -rf '" + owned_state_dir_ + "'");
}

bool CooldUnderTest::WaitForLog(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (log_.find(needle) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p = {stderr_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = read(stderr_fd_, buf, sizeof(buf));
    if (n <= 0) return log_.find(needle) != std::string::npos;
    log_.append(buf, static_cast<size_t>(n));
  }
  return true;
}

int CooldUnderTest::WaitExit(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      WaitForLog("\x01", std::chrono::milliseconds(50));  // collect what is left of the log
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

int CooldUnderTest::Signal(int signal) {
  if (pid_ <= 0 || exited_) return -1;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  exited_ = true;
  return status;
}

int CooldUnderTest::Stop() { return Signal(SIGTERM); }
int CooldUnderTest::Kill() { return Signal(SIGKILL); }

}  // namespace coolify::testing
