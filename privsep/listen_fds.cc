#include "privsep/listen_fds.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <stddef.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace coolify::privsep {
namespace {

constexpr int kMaxListenFds = 1024;

// A decimal number, digits only (no sign, no space: absl::SimpleAtoi takes both).
bool ParseDecimal(const char* text, int64_t* value) {
  const absl::string_view s(text);
  if (s.empty() || s.size() > 18 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  return absl::SimpleAtoi(s, value);
}

std::string FamilyName(int family) {
  switch (family) {
    case AF_UNIX:
      return "AF_UNIX";
    case AF_INET:
      return "AF_INET";
    case AF_INET6:
      return "AF_INET6";
    default:
      return absl::StrCat("family ", family);
  }
}

}  // namespace

absl::StatusOr<std::vector<ListenFd>> ParseListenFds(const char* listen_pid, const char* listen_fds,
                                                     const char* listen_fdnames, pid_t self) {
  std::vector<ListenFd> passed;
  if (listen_pid == nullptr && listen_fds == nullptr && listen_fdnames == nullptr) return passed;
  if (listen_pid == nullptr || listen_fds == nullptr) {
    std::vector<std::string> set;
    if (listen_pid != nullptr) set.push_back("LISTEN_PID");
    if (listen_fds != nullptr) set.push_back("LISTEN_FDS");
    if (listen_fdnames != nullptr) set.push_back("LISTEN_FDNAMES");
    return absl::InvalidArgumentError(absl::StrCat(listen_pid == nullptr ? "LISTEN_PID" : "LISTEN_FDS", ": unset while ",
                                                   absl::StrJoin(set, " and "), " set; systemd sets both"));
  }
  int64_t pid = 0, count = 0;
  if (!ParseDecimal(listen_pid, &pid) || pid <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("LISTEN_PID=\"", listen_pid, "\": not a process id"));
  }
  if (pid != self) {
    return absl::InvalidArgumentError(absl::StrCat("LISTEN_PID=", pid, ": the passed sockets are for that process, not this one (",
                                                   self, ")"));
  }
  if (!ParseDecimal(listen_fds, &count) || count > kMaxListenFds) {
    return absl::InvalidArgumentError(
        absl::StrCat("LISTEN_FDS=\"", listen_fds, "\": expected a number of descriptors, 0..", kMaxListenFds));
  }
  std::vector<std::string> names;
  if (listen_fdnames == nullptr) {
    names.assign(static_cast<size_t>(count), "unknown");  // systemd's name for one not given
  } else if (count > 0) {
    names = absl::StrSplit(listen_fdnames, ':');
  }
  if (names.size() != static_cast<size_t>(count)) {
    return absl::InvalidArgumentError(absl::StrCat("LISTEN_FDNAMES=\"", listen_fdnames == nullptr ? "" : listen_fdnames,
                                                   "\": ", names.size(), " names for LISTEN_FDS=", count));
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("LISTEN_FDNAMES=\"", listen_fdnames, "\": descriptor ",
                                                     kListenFdsStart + i, " has an empty name"));
    }
    // Two descriptors of one name would leave which one serves to chance. "unknown" is
    // what systemd calls every unnamed one.
    if (listen_fdnames != nullptr && !seen.insert(names[i]).second) {
      return absl::InvalidArgumentError(absl::StrCat("LISTEN_FDNAMES=\"", listen_fdnames, "\": ", names[i], " twice"));
    }
    passed.push_back({names[i], kListenFdsStart + static_cast<int>(i)});
  }
  return passed;
}

absl::StatusOr<std::vector<ListenFd>> TakeListenFds() {
  // Copied before unsetenv: getenv's pointers are into the environment it rewrites.
  auto get = [](const char* name) -> std::optional<std::string> {
    const char* value = getenv(name);
    return value == nullptr ? std::nullopt : std::optional<std::string>(value);
  };
  const std::optional<std::string> pid = get("LISTEN_PID"), fds = get("LISTEN_FDS"), names = get("LISTEN_FDNAMES");
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  absl::StatusOr<std::vector<ListenFd>> passed =
      ParseListenFds(pid ? pid->c_str() : nullptr, fds ? fds->c_str() : nullptr, names ? names->c_str() : nullptr, getpid());
  if (!passed.ok()) return passed.status();
  for (const ListenFd& l : *passed) {
    const int flags = fcntl(l.fd, F_GETFD);
    if (flags < 0) {
      return absl::InvalidArgumentError(absl::StrCat("LISTEN_FDS: descriptor ", l.fd, " (", l.name,
                                                     ") is not open: ", std::strerror(errno)));
    }
    if (fcntl(l.fd, F_SETFD, flags | FD_CLOEXEC) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("LISTEN_FDS: descriptor ", l.fd, ": F_SETFD"));
    }
  }
  return passed;
}

absl::StatusOr<std::string> CheckListeningSocket(int fd, std::initializer_list<int> families) {
  std::vector<std::string> wanted;
  for (int f : families) wanted.push_back(FamilyName(f));
  const std::string want = absl::StrJoin(wanted, " or ");
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) != 0) {
    if (errno == ENOTSOCK) return absl::InvalidArgumentError("not a socket");
    return absl::ErrnoToStatus(errno, "getsockopt SO_TYPE");
  }
  if (value != SOCK_STREAM) return absl::InvalidArgumentError(absl::StrCat("socket type ", value, ", not SOCK_STREAM"));
  int domain = 0;
  len = sizeof(domain);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return absl::ErrnoToStatus(errno, "getsockopt SO_DOMAIN");
  if (std::find(families.begin(), families.end(), domain) == families.end()) {
    return absl::InvalidArgumentError(absl::StrCat("a socket of ", FamilyName(domain), ", not ", want));
  }
  len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) != 0) {
    return absl::ErrnoToStatus(errno, "getsockopt SO_ACCEPTCONN");
  }
  if (value != 1) return absl::InvalidArgumentError(absl::StrCat("a ", FamilyName(domain), " socket that is not listening"));
  sockaddr_storage addr{};
  len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return absl::ErrnoToStatus(errno, "getsockname");
  if (addr.ss_family != domain) {
    return absl::InvalidArgumentError(absl::StrCat("bound to an address of ", FamilyName(addr.ss_family), ", not ", want));
  }
  char text[INET6_ADDRSTRLEN] = {};
  switch (addr.ss_family) {
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&addr);
      const size_t path_len = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
      if (path_len == 0) return std::string("(unnamed)");
      if (un->sun_path[0] == '\0') return absl::StrCat("@", std::string(un->sun_path + 1, path_len - 1));  // abstract
      return std::string(un->sun_path, strnlen(un->sun_path, path_len));
    }
    case AF_INET: {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
      return absl::StrCat(text, ":", ntohs(in->sin_port));
    }
    case AF_INET6: {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
      return absl::StrCat("[", text, "]:", ntohs(in6->sin6_port));
    }
    default:
      return FamilyName(addr.ss_family);
  }
}

}  // namespace coolify::privsep
