// The firewall end to end, as an operator meets it: the real coold (monitor, front end,
// netlink writer) in a private network namespace, its HTTPS REST API driven with coolctl
// and curl, the kernel read back with iptables-save and nft, the snapshots read from disk.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"
#include "services/commands/json_value.h"
#include "tests/coold_testing.h"

namespace coolify {
namespace {

constexpr char kToken[] = "e2e-token-0123456789abcdef";
const int kPort = coolify::testing::FreeLoopbackPort();

std::string TmpDir() { return getenv("TEST_TMPDIR"); }

using testing::CommandRun;
using testing::Shell;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// iptables-save without the lines that change on their own (timestamps, counters).
std::string KernelState() {
  std::string state;
  std::istringstream lines(Shell("iptables-save").out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("#", 0) == 0) continue;
    if (line.rfind(":", 0) == 0) line = line.substr(0, line.find(' ', line.find(' ') + 1));
    state += line + "\n";
  }
  return state + Shell("nft list table bridge coolify_bridge").out;
}

std::string Sha256Prefix(const std::string& text) {
  CommandRun run = Shell("printf '%s' '" + text + "' | sha256sum");
  return run.out.substr(0, 12);
}

class FirewallE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // One private network namespace for the whole suite: the host firewall is never touched.
    ASSERT_EQ(unshare(CLONE_NEWNET), 0);
    ASSERT_EQ(Shell("ip link set lo up").status, 0);
    ASSERT_EQ(Shell("nft add table bridge coolify_bridge && "
                    "nft add chain bridge coolify_bridge coolify_allow '{ type filter hook forward priority 0; }'")
                  .status,
              0);
    dir_ = TmpDir() + "/e2e";
    ASSERT_EQ(Shell("mkdir -p " + dir_ + "/etc").status, 0);
    ASSERT_EQ(Shell("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
                    "-addext subjectAltName=IP:127.0.0.1 -keyout " + dir_ + "/key.pem -out " + dir_ + "/cert.pem")
                  .status,
              0);
    chmod((dir_ + "/key.pem").c_str(), 0600);
    std::ofstream(dir_ + "/token") << kToken << "\n";
    chmod((dir_ + "/token").c_str(), 0600);
    StartCoold();
  }

  static void TearDownTestSuite() {
    if (coold_) coold_->Stop();
    StopCoold();
  }

  static void StartCoold() {
    coold_ = std::make_unique<testing::CooldUnderTest>(std::vector<std::string>{
        "COOLD_HOST_MGMT_IP=127.0.0.1",
        "COOLD_API_BIND=127.0.0.1:" + std::to_string(kPort),
        "COOLD_API_TOKEN_FILE=" + dir_ + "/token",
        "COOLD_TLS_CERT=" + dir_ + "/cert.pem",
        "COOLD_TLS_KEY=" + dir_ + "/key.pem",
        "COOLD_RULES_PATH=" + dir_ + "/etc/allow.rules",
        "COOLD_BRIDGE_RULES_PATH=" + dir_ + "/etc/allow.nft",
        // No Podman behind it: the Podman routes answer 503, which coolctl must pass on.
        "COOLD_PODMAN_SOCKET=/tmp/coolctl-e2e-no-podman-" + std::to_string(getpid()) + ".sock",
    });
    ASSERT_TRUE(coold_->WaitForLog("REST API on")) << coold_->log();
  }

  static void StopCoold() { coold_.reset(); }

  // A crash, not a shutdown: no chance to tidy up. Then a fresh start.
  static void CrashAndRestart() {
    coold_->Kill();
    StartCoold();
  }

  static CommandRun Coolctl(const std::string& args) {
    return Shell("timeout 60 " + testing::Runfile("tools/coolctl/coolctl") + " --api https://127.0.0.1:" + std::to_string(kPort) +
                 " --cacert " + dir_ + "/cert.pem --token-file " + dir_ + "/token " + args);
  }

  // curl with the right token unless the caller passes its own -H Authorization; prints
  // the body, then the status code on its own last line.
  static CommandRun Curl(const std::string& args, bool with_token = true) {
    return Shell("curl -sS --max-time 60 --cacert " + dir_ + "/cert.pem -w '\\n%{http_code}' " +
                 (with_token ? std::string("-H 'Authorization: Bearer ") + kToken + "' " : "") + args);
  }

  static int StatusOf(const CommandRun& run) {
    return atoi(run.out.substr(run.out.rfind('\n') + 1).c_str());
  }

  static std::string Url(const std::string& path) {
    return "https://127.0.0.1:" + std::to_string(kPort) + path;
  }

  static inline std::unique_ptr<testing::CooldUnderTest> coold_;
  static inline std::string dir_;
};

