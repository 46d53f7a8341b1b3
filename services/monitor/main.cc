// coold: the per-host agent. This binary is the monitor; it starts and supervises the four
// sandboxed children (see docs/architecture.md).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "privsep/log.h"
#include "services/monitor/config.h"
#include "services/monitor/monitor.h"

namespace {

constexpr char kUsage[] =
    "usage: coold [--once]\n"
    "  --once   exit after the first health round (status 0 when every child is confined\n"
    "           as its policy says)\n"
    "Configuration comes from COOLD_* environment variables; see README.md.\n";

}  // namespace

int main(int argc, char** argv) {
  coolify::SetLogRole("monitor");
  coolify::monitor::MonitorOptions options;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--once") == 0) {
      options.once = true;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(kUsage, stdout);
      return 0;
    } else {
      fprintf(stderr, "coold: unknown argument %s\n%s", argv[i], kUsage);
      return 2;
    }
  }
  if (geteuid() != 0) {
    fputs("coold: must start as root: it opens privileged resources and drops each child to its role\n",
          stderr);
    return 2;
  }
  auto config = coolify::monitor::LoadConfig([](const char* name) { return getenv(name); });
  if (!config.ok()) {
    fprintf(stderr, "coold: configuration: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  options.config = *std::move(config);
  options.libexec_dir = coolify::monitor::DefaultLibexecDir();
  return coolify::monitor::RunMonitor(options);
}
