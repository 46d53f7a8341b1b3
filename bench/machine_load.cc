#include "bench/machine_load.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace coolify::bench {

std::string MachineLoad() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return "machine load (1/5/15 min): " + one + " " + five + " " + fifteen + " on " +
         std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs";
}

PrintLoadAround::PrintLoadAround() { std::printf("before the run: %s\n", MachineLoad().c_str()); }

PrintLoadAround::~PrintLoadAround() {
  std::printf("after the run: %s\n", MachineLoad().c_str());
  std::fflush(stdout);
}

}  // namespace coolify::bench
