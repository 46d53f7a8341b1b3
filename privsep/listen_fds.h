// Sockets passed by systemd's socket activation, read the way sd_listen_fds(3) reads
// them: LISTEN_PID names the process they are for, LISTEN_FDS how many there are, from
// descriptor 3 on, and LISTEN_FDNAMES their FileDescriptorName= values, ':'-separated.
// Each is then checked to be what the caller expects (a listening stream socket of one
// of the given families) before anything uses it.
#ifndef COOLD_PRIVSEP_LISTEN_FDS_H_
#define COOLD_PRIVSEP_LISTEN_FDS_H_

#include <sys/types.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace coolify::privsep {

inline constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START

struct ListenFd {
  std::string name;  // its FileDescriptorName=; "unknown" when LISTEN_FDNAMES is unset
  int fd = -1;
};

// The descriptors the three values describe for process `self`. All three null: none
// (not socket-activated). Refused, with the variable and the reason: LISTEN_PID or
// LISTEN_FDS set without the other, either not a decimal number, LISTEN_PID not `self`
// (the descriptors were meant for another process, e.g. a parent that exec'd a child
// without clearing its environment), LISTEN_FDS above 1024, a name count that differs
// from LISTEN_FDS, an empty name, or a name twice. Opens and checks no descriptor.
absl::StatusOr<std::vector<ListenFd>> ParseListenFds(const char* listen_pid, const char* listen_fds,
                                                     const char* listen_fdnames, pid_t self);

// ParseListenFds of this process's environment and getpid(); then each descriptor must
// be open, and is made close-on-exec as sd_listen_fds does. The three variables are
// unset whatever the outcome, so nothing this process starts later sees them.
absl::StatusOr<std::vector<ListenFd>> TakeListenFds();

// What a passed descriptor must be to serve as a listener: a socket (not a file or a
// pipe), of SOCK_STREAM, listening (SO_ACCEPTCONN), of one of `families` by SO_DOMAIN
// and by getsockname. The local address, printable: the path of an AF_UNIX socket,
// "IP:PORT" or "[IP6]:PORT"; the error names what differs.
absl::StatusOr<std::string> CheckListeningSocket(int fd, std::initializer_list<int> families);

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_LISTEN_FDS_H_
