// Benchmark of FirewallWriter against the fastest command-line path, in one run, each
// scenario in a private network namespace of its own (the host's firewall is never
// touched). Must run as root. See README.md for what is measured and how to read it.
//
//   firewall_bench [--rules=10000] [--small=100] [--samples=200] [--cli-samples=50]
//                  [--snapshot-dir=/var/tmp]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "privsep/unique_fd.h"
#include "services/netlink/firewall_nft.h"
#include "services/netlink/firewall_snapshot.h"
#include "services/netlink/firewall_testing.h"
#include "bench/machine_load.h"

namespace coolify::netlink {
namespace {

using Clock = std::chrono::steady_clock;
using testing::kIptables;
using testing::kIptablesRestore;
using testing::kNft;

struct Options {
  size_t rules = 10000;
  size_t small = 100;
  size_t samples = 200;
  size_t cli_samples = 50;
  std::string snapshot_dir = "/var/tmp";
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "firewall_bench: %s\n", message.c_str());
  std::exit(1);
}

template <typename T>
T Must(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) Die(absl::StrFormat("%s: %s", what, value.status().ToString()));
  return std::move(*value);
}

void Must(const absl::Status& status, const char* what) {
  if (!status.ok()) Die(absl::StrFormat("%s: %s", what, status.ToString()));
}

