// builder: the one-shot OCI builder (builder.h). coold's build launcher starts one per
// build inside the build's sandbox; it can be run by hand the same way.
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "services/builder/builder.h"
#include "services/builder/options.h"

int main(int argc, char** argv) {
  using namespace coolify::build;
  // Blocked before anything else, so a SIGTERM at any moment is taken by the build's
  // signalfd and ends in error.json, never in a half-written directory.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<BuilderOptions> options = ParseBuilderArgs(args);
  if (!options.ok()) {
    std::fprintf(stderr, "builder: %s\n%s", std::string(options.status().message()).c_str(), BuilderUsage());
    return kExitUsage;
  }
  if (absl::Status s = ValidateBuilderOptions(*options); !s.ok()) {
    std::fprintf(stderr, "builder: %s\n", std::string(s.message()).c_str());
    if (CheckWorkDir(*options).ok()) return ReportUsageError(*options, std::string(s.message()));
    std::fputs(BuilderUsage(), stderr);
    return kExitUsage;
  }
  return RunBuild(*options);
}
