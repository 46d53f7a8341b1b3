#include "services/front/front.h"

#include <poll.h>

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include <memory>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/posix/stream_descriptor.hpp"
#include "boost/asio/steady_timer.hpp"
#include "privsep/child.h"
#include "privsep/log.h"
#include "privsep/roles.h"
#include "proto/privsep.pb.h"
#include "services/commands/dispatch_codec.h"
#include "services/broker/jwt.h"
#include "services/front/broker_link.h"
#include "services/front/build_client.h"
#include "services/front/command_router.h"
#include "services/front/endpoint_sync.h"
#include "services/front/firewall_client.h"
#include "services/front/front_metrics.h"
#include "services/front/followed_log.h"
#include "services/front/podman_client.h"
#include "services/front/rest_api.h"
#include "services/front/service_directory.h"
#include "services/http/server.h"
#include "services/http/status.h"

namespace coolify::front {
namespace {

using privsep::HealthReport;
using privsep::Role;

// Asks one helper for its health report over its channel.
template <typename Request, typename Reply>
absl::StatusOr<HealthReport> AskHealth(privsep::Channel& channel, Role role) {
  privsep::Client<Request, Reply> client(channel);
  Request request;
  request.mutable_health();
  absl::StatusOr<Reply> reply = client.Call(request);
  if (!reply.ok()) return reply.status();
  if (reply->status().code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply->status().code()), reply->status().message());
  }
  if (!reply->has_health() || reply->health().role() != role) {
    return absl::InternalError(absl::StrCat(privsep::RoleName(role), " answered health with another report"));
  }
  return reply->health();
}

}  // namespace

absl::Status RunHealthRound(FrontChannels channels, int proc_status_fd) {
  privsep::HealthRound round;
  absl::StatusOr<HealthReport> self = privsep::SelfHealth(privsep::ROLE_FRONT, proc_status_fd);
  if (!self.ok()) return self.status();
  *round.add_reports() = *self;
  for (absl::StatusOr<HealthReport> report :
       {AskHealth<privsep::NetlinkRequest, privsep::NetlinkReply>(channels.netlink, privsep::ROLE_NETLINK),
        AskHealth<privsep::PodmanRequest, privsep::PodmanReply>(channels.podman, privsep::ROLE_PODMAN),
        AskHealth<privsep::BuildLauncherRequest, privsep::BuildLauncherReply>(channels.build,
                                                                              privsep::ROLE_BUILD)}) {
    if (!report.ok()) return report.status();
    *round.add_reports() = *report;
  }
  absl::MutexLock lock(&channels.monitor_mu);
  privsep::Client<privsep::MonitorRequest, privsep::MonitorReply> monitor(channels.monitor);
  privsep::MonitorRequest request;
  *request.mutable_health_round() = round;
  absl::StatusOr<privsep::MonitorReply> reply = monitor.Call(request);
  if (!reply.ok()) return reply.status();
  if (reply->status().code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply->status().code()), reply->status().message());
  }
  return absl::OkStatus();
}

absl::StatusOr<Startup> RequestStartup(privsep::Channel& monitor) {
  privsep::Client<privsep::MonitorRequest, privsep::MonitorReply> client(monitor);
  privsep::MonitorRequest request;
  request.mutable_startup();
  std::vector<privsep::UniqueFd> fds;
  absl::StatusOr<privsep::MonitorReply> reply = client.Call(request, {}, &fds);
  if (!reply.ok()) return reply.status();
  if (!reply->has_startup()) return absl::InternalError("monitor answered startup without a configuration");
  Startup startup;
  startup.startup = reply->startup();
  // The descriptors arrive in the documented order, each only when its flag says so.
  size_t next = 0;
  for (auto [present, slot] : {std::pair{startup.startup.api_listener(), &startup.api_listener},
                               std::pair{startup.startup.api_token(), &startup.api_token},
                               std::pair{startup.startup.tls_cert(), &startup.tls_cert},
                               std::pair{startup.startup.tls_key(), &startup.tls_key}}) {
    if (!present) continue;
    if (next >= fds.size()) return absl::InternalError("monitor sent fewer descriptors than it named");
    *slot = std::move(fds[next++]);
  }
  if (next != fds.size()) return absl::InternalError("monitor sent more descriptors than it named");
  return startup;
}

