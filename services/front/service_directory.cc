#include "services/front/service_directory.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "privsep/log.h"
#include "proto/privsep.pb.h"
#include "services/dns/namespaces.h"
#include "services/dns/resolver.h"
#include "services/endpoints/endpoint.h"
#include "services/endpoints/store_config.h"
#include "services/front/command_router.h"
#include "services/front/result_values.h"
#include "services/http/status.h"

namespace coolify::front {
namespace {

using google::protobuf::Value;

constexpr std::chrono::seconds kRefreshInterval{1};

Value RowValue(const endpoints::EndpointRow& row) {
  Value v;
  auto& f = *v.mutable_struct_value()->mutable_fields();
  f["service_id"] = StringValue(row.service_id);
  f["container_id"] = StringValue(row.container_id);
  f["host_id"] = StringValue(row.host_id);
  f["namespace"] = StringValue(row.namespace_name);
  f["container_name"] = StringValue(row.container_name);
  f["ip"] = StringValue(row.ip);
  f["port"] = NumberValue(row.port);
  f["state"] = StringValue(row.state);
  f["health"] = StringValue(row.health);
  f["updated_at_ms"] = NumberValue(static_cast<double>(row.updated_at_ms));
  return v;
}

const char* RcodeName(dns::Rcode rcode) {
  switch (rcode) {
    case dns::Rcode::kNoError:
      return "NOERROR";
    case dns::Rcode::kNxDomain:
      return "NXDOMAIN";
    case dns::Rcode::kRefused:
      return "REFUSED";
    case dns::Rcode::kServFail:
      return "SERVFAIL";
    default:
      return "OTHER";
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServiceDirectory>> ServiceDirectory::Create(boost::asio::io_context& io,
                                                                           const v1::CooldConfig& config,
                                                                           const std::string& sqlite_path,
                                                                           privsep::Channel& monitor,
                                                                           absl::Mutex& monitor_mu) {
  endpoints::StoreConfig store_config;
  if (config.endpoint_store_corrosion()) {
    store_config.kind = endpoints::StoreConfig::Kind::kCorrosion;
    store_config.corrosion.ip = config.corrosion_ip();
    store_config.corrosion.port = static_cast<uint16_t>(config.corrosion_port());
  } else {
    if (sqlite_path.empty()) return absl::FailedPreconditionError("endpoint store: no database directory was passed");
    store_config.sqlite_path = sqlite_path;
  }
  auto zone = dns::ParseZoneVariable(config.dns_zone());
  if (!zone.ok()) return zone.status();
  std::unique_ptr<ServiceDirectory> directory(
      new ServiceDirectory(io, store_config, config.host_id(), *zone, monitor, monitor_mu));
  if (absl::StatusOr<endpoints::EndpointStore*> store = directory->Store(); !store.ok()) {
    if (!absl::IsUnavailable(store.status())) return store.status();
    LogWarn("%s; DNS answers from an empty table until it answers", store.status().ToString());
  }
  for (const v1::NamespaceConfig& ns : config.namespaces()) {
    if (ns.gateway() == "0.0.0.0") continue;
    dns::ServerOptions options;
    options.namespace_name = ns.name();
    options.gateway_ip = ns.gateway();
    options.zone = *zone;
    options.upstream_ip = config.dns_upstream_ip();
    options.upstream_port = static_cast<uint16_t>(config.dns_upstream_port());
    ServiceDirectory* self = directory.get();
    const std::string name = ns.name();
    auto server = dns::DnsServer::Create(directory->dns_io_, options, &directory->table_,
                                         [self, name]() { return self->AskMonitorForSockets(name); });
    if (!server.ok()) return server.status();
    directory->servers_.push_back(*std::move(server));
    directory->server_namespaces_.push_back(ns.name());
  }
  return directory;
}

ServiceDirectory::~ServiceDirectory() {
  if (dns_thread_.joinable()) {
    boost::asio::post(dns_io_, [this] {
      for (auto& server : servers_) server->Stop();
      dns_work_.reset();
    });
    dns_thread_.join();
  }
}

void ServiceDirectory::Start() {
  if (absl::Status s = Refresh(/*force=*/true); !s.ok()) LogWarn("endpoint store: %s", s.ToString());
  boost::asio::post(dns_io_, [this] {
    for (auto& server : servers_) server->Start();
  });
  dns_thread_ = std::thread([this] { dns_io_.run(); });
  ScheduleRefresh();
  LogInfo("service directory: store %s, %u DNS listeners",
          store_ ? store_->Describe() : std::string("(not open yet)"), static_cast<unsigned>(servers_.size()));
}

absl::StatusOr<dns::ListenSockets> ServiceDirectory::AskMonitorForSockets(const std::string& namespace_name) {
  absl::MutexLock lock(&monitor_mu_);
  privsep::Client<privsep::MonitorRequest, privsep::MonitorReply> client(monitor_);
  privsep::MonitorRequest request;
  request.mutable_dns_sockets()->set_namespace_name(namespace_name);
  std::vector<privsep::UniqueFd> fds;
  absl::StatusOr<privsep::MonitorReply> reply = client.Call(request, {}, &fds);
  if (!reply.ok()) return reply.status();
  if (reply->status().code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply->status().code()), reply->status().message());
  }
  if (!reply->has_dns_sockets() || fds.size() != 2) {
    return absl::InternalError("monitor answered DNS sockets without its two descriptors");
  }
  dns::ListenSockets sockets;
  sockets.udp = std::move(fds[0]);
  sockets.tcp = std::move(fds[1]);
  return sockets;
}

absl::StatusOr<endpoints::EndpointStore*> ServiceDirectory::Store() {
  if (store_) return store_.get();
  auto store = endpoints::OpenStore(store_config_, host_id_);
  if (!store.ok()) {
    return absl::Status(store.status().code(), absl::StrCat("endpoint store: ", store.status().message()));
  }
  store_ = *std::move(store);
  LogInfo("endpoint store %s open", store_->Describe());
  return store_.get();
}

absl::Status ServiceDirectory::Refresh(bool force) {
  absl::StatusOr<endpoints::EndpointStore*> store = Store();
  if (!store.ok()) return store.status();
  absl::StatusOr<std::string> fingerprint = (*store)->Fingerprint();
  if (!fingerprint.ok()) return fingerprint.status();
  if (!force && *fingerprint == fingerprint_) return absl::OkStatus();
  absl::StatusOr<std::vector<endpoints::EndpointRow>> rows = (*store)->ListServing();
  if (!rows.ok()) return rows.status();
  table_.Replace(*rows);
  fingerprint_ = *std::move(fingerprint);
  return absl::OkStatus();
}

void ServiceDirectory::ScheduleRefresh() {
  refresh_timer_.expires_after(kRefreshInterval);
  refresh_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    // DNS keeps answering from the last table while the store is down; say so once.
    absl::Status refreshed = Refresh(/*force=*/false);
    if (!refreshed.ok() && store_reachable_) LogWarn("endpoint store unreachable: %s", refreshed.ToString());
    if (refreshed.ok() && !store_reachable_) LogInfo("endpoint store reachable again");
    store_reachable_ = refreshed.ok();
    ScheduleRefresh();
  });
}

