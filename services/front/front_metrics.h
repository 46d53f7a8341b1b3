// coold's GET /metrics (REST API, behind its bearer token): what the front end observes.
// The front end sees every request and every reply of the privileged children, so it
// counts here and no child serves or parses anything for metrics.
//
//   coold_commands_total{lane,verb,status}         commands answered (REST API, broker stream)
//   coold_command_duration_seconds{lane,verb}      their latency in the front end
//   coold_firewall_mutations_total{op,result}      allow, delete, bulk, reconcile:
//                                                  applied, unchanged, refused, failed
//   coold_policy_denials_total{rule}               a 403's policy violations, by rule
//   coold_builds_total{outcome}                    built, failed, cancelled, timed_out, error,
//                                                  refused (at dispatch)
//   coold_build_duration_seconds{outcome}          start to outcome, of builds this coold started
//   coold_dns_queries_total{namespace,rcode}       the DNS listeners' answers, by rcode
//   coold_endpoint_drift_repaired_total{change}    rows the sync wrote or removed
//   coold_channel_refused_sends_total{child}       requests not sent: the child would have cut
//                                                  its channel off for them
//   coold_channel_rejected_frames_total{child,stream}  stream frames of a child refused
//                                                  without stopping coold
#ifndef COOLD_SERVICES_FRONT_FRONT_METRICS_H_
#define COOLD_SERVICES_FRONT_FRONT_METRICS_H_

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proto/commands.pb.h"
#include "services/dns/stats.h"
#include "services/metrics/metrics.h"

namespace coolify::front {

enum class Lane { kRest, kBroker };

class FrontMetrics {
 public:
  FrontMetrics();

  // One command of `lane` answered `status` after `seconds`. A broker-lane command also
  // leaves its event line ("event=command lane=broker verb= status= duration_ms="); a
  // REST command's verb is in its request's line (RestApi).
  void Command(Lane lane, const v1::Command& command, unsigned status, double seconds);
  // A firewall verb's answer (a list is not a mutation and is not counted here).
  void FirewallMutation(const v1::Command& command, const v1::CommandResult& result);
  void PolicyDenial(const std::string& rule);
  // A build's outcome from its answer's code; `seconds` when this coold started it.
  void Build(unsigned code, std::optional<double> seconds);
  // A build the launcher did not start: 503 (at capacity) is "refused", another code
  // counts as the outcome it names.
  void BuildNotStarted(unsigned code);
  void DriftRepaired(uint64_t written, uint64_t removed);
  void RejectedFrame(const std::string& child, const std::string& stream);

  // The DNS listeners' counters, read when the text is made: (namespace, stats) pairs.
  using DnsSource = std::function<std::vector<std::pair<std::string, const dns::Stats*>>()>;
  void SetDnsSource(DnsSource source);
  // Each child's refused sends, read when the text is made: (child, count) pairs.
  using ChannelSource = std::function<std::vector<std::pair<std::string, uint64_t>>()>;
  void SetChannelSource(ChannelSource source);

  std::string Text() const { return registry_.Text(); }

 private:
  metrics::Registry registry_;
  metrics::CounterFamily& commands_;
  metrics::HistogramFamily& command_seconds_;
  metrics::CounterFamily& firewall_;
  metrics::CounterFamily& denials_;
  metrics::CounterFamily& builds_;
  metrics::HistogramFamily& build_seconds_;
  metrics::CounterFamily& drift_;
  metrics::CounterFamily& rejected_frames_;
  DnsSource dns_;
  ChannelSource channels_;
};

// The outcome label of a build answer's code: 200 built, 499 cancelled, 504 timed_out,
// another 4xx failed (the build's own error), anything else error.
const char* BuildOutcome(unsigned code);

// The verb's canonical name ("-" for none): a label and a log field.
std::string VerbNameOf(const v1::Command& command);

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_FRONT_METRICS_H_