namespace {

// Reads a whole small file from a descriptor the monitor opened.
absl::StatusOr<std::string> ReadAll(int fd, size_t limit) {
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "read");
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > limit) return absl::ResourceExhaustedError("file too large");
  }
}

// Any event on a channel while nothing is outstanding is its peer going away or a
// message nobody asked for: both end coold.
void WatchChannel(boost::asio::io_context& io, std::vector<std::unique_ptr<boost::asio::posix::stream_descriptor>>& watchers,
                  int fd) {
  // A duplicate, so the watcher owning and closing it leaves the channel's own descriptor alone.
  auto watcher = std::make_unique<boost::asio::posix::stream_descriptor>(io, fcntl(fd, F_DUPFD_CLOEXEC, 0));
  watcher->async_wait(boost::asio::posix::stream_descriptor::wait_read, [fd](boost::system::error_code ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    LogError("unexpected event on channel fd %d; stopping", fd);
    _exit(1);
  });
  // Starting the wait made the descriptor non-blocking (Asio does so for any operation),
  // and the duplicate shares that flag with the channel's own: each reply would then be a
  // recvmsg() answering EAGAIN, a poll() and a second recvmsg(). The watcher only waits
  // (epoll), it never reads or writes, so the channel gets its blocking mode back.
  if (const int flags = fcntl(fd, F_GETFL); flags >= 0 && (flags & O_NONBLOCK) != 0) {
    if (fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) LogWarn("channel fd %d stays non-blocking: %s", fd, strerror(errno));
  }
  watchers.push_back(std::move(watcher));
}

// One request to the monitor from any thread (its channel is shared, under monitor_mu).
absl::StatusOr<privsep::MonitorReply> AskMonitor(FrontChannels channels, privsep::MonitorRequest request) {
  absl::MutexLock lock(&channels.monitor_mu);
  privsep::Client<privsep::MonitorRequest, privsep::MonitorReply> monitor(channels.monitor);
  absl::StatusOr<privsep::MonitorReply> reply = monitor.Call(std::move(request));
  if (!reply.ok()) return reply.status();
  if (reply->status().code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply->status().code()), reply->status().message());
  }
  return reply;
}

BrokerLinkOptions BrokerOptions(const privsep::FrontStartup& startup, FrontChannels channels) {
  const v1::CooldConfig& config = startup.config();
  BrokerLinkOptions options;
  options.address = startup.broker_address();
  options.server_name = config.broker_host();
  options.root_pem = startup.broker_ca_pem();
  options.token = startup.broker_token();
  // The host key stays in the monitor: the front end asks it to sign.
  if (!startup.host_public_key().empty()) {
    options.public_key_der = startup.host_public_key();
    options.enrollment_token = startup.enrollment_token();
    options.prove = [channels](const std::string& nonce) -> absl::StatusOr<std::string> {
      privsep::MonitorRequest request;
      request.mutable_host_proof()->set_nonce(nonce);
      absl::StatusOr<privsep::MonitorReply> reply = AskMonitor(channels, std::move(request));
      if (!reply.ok()) return reply.status();
      return reply->host_proof().signature();
    };
    options.mint_token = [channels]() -> absl::StatusOr<std::string> {
      privsep::MonitorRequest request;
      request.mutable_host_token();
      absl::StatusOr<privsep::MonitorReply> reply = AskMonitor(channels, std::move(request));
      if (!reply.ok()) return reply.status();
      return reply->host_token().token();
    };
    options.on_enrolled = [channels]() -> absl::Status {
      privsep::MonitorRequest request;
      request.mutable_host_enrolled();
      return AskMonitor(channels, std::move(request)).status();
    };
  }
  options.hello.set_host_id(config.host_id());
  options.hello.set_agent_version("coold");
  for (v1::Capability capability : {v1::CAPABILITY_PODMAN, v1::CAPABILITY_FIREWALL, v1::CAPABILITY_SERVICES,
                                    v1::CAPABILITY_DNS, v1::CAPABILITY_LOGS}) {
    options.hello.add_capabilities(capability);
  }
  if (startup.broker_jwt_keys_size() > 0) options.hello.add_capabilities(v1::CAPABILITY_TOKEN_SET);
  if (config.builder_enabled()) {
    options.hello.add_capabilities(v1::CAPABILITY_BUILDER);
    options.hello.set_builder_capacity(config.builder_capacity());
  }
  return options;
}

