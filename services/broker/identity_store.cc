#include "services/broker/identity_store.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/broker/embedded_schema.h"
#include "services/http/status.h"

namespace coolify::broker {
namespace {

using endpoints::SqlStatement;
using endpoints::SqlValue;

constexpr char kSchemaPath[] = "services/broker/identity_store.sql";

int64_t Unix(absl::Time t) { return absl::ToUnixSeconds(t); }

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

const std::string* Text(const SqlValue& v) { return std::get_if<std::string>(&v); }
std::optional<absl::Time> Time(const SqlValue& v) {
  if (const int64_t* i = std::get_if<int64_t>(&v)) return absl::FromUnixSeconds(*i);
  return std::nullopt;
}

std::vector<std::string> SplitCaps(const std::string& text) {
  return absl::StrSplit(text, ' ', absl::SkipEmpty());
}

}  // namespace

absl::Status ValidateHostId(const std::string& host_id) {
  if (host_id.empty() || host_id.size() > 128 || !absl::ascii_isalnum(host_id[0])) {
    return absl::InvalidArgumentError("host_id: expected [A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  }
  for (char c : host_id) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError("host_id: expected [A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<IdentityStore>> IdentityStore::Open(const std::string& path,
                                                                   absl::Duration revocation_floor) {
  auto db = endpoints::SqliteBackend::Open(path);
  if (!db.ok()) return db.status();
  std::string_view schema = Embedded(kSchemaPath);
  if (schema.empty()) return absl::InternalError("identity store schema is not embedded");
  if (auto s = (*db)->EnsureSchema(std::string(schema), "hosts"); !s.ok()) return s;
  std::unique_ptr<IdentityStore> store(new IdentityStore(*std::move(db), revocation_floor));
  if (auto s = store->Load(); !s.ok()) return s;
  return store;
}

absl::Status IdentityStore::Load() {
  absl::MutexLock lock(&mu_);
  auto revoked = db_->Query({"SELECT jti, keep_until FROM revoked_tokens", {}});
  if (!revoked.ok()) return revoked.status();
  for (const auto& row : revoked->rows) {
    if (Text(row[0]) && Time(row[1])) revoked_[*Text(row[0])] = *Time(row[1]);
  }
  auto hosts = db_->Query({"SELECT host_id, caps, public_key, enrolled_at, revoked_at FROM hosts", {}});
  if (!hosts.ok()) return hosts.status();
  for (const auto& row : hosts->rows) {
    if (!Text(row[0]) || !Text(row[1])) continue;
    HostRecord host;
    host.host_id = *Text(row[0]);
    host.caps = SplitCaps(*Text(row[1]));
    if (Text(row[2])) host.public_key_pem = *Text(row[2]);
    host.enrolled_at = Time(row[3]);
    host.revoked_at = Time(row[4]);
    hosts_[host.host_id] = std::move(host);
  }
  auto enrollments = db_->Query({"SELECT token_sha256, host_id, caps, expires_at FROM enrollments", {}});
  if (!enrollments.ok()) return enrollments.status();
  for (const auto& row : enrollments->rows) {
    if (!Text(row[0]) || !Text(row[1]) || !Text(row[2]) || !Time(row[3])) continue;
    enrollments_[*Text(row[0])] = {*Text(row[1]), SplitCaps(*Text(row[2])), *Time(row[3])};
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Time> IdentityStore::RevokeToken(const std::string& jti, std::optional<absl::Time> expires_at,
                                                      absl::Time now) {
  absl::Time keep_until = (expires_at ? std::max(now, *expires_at) : now) + revocation_floor_;
  keep_until = absl::FromUnixSeconds(Unix(keep_until) + 1);
  absl::MutexLock lock(&mu_);
  auto found = revoked_.find(jti);
  if (found != revoked_.end() && found->second >= keep_until) return found->second;
  if (found == revoked_.end() && revoked_.size() >= kMaxRevocations) {
    return http::WithHttpStatus(
        absl::ResourceExhaustedError(absl::StrCat("revocation list full (", kMaxRevocations, " token ids)")), 507);
  }
  auto written = db_->Execute({{"INSERT INTO revoked_tokens (jti, revoked_at, keep_until) VALUES (?, ?, ?) "
                                "ON CONFLICT (jti) DO UPDATE SET keep_until = excluded.keep_until",
                                {jti, Unix(now), Unix(keep_until)}}});
  if (!written.ok()) return written.status();
  revoked_[jti] = keep_until;
  return keep_until;
}

bool IdentityStore::IsTokenRevoked(const std::string& jti) const {
  absl::MutexLock lock(&mu_);
  return revoked_.contains(jti);
}

size_t IdentityStore::revoked_count() const {
  absl::MutexLock lock(&mu_);
  return revoked_.size();
}

std::optional<HostRecord> IdentityStore::FindHost(const std::string& host_id) const {
  absl::MutexLock lock(&mu_);
  auto it = hosts_.find(host_id);
  if (it == hosts_.end()) return std::nullopt;
  return it->second;
}

std::vector<HostRecord> IdentityStore::ListHosts() const {
  std::vector<HostRecord> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, host] : hosts_) out.push_back(host);
  }
  std::sort(out.begin(), out.end(), [](const HostRecord& a, const HostRecord& b) { return a.host_id < b.host_id; });
  return out;
}

absl::StatusOr<Enrollment> IdentityStore::CreateEnrollment(const std::string& host_id, std::vector<std::string> caps,
                                                           absl::Duration ttl, absl::Time now) {
  if (auto s = ValidateHostId(host_id); !s.ok()) return s;
  if (caps.empty()) return absl::InvalidArgumentError("caps: at least one capability to grant");
  for (const std::string& cap : caps) {
    if (cap.empty() || cap.size() > 64 || cap.find(' ') != std::string::npos) {
      return absl::InvalidArgumentError("caps: each a dotted verb or \"builder\"");
    }
  }
  std::sort(caps.begin(), caps.end());
  caps.erase(std::unique(caps.begin(), caps.end()), caps.end());
  if (ttl <= absl::ZeroDuration() || ttl > kMaxEnrollmentTtl) {
    return absl::InvalidArgumentError("ttl_seconds: 1 to 604800");
  }
  unsigned char random[32];
  if (RAND_bytes(random, sizeof(random)) != 1) return absl::InternalError("RAND_bytes failed");
  Enrollment enrollment;
  enrollment.token = absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(random), sizeof(random)));
  enrollment.expires_at = now + ttl;
  const std::string hash = Sha256Hex(enrollment.token);
  absl::MutexLock lock(&mu_);
  const bool new_host = !hosts_.contains(host_id);
  if ((new_host && hosts_.size() >= kMaxHosts) || enrollments_.size() >= kMaxHosts) {
    return http::WithHttpStatus(absl::ResourceExhaustedError("too many hosts or pending enrollments"), 507);
  }
  std::vector<SqlStatement> transaction;
  if (new_host) {
    transaction.push_back({"INSERT INTO hosts (host_id, caps) VALUES (?, ?)", {host_id, absl::StrJoin(caps, " ")}});
  }
  transaction.push_back({"INSERT INTO enrollments (token_sha256, host_id, caps, created_at, expires_at) "
                         "VALUES (?, ?, ?, ?, ?)",
                         {hash, host_id, absl::StrJoin(caps, " "), Unix(now), Unix(enrollment.expires_at)}});
  auto written = db_->Execute(transaction);
  if (!written.ok()) return written.status();
  if (new_host) hosts_[host_id] = HostRecord{host_id, caps, "", std::nullopt, std::nullopt};
  enrollments_[hash] = {host_id, std::move(caps), enrollment.expires_at};
  return enrollment;
}

absl::Status IdentityStore::CheckEnrollment(const std::string& token, const std::string& host_id,
                                            absl::Time now) const {
  absl::MutexLock lock(&mu_);
  auto it = enrollments_.find(Sha256Hex(token));
  if (it == enrollments_.end()) return absl::PermissionDeniedError("enrollment token unknown or already used");
  if (it->second.expires_at < now) return absl::PermissionDeniedError("enrollment token expired");
  if (it->second.host_id != host_id) return absl::PermissionDeniedError("enrollment token is for another host");
  return absl::OkStatus();
}

absl::StatusOr<HostRecord> IdentityStore::RedeemEnrollment(const std::string& token, const std::string& host_id,
                                                           const std::string& public_key_pem, absl::Time now) {
  const std::string hash = Sha256Hex(token);
  absl::MutexLock lock(&mu_);
  auto it = enrollments_.find(hash);
  // One message for unknown and used alike: a guesser learns nothing from the difference.
  if (it == enrollments_.end()) return absl::PermissionDeniedError("enrollment token unknown or already used");
  if (it->second.expires_at < now) return absl::PermissionDeniedError("enrollment token expired");
  if (it->second.host_id != host_id) return absl::PermissionDeniedError("enrollment token is for another host");
  HostRecord host;
  host.host_id = host_id;
  host.caps = it->second.caps;
  host.public_key_pem = public_key_pem;
  host.enrolled_at = now;
  // The row is deleted in the same transaction that records the key: two hosts racing
  // with one token cannot both succeed, since the second finds no row (the mutex orders
  // them, and the DELETE's count says so should another process share the file).
  auto written = db_->Execute({{"DELETE FROM enrollments WHERE token_sha256 = ?", {hash}},
                               {"INSERT INTO hosts (host_id, caps, public_key, enrolled_at, revoked_at) "
                                "VALUES (?, ?, ?, ?, NULL) ON CONFLICT (host_id) DO UPDATE SET caps = excluded.caps, "
                                "public_key = excluded.public_key, enrolled_at = excluded.enrolled_at, revoked_at = NULL",
                                {host_id, absl::StrJoin(host.caps, " "), public_key_pem, Unix(now)}}});
  if (!written.ok()) return written.status();
  if ((*written)[0] != 1) return absl::PermissionDeniedError("enrollment token unknown or already used");
  enrollments_.erase(it);
  hosts_[host_id] = host;
  return host;
}

absl::Status IdentityStore::RevokeHost(const std::string& host_id, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = hosts_.find(host_id);
  if (it == hosts_.end()) return absl::NotFoundError(absl::StrCat("no host ", host_id));
  auto written = db_->Execute({{"UPDATE hosts SET revoked_at = ? WHERE host_id = ?", {Unix(now), host_id}},
                               {"DELETE FROM enrollments WHERE host_id = ?", {host_id}}});
  if (!written.ok()) return written.status();
  it->second.revoked_at = now;
  absl::erase_if(enrollments_, [&](const auto& e) { return e.second.host_id == host_id; });
  return absl::OkStatus();
}

absl::Status IdentityStore::DeleteHost(const std::string& host_id, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = hosts_.find(host_id);
  if (it == hosts_.end()) return absl::NotFoundError(absl::StrCat("no host ", host_id));
  // The row stays as a revoked tombstone: without it, a token central minted for this
  // host before the delete would find no record and pass as an unenrolled host's.
  auto written = db_->Execute(
      {{"UPDATE hosts SET caps = '', public_key = NULL, revoked_at = ? WHERE host_id = ?", {Unix(now), host_id}},
       {"DELETE FROM enrollments WHERE host_id = ?", {host_id}}});
  if (!written.ok()) return written.status();
  it->second.caps.clear();
  it->second.public_key_pem.clear();
  it->second.revoked_at = now;
  absl::erase_if(enrollments_, [&](const auto& e) { return e.second.host_id == host_id; });
  return absl::OkStatus();
}

void IdentityStore::ForgetExpired(absl::Time now) {
  absl::MutexLock lock(&mu_);
  bool any = false;
  for (const auto& [jti, until] : revoked_) any = any || until < now;
  for (const auto& [hash, e] : enrollments_) any = any || e.expires_at < now;
  if (!any) return;
  auto written = db_->Execute({{"DELETE FROM revoked_tokens WHERE keep_until < ?", {Unix(now)}},
                               {"DELETE FROM enrollments WHERE expires_at < ?", {Unix(now)}}});
  if (!written.ok()) return;  // kept in memory too; the next sweep tries again
  absl::erase_if(revoked_, [&](const auto& r) { return r.second < absl::FromUnixSeconds(Unix(now)); });
  absl::erase_if(enrollments_, [&](const auto& e) { return e.second.expires_at < absl::FromUnixSeconds(Unix(now)); });
}

}  // namespace coolify::broker