TEST_F(FirewallE2E, AllowWritesBothPlanesAndTheSnapshotsWithTheGoCliId) {
  CommandRun run = Coolctl("firewall allow --namespace default --src 10.210.5.2 --dst 10.210.6.3 --proto tcp --port 80");
  ASSERT_EQ(run.status, 0) << run.out;
  const std::string id = Sha256Prefix("default|10.210.5.2|10.210.6.3|tcp|80");
  EXPECT_NE(run.out.find("\"id\":\"" + id + "\""), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("\"created\":true"), std::string::npos) << run.out;

  std::string saved = Shell("iptables-save -t filter").out;
  EXPECT_NE(saved.find("-A COOLIFY-ALLOW -s 10.210.5.2/32 -d 10.210.6.3/32 -p tcp -m tcp --dport 80 -m comment "
                       "--comment " + id + " -j ACCEPT"),
            std::string::npos)
      << saved;
  std::string bridge = Shell("nft list chain bridge coolify_bridge coolify_allow").out;
  EXPECT_NE(bridge.find("ip saddr 10.210.5.2 ip daddr 10.210.6.3"), std::string::npos) << bridge;
  EXPECT_NE(bridge.find(id), std::string::npos) << bridge;
  EXPECT_NE(ReadFile(dir_ + "/etc/allow.rules").find(id), std::string::npos);
  EXPECT_NE(ReadFile(dir_ + "/etc/allow.nft").find(id), std::string::npos);

  // The same tuple again: its id, nothing added.
  std::string before = KernelState();
  run = Coolctl("firewall allow --namespace default --src 10.210.5.2 --dst 10.210.6.3 --proto tcp --port 80");
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_NE(run.out.find("\"created\":false"), std::string::npos) << run.out;
  EXPECT_EQ(KernelState(), before);

  run = Coolctl("firewall list --namespace default");
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_NE(run.out.find(id), std::string::npos) << run.out;
  run = Coolctl("firewall list --namespace other");
  EXPECT_EQ(run.out.find(id), std::string::npos) << run.out;

  run = Coolctl("firewall delete " + id);
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_EQ(Shell("iptables-save -t filter").out.find(id), std::string::npos);
  EXPECT_EQ(ReadFile(dir_ + "/etc/allow.rules").find(id), std::string::npos);
  run = Coolctl("firewall delete " + id);
  EXPECT_EQ(run.status, 1) << run.out;
  EXPECT_NE(run.out.find("not found"), std::string::npos) << run.out;
}

