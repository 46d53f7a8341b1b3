// The builder's command line, parsed and checked before anything runs.
//
//   builder --work-dir=DIR --request-id=ID --stack=static|dockerfile --repo=URL --ref=REF
//           --image=localhost/NAMESPACE/NAME:TAG --namespace=NAMESPACE... [--subdirectory=DIR]
//           [--base-image=IMAGE] [--output-dir=DIR]          (static)
//           [--dockerfile=PATH]                              (dockerfile)
//           [--storage-root=DIR] [--storage-runroot=DIR] [--storage-driver=NAME]
//           [--allow-file-urls]
//
// Every value that reaches git, buildah or a path is checked against a grammar here:
// no option can be smuggled in as a value, no path can leave the clone. The image a build
// makes is named only `localhost/<namespace>/<name>:<tag>`, the namespace one of the
// host's (--namespace, from coold's COOLD_NAMESPACES): no build can name a base image or
// another namespace's image. The gatekeeper that hands the image to Podman checks the
// same grammar (ParseTargetImage) against its own list.
#ifndef COOLD_SERVICES_BUILDER_OPTIONS_H_
#define COOLD_SERVICES_BUILDER_OPTIONS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace coolify::build {

enum class Stack { kStatic, kDockerfile };

inline constexpr char kDefaultBaseImage[] = "nginx:alpine";
inline constexpr char kDefaultOutputDir[] = "dist";
// Where the generated STATIC Containerfile puts the site: nginx's document root.
inline constexpr char kStaticDocumentRoot[] = "/usr/share/nginx/html/";

struct BuilderOptions {
  std::string work_dir;
  std::string request_id;
  Stack stack = Stack::kStatic;
  std::string repo_url;
  std::string ref;
  std::string subdirectory;  // "" = the repository's root
  std::string image;
  std::vector<std::string> namespaces;  // the host's namespaces, which --image may name
  std::string base_image = kDefaultBaseImage;
  std::string output_dir = kDefaultOutputDir;
  std::string dockerfile;  // "" = Dockerfile, then Containerfile
  std::string storage_root;
  std::string storage_runroot;
  std::string storage_driver;
  // file:// reads any repository on the host as root; only tests and single-host setups
  // that build from local mirrors turn it on.
  bool allow_file_urls = false;
};

// Parses argv[1..]: known flags only, each given as --name=value. InvalidArgument names
// the flag. Values are checked by ValidateBuilderOptions.
absl::StatusOr<BuilderOptions> ParseBuilderArgs(const std::vector<std::string>& args);

// The work directory and request id, which the builder needs to report anything at all.
absl::Status CheckWorkDir(const BuilderOptions& options);
// Every value against its grammar (CheckWorkDir included).
absl::Status ValidateBuilderOptions(const BuilderOptions& options);

// The builder's own check of its command line (ParseBuilderArgs, then
// ValidateBuilderOptions), for whoever starts it: the launcher runs it on the very argv it
// would pass, so a request the builder would refuse is refused before anything starts.
// The error names the build request's field the flag came from ("repo_url: not an
// https://, http:// or git:// URL"), since that is what the requester wrote.
absl::Status CheckBuilderArgs(const std::vector<std::string>& args);

// The usage text printed on a usage error.
const char* BuilderUsage();

// Checks: a repository URL is https://, http://, git:// or (when allowed) file:// with
// no whitespace, control characters or a leading '-'.
absl::Status CheckRepoUrl(absl::string_view url, bool allow_file_urls);
// A branch or tag name: git's refname rules, narrowed to [A-Za-z0-9._/-].
absl::Status CheckRef(absl::string_view ref);
// A relative path inside the repository: no "..", no leading '/', [A-Za-z0-9._/-].
absl::Status CheckRelativePath(absl::string_view flag, absl::string_view path);

// A namespace's name: [a-z][a-z0-9-]{0,30} (services/dns/namespaces.h).
bool IsNamespaceName(absl::string_view name);

// A build's image name, `localhost/<namespace>/<name>:<tag>`: the namespace one of
// `namespaces`, the name [a-z0-9]+ in parts joined by one '.', '_' or '-' (at most 128
// characters), the tag [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. InvalidArgument naming --image.
struct TargetImage {
  std::string namespace_;
  std::string repository;  // localhost/<namespace>/<name>
  std::string tag;
};
absl::StatusOr<TargetImage> ParseTargetImage(absl::string_view image, const std::vector<std::string>& namespaces);

}  // namespace coolify::build

#endif  // COOLD_SERVICES_BUILDER_OPTIONS_H_
