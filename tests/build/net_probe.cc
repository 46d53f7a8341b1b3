// net_probe: what a RUN step of a hostile repository tries against the network, as a
// static program that runs in any image:
//
//   net_probe tcp ADDRESS PORT     connect over TCP
//   net_probe unix @NAME           connect to an abstract Unix socket
//
// Prints "CONNECTED <target>" and exits 0 when the connection is made, else
// "REFUSED <target>: <reason>" and exits 1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: net_probe tcp ADDRESS PORT | net_probe unix @NAME\n");
    return 2;
  }
  const bool tcp = std::strcmp(argv[1], "tcp") == 0;
  char target[256];
  std::snprintf(target, sizeof(target), "%s %s%s%s", argv[1], argv[2], tcp && argc > 3 ? ":" : "",
                tcp && argc > 3 ? argv[3] : "");
  int fd = socket(tcp ? AF_INET : AF_UNIX, SOCK_STREAM, 0);
  int rc = -1;
  if (fd >= 0 && tcp && argc > 3) {
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[3])));
    if (inet_pton(AF_INET, argv[2], &addr.sin_addr) == 1) {
      timeval limit = {5, 0};
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
      rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    } else {
      errno = EINVAL;
    }
  } else if (fd >= 0 && !tcp && argv[2][0] == '@') {
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    const size_t n = std::strlen(argv[2] + 1);
    std::memcpy(addr.sun_path + 1, argv[2] + 1, n);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), static_cast<socklen_t>(sizeof(sa_family_t) + 1 + n));
  }
  if (rc == 0) {
    std::printf("CONNECTED %s\n", target);
    return 0;
  }
  std::printf("REFUSED %s: %s\n", target, std::strerror(errno));
  return 1;
}
