#include "services/build/launcher_config.h"

#include <map>

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
  EXPECT_EQ(c->deny_cidrs, (std::vector<std::string>{"100.64.0.0/10", "10.210.0.0/16"}));
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
       }) {
    std::map<std::string, std::string> env = {{"COOLD_BUILD_BACKEND", "native"}};
    env[name] = value;
    absl::StatusOr<LauncherConfig> c = FromEnv(env);
    ASSERT_FALSE(c.ok()) << name << "=" << value;
    EXPECT_EQ(c.status().message().substr(0, name.size()), name) << c.status();
  }
}

TEST(LauncherConfig, LauncherArgvIsStrict) {
  EXPECT_FALSE(ParseLauncherArgs({"--builder=/b", "--capacity=0"}).ok());
  EXPECT_FALSE(ParseLauncherArgs({"--builder=/b", "--unknown=1"}).ok());
  EXPECT_FALSE(ParseLauncherArgs({"--capacity=2"}).ok());  // no builder
  EXPECT_FALSE(ParseLauncherArgs({"--builder=/b", "positional"}).ok());
}

}  // namespace
}  // namespace coolify::build
