#include "services/front/front_metrics.h"

#include "absl/strings/str_cat.h"
#include "privsep/log.h"
#include "services/commands/verbs.h"

namespace coolify::front {
namespace {

using metrics::Sample;
using metrics::Type;

const char* LaneName(Lane lane) { return lane == Lane::kRest ? "rest" : "broker"; }


bool NonEmptyList(const v1::CommandResult& result, const char* key) {
  const auto& fields = result.data().struct_value().fields();
  auto it = fields.find(key);
  return it != fields.end() && it->second.list_value().values_size() > 0;
}

}  // namespace

std::string VerbNameOf(const v1::Command& command) {
  const commands::Verb* verb = commands::VerbOf(command);
  return verb == nullptr ? "-" : verb->names[0];
}

const char* BuildOutcome(unsigned code) {
  if (code == 200) return "built";
  if (code == 499) return "cancelled";
  if (code == 504) return "timed_out";
  if (code >= 400 && code < 500) return "failed";
  return "error";
}

FrontMetrics::FrontMetrics()
    : commands_(registry_.AddCounter("coold_commands_total",
                                     "Commands answered, by lane (rest, broker), verb and HTTP status.",
                                     {"lane", "verb", "status"})),
      command_seconds_(registry_.AddHistogram("coold_command_duration_seconds",
                                              "Command latency in the front end, by lane and verb.", {"lane", "verb"},
                                              metrics::LatencyBuckets())),
      firewall_(registry_.AddCounter("coold_firewall_mutations_total",
                                     "Firewall mutations by op (allow, delete, bulk, reconcile) and result: applied "
                                     "(the kernel changed), unchanged, refused (4xx: grammar or policy), failed (5xx).",
                                     {"op", "result"})),
      denials_(registry_.AddCounter("coold_policy_denials_total",
                                    "Policy violations in the gatekeeper's 403 answers, by rule.", {"rule"})),
      builds_(registry_.AddCounter("coold_builds_total",
                                   "Build outcomes: built, failed, cancelled, timed_out, error, refused (at dispatch).",
                                   {"outcome"})),
      build_seconds_(registry_.AddHistogram("coold_build_duration_seconds",
                                            "Build duration from start to outcome, of builds this coold started, by "
                                            "outcome.",
                                            {"outcome"}, metrics::BuildBuckets())),
      drift_(registry_.AddCounter("coold_endpoint_drift_repaired_total",
                                  "Endpoint rows the sync wrote or removed to make the store match Podman.",
                                  {"change"})),
      rejected_frames_(registry_.AddCounter("coold_channel_rejected_frames_total",
                                            "Frames of a child's stream the front end refused, ending that stream "
                                            "only (followed_log, events).",
                                            {"child", "stream"})) {
  registry_.AddCollector(
      "coold_dns_queries_total",
      "DNS queries by namespace and rcode of the answer; upstream: relayed from COOLD_DNS_UPSTREAM with its rcode; "
      "dropped: not answered.",
      Type::kCounter, {"namespace", "rcode"}, [this] {
        std::vector<Sample> samples;
        if (!dns_) return samples;
        for (const auto& [name, stats] : dns_()) {
          auto load = [](const std::atomic<uint64_t>& c) { return static_cast<double>(c.load(std::memory_order_relaxed)); };
          samples.push_back({{name, "NOERROR"}, load(stats->answers) + load(stats->nodata)});
          samples.push_back({{name, "NXDOMAIN"}, load(stats->nxdomain)});
          samples.push_back({{name, "SERVFAIL"}, load(stats->servfail)});
          samples.push_back({{name, "FORMERR"}, load(stats->formerr)});
          samples.push_back({{name, "NOTIMP"}, load(stats->notimp)});
          samples.push_back({{name, "REFUSED"}, load(stats->refused)});
          samples.push_back({{name, "BADVERS"}, load(stats->badvers)});
          samples.push_back({{name, "upstream"}, load(stats->upstream_answers)});
          samples.push_back({{name, "dropped"}, load(stats->dropped)});
        }
        return samples;
      });
  registry_.AddCollector("coold_channel_refused_sends_total",
                         "Requests the front end did not send because the child would have cut its channel off for "
                         "them (answered as bad input instead).",
                         Type::kCounter, {"child"}, [this] {
                           std::vector<Sample> samples;
                           if (!channels_) return samples;
                           for (const auto& [child, count] : channels_()) {
                             samples.push_back({{child}, static_cast<double>(count)});
                           }
                           return samples;
                         });
}

void FrontMetrics::SetDnsSource(DnsSource source) { dns_ = std::move(source); }
void FrontMetrics::SetChannelSource(ChannelSource source) { channels_ = std::move(source); }

void FrontMetrics::Command(Lane lane, const v1::Command& command, unsigned status, double seconds) {
  const std::string verb = VerbNameOf(command);
  commands_.With({LaneName(lane), verb, absl::StrCat(status)}).Add();
  command_seconds_.With({LaneName(lane), verb}).Observe(seconds);
  if (lane == Lane::kRest) return;
  // The verb and the outcome only: a command's fields may hold env values and credentials.
  LogEvent(LogLevel::kInfo, "command",
           {{"lane", LaneName(lane)},
            {"verb", verb},
            {"status", status},
            {"duration_ms", static_cast<int64_t>(seconds * 1000)}});
}

void FrontMetrics::FirewallMutation(const v1::Command& command, const v1::CommandResult& result) {
  const char* op = nullptr;
  bool changed = false;
  switch (command.verb_case()) {
    case v1::Command::kFirewallAllow:
      op = "allow";
      changed = result.code() == 201;
      break;
    case v1::Command::kFirewallDelete:
      op = "delete";
      changed = true;
      break;
    case v1::Command::kFirewallBulk:
      op = "bulk";
      changed = NonEmptyList(result, "added");
      break;
    case v1::Command::kFirewallReconcile:
      op = "reconcile";
      changed = NonEmptyList(result, "added") || NonEmptyList(result, "removed");
      break;
    default:
      return;
  }
  const unsigned code = result.code();
  const char* outcome = code >= 500 ? "failed" : code >= 400 ? "refused" : changed ? "applied" : "unchanged";
  firewall_.With({op, outcome}).Add();
}

void FrontMetrics::PolicyDenial(const std::string& rule) { denials_.With({rule.empty() ? "-" : rule}).Add(); }

void FrontMetrics::Build(unsigned code, std::optional<double> seconds) {
  const char* outcome = BuildOutcome(code);
  builds_.With({outcome}).Add();
  if (seconds) build_seconds_.With({outcome}).Observe(*seconds);
}

void FrontMetrics::BuildNotStarted(unsigned code) { builds_.With({code == 503 ? "refused" : BuildOutcome(code)}).Add(); }

void FrontMetrics::DriftRepaired(uint64_t written, uint64_t removed) {
  if (written > 0) drift_.With({"written"}).Add(written);
  if (removed > 0) drift_.With({"removed"}).Add(removed);
}

void FrontMetrics::RejectedFrame(const std::string& child, const std::string& stream) {
  rejected_frames_.With({child, stream}).Add();
}

}  // namespace coolify::front