TEST_F(FirewallE2E, CoolctlUsageErrorsExit2AndRefusalsExit1WithTheServersMessage) {
  CommandRun run = Coolctl("containers frob");
  EXPECT_EQ(run.status, 2) << run.out;
  EXPECT_NE(run.out.find("unknown command containers frob"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("usage: coolctl"), std::string::npos) << run.out;
  run = Coolctl("containers inspect");
  EXPECT_EQ(run.status, 2) << run.out;
  run = Coolctl("images list --frob x");
  EXPECT_EQ(run.status, 2) << run.out;
  EXPECT_NE(run.out.find("unknown flag --frob"), std::string::npos) << run.out;

  run = Coolctl("containers --help");
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_NE(run.out.find("containers inspect ID"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("firewall allow"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("--broker-socket"), std::string::npos) << run.out;
  run = Coolctl("dispatch --help");
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_EQ(run.out.rfind("usage: coolctl [--broker-socket PATH] dispatch FILE|-", 0), 0u) << run.out;
  EXPECT_EQ(Coolctl("frob --help").status, 2);

  // coold answers 503 without Podman: exit 1 and its own words, in a table run and a --json run.
  run = Coolctl("containers list");
  EXPECT_EQ(run.status, 1) << run.out;
  EXPECT_NE(run.out.find("HTTP 503: podman unavailable"), std::string::npos) << run.out;
  run = Coolctl("images list --json");
  EXPECT_EQ(run.status, 1) << run.out;
  EXPECT_NE(run.out.find("{\"error\":\"podman unavailable"), std::string::npos) << run.out;
}

struct BadRequest {
  const char* name;
  const char* curl_args;  // after the URL's method and body flags
  const char* path;
  int status;
  const char* mentions;
};

TEST_F(FirewallE2E, BadInputIsRefusedWithAClearErrorAndTheKernelUntouched) {
  ASSERT_EQ(Coolctl("firewall allow --namespace web --src 10.0.0.1 --dst 10.0.0.2 --proto udp --port 53").status, 0);
  const std::string before = KernelState();
  const std::string snapshot = ReadFile(dir_ + "/etc/allow.rules");
  const BadRequest cases[] = {
      {"bad address", R"(-X POST -d '{"namespace":"web","src":"10.0.0.256","dst":"10.0.0.2","proto":"tcp","port":1}')",
       "/api/v1/firewall/allow", 400, "\"field\":\"src\""},
      {"leading zero", R"(-X POST -d '{"namespace":"web","src":"10.0.0.01","dst":"10.0.0.2","proto":"tcp","port":1}')",
       "/api/v1/firewall/allow", 400, "\"field\":\"src\""},
      {"host bits", R"(-X POST -d '{"namespace":"web","src":"10.0.0.1/8","dst":"10.0.0.2","proto":"tcp","port":1}')",
       "/api/v1/firewall/allow", 400, "\"field\":\"src\""},
      {"protocol", R"(-X POST -d '{"namespace":"web","src":"10.0.0.1","dst":"10.0.0.2","proto":"icmp","port":1}')",
       "/api/v1/firewall/allow", 400, "\"field\":\"proto\""},
      {"port 0", R"(-X POST -d '{"namespace":"web","src":"10.0.0.1","dst":"10.0.0.2","proto":"tcp","port":0}')",
       "/api/v1/firewall/allow", 400, "\"field\":\"port\""},
      {"port 65536", R"(-X POST -d '{"namespace":"web","src":"10.0.0.1","dst":"10.0.0.2","proto":"tcp","port":65536}')",
       "/api/v1/firewall/allow", 400, "\"field\":\"port\""},
      {"namespace", R"(-X POST -d '{"namespace":"Web!","src":"10.0.0.1","dst":"10.0.0.2","proto":"tcp","port":1}')",
       "/api/v1/firewall/allow", 400, "\"field\":\"namespace\""},
      {"unknown field", R"(-X POST -d '{"namespace":"web","src":"10.0.0.1","dst":"10.0.0.2","proto":"tcp","port":1,"x":1}')",
       "/api/v1/firewall/allow", 400, "\"field\":\"x\""},
      {"duplicate in bulk",
       R"(-X POST -d '{"rules":[{"namespace":"web","src":"10.0.0.1","dst":"10.0.0.9","proto":"tcp","port":1},{"namespace":"web","src":"10.0.0.1","dst":"10.0.0.9","proto":"tcp","port":1}]}')",
       "/api/v1/firewall/allow/bulk", 400, "uplicate"},
      {"bad rule inside bulk",
       R"(-X POST -d '{"rules":[{"namespace":"web","src":"10.0.0.1","dst":"10.0.0.9","proto":"tcp","port":1},{"namespace":"web","src":"10.0.0.1","dst":"10.0.0.9","proto":"tcp","port":0}]}')",
       "/api/v1/firewall/allow/bulk", 400, "rules[1].port"},
      // Grammar-valid, refused by the writer's own policy (services/netlink/firewall_policy.h).
      {"wildcard destination", R"(-X POST -d '{"namespace":"web","src":"10.0.0.1","dst":"0.0.0.0/0","proto":"tcp","port":80}')",
       "/api/v1/firewall/allow", 403, "dst: 0.0.0.0/0 is wider than /8 (rule firewall_destination_prefix)"},
      {"public destination", R"(-X POST -d '{"namespace":"web","src":"10.0.0.1","dst":"8.8.8.8","proto":"udp","port":53}')",
       "/api/v1/firewall/allow", 403, "dst: 8.8.8.8/32 is not within the firewall's destination networks"},
      {"management IP", R"(-X POST -d '{"namespace":"web","src":"10.0.0.1","dst":"127.0.0.1","proto":"tcp","port":18443}')",
       "/api/v1/firewall/allow", 403, "dst: 127.0.0.1/32 is not within"},
      {"world to a private port", R"(-X POST -d '{"namespace":"web","src":"0.0.0.0/0","dst":"10.0.0.2","proto":"tcp","port":5432}')",
       "/api/v1/firewall/allow", 403, "src: 0.0.0.0/0 is outside the firewall's source networks"},
      {"refused rule inside bulk",
       R"(-X POST -d '{"rules":[{"namespace":"web","src":"10.0.0.1","dst":"10.0.0.9","proto":"tcp","port":1},{"namespace":"web","src":"0.0.0.0/0","dst":"0.0.0.0/0","proto":"tcp","port":22}]}')",
       "/api/v1/firewall/allow/bulk", 403, "rules[1].dst: 0.0.0.0/0 is wider than /8"},
      {"refused rule inside reconcile",
       R"(-X POST -d '{"rules":[{"namespace":"web","src":"10.0.0.1","dst":"192.0.2.1","proto":"tcp","port":1}]}')",
       "/api/v1/firewall/reconcile", 403, "rules[0].dst: 192.0.2.1/32 is not within"},
      {"wrong method", "-X PUT", "/api/v1/firewall/allow", 405, "not allowed"},
      {"bad id", "-X DELETE", "/api/v1/firewall/allow/1xyz", 400, "12 lower-case hex digits"},
      {"unknown route", "-X GET", "/api/v1/firewall/nothing", 404, "no route"},
      {"bad namespace filter", "-X GET", "/api/v1/firewall/allow?namespace=Bad!", 400, "\"field\":\"namespace\""},
  };
  for (const BadRequest& c : cases) {
    SCOPED_TRACE(c.name);
    CommandRun run = Curl(std::string(c.curl_args) + " " + Url(c.path));
    EXPECT_EQ(StatusOf(run), c.status) << run.out;
    EXPECT_NE(run.out.find(c.mentions), std::string::npos) << run.out;
  }
  // Authentication comes first, whatever the request.
  CommandRun anonymous = Curl(Url("/api/v1/firewall/allow"), /*with_token=*/false);
  EXPECT_EQ(StatusOf(anonymous), 401) << anonymous.out;
  CommandRun wrong = Curl("-H 'Authorization: Bearer e2e-token-0123456789abcdeX' " + Url("/api/v1/firewall/allow"),
                   /*with_token=*/false);
  EXPECT_EQ(StatusOf(wrong), 401) << wrong.out;
  // Oversize bodies are refused before they are read whole.
  ASSERT_EQ(Shell("head -c 17000000 /dev/zero > " + dir_ + "/huge.json").status, 0);
  CommandRun huge = Curl("-X POST --data-binary @" + dir_ + "/huge.json " + Url("/api/v1/firewall/allow/bulk"));
  EXPECT_NE(huge.out.find("413"), std::string::npos) << huge.out;

  EXPECT_EQ(KernelState(), before);
  EXPECT_EQ(ReadFile(dir_ + "/etc/allow.rules"), snapshot);
}

TEST_F(FirewallE2E, BulkAndReconcile) {
  std::string rules;
  // More than one channel frame's worth of rules, and of the ids the answer names.
  for (int i = 1; i <= 3000; ++i) {
    if (!rules.empty()) rules += ",";
    rules += R"({"namespace":"bulk","src":"10.1.)" + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) +
             R"(","dst":"10.2.0.1","proto":"tcp","port":443})";
  }
  std::ofstream(dir_ + "/bulk.json") << "{\"rules\":[" << rules << "]}";
  CommandRun bulk = Curl("-X POST --data-binary @" + dir_ + "/bulk.json " + Url("/api/v1/firewall/allow/bulk"));
  ASSERT_EQ(StatusOf(bulk), 200) << bulk.out.substr(0, 500);
  absl::StatusOr<google::protobuf::Value> answer = commands::ParseJsonValue(bulk.out.substr(0, bulk.out.rfind('\n')));
  ASSERT_TRUE(answer.ok()) << answer.status();
  for (const char* list : {"ids", "added"}) {
    EXPECT_EQ(answer->struct_value().fields().at(list).list_value().values_size(), 3000) << list;
  }
  CommandRun listed = Coolctl("firewall list --namespace bulk");
  size_t count = 0;
  for (size_t at = listed.out.find("\"id\""); at != std::string::npos; at = listed.out.find("\"id\"", at + 1)) ++count;
  EXPECT_EQ(count, 3000u);

  // Reconcile to two rules of that namespace's set plus one new: everything else goes.
  std::ofstream(dir_ + "/desired.json")
      << R"({"rules":[{"namespace":"bulk","src":"10.1.0.2","dst":"10.2.0.1","proto":"tcp","port":443},)"
      << R"({"namespace":"bulk","src":"10.1.0.3","dst":"10.2.0.1","proto":"tcp","port":443},)"
      << R"({"namespace":"new","src":"10.9.0.1","dst":"10.2.0.1","proto":"udp","port":53}]})";
  CommandRun reconciled = Coolctl("firewall reconcile " + dir_ + "/desired.json");
  ASSERT_EQ(reconciled.status, 0) << reconciled.out.substr(0, 500);
  EXPECT_NE(reconciled.out.find(Sha256Prefix("new|10.9.0.1|10.2.0.1|udp|53")), std::string::npos);
  std::string saved = Shell("iptables-save -t filter").out;
  size_t rules_left = 0;
  for (size_t at = saved.find("-A COOLIFY-ALLOW"); at != std::string::npos; at = saved.find("-A COOLIFY-ALLOW", at + 1)) {
    ++rules_left;
  }
  EXPECT_EQ(rules_left, 3u) << saved;
}

