// The machine's load, printed beside every benchmark's figures: on shared cores the
// absolute numbers mean little without it (ratios are taken within one run).
#ifndef COOLD_BENCH_MACHINE_LOAD_H_
#define COOLD_BENCH_MACHINE_LOAD_H_

#include <string>

namespace coolify::bench {

// "machine load (1/5/15 min): 0.52 0.61 0.70 on 2 CPUs", from /proc/loadavg.
std::string MachineLoad();

// Prints MachineLoad() to stdout when made and again when destroyed: one at the top of a
// benchmark's main() frames its figures.
class PrintLoadAround {
 public:
  PrintLoadAround();
  ~PrintLoadAround();
  PrintLoadAround(const PrintLoadAround&) = delete;
  PrintLoadAround& operator=(const PrintLoadAround&) = delete;
};

}  // namespace coolify::bench

#endif  // COOLD_BENCH_MACHINE_LOAD_H_