// host.jwt.set: central's fresh token for this host, pushed on the stream. Checked here
// like the broker checks it (a key of COOLD_BROKER_JWT_KEYS, aud, lifetime) and for this
// host; then the monitor writes it (0600) and the stream presents it as its renewal, so
// the stream never drops for it. Refused with the reason, nothing changed.
v1::CommandResult SetHostJwt(const broker::JwtVerifier& verifier, const std::string& host_id, FrontChannels channels,
                             BrokerLink* link, const std::string& jwt) {
  v1::CommandResult result;
  auto refuse = [&result](int code, const std::string& why) {
    LogWarn("host.jwt.set refused: %s", why);
    result.set_code(code);
    result.set_message(absl::StrCat("host.jwt.set: ", why));
    return result;
  };
  absl::StatusOr<broker::HostClaims> claims = verifier.Verify(jwt, absl::Now());
  if (!claims.ok()) return refuse(400, std::string(claims.status().message()));
  if (claims->host_id != host_id) {
    return refuse(403, absl::StrCat("the token is for host \"", absl::CHexEscape(claims->host_id.substr(0, 64)),
                                    "\", not this host (", host_id, ")"));
  }
  privsep::MonitorRequest request;
  request.mutable_host_jwt_write()->set_jwt(jwt);
  if (absl::Status written = AskMonitor(channels, std::move(request)).status(); !written.ok()) {
    return refuse(500, absl::StrCat("not kept: ", written.message()));
  }
  if (link != nullptr) link->ReplaceToken(jwt);
  LogInfo("host.jwt.set: token %s accepted (expires %d), presented on the live stream", claims->jti,
          absl::ToUnixSeconds(claims->expires));
  result.set_code(200);
  auto& fields = *result.mutable_data()->mutable_struct_value()->mutable_fields();
  fields["jti"].set_string_value(claims->jti);
  fields["expires_at"].set_number_value(static_cast<double>(absl::ToUnixSeconds(claims->expires)));
  return result;
}

// One message from the broker, on the io_context like every REST request. A build
// answers later: its events and its Response come from the build stream (BuildClient).
std::optional<v1::CommandResult> RunBrokerMessage(CommandRouter& router, BuildClient* builds, FrontMetrics& metrics,
                                                  const v1::ServerMsg& message) {
  if (message.has_command()) {
    return commands::DispatchLaneResult(message.command(), router.Route(message.command(), Lane::kBroker));
  }
  if (message.has_cancel()) {
    if (builds == nullptr) return std::nullopt;
    if (absl::Status s = builds->Cancel(message.cancel().request_id()); !s.ok()) {
      LogWarn("cancel of build %s: %s", message.cancel().request_id(), s.ToString());
    }
    return std::nullopt;  // the build's Response says how it ended
  }
  v1::CommandResult result;
  (*result.mutable_data()->mutable_struct_value()->mutable_fields())["stage"].set_string_value("dispatch");
  if (builds == nullptr) {
    result.set_code(501);
    result.set_message("this host does not run builds (COOLD_BUILDER_ENABLED is not 1)");
    return result;
  }
  absl::Status started = builds->Start(message.build());
  if (started.ok()) return std::nullopt;
  // At capacity a build is refused, never queued: the broker places builds by load and
  // may send it to another host at once (503, not a request too large).
  result.set_code(http::HttpStatusOf(absl::IsResourceExhausted(started) ? http::WithHttpStatus(started, 503) : started));
  result.set_message(std::string(started.message()));
  metrics.BuildNotStarted(result.code());
  return result;
}


