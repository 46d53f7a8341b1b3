// Benchmark of the deny filter's per-request work on one core: a container create
// request evaluated against the baseline policy and rendered into the SpecGenerator
// JSON text the gatekeeper sends to Podman (parse of the caller's JSON excluded: the
// gatekeeper receives the typed request from the front end).
//
//   policy_bench [--requests=N] [--cpu=K]
//
// Prints requests per second for evaluate alone, render alone (to the JSON text), and
// both together; the last is the figure to compare with the target of 200,000 per
// second.
#include <sched.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/strings/numbers.h"
#include "policy/api_json.h"
#include "policy/engine.h"
#include "policy/policy_file.h"
#include "policy/render.h"
#include "bench/machine_load.h"

namespace coolify::policy {
namespace {

using Clock = std::chrono::steady_clock;

// A realistic create request: a web service with networks, volumes, a bind, ports,
// environment, labels, resources, a healthcheck and capability changes.
constexpr char kRequest[] = R"json({
  "name": "web-1",
  "image": "ghcr.io/acme/web:2.1",
  "command": ["node", "server.js"],
  "env": [{"key": "PORT", "value": "8080"}, {"key": "NODE_ENV", "value": "production"},
          {"key": "DATABASE_URL", "value": "postgres://app:secret@db.alpha:5432/app"}],
  "labels": [{"key": "traefik.enable", "value": "true"},
             {"key": "traefik.http.routers.web.rule", "value": "Host(`web.example.com`)"}],
  "user": "1000:1000",
  "workdir": "/app",
  "networks": [{"network": "coolify-default-mesh", "aliases": ["web"]},
               {"network": "default.backend"}],
  "volumes": [{"volume": "web-data", "destination": "/app/data"}],
  "binds": [{"source": "/data/coolify/volumes/web/uploads", "destination": "/app/uploads"}],
  "ports": [{"hostPort": 8080, "containerPort": 8080}],
  "restartPolicy": "RESTART_POLICY_UNLESS_STOPPED",
  "resources": {"memoryBytes": "536870912", "cpuMillis": "1500", "pidsLimit": "256"},
  "healthcheck": {"test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"],
                  "intervalSeconds": 10, "timeoutSeconds": 3, "retries": 5},
  "readOnlyRoot": true,
  "capDrop": ["NET_RAW"],
  "capAdd": ["audit_write"],
  "sysctls": [{"key": "net.ipv4.tcp_keepalive_time", "value": "600"}]
})json";

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "policy_bench: %s\n", message.c_str());
  std::exit(1);
}

template <typename Work>
double PerSecond(long requests, Work work) {
  const Clock::time_point start = Clock::now();
  for (long i = 0; i < requests; ++i) work();
  const std::chrono::duration<double> elapsed = Clock::now() - start;
  return static_cast<double>(requests) / elapsed.count();
}

}  // namespace
}  // namespace coolify::policy

int main(int argc, char** argv) {
  using namespace coolify::policy;
  coolify::bench::PrintLoadAround load;
  long requests = 500000;
  int cpu = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.rfind("--requests=", 0) == 0) {
      if (!absl::SimpleAtoi(std::string(arg.substr(11)), &requests) || requests <= 0)
        Die("bad --requests");
    } else if (arg.rfind("--cpu=", 0) == 0) {
      if (!absl::SimpleAtoi(std::string(arg.substr(6)), &cpu) || cpu < 0) Die("bad --cpu");
    } else {
      Die("usage: policy_bench [--requests=N] [--cpu=K]");
    }
  }
  // One core: the figure is per core, whatever else the machine runs.
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) Die("cannot pin to the requested CPU");

  const absl::StatusOr<coolify::v1::Policy> policy = EmbeddedPolicy(kBaselineProfile);
  if (!policy.ok()) Die(std::string(policy.status().message()));
  const absl::StatusOr<coolify::v1::ContainerSpec> spec = ParseContainerSpecJson(kRequest);
  if (!spec.ok()) Die(std::string(spec.status().message()));
  const CallerContext caller;
  {
    const absl::StatusOr<Verdict> verdict = Evaluate(*spec, *policy, caller);
    if (!verdict.ok() || !verdict->allowed()) Die("the benchmark request must be allowed");
  }

  size_t sink = 0;  // Keeps the work observable so the compiler cannot drop it.
  const auto evaluate = [&] {
    const absl::StatusOr<Verdict> verdict = Evaluate(*spec, *policy, caller);
    sink += verdict->violations.size();
  };
  const auto render = [&] {
    const absl::StatusOr<std::string> out = RenderSpecGenerator(*spec, *policy);
    sink += out->size();
  };
  const auto both = [&] {
    const absl::StatusOr<Verdict> verdict = Evaluate(*spec, *policy, caller);
    if (!verdict->allowed()) std::abort();
    const absl::StatusOr<std::string> out = RenderSpecGenerator(*spec, *policy);
    sink += out->size();
  };
  PerSecond(requests / 10, both);  // Warm-up: caches, allocator, branch predictors.
  const double evaluate_rate = PerSecond(requests, evaluate);
  const double render_rate = PerSecond(requests, render);
  const double both_rate = PerSecond(requests, both);
  std::printf("requests: %ld per measurement, pinned to CPU %d (sink %zu)\n", requests, cpu, sink);
  std::printf("evaluate only:         %10.0f requests/s\n", evaluate_rate);
  std::printf("render only:           %10.0f requests/s\n", render_rate);
  std::printf("evaluate + render:     %10.0f requests/s  (target >= 200000)\n", both_rate);
  return 0;
}
