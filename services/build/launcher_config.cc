#include "services/build/launcher_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <fstream>

#include "services/build/build_jail.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/builder/options.h"

namespace coolify::build {
namespace {

std::string Get(const BuildEnvLookup& env, const char* name, const char* fallback) {
  const char* value = env(name);
  return value != nullptr ? value : fallback;
}

absl::Status Bad(const char* name, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(name, ": ", why));
}

// "4G", "512M", "1073741824".
bool ParseBytes(absl::string_view text, uint64_t* bytes) {
  uint64_t scale = 1;
  if (absl::ConsumeSuffix(&text, "K")) scale = 1ULL << 10;
  else if (absl::ConsumeSuffix(&text, "M")) scale = 1ULL << 20;
  else if (absl::ConsumeSuffix(&text, "G")) scale = 1ULL << 30;
  uint64_t n = 0;
  if (!absl::SimpleAtoi(text, &n) || n == 0 || n > (1ULL << 50) / scale) return false;
  *bytes = n * scale;
  return true;
}

bool ParseSeconds(const std::string& text, absl::Duration min, absl::Duration max, int64_t* seconds) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < min || d > max) return false;
  *seconds = absl::ToInt64Seconds(d);
  return true;
}

bool IsAbsolutePath(const std::string& path) {
  if (path.empty() || path[0] != '/' || path.size() > 1024 || absl::StrContains(path, "/../") ||
      absl::EndsWith(path, "/..")) {
    return false;
  }
  for (char c : path) {
    if (!absl::ascii_isalnum(c) && c != '/' && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

bool IsCidr(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, '/');
  in_addr addr;
  int bits = 0;
  return parts.size() == 2 && inet_pton(AF_INET, parts[0].c_str(), &addr) == 1 &&
         absl::SimpleAtoi(parts[1], &bits) && bits >= 0 && bits <= 32;
}

// Never reachable from a build, whatever COOLD_BUILD_ALLOW_CIDRS says: "this network",
// loopback, link-local (cloud metadata at 169.254.169.254), multicast and reserved.
constexpr const char* kAlwaysDenied[] = {"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4"};
// Denied unless COOLD_BUILD_ALLOW_CIDRS opens them: the private and shared ranges, where
// a host's neighbours, its mesh and its containers live.
constexpr const char* kDeniedByDefault[] = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"};

std::vector<Cidr> Parsed(const std::vector<std::string>& texts) {
  std::vector<Cidr> cidrs;
  for (const std::string& t : texts) cidrs.push_back(*ParseCidr(t));
  return cidrs;
}

// The deny list a build gets: the ranges always denied, `mandatory` (management and
// namespace gateway addresses, COOLD_BUILD_DENY_CIDRS), and the default private ranges
// that no allowed range covers. An allowed range that overlaps an always-denied or
// mandatory one is refused.
absl::StatusOr<std::vector<std::string>> DenyList(const std::vector<std::string>& mandatory,
                                                  const std::vector<std::string>& allow) {
  std::vector<std::string> must(std::begin(kAlwaysDenied), std::end(kAlwaysDenied));
  must.insert(must.end(), mandatory.begin(), mandatory.end());
  const std::vector<Cidr> allowed = Parsed(allow);
  for (const Cidr& a : allowed) {
    for (const std::string& m : must) {
      if (a.Overlaps(*ParseCidr(m))) {
        return absl::InvalidArgumentError(absl::StrCat(FormatCidr(a), " overlaps ", m, ", which builds may never reach"));
      }
    }
  }
  std::vector<std::string> deny = must;
  for (const char* d : kDeniedByDefault) {
    const Cidr range = *ParseCidr(d);
    bool opened = false;
    for (const Cidr& a : allowed) opened = opened || a.Contains(range);
    if (!opened && std::find(deny.begin(), deny.end(), d) == deny.end()) deny.push_back(d);
  }
  return deny;
}

// systemd is PID 1 when /proc/1/comm says so (the systemd backend needs its D-Bus API).
bool SystemdIsInit() {
  std::ifstream comm("/proc/1/comm");
  std::string name;
  std::getline(comm, name);
  return name == "systemd";
}

}  // namespace

absl::StatusOr<std::vector<std::string>> LauncherArgsFromEnv(const BuildEnvLookup& env, uint32_t capacity) {
  std::vector<std::string> args;
  std::string dir = Get(env, "COOLD_BUILDS_DIR", "/var/lib/coolify/builds");
  if (!IsAbsolutePath(dir)) return Bad("COOLD_BUILDS_DIR", "must be an absolute path of [A-Za-z0-9._/-]");
  args.push_back("--builds-dir=" + dir);
  std::string backend = Get(env, "COOLD_BUILD_BACKEND", "auto");
  if (backend == "auto") backend = SystemdIsInit() ? "systemd" : "native";
  if (backend != "native" && backend != "systemd") return Bad("COOLD_BUILD_BACKEND", "must be auto, native or systemd");
  args.push_back("--backend=" + backend);
  args.push_back(absl::StrCat("--capacity=", capacity));
  uint64_t memory = 0;
  if (!ParseBytes(Get(env, "COOLD_BUILD_MEMORY_MAX", "4G"), &memory) || memory < (64ULL << 20)) {
    return Bad("COOLD_BUILD_MEMORY_MAX", "bytes with an optional K/M/G suffix, at least 64M");
  }
  args.push_back(absl::StrCat("--memory-max=", memory));
  double cpus = 0;
  if (!absl::SimpleAtod(Get(env, "COOLD_BUILD_CPUS", "2"), &cpus) || cpus < 0.1 || cpus > 256) {
    return Bad("COOLD_BUILD_CPUS", "a number of CPUs, 0.1..256");
  }
  args.push_back(absl::StrCat("--cpu-millis=", static_cast<uint32_t>(cpus * 1000)));
  uint32_t pids = 0;
  if (!absl::SimpleAtoi(Get(env, "COOLD_BUILD_PIDS_MAX", "4096"), &pids) || pids < 64 || pids > 1000000) {
    return Bad("COOLD_BUILD_PIDS_MAX", "must be 64..1000000");
  }
  args.push_back(absl::StrCat("--pids-max=", pids));
  int64_t seconds = 0;
  if (!ParseSeconds(Get(env, "COOLD_BUILD_TIMEOUT", "1h"), absl::Seconds(10), absl::Hours(24), &seconds)) {
    return Bad("COOLD_BUILD_TIMEOUT", "a duration (\"30m\", \"2h\") of 10s..24h");
  }
  args.push_back(absl::StrCat("--timeout-seconds=", seconds));
  if (!ParseSeconds(Get(env, "COOLD_BUILD_KILL_GRACE", "10s"), absl::Seconds(1), absl::Minutes(5), &seconds)) {
    return Bad("COOLD_BUILD_KILL_GRACE", "a duration of 1s..5m");
  }
  args.push_back(absl::StrCat("--kill-grace-seconds=", seconds));
  for (auto [name, flag] : {std::pair{"COOLD_BUILDER_STORAGE_ROOT", "--storage-root="},
                            std::pair{"COOLD_BUILDER_STORAGE_RUNROOT", "--storage-runroot="},
                            std::pair{"COOLD_BUILDER_CONTAINERS_CONF", "--containers-conf="}}) {
    std::string value = Get(env, name, "");
    if (value.empty()) continue;
    if (!IsAbsolutePath(value)) return Bad(name, "must be an absolute path of [A-Za-z0-9._/-]");
    args.push_back(flag + value);
  }
  std::string file_urls = Get(env, "COOLD_BUILDER_ALLOW_FILE_URLS", "0");
  if (file_urls != "0" && file_urls != "1") return Bad("COOLD_BUILDER_ALLOW_FILE_URLS", "must be 1 or 0/unset");
  if (file_urls == "1") args.push_back("--allow-file-urls");
  // What a build may never reach besides the fixed ranges: the management address and
  // every namespace's gateway (the DNS listeners and the bridges the host serves),
  // and what the operator adds.
  std::vector<std::string> mandatory, allow;
  if (const char* ip = env("COOLD_HOST_MGMT_IP"); ip != nullptr && IsCidr(absl::StrCat(ip, "/32"))) {
    mandatory.push_back(absl::StrCat(ip, "/32"));
  }
  for (absl::string_view ns : absl::StrSplit(Get(env, "COOLD_NAMESPACES", ""), ',', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(ns, ':');
    if (parts.size() == 3 && parts[2] != "0.0.0.0" && IsCidr(parts[2] + "/32")) mandatory.push_back(parts[2] + "/32");
  }
  for (absl::string_view cidr : absl::StrSplit(Get(env, "COOLD_BUILD_DENY_CIDRS", ""), ',', absl::SkipEmpty())) {
    if (!IsCidr(std::string(cidr))) return Bad("COOLD_BUILD_DENY_CIDRS", "a comma-separated list of IPv4 CIDRs");
    mandatory.emplace_back(cidr);
  }
  for (absl::string_view cidr : absl::StrSplit(Get(env, "COOLD_BUILD_ALLOW_CIDRS", ""), ',', absl::SkipEmpty())) {
    if (!IsCidr(std::string(cidr))) return Bad("COOLD_BUILD_ALLOW_CIDRS", "a comma-separated list of IPv4 CIDRs");
    allow.emplace_back(cidr);
  }
  if (absl::StatusOr<std::vector<std::string>> deny = DenyList(mandatory, allow); !deny.ok()) {
    return Bad("COOLD_BUILD_ALLOW_CIDRS", deny.status().message());
  }
  for (const std::string& cidr : mandatory) args.push_back("--deny-cidr=" + cidr);
  for (const std::string& cidr : allow) args.push_back("--allow-cidr=" + cidr);
  std::string network = Get(env, "COOLD_BUILD_NETWORK", "slirp4netns");
  if (network != "slirp4netns" && network != "none") return Bad("COOLD_BUILD_NETWORK", "must be slirp4netns or none");
  args.push_back("--network=" + network);
  uint64_t base = 0;
  if (!absl::SimpleAtoi(Get(env, "COOLD_BUILD_UID_BASE", "1879048192"), &base) || base < kJailIds ||
      base + 64ULL * kJailIds > 4294967294ULL) {
    return Bad("COOLD_BUILD_UID_BASE", "a uid of 65536..4290772990 (64 slots of 65536 ids above it)");
  }
  args.push_back(absl::StrCat("--uid-base=", base));
  std::string images = Get(env, "COOLD_BUILD_IMAGES_DIR", "");
  if (!images.empty()) {
    if (!IsAbsolutePath(images)) return Bad("COOLD_BUILD_IMAGES_DIR", "must be an absolute path of [A-Za-z0-9._/-]");
    args.push_back("--images-dir=" + images);
    // Set empty: no store, each build loads the archives into its own storage.
    // By default beside the builds directory: /var/lib/coolify/build-base.
    std::string store = Get(env, "COOLD_BUILD_BASE_STORE_DIR", (dir.substr(0, dir.rfind('/')) + "/build-base").c_str());
    if (!store.empty() && !IsAbsolutePath(store)) {
      return Bad("COOLD_BUILD_BASE_STORE_DIR", "must be an absolute path of [A-Za-z0-9._/-]");
    }
    if (!store.empty()) args.push_back("--base-store-dir=" + store);
  }
  std::string driver = Get(env, "COOLD_BUILD_STORAGE_DRIVER", "overlay");
  if (driver != "overlay" && driver != "vfs") return Bad("COOLD_BUILD_STORAGE_DRIVER", "must be overlay or vfs");
  args.push_back("--build-storage-driver=" + driver);
  return args;
}

absl::StatusOr<LauncherConfig> ParseLauncherArgs(const std::vector<std::string>& args) {
  LauncherConfig c;
  std::vector<std::string> mandatory;
  for (const std::string& arg : args) {
    if (arg == "--allow-file-urls") {
      c.builder_args.push_back(arg);
      continue;
    }
    size_t eq = arg.find('=');
    if (!absl::StartsWith(arg, "--") || eq == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument ", absl::CEscape(arg)));
    }
    const std::string name = arg.substr(2, eq - 2), value = arg.substr(eq + 1);
    uint64_t n = 0;
    bool number = absl::SimpleAtoi(value, &n);
    if (name == "builds-dir" && IsAbsolutePath(value)) {
      c.builds_dir = value;
    } else if (name == "builder" && IsAbsolutePath(value)) {
      c.builder_path = value;
    } else if (name == "backend" && (value == "native" || value == "systemd")) {
      c.backend = value == "native" ? Backend::kNative : Backend::kSystemd;
    } else if (name == "capacity" && number && n >= 1 && n <= 64) {
      c.capacity = static_cast<uint32_t>(n);
    } else if (name == "memory-max" && number && n > 0) {
      c.limits.memory_bytes = n;
    } else if (name == "cpu-millis" && number && n > 0 && n <= 256000) {
      c.limits.cpu_millis = static_cast<uint32_t>(n);
    } else if (name == "pids-max" && number && n > 0 && n <= 1000000) {
      c.limits.pids = static_cast<uint32_t>(n);
    } else if (name == "timeout-seconds" && number && n > 0) {
      c.timeout = absl::Seconds(static_cast<int64_t>(n));
    } else if (name == "kill-grace-seconds" && number && n > 0) {
      c.kill_grace = absl::Seconds(static_cast<int64_t>(n));
    } else if ((name == "storage-root" || name == "storage-runroot") && IsAbsolutePath(value)) {
      c.builder_args.push_back(arg);
      c.read_write_paths.push_back(value);
    } else if (name == "containers-conf" && IsAbsolutePath(value)) {
      c.builder_env.push_back("CONTAINERS_CONF=" + value);
    } else if (name == "namespace" && IsNamespaceName(value)) {
      // The builder checks its image's name against these (one grammar, options.h).
      c.builder_args.push_back(arg);
    } else if (name == "deny-cidr" && IsCidr(value)) {
      mandatory.push_back(value);
    } else if (name == "allow-cidr" && IsCidr(value)) {
      c.allow_cidrs.push_back(value);
    } else if (name == "network" && (value == "slirp4netns" || value == "none")) {
      c.jail.network = value == "none" ? JailNetwork::kNone : JailNetwork::kSlirp;
    } else if (name == "uid-base" && number && n >= kJailIds && n + 64ULL * kJailIds <= 4294967294ULL) {
      c.jail.uid_base = static_cast<uid_t>(n);
    } else if (name == "images-dir" && IsAbsolutePath(value)) {
      c.jail.images_dir = value;
    } else if (name == "base-store-dir" && IsAbsolutePath(value)) {
      c.base_store_dir = value;
    } else if (name == "build-storage-driver" && (value == "overlay" || value == "vfs")) {
      c.storage_driver = value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("bad argument ", absl::CEscape(arg)));
    }
  }
  if (c.builder_path.empty()) return absl::InvalidArgumentError("--builder= is required");
  absl::StatusOr<std::vector<std::string>> deny = DenyList(mandatory, c.allow_cidrs);
  if (!deny.ok()) return deny.status();
  c.deny_cidrs = *deny;
  c.jail.deny = Parsed(c.deny_cidrs);
  c.jail.allow = Parsed(c.allow_cidrs);
  // Without explicit storage flags buildah uses Podman's own default store; the systemd
  // unit must be allowed to write there.
  if (c.read_write_paths.empty()) c.read_write_paths = {"/var/lib/containers/storage", "/run/containers/storage"};
  return c;
}

}  // namespace coolify::build