TEST_F(FirewallE2E, RestartAgreesWithKernelAndSnapshotsAndTheyRestore) {
  ASSERT_EQ(Coolctl("firewall allow --namespace keep --src 10.3.0.1 --dst 10.3.0.2 --proto tcp --port 8080").status, 0);
  CrashAndRestart();
  const std::string id = Sha256Prefix("keep|10.3.0.1|10.3.0.2|tcp|8080");
  CommandRun listed = Coolctl("firewall list --namespace keep");
  EXPECT_NE(listed.out.find(id), std::string::npos) << listed.out;
  EXPECT_NE(ReadFile(dir_ + "/etc/allow.rules").find(id), std::string::npos);

  // Boot restore: flush everything, restore both planes from the snapshots, compare.
  const std::string before = KernelState();
  ASSERT_EQ(Shell("nft flush ruleset").status, 0);
  CommandRun restored = Shell("iptables-restore --noflush " + dir_ + "/etc/allow.rules && nft -f " + dir_ + "/etc/allow.nft");
  ASSERT_EQ(restored.status, 0) << restored.out;
  EXPECT_NE(Shell("iptables-save -t filter").out.find(id), std::string::npos);
  EXPECT_NE(Shell("nft list chain bridge coolify_bridge coolify_allow").out.find(id), std::string::npos);
  (void)before;
}

