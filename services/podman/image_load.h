// The hand-over of a finished build's image to Podman (the PodmanImageLoad op).
//
// A build writes its image as an unnamed OCI archive; the launcher opens it once the
// build is over and its descriptor reaches the gatekeeper through the front end, which is
// not trusted with any of it. Here, with nothing but the gatekeeper's own configuration:
//
//   1. the name is checked against the host's namespaces (services/builder/options.h
//      ParseTargetImage): only localhost/<namespace>/<name>:<tag>, so no base image and no
//      image outside coold's namespaces can be named;
//   2. the archive (a regular file) streams to Podman's POST /libpod/images/load while
//      every byte passes the tar check (oci_archive_check.h) before Podman gets it; a
//      refused archive is cut off short of its announced length, so Podman never has a
//      whole archive and loads nothing;
//   3. Podman's answer must be exactly {"Names":["sha256:<64 hex>"]} (an unnamed load
//      names only the image id), checked as bytes, not parsed;
//   4. that image is tagged with the name (POST /libpod/images/{id}/tag). A name under a
//      namespace's prefix moves to the newest build of it; nothing else is ever named.
#ifndef COOLD_SERVICES_PODMAN_IMAGE_LOAD_H_
#define COOLD_SERVICES_PODMAN_IMAGE_LOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/privsep.pb.h"
#include "services/podman/libpod_client.h"

namespace coolify::podman {

// The largest archive handed over.
inline constexpr uint64_t kMaxImageArchiveBytes = uint64_t{64} << 30;

// The image id in Podman's answer to an unnamed load, or InvalidArgument.
absl::StatusOr<std::string> LoadedImageId(absl::string_view body);

// Hands the archive on `archive_fd` to Podman as `name` (steps 1-4 above).
// InvalidArgument for a refused name or archive, the mapped Podman error otherwise.
absl::StatusOr<privsep::PodmanImageLoaded> LoadImage(const LibpodClient& client,
                                                     const std::vector<std::string>& namespaces,
                                                     const std::string& name, int archive_fd);

}  // namespace coolify::podman

#endif  // COOLD_SERVICES_PODMAN_IMAGE_LOAD_H_
