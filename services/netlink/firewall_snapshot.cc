#include "services/netlink/firewall_snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "privsep/unique_fd.h"
#include "privsep/validate.h"

namespace coolify::netlink {
namespace {

// A snapshot larger than this is not ours: 10,000 rules take about 1.5 MB.
constexpr off_t kMaxSnapshotBytes = 64 << 20;

// Room per rule when reserving the output, so the string grows once.
constexpr size_t kBytesPerRule = 192;

absl::Status Errno(int error, std::string_view what) {
  return absl::InternalError(absl::StrFormat("%s: %s", what, std::strerror(error)));
}

absl::Status CheckName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrFormat("snapshot file name \"%s\" is not a plain file name", name));
  }
  return absl::OkStatus();
}

// "a.b.c.d/len", appended without the temporaries FormatIpv4Prefix makes: rendering
// runs after every mutation, over every rule.
void AppendPrefix(std::string* out, const Ipv4Prefix& prefix) {
  const uint32_t a = prefix.address;
  absl::StrAppend(out, a >> 24, ".", (a >> 16) & 0xff, ".", (a >> 8) & 0xff, ".", a & 0xff,
                  "/", prefix.length);
}

std::string TemporaryName(const std::string& name) { return absl::StrCat(".", name, ".tmp"); }

