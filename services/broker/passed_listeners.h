// The listeners systemd passes the broker when it is socket-activated (broker.socket,
// broker-grpc.socket), found by their FileDescriptorName=. A listener not passed is bound
// by the broker itself from its BROKER_* variable, as when it is started by hand.
#ifndef COOLD_SERVICES_BROKER_PASSED_LISTENERS_H_
#define COOLD_SERVICES_BROKER_PASSED_LISTENERS_H_

#include <string>

#include "absl/status/statusor.h"

namespace coolify::broker {

// FileDescriptorName= of Laravel's Unix socket (in place of BROKER_UNIX_SOCKET and
// BROKER_UNIX_SOCKET_GROUP) and of the hosts' gRPC port (in place of BROKER_GRPC_BIND).
inline constexpr char kUnixListenerName[] = "unix";
inline constexpr char kGrpcListenerName[] = "grpc";

struct PassedListener {
  int fd = -1;          // -1: not passed
  std::string address;  // its local address, for the log: a path or IP:PORT
  bool passed() const { return fd >= 0; }
};

struct PassedListeners {
  PassedListener unix_socket;  // AF_UNIX, SOCK_STREAM, listening
  PassedListener grpc;         // AF_INET or AF_INET6, SOCK_STREAM, listening
};

// Takes LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES (privsep/listen_fds.h, which unsets them)
// and checks each passed descriptor is the listener its name says. Refused, naming the
// descriptor and the reason: anything privsep::TakeListenFds refuses, a listener of the
// wrong family or type or not listening, and a name the broker does not know (a socket
// unit it would otherwise leave unserved).
absl::StatusOr<PassedListeners> TakePassedListeners();

}  // namespace coolify::broker

#endif  // COOLD_SERVICES_BROKER_PASSED_LISTENERS_H_
