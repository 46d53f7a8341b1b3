// Image references: the grammar a request's image or pull ref must follow, and the
// fully qualified form the gatekeeper writes instead of what was asked.
//
//   reference  = name [ ":" tag ] [ "@" digest ]
//   name       = [ registry "/" ] path *( "/" path )       at most 255 characters
//   registry   = host-part *( "." host-part ) [ ":" port ]
//   host-part  = alnum / alnum *( alnum / "-" ) alnum       (letters in any case)
//   path       = lower-alnum *( separator lower-alnum )     separator = "." / "_" / "__" / 1*"-"
//   tag        = ( ALPHA / DIGIT / "_" ) *127( ALPHA / DIGIT / "_" / "." / "-" )
//   digest     = "sha256:" 64( DIGIT / %x61-66 )
//
// As in Docker and Podman, the first component is the registry only when it holds a "."
// or ":", is "localhost", or has an upper-case letter; otherwise the registry is
// docker.io and a one-component path gets Docker Hub's "library/" in front.
//
// Qualifying matters for the policy: Podman resolves a short name ("nginx") through
// registries.conf, which may search registries the policy never allowed. The registry
// the policy checks is the one written into the spec.
#ifndef COOLD_POLICY_IMAGE_REF_H_
#define COOLD_POLICY_IMAGE_REF_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace coolify::policy {

struct ImageRef {
  std::string registry;    // lower case, "docker.io" for Docker Hub; may hold ":port"
  std::string repository;  // "library/nginx"
  std::string tag;         // "latest" when the reference names neither tag nor digest
  std::string digest;      // "" or "sha256:<64 hex>"

  // registry "/" repository [ ":" tag ] [ "@" digest ].
  std::string Qualified() const;
};

// InvalidArgument (naming what is wrong) for anything outside the grammar above.
absl::StatusOr<ImageRef> ParseImageRef(std::string_view reference);

// Whether `registry` follows the registry grammar above, in lower case. For policy files.
bool IsRegistryName(std::string_view registry);

}  // namespace coolify::policy

#endif  // COOLD_POLICY_IMAGE_REF_H_
