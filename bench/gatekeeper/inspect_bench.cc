// End-to-end latency of a container inspect through the real coold, against baselines
// that go straight to Podman. In one run it starts an isolated Podman
// (tests/podman_harness), creates and starts one busybox container with Podman's CLI,
// starts the real coold (plain HTTP API on 127.0.0.1 in a private network namespace, as
// tests/podman_e2e_test.cc does) and times N inspects each way:
//
//   coold   GET /api/v1/containers/<name> over one keep-alive HTTP connection to coold
//           (front -> gatekeeper -> Podman and back);
//   curl    `curl --unix-socket <podman.sock> http://d/v4.0.0/libpod/containers/<name>/json`
//           as a process per request (the first baseline);
//   direct  the same GET from this process with the gatekeeper's own LibpodClient as the
//           gatekeeper sets it up: the connection a GET leaves open serves the next, as
//           a long-lived libpod API user (podman-remote's Go client) sends it. Podman's
//           fastest path, and the baseline coold is held to;
//   new connection  the same client with keep_alive off: a Unix connection per request.
//
// The four run in alternating batches, the order rotating every round, so that noise
// on the machine hits all of them alike. Prints p50/p99 for each, the ratios coold/curl,
// coold/direct and coold/new connection (targets: coold <= 1.5x curl, p50 <= 1.3x
// direct), and per request what the scheduler counted: Podman's CPU time during each
// way's batches, and for coold's front end and gatekeeper during coold's, their time on a
// CPU and their time runnable but waiting for one.
//
//   bazel build //bench/gatekeeper:inspect_bench
//   sudo bazel-bin/bench/gatekeeper/inspect_bench [--requests=N] [--batch=K]
//
// Must run as root (Podman, coold's privilege separation, unshare).
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "bench/machine_load.h"
#include "boost/beast/http.hpp"
#include "policy/namespace_rules.h"
#include "services/podman/libpod_client.h"
#include "services/podman/libpod_path.h"
#include "tests/podman_harness/podman_harness.h"

extern char** environ;

namespace coolify::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

constexpr char kToken[] = "inspect-bench-token-0123456789";
constexpr int kPort = 18450;
constexpr char kContainer[] = "bench-inspect";

// What has to be undone on any exit path.
testing::PodmanHarness* g_harness = nullptr;
pid_t g_coold = -1;
std::string g_dir;

void Cleanup() {
  if (g_coold > 0) {
    kill(g_coold, SIGTERM);
    waitpid(g_coold, nullptr, 0);
    g_coold = -1;
  }
  delete g_harness;  // removes every container, stops Podman, deletes its directory
  g_harness = nullptr;
  if (!g_dir.empty()) {
    std::string rm = "rm -rf '" + g_dir + "'";
    if (system(rm.c_str()) != 0) std::fprintf(stderr, "inspect_bench: could not remove %s\n", g_dir.c_str());
    g_dir.clear();
  }
}

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "inspect_bench: %s\n", message.c_str());
  Cleanup();
  std::exit(1);
}

// The runfiles tree of this binary; the harness and coold are found through TEST_SRCDIR
// as in a test.
std::string RunfilesDir() {
  if (const char* srcdir = getenv("TEST_SRCDIR"); srcdir != nullptr && *srcdir != '\0') return srcdir;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) Die("cannot read /proc/self/exe");
  exe[n] = '\0';
  std::string dir = std::string(exe) + ".runfiles";
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) Die("no runfiles tree at " + dir);
  setenv("TEST_SRCDIR", dir.c_str(), 1);
  setenv("TEST_WORKSPACE", "coold", 1);
  return dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A minimal blocking HTTP/1.1 client holding one keep-alive TCP connection to coold.
class KeepAliveClient {
 public:
  KeepAliveClient(asio::ip::tcp::endpoint endpoint, std::string authorization)
      : endpoint_(std::move(endpoint)), authorization_(std::move(authorization)), socket_(io_) {}

  void Connect() {
    socket_ = asio::ip::tcp::socket(io_);
    socket_.connect(endpoint_);
    socket_.set_option(asio::ip::tcp::no_delay(true));
    buffer_.clear();
    ++connects_;
  }

