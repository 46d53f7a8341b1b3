#include "policy/host_path.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "policy/shown_value.h"

namespace coolify::policy {
namespace {

using privsep::UniqueFd;

// Linux's own limit on symlinks followed in one lookup (MAXSYMLINKS).
constexpr int kMaxSymlinks = 40;

absl::Status ErrnoError(int error, std::string_view what) {
  const std::string text = absl::StrCat(AbslView(what), ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
      return absl::NotFoundError(text);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(text);
    default:
      return absl::FailedPreconditionError(text);
  }
}

// Splits at "/", dropping empty components.
void AppendComponents(std::string_view path, std::deque<std::string>* out, bool at_front) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) parts.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  if (at_front) {
    out->insert(out->begin(), parts.begin(), parts.end());
  } else {
    out->insert(out->end(), parts.begin(), parts.end());
  }
}

// What the kernel says `fd` is: the path /proc/self/fd/<fd> links to.
absl::StatusOr<std::string> KernelPath(int fd) {
  const std::string link = absl::StrCat("/proc/self/fd/", fd);
  std::string target(kMaxPathBytes + 1, '\0');
  const ssize_t n = readlink(link.c_str(), target.data(), target.size());
  if (n < 0) return ErrnoError(errno, link);
  if (static_cast<size_t>(n) > kMaxPathBytes) {
    return absl::FailedPreconditionError(absl::StrCat(link, ": path too long"));
  }
  target.resize(static_cast<size_t>(n));
  // An object that is no longer reachable by a path reads as "<path> (deleted)" or as
  // something that is not a path at all; neither may be handed on.
  if (target.empty() || target[0] != '/') {
    return absl::FailedPreconditionError(absl::StrCat(link, " is not a path: ", target));
  }
  return target;
}

}  // namespace

absl::StatusOr<std::string> CanonicalizeLexically(std::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("empty path");
  if (path.size() > kMaxPathBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quoted(path), " is longer than ", kMaxPathBytes, " bytes"));
  }
  if (path.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(Quoted(path), " holds a NUL byte"));
  }
  if (path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(Quoted(path), " is not absolute"));
  }
  std::string out;
  out.reserve(path.size());
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view component = path.substr(start, end - start);
    if (component.empty() || component == ".") {
      // Nothing: "//" and "/./" name the directory they are in.
    } else if (component == "..") {
      const size_t last = out.rfind('/');
      out.resize(last == std::string::npos ? 0 : last);
    } else {
      out.push_back('/');
      out.append(component);
    }
    start = end + 1;
  }
  if (out.empty()) out = "/";
  return out;
}

bool IsUnderPrefix(std::string_view path, std::string_view prefix) {
  if (prefix == "/") return !path.empty() && path[0] == '/';
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

absl::StatusOr<OpenedPath> OpenBeneath(int root_fd, std::string_view path) {
  if (path.empty() || path.size() > kMaxPathBytes || path.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(Quoted(path), " is not a usable path"));
  }
  // The physical walk: dirs[0] is the root, each further entry a component entered (the
  // last one may be a file). ".." pops, so it can never leave the root, whatever the
  // directories are renamed to while the walk runs.
  std::vector<UniqueFd> dirs;
  dirs.emplace_back(openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dirs[0].valid()) return ErrnoError(errno, "root");
  std::deque<std::string> pending;
  AppendComponents(path, &pending, /*at_front=*/false);
  int symlinks = 0;
  std::string walked;  // For error messages only.
  while (!pending.empty()) {
    const std::string component = std::move(pending.front());
    pending.pop_front();
    if (component == ".") continue;
    if (component == "..") {
      if (dirs.size() > 1) dirs.pop_back();
      continue;
    }
    walked = absl::StrCat(walked, "/", component);
    UniqueFd fd(openat(dirs.back().get(), component.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return ErrnoError(errno, Quoted(walked));
    struct stat st;
    if (fstat(fd.get(), &st) != 0) return ErrnoError(errno, Quoted(walked));
    if (S_ISLNK(st.st_mode)) {
      if (++symlinks > kMaxSymlinks) return ErrnoError(ELOOP, Quoted(walked));
      std::string target(kMaxPathBytes + 1, '\0');
      // An empty name makes readlinkat read the O_PATH descriptor's own link.
      const ssize_t n = readlinkat(fd.get(), "", target.data(), target.size());
      if (n < 0) return ErrnoError(errno, Quoted(walked));
      if (n == 0 || static_cast<size_t>(n) > kMaxPathBytes) {
        return absl::FailedPreconditionError(
            absl::StrCat(Quoted(walked), ": unusable symlink target"));
      }
      target.resize(static_cast<size_t>(n));
      if (target[0] == '/') dirs.resize(1);
      AppendComponents(target, &pending, /*at_front=*/true);
      continue;
    }
    if (!pending.empty() && !S_ISDIR(st.st_mode)) return ErrnoError(ENOTDIR, Quoted(walked));
    dirs.push_back(std::move(fd));
  }
  // The kernel's name for where the walk ended, made relative to the root's own name.
  absl::StatusOr<std::string> root_path = KernelPath(dirs[0].get());
  if (!root_path.ok()) return root_path.status();
  absl::StatusOr<std::string> end_path = KernelPath(dirs.back().get());
  if (!end_path.ok()) return end_path.status();
  OpenedPath opened;
  if (*root_path == "/") {
    opened.canonical = *end_path;
  } else if (IsUnderPrefix(*end_path, *root_path)) {
    opened.canonical =
        end_path->size() == root_path->size() ? "/" : end_path->substr(root_path->size());
  } else {
    return absl::FailedPreconditionError(
        absl::StrCat(Quoted(path), " resolved outside the root, to ", Quoted(*end_path)));
  }
  struct stat st;
  if (fstat(dirs.back().get(), &st) != 0) return ErrnoError(errno, Quoted(path));
  opened.device = st.st_dev;
  opened.inode = st.st_ino;
  opened.fd = std::move(dirs.back());
  return opened;
}

absl::StatusOr<std::unique_ptr<PinningHostPathResolver>> PinningHostPathResolver::Create(
    std::string_view root) {
  const std::string root_path(root);
  UniqueFd fd(open(root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, Quoted(root));
  return std::unique_ptr<PinningHostPathResolver>(new PinningHostPathResolver(std::move(fd)));
}

absl::StatusOr<std::string> PinningHostPathResolver::Resolve(std::string_view lexical_path) {
  const std::string key(lexical_path);
  if (const auto it = pinned_.find(key); it != pinned_.end()) return it->second.canonical;
  absl::StatusOr<OpenedPath> opened = OpenBeneath(root_.get(), lexical_path);
  if (!opened.ok()) return opened.status();
  std::string canonical = opened->canonical;
  pinned_.emplace(key, *std::move(opened));
  return canonical;
}

const OpenedPath* PinningHostPathResolver::Pinned(std::string_view lexical_path) const {
  const auto it = pinned_.find(std::string(lexical_path));
  return it == pinned_.end() ? nullptr : &it->second;
}

}  // namespace coolify::policy
