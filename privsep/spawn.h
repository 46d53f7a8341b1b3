// Starting a sandboxed child: fork, lay out its descriptors, exec its binary.
//
// The child binary enters its own sandbox as the first thing in main() (EnterSandbox),
// so the spawn side only guarantees a clean start: exactly the passed descriptors, in
// order from fd 3, no others; an empty environment; default signal dispositions and an
// empty signal mask.
#ifndef COOLD_PRIVSEP_SPAWN_H_
#define COOLD_PRIVSEP_SPAWN_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "privsep/unique_fd.h"

namespace coolify::privsep {

// The descriptor number the first passed descriptor has in the child.
inline constexpr int kFirstPassedFd = 3;

struct ChildProcess {
  pid_t pid = -1;
  UniqueFd pidfd;  // readable when the child has exited
};

// Opens a child binary once, at start, so the file executed later is the one checked now
// even if the path is replaced in between.
absl::StatusOr<UniqueFd> OpenExecutable(const std::string& path);

// Forks and executes `executable` (from OpenExecutable) with argv {argv0, args...} and the
// given descriptors as fd 3, 4, ... The caller must be single-threaded.
absl::StatusOr<ChildProcess> Spawn(int executable, const std::string& argv0,
                                   const std::vector<std::string>& args,
                                   const std::vector<int>& passed_fds);

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_SPAWN_H_
