#include "services/front/endpoint_sync.h"

#include <fcntl.h>

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "policy/namespace_rules.h"
#include "privsep/log.h"
#include "privsep/validate.h"
#include "proto/privsep.pb.h"

namespace coolify::front {
namespace {

namespace json = boost::json;

constexpr std::chrono::milliseconds kDebounce{100};
constexpr std::chrono::milliseconds kMaxWatchBackoff{5000};
// The label that names the service a container serves; without it, its name does.
constexpr char kServiceLabel[] = "coolify.service";

std::string Text(const json::value* v) {
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

const json::value* Path(const json::value& root, std::initializer_list<const char*> keys) {
  const json::value* at = &root;
  for (const char* key : keys) {
    if (!at->is_object()) return nullptr;
    at = at->as_object().if_contains(key);
    if (at == nullptr) return nullptr;
  }
  return at;
}

absl::StatusOr<json::value> ParseJson(const std::string& text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return absl::InternalError(absl::StrCat("podman answered something that is not JSON: ", ec.message()));
  return v;
}

}  // namespace

absl::StatusOr<std::vector<endpoints::EndpointRow>> DesiredRows(
    const std::string& containers_json,
    const std::function<absl::StatusOr<std::string>(const std::string& id, const std::string& namespace_name)>& inspect,
    const v1::CooldConfig& config, const std::vector<endpoints::EndpointRow>& existing) {
  std::map<std::string, std::string> namespace_of_network;
  for (const v1::NamespaceConfig& ns : config.namespaces()) namespace_of_network[ns.network()] = ns.name();
  std::multimap<std::string, const endpoints::EndpointRow*> registered;
  for (const endpoints::EndpointRow& row : existing) registered.emplace(row.container_id, &row);

  absl::StatusOr<json::value> list = ParseJson(containers_json);
  if (!list.ok()) return list.status();
  if (!list->is_array()) return absl::InternalError("podman's container list is not an array");
  std::vector<endpoints::EndpointRow> rows;
  for (const json::value& summary : list->as_array()) {
    const std::string id = Text(Path(summary, {"Id"}));
    const json::value* networks = Path(summary, {"Networks"});
    if (id.empty()) continue;
    auto [first, last] = registered.equal_range(id);
    bool managed = first != last;
    if (networks != nullptr && networks->is_array()) {
      for (const json::value& n : networks->as_array()) managed = managed || namespace_of_network.count(Text(&n)) > 0;
    }
    if (!managed) continue;
    // The gatekeeper answers only for the namespace the container was created in, which
    // its label (written by the gatekeeper) says; "" is the default namespace.
    absl::StatusOr<std::string> inspected = inspect(id, Text(Path(summary, {"Labels", policy::kNamespaceLabel.data()})));
    // Gone between the list and the inspect: the next tick sees it as gone.
    if (absl::IsNotFound(inspected.status())) continue;
    if (!inspected.ok()) return inspected.status();
    absl::StatusOr<json::value> details = ParseJson(*inspected);
    if (!details.ok()) return details.status();
    const json::value* attached = Path(*details, {"NetworkSettings", "Networks"});
    std::string name = Text(Path(*details, {"Name"}));
    if (!name.empty() && name[0] == '/') name.erase(0, 1);
    std::string health = absl::AsciiStrToLower(Text(Path(*details, {"State", "Health", "Status"})));
    if (health.empty()) health = "unknown";
    const std::string state = absl::AsciiStrToLower(Text(Path(*details, {"State", "Status"})));

    endpoints::EndpointRow row;
    row.container_id = id;
    row.host_id = config.host_id();
    row.container_name = name;
    row.state = state;
    row.health = health;
    // One namespace per container: the first managed network it is attached to, in
    // COOLD_NAMESPACES order.
    for (const v1::NamespaceConfig& ns : config.namespaces()) {
      const json::value* on =
          attached != nullptr && attached->is_object() ? attached->as_object().if_contains(ns.network()) : nullptr;
      if (on == nullptr) continue;
      row.namespace_name = ns.name();
      row.ip = Text(Path(*on, {"IPAddress"}));
      break;
    }
    // A stopped container loses its attachment and address in Podman's inspect; its row
    // stays, with its last address and its new state (DNS answers running rows only),
    // until the container is removed.
    if (first != last) {
      if (row.namespace_name.empty()) row.namespace_name = first->second->namespace_name;
      if (row.ip.empty()) row.ip = first->second->ip;
    }
    if (row.namespace_name.empty() || row.ip.empty()) continue;
    if (first == last) {
      std::string service = Text(Path(*details, {"Config", "Labels", kServiceLabel}));
      row.service_id = service.empty() ? name : service;
      rows.push_back(row);
    }
    for (auto it = first; it != last; ++it) {
      row.service_id = it->second->service_id;
      row.port = it->second->port;
      rows.push_back(row);
    }
  }
  return rows;
}

EndpointSync::EndpointSync(boost::asio::io_context& io, PodmanClient& podman, ServiceDirectory& directory,
                           v1::CooldConfig config)
    : io_(io),
      podman_(podman),
      directory_(directory),
      config_(std::move(config)),
      tick_timer_(io),
      trigger_timer_(io),
      watch_timer_(io) {}

void EndpointSync::Start() {
  Watch();
  Trigger();
  ScheduleTick();
}

void EndpointSync::Watch() {
  absl::StatusOr<PodmanFollow> watch = podman_.WatchEvents();
  if (!watch.ok() || !watch->stream.valid()) {
    const std::string why = watch.ok() ? absl::StrCat("status ", watch->answer.http_status, " ", watch->answer.body)
                                       : watch.status().ToString();
    LogWarn("podman events: %s; retrying in %d ms", why, static_cast<int>(watch_backoff_.count()));
    return RetryWatch();
  }
  watch_backoff_ = std::chrono::milliseconds(100);
  events_readable_.emplace(io_, fcntl(watch->stream.get(), F_DUPFD_CLOEXEC, 0));
  events_.emplace(std::move(watch->stream));
  WaitForEvent();
}

void EndpointSync::RetryWatch() {
  events_readable_.reset();
  events_.reset();
  watch_timer_.expires_after(watch_backoff_);
  watch_backoff_ = std::min(watch_backoff_ * 2, kMaxWatchBackoff);
  watch_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Watch();
  });
}

