// The broker's GET /metrics (on its Unix socket): what the Laravel lane and the Hub count.
//
//   broker_dispatches_total{verb,status}          POST /v1/coold/dispatch answers
//   broker_dispatch_duration_seconds{verb}        their latency, request to answer
//   broker_build_dispatches_total{status}         POST /v1/build/dispatch answers
//   broker_uds_requests_total{route,status}       every answer of the socket
//   broker_pending_entries                        requests in flight and landed results
//   broker_connected_hosts                        hosts with an admitted stream
//   broker_host_streams_opened_total              streams admitted
//   broker_host_reconnects_total                  of those, hosts admitted before
//   broker_host_streams_closed_total{reason}      replaced, expired, cut_off
//   broker_refusals_total{reason}                 credential, hello, proof, enrollment,
//                                                 renewal, host_quota; and each refusal of a
//                                                 connection to the gRPC port, "grpc_" and
//                                                 the guard's reason (h2_guard.h), e.g.
//                                                 grpc_resets, grpc_tls_handshake
//   broker_grpc_connections                       connections the gRPC listener holds
//   broker_stray_answers_total                    answers to nothing waiting (late, duplicate)
//   broker_repeats_answered_total                 a repeated request_id answered again
//
// The Hub's and the stream service's own counters are read when the text is made.
#ifndef COOLD_SERVICES_BROKER_BROKER_METRICS_H_
#define COOLD_SERVICES_BROKER_BROKER_METRICS_H_

#include <string>

#include "services/broker/agent_service.h"
#include "services/broker/guarded_listener.h"
#include "services/broker/hub.h"
#include "services/metrics/metrics.h"

namespace coolify::broker {

class BrokerMetrics {
 public:
  // `agent` and `guard` may be null (no stream service, no listener: their counters
  // read 0).
  BrokerMetrics(const Hub& hub, const AgentServiceStats* agent, const GuardStats* guard = nullptr);

  // A coold-lane dispatch of `verb` (canonical name) answered `status` after `seconds`.
  void Dispatched(const std::string& verb, unsigned status, double seconds);
  void BuildDispatched(unsigned status);
  // One answer of the socket on `route` (a route's name, never a path).
  void Answered(const std::string& route, unsigned status);

  std::string Text() const { return registry_.Text(); }

 private:
  metrics::Registry registry_;
  metrics::CounterFamily& dispatches_;
  metrics::HistogramFamily& dispatch_seconds_;
  metrics::CounterFamily& build_dispatches_;
  metrics::CounterFamily& requests_;
};

}  // namespace coolify::broker

#endif  // COOLD_SERVICES_BROKER_BROKER_METRICS_H_