v1::CommandResult ServiceDirectory::Route(const v1::Command& command) {
  const bool needs_store = command.has_services_register() || command.has_services_deregister() ||
                           command.has_services_endpoints();
  absl::StatusOr<endpoints::EndpointStore*> store = Store();
  if (needs_store && !store.ok()) return ErrorResult(store.status());
  switch (command.verb_case()) {
    case v1::Command::kServicesRegister: {
      endpoints::EndpointRow row = endpoints::RowFromRegister(command.services_register());
      row.host_id = host_id_;
      if (absl::Status valid = endpoints::ValidateEndpointRow(row); !valid.ok()) return ErrorResult(valid);
      if (absl::Status s = (*store)->Upsert(row); !s.ok()) return ErrorResult(s);
      if (absl::Status s = Refresh(/*force=*/true); !s.ok()) LogWarn("endpoint store: %s", s.ToString());
      return OkResult(201, RowValue(row));
    }
    case v1::Command::kServicesDeregister: {
      const v1::ServicesDeregister& r = command.services_deregister();
      if (absl::Status s = (*store)->Delete(r.service_id(), r.container_id()); !s.ok()) return ErrorResult(s);
      if (absl::Status s = Refresh(/*force=*/true); !s.ok()) LogWarn("endpoint store: %s", s.ToString());
      Value data;
      (*data.mutable_struct_value()->mutable_fields())["deleted"] = BoolValue(true);
      return OkResult(200, std::move(data));
    }
    case v1::Command::kServicesEndpoints: {
      auto rows = (*store)->ListService(command.services_endpoints().service_id());
      if (!rows.ok()) return ErrorResult(rows.status());
      Value data;
      auto* list = (*data.mutable_struct_value()->mutable_fields())["endpoints"].mutable_list_value();
      for (const endpoints::EndpointRow& row : *rows) *list->add_values() = RowValue(row);
      return OkResult(200, std::move(data));
    }
    case v1::Command::kDnsLookup: {
      auto result = dns::LookupName(table_, zone_, command.dns_lookup().name());
      if (!result.ok()) return ErrorResult(result.status());
      Value data;
      auto& f = *data.mutable_struct_value()->mutable_fields();
      f["name"] = StringValue(command.dns_lookup().name());
      f["rcode"] = StringValue(RcodeName(result->rcode));
      f["namespace"] = StringValue(result->namespace_name);
      auto* addresses = f["addresses"].mutable_list_value();
      for (const std::string& a : result->addresses) *addresses->add_values() = StringValue(a);
      return OkResult(200, std::move(data));
    }
    case v1::Command::kDnsStats: {
      Value data;
      auto& f = *data.mutable_struct_value()->mutable_fields();
      f["names"] = NumberValue(static_cast<double>(table_.Current()->names));
      auto* listeners = f["listeners"].mutable_list_value();
      for (size_t i = 0; i < servers_.size(); ++i) {
        const auto& server = servers_[i];
        Value one;
        auto& s = *one.mutable_struct_value()->mutable_fields();
        s["namespace"] = StringValue(server_namespaces_[i]);
        s["serving"] = BoolValue(server->serving());
        for (const auto& [name, count] : server->stats().Items()) {
          s[std::string(name)] = NumberValue(static_cast<double>(count));
        }
        *listeners->add_values() = std::move(one);
      }
      return OkResult(200, std::move(data));
    }
    default:
      return ErrorResult(http::InvalidField("command", "not a services or dns verb"));
  }
}

std::vector<std::pair<std::string, const dns::Stats*>> ServiceDirectory::DnsStats() const {
  std::vector<std::pair<std::string, const dns::Stats*>> out;
  for (size_t i = 0; i < servers_.size(); ++i) out.emplace_back(server_namespaces_[i], &servers_[i]->stats());
  return out;
}

}  // namespace coolify::front
