#include "services/build/launcher_config.h"

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coolify::build {
namespace {

absl::StatusOr<LauncherConfig> FromEnv(std::map<std::string, std::string> env) {
  auto args = LauncherArgsFromEnv(
      [&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      3);
  if (!args.ok()) return args.status();
  args->push_back("--builder=/usr/libexec/coold/builder");
  return ParseLauncherArgs(*args);
}

TEST(LauncherConfig, Defaults) {
  absl::StatusOr<LauncherConfig> c = FromEnv({{"COOLD_BUILD_BACKEND", "native"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->builds_dir, "/var/lib/coolify/builds");
  EXPECT_EQ(c->capacity, 3u);
  EXPECT_EQ(c->limits.memory_bytes, 4ULL << 30);
  EXPECT_EQ(c->limits.cpu_millis, 2000u);
  EXPECT_EQ(c->limits.pids, 4096u);
  EXPECT_EQ(c->timeout, absl::Hours(1));
  EXPECT_EQ(c->kill_grace, absl::Seconds(10));
  EXPECT_TRUE(c->builder_args.empty());
  EXPECT_EQ(c->read_write_paths, (std::vector<std::string>{"/var/lib/containers/storage", "/run/containers/storage"}));
}

TEST(LauncherConfig, EveryVariable) {
  absl::StatusOr<LauncherConfig> c = FromEnv({{"COOLD_BUILDS_DIR", "/srv/builds"},
                                              {"COOLD_BUILD_BACKEND", "systemd"},
                                              {"COOLD_BUILD_MEMORY_MAX", "512M"},
                                              {"COOLD_BUILD_CPUS", "1.5"},
                                              {"COOLD_BUILD_PIDS_MAX", "1000"},
                                              {"COOLD_BUILD_TIMEOUT", "30m"},
                                              {"COOLD_BUILD_KILL_GRACE", "3s"},
                                              {"COOLD_BUILDER_STORAGE_ROOT", "/srv/storage"},
                                              {"COOLD_BUILDER_STORAGE_RUNROOT", "/run/storage"},
                                              {"COOLD_BUILDER_CONTAINERS_CONF", "/etc/coolify/containers.conf"},
                                              {"COOLD_BUILDER_ALLOW_FILE_URLS", "1"},
                                              {"COOLD_BUILD_DENY_CIDRS", "100.64.0.0/10,10.210.0.0/16"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->backend, Backend::kSystemd);
  EXPECT_EQ(c->builds_dir, "/srv/builds");
  EXPECT_EQ(c->limits.memory_bytes, 512ULL << 20);
  EXPECT_EQ(c->limits.cpu_millis, 1500u);
  EXPECT_EQ(c->limits.pids, 1000u);
  EXPECT_EQ(c->timeout, absl::Minutes(30));
  EXPECT_EQ(c->kill_grace, absl::Seconds(3));
  EXPECT_EQ(c->builder_args, (std::vector<std::string>{"--storage-root=/srv/storage", "--storage-runroot=/run/storage",
                                                       "--allow-file-urls"}));
  EXPECT_EQ(c->builder_env, std::vector<std::string>{"CONTAINERS_CONF=/etc/coolify/containers.conf"});
  EXPECT_EQ(c->deny_cidrs, (std::vector<std::string>{"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4",
                                                     "240.0.0.0/4", "100.64.0.0/10", "10.210.0.0/16", "10.0.0.0/8",
                                                     "172.16.0.0/12", "192.168.0.0/16"}));
}

TEST(LauncherConfig, JailDefaults) {
  absl::StatusOr<LauncherConfig> c = FromEnv({{"COOLD_BUILD_BACKEND", "native"},
                                              {"COOLD_HOST_MGMT_IP", "10.9.0.5"},
                                              {"COOLD_NAMESPACES", "default:mesh:0.0.0.0,acme:acme-net:10.89.3.1"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->jail.uid_base, 1879048192u);
  EXPECT_EQ(c->jail.network, JailNetwork::kSlirp);
  EXPECT_EQ(c->jail.images_dir, "");
  EXPECT_EQ(c->base_store_dir, "");
  EXPECT_EQ(c->storage_driver, "overlay");
  // Always: the fixed ranges, the management address, each namespace's gateway; by
  // default: the private and shared ranges.
  EXPECT_EQ(c->deny_cidrs, (std::vector<std::string>{"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4",
                                                     "240.0.0.0/4", "10.9.0.5/32", "10.89.3.1/32", "10.0.0.0/8",
                                                     "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"}));
  EXPECT_EQ(c->jail.deny.size(), c->deny_cidrs.size());
  EXPECT_TRUE(c->jail.allow.empty());
}

TEST(LauncherConfig, AllowedRangesOpenDefaultsButNeverWhatIsAlwaysDenied) {
  absl::StatusOr<LauncherConfig> c = FromEnv({{"COOLD_BUILD_BACKEND", "native"},
                                              {"COOLD_HOST_MGMT_IP", "10.9.0.5"},
                                              {"COOLD_BUILD_ALLOW_CIDRS", "192.168.0.0/16,172.20.1.0/24"},
                                              {"COOLD_BUILD_NETWORK", "none"},
                                              {"COOLD_BUILD_UID_BASE", "3000000000"},
                                              {"COOLD_BUILD_IMAGES_DIR", "/srv/base-images"},
                                              {"COOLD_BUILD_STORAGE_DRIVER", "vfs"}});
  ASSERT_TRUE(c.ok()) << c.status();
  // 192.168/16 is opened whole (no deny route left for it); 172.20.1.0/24 is routed
  // through a hole in the 172.16/12 deny.
  EXPECT_EQ(c->deny_cidrs, (std::vector<std::string>{"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4",
                                                     "240.0.0.0/4", "10.9.0.5/32", "10.0.0.0/8", "172.16.0.0/12",
                                                     "100.64.0.0/10"}));
  EXPECT_EQ(c->allow_cidrs, (std::vector<std::string>{"192.168.0.0/16", "172.20.1.0/24"}));
  EXPECT_EQ(c->jail.network, JailNetwork::kNone);
  EXPECT_EQ(c->jail.uid_base, 3000000000u);
  EXPECT_EQ(c->jail.images_dir, "/srv/base-images");
  EXPECT_EQ(c->base_store_dir, "/var/lib/coolify/build-base");
  EXPECT_EQ(c->storage_driver, "vfs");
  // Each overlaps something always denied (10.0.0.0/8 and 10.9.0.0/24 the management
  // address).
  for (const char* bad : {"10.0.0.0/8", "10.9.0.0/24", "169.254.169.254/32", "127.0.0.0/16", "0.0.0.0/0"}) {
    absl::StatusOr<LauncherConfig> refused = FromEnv({{"COOLD_BUILD_BACKEND", "native"},
                                                      {"COOLD_HOST_MGMT_IP", "10.9.0.5"},
                                                      {"COOLD_BUILD_ALLOW_CIDRS", bad}});
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_THAT(std::string(refused.status().message()), ::testing::StartsWith("COOLD_BUILD_ALLOW_CIDRS: ")) << bad;
    EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("builds may never reach")) << bad;
  }
}

TEST(LauncherConfig, BadValuesNameTheVariable) {
  for (auto [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"COOLD_BUILDS_DIR", "relative"},
           {"COOLD_BUILDS_DIR", "/a/../etc"},
           {"COOLD_BUILD_BACKEND", "docker"},
           {"COOLD_BUILD_MEMORY_MAX", "1T"},
           {"COOLD_BUILD_MEMORY_MAX", "1M"},
           {"COOLD_BUILD_CPUS", "0"},
           {"COOLD_BUILD_PIDS_MAX", "10"},
           {"COOLD_BUILD_TIMEOUT", "forever"},
           {"COOLD_BUILD_TIMEOUT", "48h"},
           {"COOLD_BUILD_KILL_GRACE", "0s"},
           {"COOLD_BUILDER_STORAGE_ROOT", "/srv/with space"},
           {"COOLD_BUILDER_ALLOW_FILE_URLS", "yes"},
           {"COOLD_BUILD_DENY_CIDRS", "10.0.0.0/33"},
           {"COOLD_BUILD_ALLOW_CIDRS", "somewhere"},
           {"COOLD_BUILD_NETWORK", "host"},
           {"COOLD_BUILD_UID_BASE", "1000"},
           {"COOLD_BUILD_UID_BASE", "4294967000"},
           {"COOLD_BUILD_IMAGES_DIR", "images"},
           {"COOLD_BUILD_STORAGE_DRIVER", "btrfs"},
       }) {
    std::map<std::string, std::string> env = {{"COOLD_BUILD_BACKEND", "native"}};
    env[name] = value;
    absl::StatusOr<LauncherConfig> c = FromEnv(env);
    ASSERT_FALSE(c.ok()) << name << "=" << value;
    EXPECT_EQ(c.status().message().substr(0, name.size()), name) << c.status();
  }
}

TEST(LauncherConfig, BaseImageStoreBesideTheBuildsOnlyWithImages) {
  absl::StatusOr<LauncherConfig> c = FromEnv({{"COOLD_BUILD_BACKEND", "native"},
                                              {"COOLD_BUILDS_DIR", "/srv/coolify/builds"},
                                              {"COOLD_BUILD_IMAGES_DIR", "/srv/base-images"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->base_store_dir, "/srv/coolify/build-base");
  c = FromEnv({{"COOLD_BUILD_BACKEND", "native"},
               {"COOLD_BUILD_IMAGES_DIR", "/srv/base-images"},
               {"COOLD_BUILD_BASE_STORE_DIR", "/srv/store"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->base_store_dir, "/srv/store");
  c = FromEnv({{"COOLD_BUILD_BACKEND", "native"},
               {"COOLD_BUILD_IMAGES_DIR", "/srv/base-images"},
               {"COOLD_BUILD_BASE_STORE_DIR", ""}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->base_store_dir, "");
  c = FromEnv({{"COOLD_BUILD_BACKEND", "native"},
               {"COOLD_BUILD_IMAGES_DIR", "/srv/base-images"},
               {"COOLD_BUILD_BASE_STORE_DIR", "store"}});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), ::testing::StartsWith("COOLD_BUILD_BASE_STORE_DIR: "));
}

TEST(LauncherConfig, LauncherArgvIsStrict) {
  EXPECT_FALSE(ParseLauncherArgs({"--builder=/b", "--capacity=0"}).ok());
  EXPECT_FALSE(ParseLauncherArgs({"--builder=/b", "--unknown=1"}).ok());
  EXPECT_FALSE(ParseLauncherArgs({"--capacity=2"}).ok());  // no builder
  EXPECT_FALSE(ParseLauncherArgs({"--builder=/b", "positional"}).ok());
}

}  // namespace
}  // namespace coolify::build
