#include "services/builder/options.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/builder/build_files.h"

namespace coolify::build {
namespace {

absl::Status Bad(absl::string_view flag, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why));
}

bool PathChars(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '/' && c != '-') return false;
  }
  return true;
}

absl::Status CheckAbsoluteDir(absl::string_view flag, absl::string_view path) {
  if (path.empty() || path[0] != '/' || path.size() > 1024 || !PathChars(path) ||
      absl::StrContains(path, "/../") || absl::EndsWith(path, "/..")) {
    return Bad(flag, "must be an absolute path of [A-Za-z0-9._/-] without ..");
  }
  return absl::OkStatus();
}

}  // namespace

const char* BuilderUsage() {
  return "usage: builder --work-dir=DIR --request-id=ID --stack=static|dockerfile --repo=URL --ref=REF\n"
         "               --image=localhost/NAMESPACE/NAME:TAG --namespace=NAMESPACE... [--subdirectory=DIR]\n"
         "               [--base-image=IMAGE] [--output-dir=DIR]   (static; defaults nginx:alpine, dist)\n"
         "               [--dockerfile=PATH]                       (dockerfile; default Dockerfile, then Containerfile)\n"
         "               [--storage-root=DIR] [--storage-runroot=DIR] [--storage-driver=NAME]\n"
         "               [--allow-file-urls]\n";
}

absl::Status CheckRepoUrl(absl::string_view url, bool allow_file_urls) {
  if (url.empty()) return Bad("repo", "missing");
  if (url.size() > 2048) return Bad("repo", "longer than 2048 characters");
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return Bad("repo", "holds whitespace or control characters");
  }
  // git's "ext::" and "fd::" transports run commands; only plain transports are accepted.
  for (absl::string_view scheme : {"https://", "http://", "git://"}) {
    if (absl::StartsWith(url, scheme) && url.size() > scheme.size()) return absl::OkStatus();
  }
  if (absl::StartsWith(url, "file:///") && url.size() > 8) {
    if (!allow_file_urls) return Bad("repo", "file:// URLs are not allowed on this host");
    return absl::OkStatus();
  }
  return Bad("repo", "not an https://, http:// or git:// URL");
}

absl::Status CheckRef(absl::string_view ref) {
  if (ref.empty()) return Bad("ref", "missing");
  if (ref.size() > 255 || !PathChars(ref) || ref[0] == '-' || ref[0] == '/' || ref[0] == '.' ||
      absl::StrContains(ref, "..") || absl::StrContains(ref, "//") || absl::EndsWith(ref, "/") ||
      absl::EndsWith(ref, ".lock") || absl::EndsWith(ref, ".")) {
    return Bad("ref", "not a branch or tag name");
  }
  return absl::OkStatus();
}

absl::Status CheckRelativePath(absl::string_view flag, absl::string_view path) {
  if (path.size() > 1024 || !PathChars(path) || absl::StartsWith(path, "/") || absl::StartsWith(path, "-")) {
    return Bad(flag, "must be a relative path of [A-Za-z0-9._/-]");
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return Bad(flag, "must not contain ..");
  }
  return absl::OkStatus();
}

bool IsNamespaceName(absl::string_view name) {
  if (name.empty() || name.size() > 31 || !absl::ascii_islower(name[0])) return false;
  for (char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') return false;
  }
  return true;
}

absl::StatusOr<TargetImage> ParseTargetImage(absl::string_view image, const std::vector<std::string>& namespaces) {
  auto bad = [&](absl::string_view why) {
    return Bad("image", absl::StrCat(why, ": must be localhost/<namespace>/<name>:<tag> with a namespace of this host (",
                                     absl::StrJoin(namespaces, ", "), ")"));
  };
  absl::string_view rest = image;
  if (!absl::ConsumePrefix(&rest, "localhost/")) return bad("not under localhost/");
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) return bad("no namespace");
  const absl::string_view ns = rest.substr(0, slash);
  rest.remove_prefix(slash + 1);
  if (!IsNamespaceName(ns) || std::find(namespaces.begin(), namespaces.end(), ns) == namespaces.end()) {
    return bad(absl::StrCat("\"", absl::CHexEscape(ns), "\" is not a namespace of this host"));
  }
  const size_t colon = rest.find(':');
  if (colon == absl::string_view::npos) return bad("no tag");
  const absl::string_view name = rest.substr(0, colon), tag = rest.substr(colon + 1);
  // [a-z0-9]+ parts joined by single separators: no leading, trailing or doubled one.
  bool name_ok = !name.empty() && name.size() <= 128;
  char last = '.';
  for (char c : name) {
    const bool sep = c == '.' || c == '_' || c == '-';
    if (!sep && !absl::ascii_islower(c) && !absl::ascii_isdigit(c)) name_ok = false;
    if (sep && (last == '.' || last == '_' || last == '-')) name_ok = false;
    last = c;
  }
  if (last == '.' || last == '_' || last == '-') name_ok = false;
  if (!name_ok) return bad("bad name");
  bool tag_ok = !tag.empty() && tag.size() <= 128 && tag[0] != '.' && tag[0] != '-';
  for (char c : tag) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '-') tag_ok = false;
  }
  if (!tag_ok) return bad("bad tag");
  return TargetImage{std::string(ns), absl::StrCat("localhost/", ns, "/", name), std::string(tag)};
}

