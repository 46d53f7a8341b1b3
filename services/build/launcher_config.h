// The build launcher's configuration: COOLD_BUILD* variables, read and checked by the
// monitor at start (an invalid value stops coold, naming the variable), handed to
// coold-build as its argv (it receives no environment), and parsed back there.
//
//   variable                        default                      argv
//   COOLD_BUILDS_DIR                /var/lib/coolify/builds      --builds-dir=
//   COOLD_BUILD_BACKEND             auto (systemd when it is     --backend=native|systemd
//                                   PID 1, else native)
//   COOLD_BUILDER_CAPACITY          2 (monitor/config.cc)        --capacity=
//   COOLD_BUILD_MEMORY_MAX          4G                           --memory-max=BYTES
//   COOLD_BUILD_CPUS                2                            --cpu-millis=
//   COOLD_BUILD_PIDS_MAX            4096                         --pids-max=
//   COOLD_BUILD_TIMEOUT             1h                           --timeout-seconds=
//   COOLD_BUILD_KILL_GRACE          10s                          --kill-grace-seconds=
//   COOLD_BUILDER_STORAGE_ROOT      buildah's (Podman's) default --storage-root= (systemd backend)
//   COOLD_BUILDER_STORAGE_RUNROOT   buildah's (Podman's) default --storage-runroot= (systemd backend)
//   COOLD_BUILDER_CONTAINERS_CONF   unset                        --containers-conf=
//   COOLD_BUILDER_ALLOW_FILE_URLS   0                            --allow-file-urls
//   COOLD_BUILD_DENY_CIDRS          unset                        --deny-cidr= (repeated; with
//                                   COOLD_HOST_MGMT_IP and each COOLD_NAMESPACES gateway)
//   COOLD_BUILD_ALLOW_CIDRS         unset                        --allow-cidr= (repeated)
//   COOLD_BUILD_NETWORK             slirp4netns                  --network=slirp4netns|none
//   COOLD_BUILD_UID_BASE            1879048192 (0x70000000)      --uid-base=
//   COOLD_BUILD_IMAGES_DIR          unset                        --images-dir=
//   COOLD_BUILD_BASE_STORE_DIR      build-base beside            --base-store-dir= (with
//                                   COOLD_BUILDS_DIR             COOLD_BUILD_IMAGES_DIR;
//                                                                empty: none)
//   COOLD_BUILD_STORAGE_DRIVER      overlay                      --build-storage-driver=overlay|vfs
//   COOLD_NAMESPACES (names)        default                      --namespace= (repeated; the
//                                                                monitor adds one per namespace)
#ifndef COOLD_SERVICES_BUILD_LAUNCHER_CONFIG_H_
#define COOLD_SERVICES_BUILD_LAUNCHER_CONFIG_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/build/launcher.h"

namespace coolify::build {

// Returns the variable's value, or nullptr when unset.
using BuildEnvLookup = std::function<const char*(const char* name)>;

// coold-build's argv (without argv[0] and --builder=, which the monitor adds with the
// binary it opened), from the environment.
absl::StatusOr<std::vector<std::string>> LauncherArgsFromEnv(const BuildEnvLookup& env, uint32_t capacity);

// Parses coold-build's argv back into the launcher's configuration.
absl::StatusOr<LauncherConfig> ParseLauncherArgs(const std::vector<std::string>& args);

}  // namespace coolify::build

#endif  // COOLD_SERVICES_BUILD_LAUNCHER_CONFIG_H_