// Writes `contents` to the temporary file beside `name` and makes it durable.
absl::Status WriteTemporary(int dir_fd, const std::string& name, std::string_view contents) {
  const std::string temporary = TemporaryName(name);
  // O_TRUNC: a temporary file left by a crash is simply overwritten.
  privsep::UniqueFd fd(openat(dir_fd, temporary.c_str(),
                              O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return Errno(errno, absl::StrFormat("create %s", temporary));
  for (size_t done = 0; done < contents.size();) {
    const ssize_t n = write(fd.get(), contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(errno, absl::StrFormat("write %s", temporary));
    done += static_cast<size_t>(n);
  }
  if (fsync(fd.get()) != 0) return Errno(errno, absl::StrFormat("fsync %s", temporary));
  // close() reports late write errors on some file systems; a snapshot that may be
  // incomplete must not be renamed into place.
  if (close(fd.release()) != 0) return Errno(errno, absl::StrFormat("close %s", temporary));
  return absl::OkStatus();
}

}  // namespace

namespace {

// The comment as iptables-save prints it (xtables_save_string): bare when it holds only
// letters, digits, "_" and "-", else in double quotes. A rule id never holds a quote or a
// backslash (privsep::ValidateFirewallRuleId), so nothing inside needs escaping.
std::string SavedComment(const std::string& id) {
  const bool bare = !id.empty() && id.find_first_not_of("_-0123456789abcdefghijklmnopqrstuvwxyz"
                                                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos;
  return bare ? id : absl::StrCat("\"", id, "\"");
}

}  // namespace

std::string RenderIptablesSnapshot(const FirewallIndex& index) {
  std::string out;
  out.reserve(128 + index.size() * kBytesPerRule);
  out += "# coold allow rules, ip filter COOLIFY-ALLOW: iptables-restore --noflush FILE\n";
  out += "*filter\n:COOLIFY-ALLOW - [0:0]\n-F COOLIFY-ALLOW\n";
  for (const FirewallEntry& entry : index) {
    const Rule& rule = entry.rule;
    if (!rule.namespace_name.empty()) {
      absl::StrAppend(&out, "# id ", entry.id, " namespace ", rule.namespace_name, "\n");
    }
    out += "-A COOLIFY-ALLOW";
    // iptables-save leaves out an address that matches everything.
    if (rule.src.length > 0) {
      out += " -s ";
      AppendPrefix(&out, rule.src);
    }
    if (rule.dst.length > 0) {
      out += " -d ";
      AppendPrefix(&out, rule.dst);
    }
    const absl::string_view proto(ProtocolName(rule.protocol).data(),
                                  ProtocolName(rule.protocol).size());
    absl::StrAppend(&out, " -p ", proto, " -m ", proto, " --dport ", rule.port,
                    " -m comment --comment ", SavedComment(entry.id), " -j ACCEPT\n");
  }
  out += "COMMIT\n";
  return out;
}

std::string RenderBridgeSnapshot(const FirewallIndex& index) {
  std::string out;
  out.reserve(128 + index.size() * kBytesPerRule);
  out += "# coold allow rules, bridge coolify_bridge coolify_allow: nft -f FILE\n";
  // `add` creates the table and chain where they are missing and leaves existing ones
  // (and an existing chain's type, hook and policy) as they are.
  out += "add table bridge coolify_bridge\n";
  out += "add chain bridge coolify_bridge coolify_allow\n";
  out += "flush chain bridge coolify_bridge coolify_allow\n";
  for (const FirewallEntry& entry : index) {
    const Rule& rule = entry.rule;
    const absl::string_view proto(ProtocolName(rule.protocol).data(),
                                  ProtocolName(rule.protocol).size());
    out += "add rule bridge coolify_bridge coolify_allow ip saddr ";
    AppendPrefix(&out, rule.src);
    out += " ip daddr ";
    AppendPrefix(&out, rule.dst);
    absl::StrAppend(&out, " meta l4proto ", proto, " th dport ", rule.port, " accept comment \"",
                    entry.id, "\"\n");
  }
  return out;
}

absl::Status WriteSnapshots(const SnapshotTarget& iptables, const SnapshotTarget& bridge,
                            const FirewallIndex& index) {
  for (const SnapshotTarget* target : {&iptables, &bridge}) {
    if (absl::Status valid = CheckName(target->name); !valid.ok()) return valid;
  }
  if (iptables.name == bridge.name && iptables.dir_fd == bridge.dir_fd) {
    return absl::InvalidArgumentError("the two snapshots need two file names");
  }
  if (absl::Status written = WriteTemporary(iptables.dir_fd, iptables.name, RenderIptablesSnapshot(index));
      !written.ok()) {
    return written;
  }
  if (absl::Status written = WriteTemporary(bridge.dir_fd, bridge.name, RenderBridgeSnapshot(index));
      !written.ok()) {
    return written;
  }
  for (const SnapshotTarget* target : {&iptables, &bridge}) {
    if (renameat(target->dir_fd, TemporaryName(target->name).c_str(), target->dir_fd, target->name.c_str()) != 0) {
      return Errno(errno, absl::StrFormat("rename %s over %s", TemporaryName(target->name), target->name));
    }
  }
  // The renames are durable only once the directories are.
  if (fsync(iptables.dir_fd) != 0) return Errno(errno, "fsync the snapshot directory");
  if (bridge.dir_fd != iptables.dir_fd && fsync(bridge.dir_fd) != 0) {
    return Errno(errno, "fsync the bridge snapshot directory");
  }
  return absl::OkStatus();
}

absl::Status WriteSnapshots(int dir_fd, const SnapshotNames& names, const FirewallIndex& index) {
  return WriteSnapshots(SnapshotTarget{dir_fd, names.iptables}, SnapshotTarget{dir_fd, names.bridge}, index);
}

NamespaceHints ParseSnapshotNamespaces(std::string_view iptables_snapshot) {
  NamespaceHints hints;
  for (absl::string_view line : absl::StrSplit(
           absl::string_view(iptables_snapshot.data(), iptables_snapshot.size()), '\n')) {
    const std::vector<absl::string_view> words = absl::StrSplit(line, ' ');
    if (words.size() != 5 || words[0] != "#" || words[1] != "id" || words[3] != "namespace") {
      continue;
    }
    const std::string_view id(words[2].data(), words[2].size());
    const std::string_view ns(words[4].data(), words[4].size());
    if (privsep::ValidateFirewallRuleId("id", id).ok() && privsep::ValidateNamespaceName("namespace", ns).ok()) {
      hints[std::string(id)] = std::string(ns);
    }
  }
  return hints;
}

absl::StatusOr<NamespaceHints> ReadSnapshotNamespaces(int dir_fd, const std::string& name) {
  if (absl::Status valid = CheckName(name); !valid.ok()) return valid;
  privsep::UniqueFd fd(openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd && errno == ENOENT) return NamespaceHints();
  if (!fd) return Errno(errno, absl::StrFormat("open %s", name));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return Errno(errno, absl::StrFormat("stat %s", name));
  if (!S_ISREG(st.st_mode) || st.st_size > kMaxSnapshotBytes) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s is not a regular file of at most %d bytes", name, kMaxSnapshotBytes));
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = read(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(errno, absl::StrFormat("read %s", name));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  text.resize(done);
  return ParseSnapshotNamespaces(text);
}

}  // namespace coolify::netlink