absl::StatusOr<BuilderOptions> ParseBuilderArgs(const std::vector<std::string>& args) {
  BuilderOptions o;
  bool stack_given = false;
  for (const std::string& arg : args) {
    if (arg == "--allow-file-urls") {
      o.allow_file_urls = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--") || arg.find('=') == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", absl::CHexEscape(arg), "\""));
    }
    size_t eq = arg.find('=');
    std::string name = arg.substr(2, eq - 2), value = arg.substr(eq + 1);
    if (name == "work-dir") {
      o.work_dir = value;
    } else if (name == "request-id") {
      o.request_id = value;
    } else if (name == "stack") {
      if (value == "static") {
        o.stack = Stack::kStatic;
      } else if (value == "dockerfile") {
        o.stack = Stack::kDockerfile;
      } else {
        return Bad("stack", "must be static or dockerfile");
      }
      stack_given = true;
    } else if (name == "repo") {
      o.repo_url = value;
    } else if (name == "ref") {
      o.ref = value;
    } else if (name == "subdirectory") {
      o.subdirectory = value;
    } else if (name == "image") {
      o.image = value;
    } else if (name == "namespace") {
      if (!IsNamespaceName(value)) return Bad("namespace", "must be [a-z][a-z0-9-]{0,30}");
      o.namespaces.push_back(value);
    } else if (name == "base-image") {
      o.base_image = value;
    } else if (name == "output-dir") {
      o.output_dir = value;
    } else if (name == "dockerfile") {
      o.dockerfile = value;
    } else if (name == "storage-root") {
      o.storage_root = value;
    } else if (name == "storage-runroot") {
      o.storage_runroot = value;
    } else if (name == "storage-driver") {
      o.storage_driver = value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", absl::CHexEscape(name)));
    }
  }
  if (!stack_given) return Bad("stack", "missing");
  return o;
}

absl::Status CheckWorkDir(const BuilderOptions& o) {
  if (absl::Status s = CheckAbsoluteDir("work-dir", o.work_dir); !s.ok()) return s;
  if (!IsRequestId(o.request_id)) return Bad("request-id", "must be 1..64 of [A-Za-z0-9_-]");
  return absl::OkStatus();
}

absl::Status ValidateBuilderOptions(const BuilderOptions& o) {
  if (absl::Status s = CheckWorkDir(o); !s.ok()) return s;
  if (absl::Status s = CheckRepoUrl(o.repo_url, o.allow_file_urls); !s.ok()) return s;
  if (absl::Status s = CheckRef(o.ref); !s.ok()) return s;
  if (absl::Status s = CheckRelativePath("subdirectory", o.subdirectory); !s.ok()) return s;
  if (absl::StatusOr<TargetImage> image = ParseTargetImage(o.image, o.namespaces); !image.ok()) return image.status();
  if (o.stack == Stack::kStatic) {
    if (!IsImageReference(o.base_image)) return Bad("base-image", "not an image name");
    if (o.output_dir.empty()) return Bad("output-dir", "missing");
    if (absl::Status s = CheckRelativePath("output-dir", o.output_dir); !s.ok()) return s;
    if (!o.dockerfile.empty()) return Bad("dockerfile", "only with --stack=dockerfile");
  } else {
    if (absl::Status s = CheckRelativePath("dockerfile", o.dockerfile); !s.ok()) return s;
  }
  if (!o.storage_root.empty()) {
    if (absl::Status s = CheckAbsoluteDir("storage-root", o.storage_root); !s.ok()) return s;
  }
  if (!o.storage_runroot.empty()) {
    if (absl::Status s = CheckAbsoluteDir("storage-runroot", o.storage_runroot); !s.ok()) return s;
  }
  if (!o.storage_driver.empty() && o.storage_driver != "overlay" && o.storage_driver != "vfs") {
    return Bad("storage-driver", "must be overlay or vfs");
  }
  return absl::OkStatus();
}

absl::Status CheckBuilderArgs(const std::vector<std::string>& args) {
  absl::StatusOr<BuilderOptions> o = ParseBuilderArgs(args);
  absl::Status s = o.ok() ? ValidateBuilderOptions(*o) : o.status();
  if (s.ok()) return s;
  // Each flag is one field of the request (proto/privsep.proto BuildSpec); the flags that
  // come from the host's configuration keep their own name.
  static constexpr std::pair<absl::string_view, absl::string_view> kFields[] = {
      {"--request-id: ", "request_id: "},   {"--stack: ", "kind: "},
      {"--repo: ", "repo_url: "},           {"--ref: ", "git_ref: "},
      {"--subdirectory: ", "subdirectory: "}, {"--image: ", "target_image: "},
      {"--base-image: ", "base_image: "},   {"--output-dir: ", "output_dir: "},
      {"--dockerfile: ", "dockerfile_path: "},
  };
  absl::string_view message = s.message();
  for (const auto& [flag, field] : kFields) {
    if (absl::ConsumePrefix(&message, flag)) return absl::InvalidArgumentError(absl::StrCat(field, message));
  }
  return s;
}

}  // namespace coolify::build
