#include "privsep/proc_status.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "privsep/unique_fd.h"

namespace coolify::privsep {
namespace {

absl::Status Malformed(absl::string_view key, absl::string_view value) {
  return absl::InvalidArgumentError(
      absl::StrCat("proc status: malformed ", key, " \"", value, "\""));
}

// The four whitespace-separated decimal numbers of `value` (Uid and Gid list real,
// effective, saved and filesystem ids, in that order).
absl::Status FourIds(absl::string_view key, absl::string_view value, uint32_t (&out)[4]) {
  std::vector<absl::string_view> fields = absl::StrSplit(value, '\t', absl::SkipWhitespace());
  if (fields.size() != 4) return Malformed(key, value);
  for (int i = 0; i < 4; ++i) {
    if (!absl::SimpleAtoi(fields[i], &out[i])) return Malformed(key, value);
  }
  return absl::OkStatus();
}

absl::Status Number(absl::string_view key, absl::string_view value, uint32_t* out) {
  if (!absl::SimpleAtoi(value, out)) return Malformed(key, value);
  return absl::OkStatus();
}

// Capability sets are printed as exactly 16 hex digits.
absl::Status CapSet(absl::string_view key, absl::string_view value, uint64_t* out) {
  if (value.size() != 16 || !absl::SimpleHexAtoi(value, out)) return Malformed(key, value);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ProcStatus> ParseProcStatus(absl::string_view text) {
  ProcStatus status;
  absl::flat_hash_set<std::string> seen;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    const absl::string_view key = line.substr(0, colon);
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    absl::Status s;
    if (key == "Uid") {
      s = FourIds(key, value, status.uids);
      status.uid = status.uids[0];
    } else if (key == "Gid") {
      s = FourIds(key, value, status.gids);
      status.gid = status.gids[0];
    } else if (key == "Groups") {
      std::vector<absl::string_view> groups = absl::StrSplit(value, ' ', absl::SkipWhitespace());
      for (absl::string_view g : groups) {
        uint32_t id;
        if (!absl::SimpleAtoi(g, &id)) return Malformed(key, value);
        status.group_ids.push_back(id);
      }
      status.groups = static_cast<uint32_t>(groups.size());
    } else if (key == "Threads") {
      s = Number(key, value, &status.threads);
    } else if (key == "CapInh") {
      s = CapSet(key, value, &status.cap_inh);
    } else if (key == "CapPrm") {
      s = CapSet(key, value, &status.cap_prm);
    } else if (key == "CapEff") {
      s = CapSet(key, value, &status.cap_eff);
    } else if (key == "CapBnd") {
      s = CapSet(key, value, &status.cap_bnd);
    } else if (key == "CapAmb") {
      s = CapSet(key, value, &status.cap_amb);
    } else if (key == "NoNewPrivs") {
      if (value != "0" && value != "1") return Malformed(key, value);
      status.no_new_privs = value == "1";
    } else if (key == "Seccomp") {
      s = Number(key, value, &status.seccomp);
      if (s.ok() && status.seccomp > 2) return Malformed(key, value);
    } else if (key == "Seccomp_filters") {
      uint32_t filters = 0;
      s = Number(key, value, &filters);
      status.seccomp_filters = static_cast<int>(filters);
    } else {
      continue;
    }
    if (!s.ok()) return s;
    if (!seen.insert(std::string(key)).second) {
      return absl::InvalidArgumentError(absl::StrCat("proc status: ", key, " appears twice"));
    }
  }
  for (const char* key : {"Uid", "Gid", "Groups", "Threads", "CapInh", "CapPrm", "CapEff",
                          "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"}) {
    if (!seen.contains(key)) {
      return absl::InvalidArgumentError(absl::StrCat("proc status: no ", key, " line"));
    }
  }
  return status;
}

absl::StatusOr<ProcStatus> ReadProcStatus(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/status");
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  return ReadProcStatusFd(fd.get());
}

absl::StatusOr<ProcStatus> ReadProcStatusFd(int fd) {
  std::string text;
  char buf[4096];
  for (off_t offset = 0;;) {
    const ssize_t n = pread(fd, buf, sizeof(buf), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "read proc status");
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  return ParseProcStatus(text);
}

}  // namespace coolify::privsep
