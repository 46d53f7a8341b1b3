// An isolated Podman API service for tests, driven by podman_harness.sh (see its header
// for the isolation it sets up). Each harness owns a fresh directory under $TEST_TMPDIR,
// its own storage and a localhost/busybox:latest image built from Debian's busybox-static.
//
// Start() fails with the script's output when Podman cannot start: a test that needs
// Podman must fail, not skip, on a machine where it does not work. The destructor removes
// every container, stops the service, unmounts and deletes the directory.
#ifndef COOLD_TESTS_PODMAN_HARNESS_PODMAN_HARNESS_H_
#define COOLD_TESTS_PODMAN_HARNESS_PODMAN_HARNESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace coolify::testing {

class PodmanHarness {
 public:
  static constexpr char kBusyboxImage[] = "localhost/busybox:latest";
  // A registry address Podman reaches over plain HTTP, for a test's own registry.
  static constexpr char kInsecureRegistry[] = "127.0.0.1:15000";
  static constexpr int kInsecureRegistryPort = 15000;

  // `runtime` is the service's default OCI runtime: "runc", or "runsc" for gVisor (see
  // podman_harness.sh for how runsc is wired in).
  static absl::StatusOr<std::unique_ptr<PodmanHarness>> Start(const std::string& runtime = "runc");
  ~PodmanHarness();
  PodmanHarness(const PodmanHarness&) = delete;
  PodmanHarness& operator=(const PodmanHarness&) = delete;

  // The API socket (a short path; see podman_harness.sh).
  const std::string& socket_path() const { return socket_path_; }

  // Kills the service, leaving storage and containers' state in place; StartService
  // brings it back on the same storage and socket path.
  absl::Status StopService();
  absl::Status StartService();
  // The running service's process id (a benchmark reads its CPU time).
  absl::StatusOr<int> ServicePid() const;

  // Runs the podman CLI on this harness's storage; returns its stdout.
  absl::StatusOr<std::string> Podman(const std::vector<std::string>& args) const;

 private:
  explicit PodmanHarness(std::string dir) : dir_(std::move(dir)) {}
  absl::StatusOr<std::string> Script(const std::vector<std::string>& args) const;

  std::string dir_;
  std::string socket_path_;
};

}  // namespace coolify::testing

#endif  // COOLD_TESTS_PODMAN_HARNESS_PODMAN_HARNESS_H_
