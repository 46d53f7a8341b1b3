#include "services/broker/broker_metrics.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace coolify::broker {
namespace {

using metrics::Sample;
using metrics::Type;

double Load(const std::atomic<uint64_t>* counter) {
  return counter == nullptr ? 0 : static_cast<double>(counter->load(std::memory_order_relaxed));
}

}  // namespace

BrokerMetrics::BrokerMetrics(const Hub& hub, const AgentServiceStats* agent, const GuardStats* guard)
    : dispatches_(registry_.AddCounter("broker_dispatches_total",
                                       "Coold-lane dispatches answered, by verb and HTTP status.", {"verb", "status"})),
      dispatch_seconds_(registry_.AddHistogram("broker_dispatch_duration_seconds",
                                               "Coold-lane dispatch latency from request to answer, by verb.",
                                               {"verb"}, metrics::LatencyBuckets())),
      build_dispatches_(registry_.AddCounter("broker_build_dispatches_total",
                                             "Build dispatches answered, by HTTP status (202 sent to a host).",
                                             {"status"})),
      requests_(registry_.AddCounter("broker_uds_requests_total",
                                     "Requests answered on the Unix socket, by route and HTTP status.",
                                     {"route", "status"})) {
  registry_.AddCollector("broker_pending_entries", "Requests in flight plus build results kept for pollers.",
                         Type::kGauge, {}, [&hub] {
                           return std::vector<Sample>{{{}, static_cast<double>(hub.stats().pending)}};
                         });
  registry_.AddCollector("broker_connected_hosts", "Hosts with an admitted stream.", Type::kGauge, {}, [&hub] {
    return std::vector<Sample>{{{}, static_cast<double>(hub.stats().hosts)}};
  });
  registry_.AddCollector("broker_host_streams_opened_total", "Host streams admitted.", Type::kCounter, {},
                         [agent] {
                           return std::vector<Sample>{{{}, Load(agent ? &agent->streams_opened : nullptr)}};
                         });
  registry_.AddCollector("broker_host_reconnects_total",
                         "Host streams admitted for a host this broker had admitted before.", Type::kCounter, {},
                         [&hub] { return std::vector<Sample>{{{}, static_cast<double>(hub.stats().reconnects)}}; });
  registry_.AddCollector("broker_host_streams_closed_total",
                         "Host streams the broker ended: replaced by the host's newer one, token expired without "
                         "renewal, cut off by a revocation.",
                         Type::kCounter, {"reason"}, [&hub] {
                           const HubStats s = hub.stats();
                           return std::vector<Sample>{{{"replaced"}, static_cast<double>(s.replaced)},
                                                      {{"expired"}, static_cast<double>(s.expired)},
                                                      {{"cut_off"}, static_cast<double>(s.cut_off)}};
                         });
  registry_.AddCollector(
      "broker_refusals_total",
      "Refusals: host streams (credential, hello, proof, enrollment), token renewals, and dispatches over a host's "
      "pending quota; connections to the gRPC port (grpc_*: the HTTP/2 guard's limits, TLS handshakes, the "
      "connection cap).",
      Type::kCounter, {"reason"}, [&hub, agent, guard] {
        std::vector<Sample> samples = {
            {{"credential"}, Load(agent ? &agent->refused_credentials : nullptr)},
            {{"hello"}, Load(agent ? &agent->refused_hellos : nullptr)},
            {{"proof"}, Load(agent ? &agent->refused_proofs : nullptr)},
            {{"enrollment"}, Load(agent ? &agent->refused_enrollments : nullptr)},
            {{"renewal"}, Load(agent ? &agent->refused_renewals : nullptr)},
            {{"host_quota"}, static_cast<double>(hub.stats().refused_host_quota)}};
        for (size_t i = 0; i < static_cast<size_t>(GuardRefusal::kCount); ++i) {
          samples.push_back({{"grpc_" + std::string(GuardRefusalName(static_cast<GuardRefusal>(i)))},
                             Load(guard ? &guard->refused[i] : nullptr)});
        }
        return samples;
      });
  registry_.AddCollector("broker_grpc_connections", "Connections the gRPC listener holds now.", Type::kGauge, {},
                         [guard] { return std::vector<Sample>{{{}, Load(guard ? &guard->open : nullptr)}}; });
  registry_.AddCollector("broker_stray_answers_total",
                         "Host answers and build events for nothing waiting on that stream (late or duplicate).",
                         Type::kCounter, {},
                         [&hub] { return std::vector<Sample>{{{}, static_cast<double>(hub.stats().stray_responses)}}; });
  registry_.AddCollector("broker_repeats_answered_total",
                         "Dispatches of a request_id already answered, given the kept answer again.", Type::kCounter, {},
                         [&hub] { return std::vector<Sample>{{{}, static_cast<double>(hub.stats().replayed)}}; });
}

void BrokerMetrics::Dispatched(const std::string& verb, unsigned status, double seconds) {
  dispatches_.With({verb, absl::StrCat(status)}).Add();
  dispatch_seconds_.With({verb}).Observe(seconds);
}

void BrokerMetrics::BuildDispatched(unsigned status) { build_dispatches_.With({absl::StrCat(status)}).Add(); }

void BrokerMetrics::Answered(const std::string& route, unsigned status) {
  requests_.With({route, absl::StrCat(status)}).Add();
}

}  // namespace coolify::broker