// Runs a health round every `interval`, on the loop that also makes every other call
// on the helpers' channels, so a round never interleaves with another request.
void ScheduleHealthRounds(boost::asio::steady_timer& timer, std::chrono::milliseconds interval,
                          FrontChannels channels, int proc_status_fd) {
  timer.expires_after(interval);
  timer.async_wait([&timer, interval, channels, proc_status_fd](boost::system::error_code ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    if (absl::Status health = RunHealthRound(channels, proc_status_fd); !health.ok()) {
      LogError("health round: %s; stopping", health.ToString());
      _exit(1);
    }
    ScheduleHealthRounds(timer, interval, channels, proc_status_fd);
  });
}

}  // namespace

int Serve(FrontChannels channels, Startup startup, int proc_status_fd) {
  boost::asio::io_context io;
  std::vector<std::unique_ptr<boost::asio::posix::stream_descriptor>> watchers;
  // Not the monitor's: the DNS thread asks it for sockets (ServiceDirectory), and the
  // monitor's death reaches this process as its parent-death signal anyway.
  for (privsep::Channel* channel : {&channels.netlink, &channels.podman, &channels.build}) {
    WatchChannel(io, watchers, channel->fd());
  }

  FirewallClient firewall(channels.netlink);
  PodmanClient podman(channels.podman);
  // Counted here, in the one process that sees every request and every child's reply.
  FrontMetrics metrics;
  metrics.SetChannelSource([channels] {
    return std::vector<std::pair<std::string, uint64_t>>{{"netlink", channels.netlink.refused_sends()},
                                                         {"podman", channels.podman.refused_sends()},
                                                         {"build", channels.build.refused_sends()}};
  });
  auto services = ServiceDirectory::Create(io, startup.startup.config(), startup.endpoint_db_path, channels.monitor,
                                          channels.monitor_mu);
  if (!services.ok()) {
    LogError("%s", services.status().ToString());
    return 1;
  }
  (*services)->Start();
  metrics.SetDnsSource([directory = services->get()] { return directory->DnsStats(); });
  EndpointSync sync(io, podman, **services, startup.startup.config());
  sync.set_metrics(&metrics);
  sync.Start();
  CommandRouter router(firewall, podman,
                       [directory = services->get()](const v1::Command& command) { return directory->Route(command); });
  router.set_metrics(&metrics);
  std::unique_ptr<RestApi> api;
  std::shared_ptr<http::Server> server;
  if (startup.api_listener) {
    auto token = ReadAll(startup.api_token.get(), 4096);
    if (!token.ok()) {
      LogError("COOLD_API_TOKEN_FILE: %s", token.status().ToString());
      return 1;
    }
    std::string bearer(absl::StripAsciiWhitespace(*token));
    if (bearer.size() < 16) {
      LogError("COOLD_API_TOKEN_FILE: the token must be at least 16 characters");
      return 1;
    }
    std::shared_ptr<boost::asio::ssl::context> tls;
    if (startup.tls_cert) {
      auto cert = ReadAll(startup.tls_cert.get(), 1 << 20);
      auto key = ReadAll(startup.tls_key.get(), 1 << 20);
      if (!cert.ok() || !key.ok()) {
        LogError("COOLD_TLS_CERT/COOLD_TLS_KEY: unreadable");
        return 1;
      }
      auto context = http::MakeTlsContext(*cert, *key);
      if (!context.ok()) {
        LogError("%s", context.status().ToString());
        return 1;
      }
      tls = *context;
    }
    LogFollower follower = [&io, &podman, &metrics](const v1::Command& command) -> http::Response {
      absl::StatusOr<PodmanFollow> follow = podman.Follow(command);
      if (!follow.ok()) return http::ErrorResponse(HttpStatusOf(follow.status()), std::string(follow.status().message()));
      if (!follow->stream.valid()) {
        return http::Response{follow->answer.http_status, std::move(follow->answer.body), "application/json", nullptr,
                              {}};
      }
      http::Response response;
      response.content_type = "text/plain; charset=utf-8";
      response.stream = FollowedLog::Create(io, std::move(follow->stream), &metrics);
      return response;
    };
    api = std::make_unique<RestApi>(router, bearer, std::move(follower));
    api->set_metrics(&metrics);
    http::Limits limits;
    limits.max_body_bytes = 16 << 20;  // a bulk of kMaxRulesPerRequest rules
    limits.request_log = "rest";
    auto created = http::Server::Create(io, startup.api_listener.release(), tls, limits,
                                        [&api](http::Request request, http::Responder respond) {
                                          api->Handle(std::move(request), std::move(respond));
                                        });
    if (!created.ok()) {
      LogError("REST API: %s", created.status().ToString());
      return 1;
    }
    server = *created;
    server->Start();
    LogInfo("REST API on %s:%u (%s)", startup.startup.config().api_bind_ip(),
            startup.startup.config().api_bind_port(), tls ? "https" : "http");
  }
  // The broker stream: central's commands through the same router as the REST API's.
  std::unique_ptr<BrokerLink> broker;
  std::unique_ptr<BuildClient> builds;
  if (startup.startup.config().builder_enabled()) {
    builds = std::make_unique<BuildClient>(io, channels.build, [&podman](const std::string& name, int archive) {
      return podman.LoadImage(name, archive);
    });
    builds->set_metrics(&metrics);
  }
  if (!startup.startup.broker_address().empty()) {
    // Central's keys, for host.jwt.set; none configured, the verb is not advertised.
    auto central_keys = std::make_shared<broker::JwtVerifier>();
    for (const privsep::TrustedKey& key : startup.startup.broker_jwt_keys()) {
      if (absl::Status s = central_keys->AddKey(key.kid(), key.pem()); !s.ok()) {
        LogError("COOLD_BROKER_JWT_KEYS: %s", s.ToString());
        return 1;
      }
    }
    const std::string host_id = startup.startup.config().host_id();
    broker = std::make_unique<BrokerLink>(
        io, BrokerOptions(startup.startup, channels),
        [&router, &builds, &broker, &metrics, central_keys, host_id, channels](const v1::ServerMsg& message) {
          if (message.has_command() && message.command().has_host_jwt_set() && central_keys->key_count() > 0) {
            const auto started = std::chrono::steady_clock::now();
            v1::CommandResult result =
                SetHostJwt(*central_keys, host_id, channels, broker.get(), message.command().host_jwt_set().jwt());
            metrics.Command(Lane::kBroker, message.command(), result.code(), metrics::SecondsSince(started));
            return std::optional<v1::CommandResult>(std::move(result));
          }
          return RunBrokerMessage(router, builds.get(), metrics, message);
        });
    broker->Start();
  }
  // Builds' events and outcomes, those adopted at start included, go to the broker.
  if (builds) {
    absl::Status watching = builds->Watch([&broker](v1::ClientMsg message) {
      if (broker) broker->Send(std::move(message));
    });
    if (!watching.ok()) {
      LogError("build stream: %s", watching.ToString());
      return 1;
    }
  }
  boost::asio::steady_timer health_timer(io);
  ScheduleHealthRounds(health_timer,
                       std::chrono::milliseconds(std::max<uint32_t>(startup.startup.config().health_interval_ms(), 1000)),
                       channels, proc_status_fd);
  io.run();
  return 1;
}

}  // namespace coolify::front