double Millis(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double TimeMs(const std::function<void()>& f) {
  const Clock::time_point start = Clock::now();
  f();
  return Millis(Clock::now() - start);
}

struct Percentiles {
  double p50;
  double p99;
};

Percentiles Of(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  return {samples[n / 2], samples[std::min(n - 1, (n * 99 + 99) / 100 - 1)]};
}

double Median(std::vector<double> samples) { return Of(std::move(samples)).p50; }

// A fresh private network namespace with the bridge scaffold, entered by this thread.
testing::NetworkNamespace FreshNamespace() {
  testing::NetworkNamespace ns =
      Must(testing::NetworkNamespace::CreateAndEnter(), "create a network namespace");
  Must(testing::CreateBridgeScaffold(), "create the bridge scaffold");
  return ns;
}

class Bench {
 public:
  explicit Bench(Options options)
      : options_(std::move(options)),
        rules_(testing::RandomRules(options_.rules + options_.samples * 2, 20240601)) {
    dir_.reset(open(options_.snapshot_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_) Die("cannot open --snapshot-dir " + options_.snapshot_dir);
  }
  ~Bench() {
    unlinkat(dir_.get(), names_.iptables.c_str(), 0);
    unlinkat(dir_.get(), names_.bridge.c_str(), 0);
  }

  void Run() {
    std::printf("firewall_bench: %zu rules, %zu samples (ours), %zu samples (CLI), snapshots "
                "in %s\n\n",
                options_.rules, options_.samples, options_.cli_samples,
                options_.snapshot_dir.c_str());
    BulkComparison();
    SingleAllowComparison(options_.small);
    SingleAllowComparison(options_.rules);
    DeleteById();
  }

 private:
  std::vector<Rule> Slice(size_t from, size_t count) const {
    return std::vector<Rule>(rules_.begin() + static_cast<ptrdiff_t>(from),
                             rules_.begin() + static_cast<ptrdiff_t>(from + count));
  }

  void WriteSnapshots(const FirewallWriter& writer) {
    Must(netlink::WriteSnapshots(dir_.get(), names_, writer.index()), "write snapshots");
  }

  // 1. Bulk allow of `rules` rules, against iptables-restore --noflush + nft -f of the
  //    same rules (the files the boot services restore).
  void BulkComparison() {
    const std::vector<Rule> rules = Slice(0, options_.rules);
    std::vector<double> ours_kernel;
    std::vector<double> ours_durable;
    std::vector<double> theirs;
    for (int round = 0; round < 3; ++round) {
      {
        testing::NetworkNamespace ns = FreshNamespace();
        FirewallWriter writer = Must(FirewallWriter::Open(), "open");
        Must(writer.Load(), "load");
        double kernel = 0;
        ours_durable.push_back(TimeMs([&] {
          kernel = TimeMs([&] { Must(writer.Bulk(rules), "bulk"); });
          WriteSnapshots(writer);
        }));
        ours_kernel.push_back(kernel);
        if (writer.index().size() != rules.size()) Die("bulk wrote the wrong number of rules");
      }
      {
        // The same files, rendered from an index of the same rules.
        FirewallIndex index;
        for (const Rule& rule : rules) index.Append(FirewallEntry{RuleId(rule), rule, 1, 1});
        const std::string ip_file = options_.snapshot_dir + "/firewall_bench.v4";
        const std::string bridge_file = options_.snapshot_dir + "/firewall_bench.nft";
        std::ofstream(ip_file) << RenderIptablesSnapshot(index);
        std::ofstream(bridge_file) << RenderBridgeSnapshot(index);
        testing::NetworkNamespace ns = FreshNamespace();
        theirs.push_back(TimeMs([&] {
          Must(testing::RunOk({kIptablesRestore, "--noflush", ip_file}).status(),
               "iptables-restore");
          Must(testing::RunOk({kNft, "-f", bridge_file}).status(), "nft -f");
        }));
        unlink(ip_file.c_str());
        unlink(bridge_file.c_str());
      }
    }
    const double ours_k = Median(ours_kernel);
    const double ours_d = Median(ours_durable);
    const double cli = Median(theirs);
    std::printf("1. bulk allow of %zu rules (median of 3)\n", rules.size());
    std::printf("   ours, kernel batch             %9.1f ms\n", ours_k);
    std::printf("   ours, kernel + snapshots       %9.1f ms\n", ours_d);
    std::printf("   iptables-restore + nft -f      %9.1f ms\n", cli);
    std::printf("   ratio ours (durable) / CLI     %9.3f   (target <= 0.5)\n\n", ours_d / cli);
  }

  // 2. One allow with `existing` rules in place: ours (kernel only, and kernel plus
  //    durable snapshots) against one `iptables -A` + one `nft add rule` process pair.
  void SingleAllowComparison(size_t existing) {
    testing::NetworkNamespace ns = FreshNamespace();
    FirewallWriter writer = Must(FirewallWriter::Open(), "open");
    Must(writer.Bulk(Slice(0, existing)), "fill");
    WriteSnapshots(writer);
    std::vector<double> kernel;
    std::vector<double> durable;
    for (size_t i = 0; i < options_.samples; ++i) {
      const Rule& rule = rules_[options_.rules + i];
      double k = 0;
      durable.push_back(TimeMs([&] {
        k = TimeMs([&] { Must(writer.Allow(rule), "allow"); });
        WriteSnapshots(writer);
      }));
      kernel.push_back(k);
      // Back to `existing` rules, untimed, so every sample sees the same table size.
      Must(writer.Delete(RuleId(rule)), "delete");
    }

    testing::NetworkNamespace cli_ns = FreshNamespace();
    Must(testing::RunOk({kIptables, "-N", "COOLIFY-ALLOW"}).status(), "iptables -N");
    {
      FirewallWriter filler = Must(FirewallWriter::Open(), "open");
      Must(filler.Bulk(Slice(0, existing)), "fill");
    }
    std::vector<double> cli;
    for (size_t i = 0; i < options_.cli_samples; ++i) {
      const Rule& rule = rules_[options_.rules + options_.samples + i];
      cli.push_back(TimeMs([&] {
        Must(testing::RunOk(testing::IptablesAppend(rule)).status(), "iptables -A");
        Must(testing::RunOk({kNft, testing::NftAddRule(rule)}).status(), "nft add rule");
      }));
    }
    const Percentiles k = Of(kernel);
    const Percentiles d = Of(durable);
    const Percentiles c = Of(cli);
    std::printf("2. one allow, both planes, at %zu existing rules\n", existing);
    std::printf("   ours, kernel batch             p50 %7.3f ms  p99 %7.3f ms\n", k.p50, k.p99);
    std::printf("   ours, kernel + snapshots       p50 %7.3f ms  p99 %7.3f ms\n", d.p50, d.p99);
    std::printf("   iptables -A + nft add rule     p50 %7.3f ms  p99 %7.3f ms\n", c.p50, c.p99);
    std::printf("   ratio p50 ours (kernel) / CLI  %9.4f   (target <= 0.1)\n", k.p50 / c.p50);
    std::printf("   ratio p50 ours (durable) / CLI %9.4f\n\n", d.p50 / c.p50);
    if (existing == options_.small) {
      small_kernel_p50_ = k.p50;
      small_durable_p50_ = d.p50;
    } else {
      std::printf("   growth 10k/100: p50 ours (kernel) %.2fx, p50 ours (durable) %.2fx "
                  "(target <= 2)\n\n",
                  k.p50 / small_kernel_p50_, d.p50 / small_durable_p50_);
    }
  }

  // 3. Delete by id with `rules` rules in place.
  void DeleteById() {
    testing::NetworkNamespace ns = FreshNamespace();
    FirewallWriter writer = Must(FirewallWriter::Open(), "open");
    const std::vector<Rule> rules = Slice(0, options_.rules);
    Must(writer.Bulk(rules), "fill");
    std::vector<double> kernel;
    std::vector<double> durable;
    for (size_t i = 0; i < options_.samples; ++i) {
      const std::string id = RuleId(rules[i * (rules.size() / options_.samples)]);
      double k = 0;
      durable.push_back(TimeMs([&] {
        k = TimeMs([&] { Must(writer.Delete(id), "delete"); });
        WriteSnapshots(writer);
      }));
      kernel.push_back(k);
    }
    std::printf("3. delete by id at %zu rules\n", options_.rules);
    std::printf("   ours, kernel batch             p50 %7.3f ms  p99 %7.3f ms\n",
                Of(kernel).p50, Of(kernel).p99);
    std::printf("   ours, kernel + snapshots       p50 %7.3f ms  p99 %7.3f ms\n",
                Of(durable).p50, Of(durable).p99);
  }

  Options options_;
  std::vector<Rule> rules_;
  privsep::UniqueFd dir_;
  SnapshotNames names_{"firewall_bench_rules.v4", "firewall_bench_bridge.nft"};
  double small_kernel_p50_ = 0;
  double small_durable_p50_ = 0;
};

Options ParseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    size_t* number = name == "--rules"         ? &options.rules
                     : name == "--small"       ? &options.small
                     : name == "--samples"     ? &options.samples
                     : name == "--cli-samples" ? &options.cli_samples
                                               : nullptr;
    if (number != nullptr && absl::SimpleAtoi(value, number) && *number > 0) continue;
    if (name == "--snapshot-dir" && !value.empty()) {
      options.snapshot_dir = value;
      continue;
    }
    Die("usage: firewall_bench [--rules=N] [--small=N] [--samples=N] [--cli-samples=N] "
        "[--snapshot-dir=DIR]");
  }
  if (options.samples > options.rules) Die("--samples must not exceed --rules");
  return options;
}

}  // namespace
}  // namespace coolify::netlink

int main(int argc, char** argv) {
  if (geteuid() != 0) coolify::netlink::Die("must run as root (it creates network namespaces)");
  coolify::bench::PrintLoadAround load;
  coolify::netlink::Bench(coolify::netlink::ParseOptions(argc, argv)).Run();
  return 0;
}
