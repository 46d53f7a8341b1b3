// Test support for the firewall tests: fresh network namespaces and the command-line
// tools (iptables, nft, sha256sum) run as subprocesses to read back what the kernel holds.
//
// Every kernel test creates its own network namespace first and works only inside it,
// so no test ever reads or writes the host's firewall. Subprocesses inherit the
// namespace of the thread that starts them.
#ifndef COOLD_SERVICES_NETLINK_FIREWALL_TESTING_H_
#define COOLD_SERVICES_NETLINK_FIREWALL_TESTING_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "privsep/unique_fd.h"
#include "services/netlink/firewall_rule.h"

namespace coolify::netlink::testing {

inline constexpr char kIptables[] = "/usr/sbin/iptables";
inline constexpr char kIptablesSave[] = "/usr/sbin/iptables-save";
inline constexpr char kIptablesRestore[] = "/usr/sbin/iptables-restore";
inline constexpr char kNft[] = "/usr/sbin/nft";

// A network namespace, kept alive by a descriptor.
class NetworkNamespace {
 public:
  // Creates a new, empty network namespace and moves the calling thread into it.
  static absl::StatusOr<NetworkNamespace> CreateAndEnter();

  // Moves the calling thread back into this namespace.
  absl::Status Enter() const;

 private:
  explicit NetworkNamespace(privsep::UniqueFd fd) : fd_(std::move(fd)) {}
  privsep::UniqueFd fd_;
};

struct CommandResult {
  int exit_code = -1;  // the exit status, or 128 + signal
  std::string out;
  std::string err;
};

// Runs argv[0] (an absolute path) with `input` on its stdin and an empty environment.
absl::StatusOr<CommandResult> Run(const std::vector<std::string>& argv,
                                  std::string_view input = "");

// Run, then its stdout if it exited 0, else an error quoting its stderr.
absl::StatusOr<std::string> RunOk(const std::vector<std::string>& argv,
                                  std::string_view input = "");

// iptables-save output without what differs between two identical rulesets: comment
// lines (the header and the timestamps) and chain counters ("[0:0]").
std::string StripIptablesSave(std::string_view text);

// The first 12 hex digits of `sha256sum` of `input`, computed by coreutils.
absl::StatusOr<std::string> Sha256sumPrefix(std::string_view input);

// `count` valid rules with distinct ids, drawn from `seed`: namespaces from a small set,
// prefixes of every length 0..32, both protocols, ports 1..65535.
std::vector<Rule> RandomRules(size_t count, uint32_t seed);

// The argv of `iptables -A COOLIFY-ALLOW ...` for `rule`, spelled from its canonical
// strings as an operator would type it.
std::vector<std::string> IptablesAppend(const Rule& rule);

// The `nft` statement adding `rule` to the bridge chain, spelled from its canonical
// strings: "add rule bridge coolify_bridge coolify_allow ip saddr ... comment \"ID\"".
std::string NftAddRule(const Rule& rule);

// Captures what this process writes to stderr (where LogWarn goes) while alive.
class StderrCapture {
 public:
  StderrCapture();
  ~StderrCapture();
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  std::string Text() const;

 private:
  int file_;
  int saved_;
};

// Creates the bridge scaffold the writer expects: table bridge coolify_bridge with a
// regular chain coolify_allow.
absl::Status CreateBridgeScaffold();

}  // namespace coolify::netlink::testing

#endif  // COOLD_SERVICES_NETLINK_FIREWALL_TESTING_H_
