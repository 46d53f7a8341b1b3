#include "services/build/build_cgroup.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace coolify::build {
namespace {

constexpr char kRoot[] = "/sys/fs/cgroup";

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Pure v2 has cgroup.controllers at the root; a hybrid host mounts v2 at unified/.
bool IsHybrid() { return !Exists(absl::StrCat(kRoot, "/cgroup.controllers")); }

std::string UnifiedRoot() { return IsHybrid() ? absl::StrCat(kRoot, "/unified") : kRoot; }

absl::Status WriteValue(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value;
  out.flush();
  if (!out) return absl::InternalError(absl::StrCat("write \"", value, "\" to ", path, ": ", strerror(errno)));
  return absl::OkStatus();
}

std::string ReadValue(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("mkdir ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

// Depth-first over the directories of a cgroup subtree, children before parents.
void Walk(const std::string& dir, const std::function<void(const std::string&)>& visit) {
  if (DIR* d = opendir(dir.c_str())) {
    std::vector<std::string> children;
    while (dirent* e = readdir(d)) {
      if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
        children.push_back(absl::StrCat(dir, "/", e->d_name));
      }
    }
    closedir(d);
    for (const std::string& child : children) Walk(child, visit);
  }
  visit(dir);
}

}  // namespace

absl::Status BuildCgroup::PrepareParent(const std::string& parent) {
  const std::string unified_parent = absl::StrCat(UnifiedRoot(), "/", parent);
  if (absl::Status s = MakeDir(unified_parent); !s.ok()) return s;
  if (!IsHybrid()) {
    // The controllers must be enabled on the way down before the leaf can use them.
    for (const std::string& dir : {std::string(kRoot), unified_parent}) {
      if (absl::Status s = WriteValue(dir + "/cgroup.subtree_control", "+memory +cpu +pids"); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  for (const char* controller : {"memory", "cpu", "pids"}) {
    if (absl::Status s = MakeDir(absl::StrCat(kRoot, "/", controller, "/", parent)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<BuildCgroup> BuildCgroup::Create(const std::string& parent, const std::string& name,
                                                const CgroupLimits& limits) {
  BuildCgroup cg;
  cg.hybrid_ = IsHybrid();
  // Already there when the monitor prepared it; made here for a launcher run alone.
  if (absl::Status s = PrepareParent(parent); !s.ok()) return s;
  cg.unified_ = absl::StrCat(UnifiedRoot(), "/", parent, "/", name);
  if (absl::Status s = MakeDir(cg.unified_); !s.ok()) return s;
  if (cg.hybrid_) {
    for (const char* controller : {"memory", "cpu", "pids"}) {
      const std::string controller_parent = absl::StrCat(kRoot, "/", controller, "/", parent);
      const std::string dir = absl::StrCat(controller_parent, "/", name);
      if (absl::Status s = MakeDir(dir); !s.ok()) return s;
      cg.v1_dirs_.push_back(dir);
    }
    cg.memory_dir_ = cg.v1_dirs_[0];
    if (limits.memory_bytes > 0) {
      // Swap counts too where the kernel accounts it, so a build cannot page its way past
      // the limit.
      if (absl::Status s = WriteValue(cg.v1_dirs_[0] + "/memory.limit_in_bytes", absl::StrCat(limits.memory_bytes));
          !s.ok()) {
        return s;
      }
      if (Exists(cg.v1_dirs_[0] + "/memory.memsw.limit_in_bytes")) {
        (void)WriteValue(cg.v1_dirs_[0] + "/memory.memsw.limit_in_bytes", absl::StrCat(limits.memory_bytes));
      }
    }
    if (limits.cpu_millis > 0) {
      if (absl::Status s = WriteValue(cg.v1_dirs_[1] + "/cpu.cfs_period_us", "100000"); !s.ok()) return s;
      if (absl::Status s = WriteValue(cg.v1_dirs_[1] + "/cpu.cfs_quota_us", absl::StrCat(limits.cpu_millis * 100));
          !s.ok()) {
        return s;
      }
    }
    if (limits.pids > 0) {
      if (absl::Status s = WriteValue(cg.v1_dirs_[2] + "/pids.max", absl::StrCat(limits.pids)); !s.ok()) return s;
    }
  } else {
    cg.memory_dir_ = cg.unified_;
    if (limits.memory_bytes > 0) {
      if (absl::Status s = WriteValue(cg.unified_ + "/memory.max", absl::StrCat(limits.memory_bytes)); !s.ok()) return s;
      (void)WriteValue(cg.unified_ + "/memory.swap.max", "0");
    }
    if (limits.cpu_millis > 0) {
      if (absl::Status s = WriteValue(cg.unified_ + "/cpu.max", absl::StrCat(limits.cpu_millis * 100, " 100000"));
          !s.ok()) {
        return s;
      }
    }
    if (limits.pids > 0) {
      if (absl::Status s = WriteValue(cg.unified_ + "/pids.max", absl::StrCat(limits.pids)); !s.ok()) return s;
    }
  }
  return cg;
}

absl::StatusOr<BuildCgroup> BuildCgroup::Open(const std::string& parent, const std::string& name) {
  BuildCgroup cg;
  cg.hybrid_ = IsHybrid();
  cg.unified_ = absl::StrCat(UnifiedRoot(), "/", parent, "/", name);
  if (!Exists(cg.unified_)) return absl::NotFoundError(absl::StrCat("no cgroup ", cg.unified_));
  if (cg.hybrid_) {
    for (const char* controller : {"memory", "cpu", "pids"}) {
      cg.v1_dirs_.push_back(absl::StrCat(kRoot, "/", controller, "/", parent, "/", name));
    }
    cg.memory_dir_ = cg.v1_dirs_[0];
  } else {
    cg.memory_dir_ = cg.unified_;
  }
  return cg;
}

std::vector<std::string> BuildCgroup::List(const std::string& parent) {
  std::vector<std::string> names;
  if (DIR* d = opendir(absl::StrCat(UnifiedRoot(), "/", parent).c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') names.push_back(e->d_name);
    }
    closedir(d);
  }
  return names;
}

absl::Status BuildCgroup::Add(pid_t pid) const {
  for (const std::string& dir : v1_dirs_) {
    if (absl::Status s = WriteValue(dir + "/cgroup.procs", absl::StrCat(pid)); !s.ok()) return s;
  }
  return WriteValue(unified_ + "/cgroup.procs", absl::StrCat(pid));
}

std::vector<pid_t> BuildCgroup::Processes() const {
  std::vector<pid_t> pids;
  Walk(unified_, [&](const std::string& dir) {
    for (absl::string_view line : absl::StrSplit(ReadValue(dir + "/cgroup.procs"), '\n', absl::SkipEmpty())) {
      pid_t pid = 0;
      if (absl::SimpleAtoi(line, &pid) && pid > 0) pids.push_back(pid);
    }
  });
  return pids;
}

bool BuildCgroup::Populated() const {
  // cgroup.events says "populated 1" while any process is in the subtree.
  for (absl::string_view line : absl::StrSplit(ReadValue(unified_ + "/cgroup.events"), '\n')) {
    if (line == "populated 1") return true;
  }
  return false;
}

void BuildCgroup::Signal(int signal) const {
  if (signal == SIGKILL && WriteValue(unified_ + "/cgroup.kill", "1").ok()) return;
  for (pid_t pid : Processes()) kill(pid, signal);
}

uint64_t BuildCgroup::OomKills() const {
  const std::string file = hybrid_ ? memory_dir_ + "/memory.oom_control" : memory_dir_ + "/memory.events";
  for (absl::string_view line : absl::StrSplit(ReadValue(file), '\n')) {
    uint64_t n = 0;
    if (absl::ConsumePrefix(&line, "oom_kill ") && absl::SimpleAtoi(line, &n)) return n;
  }
  return 0;
}

absl::Status BuildCgroup::Remove() const {
  absl::Status result;
  std::vector<std::string> tops = v1_dirs_;
  tops.push_back(unified_);
  for (const std::string& top : tops) {
    Walk(top, [&](const std::string& dir) {
      if (rmdir(dir.c_str()) != 0 && errno != ENOENT && result.ok()) {
        result = absl::InternalError(absl::StrCat("rmdir ", dir, ": ", strerror(errno)));
      }
    });
  }
  return result;
}

}  // namespace coolify::build
