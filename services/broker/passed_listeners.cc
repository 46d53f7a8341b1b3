#include "services/broker/passed_listeners.h"

#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "privsep/listen_fds.h"

namespace coolify::broker {

absl::StatusOr<PassedListeners> TakePassedListeners() {
  absl::StatusOr<std::vector<privsep::ListenFd>> passed = privsep::TakeListenFds();
  if (!passed.ok()) return passed.status();
  PassedListeners listeners;
  for (const privsep::ListenFd& l : *passed) {
    PassedListener* slot = nullptr;
    absl::StatusOr<std::string> address;
    if (l.name == kUnixListenerName) {
      slot = &listeners.unix_socket;
      address = privsep::CheckListeningSocket(l.fd, {AF_UNIX});
    } else if (l.name == kGrpcListenerName) {
      slot = &listeners.grpc;
      address = privsep::CheckListeningSocket(l.fd, {AF_INET, AF_INET6});
    } else {
      return absl::InvalidArgumentError(absl::StrCat("LISTEN_FDNAMES: descriptor ", l.fd, " is named \"", l.name,
                                                     "\"; the broker serves only \"", kUnixListenerName, "\" and \"",
                                                     kGrpcListenerName, "\" (FileDescriptorName=)"));
    }
    if (!address.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("LISTEN_FDS: descriptor ", l.fd, " (", l.name, "): ", address.status().message()));
    }
    *slot = PassedListener{l.fd, *address};
  }
  return listeners;
}

}  // namespace coolify::broker