// The ids of the rules in `text`: every 12-hex token following `marker`.
std::set<std::string> IdsAfter(const std::string& text, const std::string& marker) {
  std::set<std::string> ids;
  for (size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at + 1)) {
    ids.insert(text.substr(at + marker.size(), 12));
  }
  return ids;
}

TEST_F(FirewallE2E, KilledMidMutationKernelSnapshotsAndListAgreeAfterRestart) {
  std::string rules;
  for (int i = 0; i < 5000; ++i) {
    if (!rules.empty()) rules += ",";
    rules += R"({"namespace":"crash","src":"10.7.)" + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) +
             R"(","dst":"10.8.0.1","proto":"udp","port":)" + std::to_string(1000 + i % 50000) + "}";
  }
  std::ofstream(dir_ + "/crash.json") << "{\"rules\":[" << rules << "]}";
  // Kill at several points of the same mutation: before the batch, between the kernel
  // commit and the snapshots, after the snapshots. Wherever it lands, what coold says
  // after its restart must be what the kernel and the snapshots hold.
  for (int delay_ms : {5, 40, 120, 400}) {
    SCOPED_TRACE(delay_ms);
    Shell("curl -s --max-time 30 -o /dev/null --cacert " + dir_ + "/cert.pem -H 'Authorization: Bearer " + kToken +
          "' --data-binary @" + dir_ + "/crash.json " + Url("/api/v1/firewall/allow/bulk") + " & sleep " +
          std::to_string(delay_ms / 1000.0) + "; kill -9 " + std::to_string(coold_->pid()) + "; wait");
    CrashAndRestart();
    CommandRun listed = Coolctl("firewall list --namespace crash");
    ASSERT_EQ(listed.status, 0) << listed.out.substr(0, 300);
    std::set<std::string> api = IdsAfter(listed.out, "\"id\":\"");
    std::set<std::string> kernel = IdsAfter(Shell("iptables-save -t filter").out, "--comment ");
    std::set<std::string> snapshot = IdsAfter(ReadFile(dir_ + "/etc/allow.rules"), "--comment ");
    std::set<std::string> bridge = IdsAfter(Shell("nft list chain bridge coolify_bridge coolify_allow").out,
                                            "comment \"");
    std::set<std::string> everything = IdsAfter(Coolctl("firewall list").out, "\"id\":\"");
    EXPECT_TRUE(api.size() == 0 || api.size() == 5000) << api.size() << " rules: a batch is all or nothing";
    EXPECT_EQ(everything, kernel);
    EXPECT_EQ(snapshot, kernel);
    EXPECT_EQ(bridge, kernel);
    // Start the next round from an empty namespace.
    CommandRun emptied = Curl("-X POST -d '{\"rules\":[]}' " + Url("/api/v1/firewall/reconcile"));
    ASSERT_EQ(StatusOf(emptied), 200) << emptied.out << "\n" << coold_->log();
  }
}

}  // namespace
}  // namespace coolify
