#include "services/monitor/resources.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "policy/policy_file.h"
#include "privsep/log.h"

namespace coolify::monitor {
namespace {

using privsep::UniqueFd;

absl::Status Errno(const std::string& what) {
  return absl::ErrnoToStatus(errno, what);
}

// mkdir -p with mode 0755 for each missing component.
absl::Status MakeDirs(const std::string& dir) {
  for (size_t slash = 1; slash <= dir.size(); ++slash) {
    if (slash != dir.size() && dir[slash] != '/') continue;
    std::string prefix = dir.substr(0, slash);
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) return Errno(absl::StrCat("mkdir ", prefix));
  }
  return absl::OkStatus();
}

// `what` names the directory's use in messages ("snapshot", "endpoint store"); `writer`
// is the one child user that writes in it.
absl::StatusOr<UniqueFd> PrepareDir(const std::string& path, const std::string& name, const privsep::UserIds& writer,
                                    const std::string& what) {
  std::string dir = path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  if (auto s = MakeDirs(dir); !s.ok()) return s;
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Errno(absl::StrCat("open ", what, " directory ", dir));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Errno(absl::StrCat("stat ", dir));
  // Root must own the directory: otherwise its owner could swap the snapshots.
  if (st.st_uid != 0) {
    return absl::FailedPreconditionError(absl::StrCat(what, " directory ", dir, " must be owned by root"));
  }
  mode_t wanted = (st.st_mode & 07777) | S_ISVTX | S_IRWXG;
  if (st.st_gid != writer.gid || (st.st_mode & 07777) != wanted) {
    if (fchown(fd.get(), 0, writer.gid) != 0) return Errno(absl::StrCat("chown ", dir));
    if (fchmod(fd.get(), wanted) != 0) return Errno(absl::StrCat("chmod ", dir));
    LogInfo("%s directory %s: group %u, mode %o (sticky, group-writable for its one writer)", what, dir,
            writer.gid, wanted);
  }
  struct stat file;
  if (fstatat(fd.get(), name.c_str(), &file, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISREG(file.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a regular file"));
    }
    if (file.st_uid != writer.uid && fchownat(fd.get(), name.c_str(), writer.uid, writer.gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return Errno(absl::StrCat("chown ", path));
    }
  }
  return fd;
}

absl::StatusOr<UniqueFd> OpenPrivateFile(const char* variable, const std::string& path, bool must_be_private) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return absl::ErrnoToStatus(errno, absl::StrCat(variable, ": cannot open ", path));
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(variable, ": ", path, " is not a regular file"));
  }
  // A secret others can read is a secret already lost: refuse rather than serve with it.
  if (must_be_private && (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(variable, ": ", path, " must not be readable by group or others (chmod 0600)"));
  }
  return fd;
}

// A small file's content, opened as OpenPrivateFile does; more than `limit` bytes is refused.
}  // namespace

absl::StatusOr<std::string> ReadSmallFile(const char* variable, const std::string& path, bool must_be_private,
                                          size_t limit) {
  auto fd = OpenPrivateFile(variable, path, must_be_private);
  if (!fd.ok()) return fd.status();
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd->get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat(variable, ": read ", path));
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > limit) return absl::FailedPreconditionError(absl::StrCat(variable, ": ", path, " is larger than ", limit, " bytes"));
  }
}


absl::StatusOr<SnapshotDirs> PrepareSnapshotDirs(const v1::CooldConfig& config, const privsep::UserIds& writer) {
  SnapshotDirs dirs;
  dirs.rules_name = config.rules_path().substr(config.rules_path().rfind('/') + 1);
  dirs.bridge_name = config.bridge_rules_path().substr(config.bridge_rules_path().rfind('/') + 1);
  auto rules = PrepareDir(config.rules_path(), dirs.rules_name, writer, "snapshot");
  if (!rules.ok()) return rules.status();
  auto bridge = PrepareDir(config.bridge_rules_path(), dirs.bridge_name, writer, "snapshot");
  if (!bridge.ok()) return bridge.status();
  dirs.rules_dir = std::move(*rules);
  dirs.bridge_dir = std::move(*bridge);
  return dirs;
}