  // Returns the body's size; dies on anything but a 200. Reconnects (and counts it) only
  // when the server closes the connection, which must not happen.
  size_t Get(const std::string& target) {
    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::host, "127.0.0.1");
    request.set(http::field::authorization, authorization_);
    request.keep_alive(true);
    http::write(socket_, request);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(socket_, buffer_, parser);
    const http::response<http::string_body>& response = parser.get();
    if (response.result_int() != 200) {
      Die("answered " + std::to_string(response.result_int()) + ": " + response.body());
    }
    size_t size = response.body().size();
    if (!response.keep_alive()) Connect();
    return size;
  }

  int connects() const { return connects_; }

 private:
  asio::io_context io_;
  asio::ip::tcp::endpoint endpoint_;
  std::string authorization_;
  asio::ip::tcp::socket socket_;
  beast::flat_buffer buffer_;
  int connects_ = 0;
};

// curl as a process per request; stdout to /dev/null, -f so a non-2xx fails.
void CurlOnce(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) Die("posix_spawn curl failed");
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die("curl failed, status " + std::to_string(status));
  }
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[rank == 0 ? 0 : rank - 1];
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// What the scheduler counted for a process, all its threads, in ns (the first two fields
// of each thread's /proc/<pid>/task/<tid>/schedstat): time on a CPU, and time runnable
// but waiting for one. A thread that ended takes its figures with it; the processes
// measured keep theirs for the run.
struct SchedNs {
  uint64_t on_cpu = 0;
  uint64_t waiting = 0;
  SchedNs operator-(const SchedNs& o) const { return {on_cpu - o.on_cpu, waiting - o.waiting}; }
  SchedNs& operator+=(const SchedNs& o) {
    on_cpu += o.on_cpu;
    waiting += o.waiting;
    return *this;
  }
};

SchedNs Sched(int pid) {
  SchedNs total;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(tasks.c_str()), closedir);
  if (!dir) Die("cannot list " + tasks);
  while (dirent* entry = readdir(dir.get())) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream in(tasks + "/" + entry->d_name + "/schedstat");
    uint64_t on_cpu = 0, waiting = 0;
    if (in >> on_cpu >> waiting) total += SchedNs{on_cpu, waiting};
  }
  return total;
}

// The child of `parent` whose command name is `comm` (coold's front end and gatekeeper).
int ChildNamed(int parent, const std::string& comm) {
  std::ifstream children("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) + "/children");
  for (int pid; children >> pid;) {
    std::string name = ReadFile("/proc/" + std::to_string(pid) + "/comm");
    while (!name.empty() && name.back() == '\n') name.pop_back();
    if (name == comm) return pid;
  }
  Die("coold has no child named " + comm);
}

}  // namespace
}  // namespace coolify::bench