void EndpointSync::WaitForEvent() {
  events_readable_->async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    privsep::PodmanStreamFrame frame;
    absl::Status received = ec ? absl::UnavailableError(ec.message()) : events_->Receive(&frame);
    if (received.ok()) received = privsep::Validate(frame);
    if (absl::IsInvalidArgument(received) && metrics_ != nullptr) metrics_->RejectedFrame("podman", "events");
    if (!received.ok() || frame.has_end()) {
      // Podman restarted, or the stream broke: watch again, and reconcile what was missed.
      LogWarn("podman events ended: %s", received.ok() ? frame.end().message() : received.ToString());
      Trigger();
      return RetryWatch();
    }
    // Which event it was does not matter: any of them may have moved a row, and the
    // reconcile reads the truth from Podman.
    Trigger();
    WaitForEvent();
  });
}

void EndpointSync::Trigger() {
  if (trigger_pending_) return;
  trigger_pending_ = true;
  trigger_timer_.expires_after(kDebounce);
  trigger_timer_.async_wait([this](boost::system::error_code ec) {
    trigger_pending_ = false;
    if (ec) return;
    (void)Reconcile();
  });
}

void EndpointSync::ScheduleTick() {
  tick_timer_.expires_after(std::chrono::milliseconds(std::max<uint32_t>(config_.reconcile_interval_ms(), 100)));
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    (void)Reconcile();
    ScheduleTick();
  });
}

absl::Status EndpointSync::Reconcile() {
  auto fail = [this](absl::Status status) {
    // Said once per distinct failure, not every tick.
    if (status.ToString() != last_error_) LogWarn("endpoint reconcile: %s; retrying next tick", status.ToString());
    last_error_ = status.ToString();
    return status;
  };
  v1::Command list;
  list.mutable_host_containers();
  absl::StatusOr<PodmanAnswer> containers = podman_.Run(list);
  if (!containers.ok()) return fail(containers.status());
  if (containers->http_status != 200) {
    return fail(absl::UnavailableError(absl::StrCat("podman container list: ", containers->http_status)));
  }
  absl::StatusOr<endpoints::EndpointStore*> store = directory_.Store();
  if (!store.ok()) return fail(store.status());
  absl::StatusOr<std::vector<endpoints::EndpointRow>> existing = (*store)->ListHost();
  if (!existing.ok()) return fail(existing.status());
  auto inspect = [this](const std::string& id, const std::string& namespace_name) -> absl::StatusOr<std::string> {
    v1::Command c;
    c.mutable_containers_inspect()->set_id(id);
    c.mutable_containers_inspect()->set_namespace_(namespace_name);
    absl::StatusOr<PodmanAnswer> answer = podman_.Run(c);
    if (!answer.ok()) return answer.status();
    if (answer->http_status == 404) return absl::NotFoundError(id);
    if (answer->http_status != 200) return absl::UnavailableError(absl::StrCat("inspect ", id, ": ", answer->http_status));
    return answer->body;
  };
  absl::StatusOr<std::vector<endpoints::EndpointRow>> desired = DesiredRows(containers->body, inspect, config_, *existing);
  if (!desired.ok()) return fail(desired.status());
  absl::StatusOr<endpoints::ReconcileResult> result = (*store)->ReplaceHostRows(*std::move(desired));
  if (!result.ok()) return fail(result.status());
  if (!last_error_.empty()) LogInfo("endpoint reconcile: working again");
  last_error_.clear();
  for (const std::string& skipped : result->skipped) LogWarn("endpoint reconcile: skipped %s", skipped);
  if (metrics_ != nullptr) metrics_->DriftRepaired(result->written, result->removed);
  if (result->written > 0 || result->removed > 0) {
    LogInfo("endpoint reconcile: %u written, %u removed", static_cast<unsigned>(result->written),
            static_cast<unsigned>(result->removed));
    if (absl::Status s = directory_.TableChanged(); !s.ok()) return fail(s);
  }
  return absl::OkStatus();
}

}  // namespace coolify::front