absl::StatusOr<FrontResources> OpenFrontResources(const v1::CooldConfig& config) {
  FrontResources resources;
  if (!config.api_bind_ip().empty()) {
    resources.api_listener.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!resources.api_listener) return Errno("COOLD_API_BIND: socket");
    int one = 1;
    setsockopt(resources.api_listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(config.api_bind_port()));
    inet_pton(AF_INET, config.api_bind_ip().c_str(), &addr.sin_addr);
    if (bind(resources.api_listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return Errno(absl::StrCat("COOLD_API_BIND: bind ", config.api_bind_ip(), ":", config.api_bind_port()));
    }
    if (listen(resources.api_listener.get(), 128) != 0) return Errno("COOLD_API_BIND: listen");
    auto token = OpenPrivateFile("COOLD_API_TOKEN_FILE", config.api_token_file(), /*must_be_private=*/true);
    if (!token.ok()) return token.status();
    resources.api_token = std::move(*token);
  }
  if (!config.tls_cert_file().empty()) {
    auto cert = OpenPrivateFile("COOLD_TLS_CERT", config.tls_cert_file(), /*must_be_private=*/false);
    if (!cert.ok()) return cert.status();
    auto key = OpenPrivateFile("COOLD_TLS_KEY", config.tls_key_file(), /*must_be_private=*/true);
    if (!key.ok()) return key.status();
    resources.tls_cert = std::move(*cert);
    resources.tls_key = std::move(*key);
  }
  if (!config.broker_host().empty()) {
    addrinfo hints = {};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    int error = getaddrinfo(config.broker_host().c_str(), nullptr, &hints, &found);
    if (error != 0 || found == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("COOLD_BROKER_URL: cannot resolve ", config.broker_host(), ": ", gai_strerror(error)));
    }
    char ip[INET_ADDRSTRLEN] = {0};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr, ip, sizeof(ip));
    freeaddrinfo(found);
    resources.broker_address = absl::StrCat(ip, ":", config.broker_port());
    // No central token is fine for a host that has its own key, or is about to get one
    // by enrolling: it authenticates with tokens it signs itself (host_identity.h).
    const bool own_identity = access(config.host_key_file().c_str(), F_OK) == 0 ||
                              access(config.enrollment_token_file().c_str(), F_OK) == 0;
    const bool central = !own_identity || access(config.broker_token_file().c_str(), F_OK) == 0;
    auto token = central ? ReadSmallFile("COOLD_BROKER_TOKEN_FILE", config.broker_token_file(), /*must_be_private=*/true, 8192)
                         : absl::StatusOr<std::string>("");
    if (!token.ok()) return token.status();
    resources.broker_token = std::string(absl::StripAsciiWhitespace(*token));
    if (central && resources.broker_token.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("COOLD_BROKER_TOKEN_FILE: ", config.broker_token_file(), " is empty"));
    }
    for (absl::string_view entry : absl::StrSplit(config.broker_jwt_keys(), ',', absl::SkipWhitespace())) {
      size_t eq = entry.find('=');
      if (eq == absl::string_view::npos || eq == 0 || entry.size() < eq + 2 || entry[eq + 1] != '/') {
        return absl::InvalidArgumentError(absl::StrCat("COOLD_BROKER_JWT_KEYS: \"", entry, "\" is not kid=/path/key.pem"));
      }
      auto pem = ReadSmallFile("COOLD_BROKER_JWT_KEYS", std::string(entry.substr(eq + 1)), /*must_be_private=*/false, 16384);
      if (!pem.ok()) return pem.status();
      resources.broker_jwt_keys.emplace_back(std::string(entry.substr(0, eq)), *std::move(pem));
    }
    if (config.broker_tls()) {
      auto ca = ReadSmallFile("COOLD_BROKER_CA_FILE", config.broker_ca_file(), /*must_be_private=*/false, 16384);
      if (!ca.ok()) return ca.status();
      resources.broker_ca_pem = *std::move(ca);
    }
  }
  return resources;
}

absl::StatusOr<EndpointDir> PrepareEndpointDir(const v1::CooldConfig& config, const privsep::UserIds& writer) {
  EndpointDir result;
  result.db_name = config.endpoint_db().substr(config.endpoint_db().rfind('/') + 1);
  auto dir = PrepareDir(config.endpoint_db(), result.db_name, writer, "endpoint store");
  if (!dir.ok()) return absl::Status(dir.status().code(), absl::StrCat("COOLD_ENDPOINT_DB: ", dir.status().message()));
  result.dir = std::move(*dir);
  return result;
}

absl::StatusOr<std::pair<UniqueFd, UniqueFd>> OpenDnsSockets(const std::string& gateway) {
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(53);
  // Never the wildcard: a namespace's server answers on its own bridge only.
  if (inet_pton(AF_INET, gateway.c_str(), &addr.sin_addr) != 1 || addr.sin_addr.s_addr == htonl(INADDR_ANY)) {
    return absl::InvalidArgumentError(absl::StrCat("DNS: not a gateway address: ", gateway));
  }
  UniqueFd udp(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  UniqueFd tcp(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!udp || !tcp) return Errno("DNS: socket");
  int one = 1;
  setsockopt(tcp.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(udp.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno(absl::StrCat("DNS: bind udp ", gateway, ":53"));
  }
  if (bind(tcp.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno(absl::StrCat("DNS: bind tcp ", gateway, ":53"));
  }
  if (listen(tcp.get(), 128) != 0) return Errno("DNS: listen");
  return std::make_pair(std::move(udp), std::move(tcp));
}

absl::StatusOr<UniqueFd> OpenPolicy(const v1::CooldConfig& config) {
  if (config.policy_file().empty()) return UniqueFd();
  UniqueFd fd(open(config.policy_file().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return absl::ErrnoToStatus(errno, absl::StrCat("COOLD_POLICY_FILE: cannot open ", config.policy_file()));
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("COOLD_POLICY_FILE: ", config.policy_file(), " is not a regular file"));
  }
  // Whoever can write the policy decides what containers may do: root only.
  if (st.st_uid != 0 || (st.st_mode & 022) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("COOLD_POLICY_FILE: ", config.policy_file(),
                                                      " must be owned by root and writable by root only"));
  }
  // Parsed from the descriptor just checked, not reopened by path.
  std::string text;
  char buf[8192];
  for (ssize_t n; (n = read(fd.get(), buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("COOLD_POLICY_FILE: read");
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (1 << 20)) return absl::InvalidArgumentError("COOLD_POLICY_FILE: larger than 1 MiB");
  }
  auto policy = policy::ParsePolicy(config.policy_file(), text);
  if (!policy.ok()) return absl::InvalidArgumentError(absl::StrCat("COOLD_POLICY_FILE: ", policy.status().message()));
  if (lseek(fd.get(), 0, SEEK_SET) != 0) return Errno("COOLD_POLICY_FILE: lseek");
  return fd;
}

}  // namespace coolify::monitor
