#include "services/commands/verbs.h"

namespace coolify::commands {

const std::vector<Verb>& Verbs() {
  using C = v1::Command;
  constexpr v1::Capability kPodmanCap = v1::CAPABILITY_PODMAN;
  constexpr Server kPodman = Server::kPodman;
  static const auto* verbs = new std::vector<Verb>{
      {{"images.pull"}, C::kImagesPullFieldNumber, kPodmanCap, kPodman, "POST /api/v1/images/pull", {{"reference", "ref"}}},
      {{"images.list"}, C::kImagesListFieldNumber, kPodmanCap, kPodman, "GET /api/v1/images", {}},
      {{"images.delete"}, C::kImagesDeleteFieldNumber, kPodmanCap, kPodman, "DELETE /api/v1/images/{ref}?force",
       {{"reference", "ref"}}},
      {{"containers.create"}, C::kContainersCreateFieldNumber, kPodmanCap, kPodman, "POST /api/v1/containers",
       {{"capabilities", "cap_add"}}, "spec"},
      {{"containers.start"}, C::kContainersStartFieldNumber, kPodmanCap, kPodman, "POST /api/v1/containers/{id}/start?namespace", {}},
      {{"containers.stop"}, C::kContainersStopFieldNumber, kPodmanCap, kPodman, "POST /api/v1/containers/{id}/stop?namespace", {}},
      {{"containers.restart"}, C::kContainersRestartFieldNumber, kPodmanCap, kPodman,
       "POST /api/v1/containers/{id}/restart?namespace", {}},
      {{"containers.delete"}, C::kContainersDeleteFieldNumber, kPodmanCap, kPodman, "DELETE /api/v1/containers/{id}?force&namespace", {}},
      {{"containers.inspect"}, C::kContainersInspectFieldNumber, kPodmanCap, kPodman, "GET /api/v1/containers/{id}?namespace", {}},
      {{"containers.logs"}, C::kContainersLogsFieldNumber, kPodmanCap, kPodman, "GET /api/v1/containers/{id}/logs?follow&tail&timestamps&namespace", {}},
      {{"containers.exec"}, C::kContainersExecFieldNumber, kPodmanCap, kPodman, "POST /api/v1/containers/{id}/exec?namespace",
       {{"command", "cmd"}}},
      {{"containers.healthcheck.run"}, C::kContainersHealthcheckRunFieldNumber, kPodmanCap, kPodman,
       "POST /api/v1/containers/{id}/healthcheck/run?namespace", {}},
      // host.containers' list, in central's shape: the front end converts Podman's answer.
      {{"containers.list"}, C::kContainersListFieldNumber, kPodmanCap, Server::kFront, "", {}},
      {{"volumes.create"}, C::kVolumesCreateFieldNumber, kPodmanCap, kPodman, "POST /api/v1/volumes", {}},
      {{"volumes.delete"}, C::kVolumesDeleteFieldNumber, kPodmanCap, kPodman, "DELETE /api/v1/volumes/{name}?force", {}},
      {{"volumes.inspect"}, C::kVolumesInspectFieldNumber, kPodmanCap, kPodman, "GET /api/v1/volumes/{name}", {}},
      {{"networks.create"}, C::kNetworksCreateFieldNumber, kPodmanCap, kPodman, "POST /api/v1/networks", {}},
      {{"networks.delete"}, C::kNetworksDeleteFieldNumber, kPodmanCap, kPodman, "DELETE /api/v1/networks/{name}?force", {}},
      {{"networks.list"}, C::kNetworksListFieldNumber, kPodmanCap, kPodman, "GET /api/v1/networks", {}},
      {{"firewall.allow"}, C::kFirewallAllowFieldNumber, v1::CAPABILITY_FIREWALL, Server::kFirewall,
       "POST /api/v1/firewall/allow", {}, "rule"},
      {{"firewall.delete", "firewall.revoke"}, C::kFirewallDeleteFieldNumber, v1::CAPABILITY_FIREWALL,
       Server::kFirewall, "DELETE /api/v1/firewall/allow/{id}", {}},
      {{"firewall.list"}, C::kFirewallListFieldNumber, v1::CAPABILITY_FIREWALL, Server::kFirewall,
       "GET /api/v1/firewall/allow?namespace", {}},
      {{"firewall.bulk"}, C::kFirewallBulkFieldNumber, v1::CAPABILITY_FIREWALL, Server::kFirewall,
       "POST /api/v1/firewall/allow/bulk", {}},
      {{"firewall.reconcile"}, C::kFirewallReconcileFieldNumber, v1::CAPABILITY_FIREWALL, Server::kFirewall,
       "POST /api/v1/firewall/reconcile", {}},
      {{"services.register"}, C::kServicesRegisterFieldNumber, v1::CAPABILITY_SERVICES, Server::kDirectory,
       "POST /api/v1/services/register", {}},
      {{"services.deregister", "services.unregister"}, C::kServicesDeregisterFieldNumber, v1::CAPABILITY_SERVICES,
       Server::kDirectory, "DELETE /api/v1/services/{service_id}/endpoints/{container_id}", {}},
      {{"services.endpoints"}, C::kServicesEndpointsFieldNumber, v1::CAPABILITY_SERVICES, Server::kDirectory,
       "GET /api/v1/services/{service_id}/endpoints", {}},
      {{"dns.lookup"}, C::kDnsLookupFieldNumber, v1::CAPABILITY_DNS, Server::kDirectory, "GET /api/v1/dns/lookup/{name}", {}},
      {{"dns.stats"}, C::kDnsStatsFieldNumber, v1::CAPABILITY_DNS, Server::kDirectory, "GET /api/v1/dns/stats", {}},
      {{"host.info"}, C::kHostInfoFieldNumber, kPodmanCap, kPodman, "GET /api/v1/host/info", {}},
      {{"host.containers"}, C::kHostContainersFieldNumber, kPodmanCap, kPodman, "GET /api/v1/host/containers", {}},
      {{"host.stats"}, C::kHostStatsFieldNumber, kPodmanCap, kPodman, "GET /api/v1/host/stats", {}},
      {{"coold.logs"}, C::kCooldLogsFieldNumber, v1::CAPABILITY_LOGS, Server::kFront, "", {}},
      // Answered by the front end before the router, when it holds central's keys.
      {{"host.jwt.set"}, C::kHostJwtSetFieldNumber, v1::CAPABILITY_TOKEN_SET, Server::kFront, "", {}},
      // Central's catalogue that no coold serves: ingress stays central's own job (the
      // seed's split); corrosion.tables has no coold side yet.
      {{"ingress.apply"}, 0, v1::CAPABILITY_UNSPECIFIED, Server::kNone, "", {}},
      {{"ingress.stop"}, 0, v1::CAPABILITY_UNSPECIFIED, Server::kNone, "", {}},
      {{"corrosion.tables"}, 0, v1::CAPABILITY_UNSPECIFIED, Server::kNone, "", {}},
  };
  return *verbs;
}

const Verb* FindVerb(std::string_view name) {
  for (const Verb& verb : Verbs()) {
    for (const char* candidate : verb.names) {
      if (name == candidate) return &verb;
    }
  }
  return nullptr;
}

const Verb* VerbOf(const v1::Command& command) {
  if (command.verb_case() == v1::Command::VERB_NOT_SET) return nullptr;
  for (const Verb& verb : Verbs()) {
    if (verb.field == static_cast<int>(command.verb_case())) return &verb;
  }
  return nullptr;
}

}  // namespace coolify::commands