int main(int argc, char** argv) {
  using namespace coolify::bench;
  PrintLoadAround load;
  long requests = 500;
  long batch = 10;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.rfind("--requests=", 0) == 0) {
      if (!absl::SimpleAtoi(std::string(arg.substr(11)), &requests) || requests <= 0) Die("bad --requests");
    } else if (arg.rfind("--batch=", 0) == 0) {
      if (!absl::SimpleAtoi(std::string(arg.substr(8)), &batch) || batch <= 0) Die("bad --batch");
    } else {
      Die("usage: inspect_bench [--requests=N] [--batch=K]");
    }
  }
  if (geteuid() != 0) Die("must run as root");
  const std::string runfiles = RunfilesDir();
  const std::string root = runfiles + "/coold/";

  // 1. The isolated Podman and one running container, made with Podman's own CLI.
  std::fprintf(stderr, "inspect_bench: starting the isolated Podman...\n");
  {
    auto harness = coolify::testing::PodmanHarness::Start();
    if (!harness.ok()) Die("podman harness: " + std::string(harness.status().message()));
    g_harness = harness->release();
  }
  const std::string& podman_socket = g_harness->socket_path();
  // --network none: the container's network plumbing is irrelevant to an inspect, and
  // this way the host's network is not touched.
  // With the labels coold's gatekeeper writes on what it creates: coold acts only on its
  // own containers, and the bench measures an inspect, not a refusal.
  const std::string owner =
      std::string(coolify::policy::kOwnerLabel) + "=" + std::string(coolify::policy::kOwnerValue);
  const std::string in_namespace = std::string(coolify::policy::kNamespaceLabel) + "=default";
  if (auto out = g_harness->Podman({"run", "-d", "--name", kContainer, "--network", "none", "--label", owner, "--label",
                                    in_namespace, coolify::testing::PodmanHarness::kBusyboxImage, "sleep", "1000"});
      !out.ok()) {
    Die("podman run: " + std::string(out.status().message()));
  }
  if (auto state = g_harness->Podman({"inspect", kContainer, "--format", "{{.State.Status}}"});
      !state.ok() || state->find("running") == std::string::npos) {
    Die("the container is not running");
  }
  // The network the default namespace maps to, as on a provisioned host.
  if (auto out = g_harness->Podman({"network", "create", "coolify-default-mesh"}); !out.ok()) {
    Die("podman network create: " + std::string(out.status().message()));
  }

  // 2. The real coold in a private network namespace (Podman keeps its own).
  if (unshare(CLONE_NEWNET) != 0) Die("unshare(CLONE_NEWNET) failed");
  if (system("ip link set lo up") != 0) Die("ip link set lo up failed");
  char dir_template[] = "/tmp/inspect-bench.XXXXXX";
  if (mkdtemp(dir_template) == nullptr) Die("mkdtemp failed");
  g_dir = dir_template;
  chmod(g_dir.c_str(), 0755);
  if (system(("mkdir -p " + g_dir + "/etc").c_str()) != 0) Die("mkdir failed");
  std::ofstream(g_dir + "/token") << kToken;
  chmod((g_dir + "/token").c_str(), 0600);
  if (system(("sed 's/^default_runtime: \"crun\"/default_runtime: \"runc\"/' " + root +
              "policy/baseline.textproto > " + g_dir + "/policy.textproto && chmod 0644 " + g_dir +
              "/policy.textproto")
                 .c_str()) != 0) {
    Die("cannot write the policy file");
  }
  const std::string log_path = g_dir + "/coold.log";
  g_coold = fork();
  if (g_coold < 0) Die("fork failed");
  if (g_coold == 0) {
    // A file, not a pipe: nobody reads coold's log during the measurement, and a full pipe
    // would stall it.
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log >= 0) {
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
    }
    std::vector<std::string> env = {
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        "COOLD_LIBEXEC_DIR=" + root + "services",
        "COOLD_HOST_MGMT_IP=127.0.0.1",
        "COOLD_API_BIND=127.0.0.1:" + std::to_string(kPort),
        "COOLD_API_TOKEN_FILE=" + g_dir + "/token",
        "COOLD_RULES_PATH=" + g_dir + "/etc/allow.rules",
        "COOLD_BRIDGE_RULES_PATH=" + g_dir + "/etc/allow.nft",
        "COOLD_PODMAN_SOCKET=" + podman_socket,
        "COOLD_POLICY_FILE=" + g_dir + "/policy.textproto",
    };
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string binary = root + "services/monitor/coold";
    char* child_argv[] = {binary.data(), nullptr};
    execve(binary.c_str(), child_argv, envp.data());
    _exit(127);
  }
  {
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(20);
    while (ReadFile(log_path).find("REST API on") == std::string::npos) {
      if (Clock::now() > deadline || waitpid(g_coold, nullptr, WNOHANG) == g_coold) {
        if (waitpid(g_coold, nullptr, WNOHANG) == g_coold) g_coold = -1;
        Die("coold did not start its REST API:\n" + ReadFile(log_path));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // 3. The three ways, alternating.
  const std::string coold_target = std::string("/api/v1/containers/") + kContainer;
  const std::vector<std::string> curl_argv = {
      "/usr/bin/curl", "-sf", "-o", "/dev/null", "--unix-socket", podman_socket,
      std::string("http://d/v4.0.0/libpod/containers/") + kContainer + "/json"};
  // As the gatekeeper sets its client up (services/podman/gatekeeper.cc): only the
  // socket and the timeout differ from the defaults.
  coolify::podman::ClientOptions options;
  options.socket_path = podman_socket;
  const coolify::podman::LibpodClient direct(options);
  coolify::podman::ClientOptions new_connection_options = options;
  new_connection_options.keep_alive = false;
  const coolify::podman::LibpodClient new_connection(new_connection_options);
  const absl::StatusOr<std::string> direct_target = coolify::podman::BuildTarget(
      {{coolify::podman::SegmentKind::kLiteral, "containers"},
       {coolify::podman::SegmentKind::kName, kContainer},
       {coolify::podman::SegmentKind::kLiteral, "json"}});
  if (!direct_target.ok()) Die(std::string(direct_target.status().message()));

  KeepAliveClient coold(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), kPort),
                                       std::string("Bearer ") + kToken);
  size_t coold_bytes = 0, direct_bytes = 0;
  const auto via_coold = [&] { coold_bytes = coold.Get(coold_target); };
  const auto via_curl = [&] { CurlOnce(curl_argv); };
  const auto get = [&](const coolify::podman::LibpodClient& client) {
    absl::StatusOr<coolify::podman::HttpResult> r = client.Call(coolify::podman::Method::kGet, *direct_target);
    if (!r.ok()) Die("direct: " + std::string(r.status().message()));
    if (r->status != 200) Die("direct: Podman answered " + std::to_string(r->status));
    direct_bytes = r->body.size();
  };
  const auto via_direct = [&] { get(direct); };
  const auto via_new_connection = [&] { get(new_connection); };
  const int front_pid = ChildNamed(g_coold, "coold-front");
  const int gatekeeper_pid = ChildNamed(g_coold, "coold-podman");
  const absl::StatusOr<int> podman_pid = g_harness->ServicePid();
  if (!podman_pid.ok()) Die(std::string(podman_pid.status().message()));
  try {
    coold.Connect();
    // Warm-up: coold's children, Podman's caches, the page cache for curl.
    for (int i = 0; i < 20; ++i) {
      via_coold();
      via_curl();
      via_direct();
      via_new_connection();
    }
    constexpr int kWays = 4;
    std::vector<double> samples[kWays];
    // Scheduler time per way: Podman's during every way's batches, the front end's and
    // the gatekeeper's during coold's.
    SchedNs podman[kWays], front, gatekeeper;
    const std::function<void()> ways[kWays] = {via_coold, via_curl, via_direct, via_new_connection};
    for (long round = 0; static_cast<long>(samples[0].size()) < requests; ++round) {
      const long n = std::min(batch, requests - static_cast<long>(samples[0].size()));
      for (int k = 0; k < kWays; ++k) {
        const int way = static_cast<int>((round + k) % kWays);
        const SchedNs podman_before = Sched(*podman_pid);
        const SchedNs front_before = way == 0 ? Sched(front_pid) : SchedNs{};
        const SchedNs gatekeeper_before = way == 0 ? Sched(gatekeeper_pid) : SchedNs{};
        for (long i = 0; i < n; ++i) {
          const Clock::time_point start = Clock::now();
          ways[way]();
          samples[way].push_back(Ms(Clock::now() - start));
        }
        podman[way] += Sched(*podman_pid) - podman_before;
        if (way == 0) {
          front += Sched(front_pid) - front_before;
          gatekeeper += Sched(gatekeeper_pid) - gatekeeper_before;
        }
      }
    }
    const char* names[kWays] = {"coold  (HTTP keep-alive -> front -> gatekeeper -> podman)",
                                "curl   (process per request, --unix-socket podman)",
                                "direct (LibpodClient as the gatekeeper's: kept connection)",
                                "new connection (LibpodClient, a connection per request)"};
    double p50[kWays], p99[kWays];
    const double per_request_us = 1e-3 / static_cast<double>(requests);
    std::printf("container inspect, %ld requests each, batches of %ld, alternating\n", requests, batch);
    for (int w = 0; w < kWays; ++w) {
      p50[w] = Percentile(samples[w], 0.50);
      p99[w] = Percentile(samples[w], 0.99);
      std::printf("  %-60s p50 %7.3f ms  p99 %7.3f ms  podman CPU %5.0f us/request\n", names[w], p50[w], p99[w],
                  static_cast<double>(podman[w].on_cpu) * per_request_us);
    }
    std::printf("  coold/curl    p50 %.2fx  p99 %.2fx   (target <= 1.5x)\n", p50[0] / p50[1], p99[0] / p99[1]);
    std::printf("  coold/direct  p50 %.2fx  p99 %.2fx   (target p50 <= 1.3x)\n", p50[0] / p50[2], p99[0] / p99[2]);
    std::printf("  coold/new connection p50 %.2fx  p99 %.2fx\n", p50[0] / p50[3], p99[0] / p99[3]);
    std::printf("  coold per request: front end %.0f us on a CPU, %.0f us waiting for one; gatekeeper %.0f us, %.0f us\n",
                static_cast<double>(front.on_cpu) * per_request_us, static_cast<double>(front.waiting) * per_request_us,
                static_cast<double>(gatekeeper.on_cpu) * per_request_us,
                static_cast<double>(gatekeeper.waiting) * per_request_us);
    std::printf("  body bytes: coold %zu, podman %zu; connections opened to coold: %d\n", coold_bytes, direct_bytes,
                coold.connects());
  } catch (const std::exception& e) {
    Die(std::string("HTTP to coold: ") + e.what() + "\n" + ReadFile(log_path));
  }

  // 4. Clean up: coold with SIGTERM, then the harness.
  Cleanup();
  return 0;
}
