#include "services/monitor/host_identity.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "privsep/log.h"
#include "services/monitor/resources.h"

namespace coolify::monitor {

absl::StatusOr<HostIdentity> LoadHostIdentity(const v1::CooldConfig& config) {
  HostIdentity identity;
  if (config.broker_host().empty()) return identity;
  if (access(config.host_key_file().c_str(), F_OK) == 0) {
    auto pem = ReadSmallFile("COOLD_HOST_KEY_FILE", config.host_key_file(), /*must_be_private=*/true, 8192);
    if (!pem.ok()) return pem.status();
    auto key = identity::HostKey::FromPem(*pem);
    if (!key.ok()) return absl::FailedPreconditionError(absl::StrCat("COOLD_HOST_KEY_FILE: ", key.status().message()));
    identity.key = *std::move(key);
    identity.key_on_disk = true;
  }
  if (access(config.enrollment_token_file().c_str(), F_OK) == 0) {
    auto token = ReadSmallFile("COOLD_ENROLLMENT_TOKEN_FILE", config.enrollment_token_file(), true, 1024);
    if (!token.ok()) return token.status();
    identity.enrollment_token = std::string(absl::StripAsciiWhitespace(*token));
    for (char c : identity.enrollment_token) {
      if (!absl::ascii_isalnum(c) && c != '-' && c != '_') {
        return absl::InvalidArgumentError("COOLD_ENROLLMENT_TOKEN_FILE: not an enrollment token (base64url)");
      }
    }
    if (!identity.enrollment_token.empty() && !identity.key) {
      auto key = identity::HostKey::Generate();
      if (!key.ok()) return key.status();
      identity.key = *std::move(key);
      LogInfo("enrolling: generated this host's key (kept in memory until the broker admits it)");
    }
  }
  return identity;
}

absl::Status CommitEnrollment(const v1::CooldConfig& config, HostIdentity& identity) {
  if (!identity.key || identity.enrollment_token.empty()) {
    return absl::FailedPreconditionError("no enrollment in progress");
  }
  const std::string& path = config.host_key_file();
  const std::string tmp = path + ".tmp";
  const std::string pem = identity.key->PrivatePem();
  unlink(tmp.c_str());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("COOLD_HOST_KEY_FILE: create ", tmp));
  bool ok = fchmod(fd, 0600) == 0 && write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size()) &&
            fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return absl::ErrnoToStatus(errno, absl::StrCat("COOLD_HOST_KEY_FILE: write ", path));
  }
  identity.key_on_disk = true;
  if (unlink(config.enrollment_token_file().c_str()) != 0 && errno != ENOENT) {
    LogWarn("COOLD_ENROLLMENT_TOKEN_FILE: cannot remove %s: %s (it is used up anyway)", config.enrollment_token_file(),
            strerror(errno));
  }
  identity.enrollment_token.clear();
  LogInfo("enrolled: host key written to %s (0600), enrollment token removed", path);
  return absl::OkStatus();
}

namespace {
absl::Status WriteAtomically(const char* variable, const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  unlink(tmp.c_str());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat(variable, ": create ", tmp));
  bool ok = fchmod(fd, 0600) == 0 && write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
            fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    unlink(tmp.c_str());
    return absl::ErrnoToStatus(saved, absl::StrCat(variable, ": write ", path));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status WriteHostJwt(const v1::CooldConfig& config, const std::string& jwt) {
  if (config.broker_token_file().empty()) return absl::FailedPreconditionError("no COOLD_BROKER_TOKEN_FILE");
  absl::Status written = WriteAtomically("COOLD_BROKER_TOKEN_FILE", config.broker_token_file(), jwt + "\n");
  if (written.ok()) LogInfo("host.jwt.set: %s replaced (0600)", config.broker_token_file());
  return written;
}

absl::StatusOr<std::string> SignProof(const HostIdentity& identity, const v1::CooldConfig& config,
                                      const std::string& nonce) {
  if (!identity.key) return absl::FailedPreconditionError("this host holds no host key");
  if (nonce.size() != identity::kNonceBytes) return absl::InvalidArgumentError("nonce must be 32 bytes");
  return identity.key->Sign(identity::ProofInput(config.host_id(), nonce));
}

absl::StatusOr<std::string> MintHostToken(const HostIdentity& identity, const v1::CooldConfig& config,
                                          const std::vector<std::string>& caps, absl::Time now) {
  if (!identity.key || !identity.key_on_disk) return absl::FailedPreconditionError("this host is not enrolled");
  unsigned char random[16];
  if (RAND_bytes(random, sizeof(random)) != 1) return absl::InternalError("RAND_bytes failed");
  std::vector<std::string> quoted;
  for (const std::string& cap : caps) quoted.push_back(absl::StrCat("\"", cap, "\""));
  const int64_t iat = absl::ToUnixSeconds(now);
  std::string claims = absl::StrCat(
      R"({"sub":")", config.host_id(), R"(","aud":"coold","jti":")",
      absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(random), sizeof(random))),
      R"(")", caps.empty() ? "" : absl::StrCat(R"(,"caps":[)", absl::StrJoin(quoted, ","), "]"), R"(,"iat":)", iat,
      R"(,"exp":)",
      iat + absl::ToInt64Seconds(kHostTokenLifetime), "}");
  return identity.key->SignJwt(absl::StrCat(identity::kHostKidPrefix, config.host_id()), claims);
}

}  // namespace coolify::monitor
