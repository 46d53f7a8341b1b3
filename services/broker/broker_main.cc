// broker: holds the gRPC streams of many coolds and serves Laravel over a Unix socket.
// Configuration by BROKER_* environment variables (README); exits 2 on a bad one.
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/signal_set.hpp"
#include "boost/asio/steady_timer.hpp"
#include "grpcpp/grpcpp.h"
#include "grpcpp/server_posix.h"
#include "privsep/capabilities.h"
#include "privsep/log.h"
#include "privsep/sandbox.h"
#include "privsep/unique_fd.h"
#include "services/broker/agent_service.h"
#include "services/broker/broker_metrics.h"
#include "services/broker/config.h"
#include "services/broker/guarded_listener.h"
#include "services/broker/hub.h"
#include "services/broker/identity_store.h"
#include "services/broker/jwt.h"
#include "services/broker/passed_listeners.h"
#include "services/broker/uds_api.h"
#include "services/commands/stream_limits.h"
#include "services/http/server.h"

extern char** environ;

namespace coolify::broker {
namespace {

[[noreturn]] void Die(int status, const std::string& message) {
  LogError("%s", message);
  std::exit(status);
}

std::map<std::string, std::string> BrokerEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    size_t eq = entry.find('=');
    if (eq != std::string::npos && absl::StartsWith(entry, "BROKER_")) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

std::string ReadOrDie(const char* variable, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die(2, absl::StrCat(variable, "=", path, ": cannot read (", std::strerror(errno), ")"));
  std::stringstream content;
  content << in.rdbuf();
  if (content.str().empty()) Die(2, absl::StrCat(variable, "=", path, ": empty"));
  return content.str();
}

// The Unix socket for Laravel: a stale socket is replaced, anything else at the path is
// refused. Created 0600 (umask held around bind, so it is never wider even briefly),
// then 0660 with the group when one is configured.
int OpenUnixSocket(const BrokerConfig& config) {
  struct stat st;
  if (lstat(config.unix_socket.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) Die(2, absl::StrCat("BROKER_UNIX_SOCKET=", config.unix_socket, ": exists and is not a socket"));
    if (unlink(config.unix_socket.c_str()) != 0) {
      Die(2, absl::StrCat("BROKER_UNIX_SOCKET=", config.unix_socket, ": cannot remove stale socket: ", std::strerror(errno)));
    }
  }
  gid_t gid = 0;
  if (!config.unix_socket_group.empty()) {
    struct group* g = getgrnam(config.unix_socket_group.c_str());
    if (g == nullptr) Die(2, absl::StrCat("BROKER_UNIX_SOCKET_GROUP=", config.unix_socket_group, ": no such group"));
    gid = g->gr_gid;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die(1, absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, config.unix_socket.data(), config.unix_socket.size());
  mode_t old = umask(0177);
  int bound = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int bind_errno = errno;
  umask(old);
  if (bound != 0) Die(2, absl::StrCat("BROKER_UNIX_SOCKET=", config.unix_socket, ": bind: ", std::strerror(bind_errno)));
  if (!config.unix_socket_group.empty()) {
    if (chown(config.unix_socket.c_str(), static_cast<uid_t>(-1), gid) != 0 || chmod(config.unix_socket.c_str(), 0660) != 0) {
      Die(2, absl::StrCat("BROKER_UNIX_SOCKET_GROUP=", config.unix_socket_group, ": ", std::strerror(errno)));
    }
  }
  if (listen(fd, 1024) != 0) Die(1, absl::StrCat("listen: ", std::strerror(errno)));
  return fd;
}

// The gRPC port, BROKER_GRPC_BIND, bound and listening before the sandbox. The broker
// accepts on it itself (GuardedListener) and hands gRPC each connection; gRPC listens on
// nothing. A wildcard host (0.0.0.0 or [::]) listens on IPv6 and IPv4 both, as gRPC's own
// listener did; "localhost" on 127.0.0.1.
privsep::UniqueFd OpenGrpcListener(const BrokerConfig& config) {
  const std::string& bind_spec = config.grpc_bind;
  size_t colon = bind_spec.rfind(':');
  std::string host = bind_spec.substr(0, colon);
  const std::string port = bind_spec.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const bool wildcard = host == "0.0.0.0" || host == "::";
  if (host == "localhost") host = "127.0.0.1";
  std::vector<std::string> tries = wildcard ? std::vector<std::string>{"::", "0.0.0.0"} : std::vector<std::string>{host};
  std::string error;
  for (const std::string& address : tries) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (int rc = getaddrinfo(address.c_str(), port.c_str(), &hints, &found); rc != 0) {
      error = gai_strerror(rc);
      continue;
    }
    privsep::UniqueFd fd(socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1, zero = 0;
    bool ok = fd && setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
              (found->ai_family != AF_INET6 || !wildcard ||
               setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) == 0) &&
              bind(fd.get(), found->ai_addr, found->ai_addrlen) == 0 && listen(fd.get(), 4096) == 0;
    error = std::strerror(errno);
    freeaddrinfo(found);
    if (ok) return fd;
  }
  Die(2, absl::StrCat("BROKER_GRPC_BIND=", bind_spec, ": cannot listen: ", error));
}

// The port the listener got (BROKER_GRPC_BIND may ask for 0).
int BoundPort(const privsep::UniqueFd& fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

constexpr char kStateFile[] = "broker.db";

// BROKER_STATE_DIR, made if missing and given to the broker's user alone (mode 0700):
// only the broker reads or writes its identity store. Opened here, before the sandbox,
// so Landlock can leave the broker this one directory (hardening/landlock/broker.list);
// SQLite opens the file by its path, since /proc/self/fd is root's once the broker has
// changed its user in-process (no longer dumpable).
privsep::UniqueFd OpenStateDir(const std::string& dir) {
  auto policy = privsep::LoadRolePolicy(privsep::ROLE_BROKER);
  if (!policy.ok()) Die(1, std::string(policy.status().message()));
  auto user = privsep::ResolveUser(policy->identity.user);
  if (!user.ok()) Die(1, std::string(user.status().message()));
  for (size_t slash = 1; slash <= dir.size(); ++slash) {
    if (slash != dir.size() && dir[slash] != '/') continue;
    std::string prefix = dir.substr(0, slash);
    if (mkdir(prefix.c_str(), slash == dir.size() ? 0700 : 0755) != 0 && errno != EEXIST) {
      Die(2, absl::StrCat("BROKER_STATE_DIR=", dir, ": mkdir ", prefix, ": ", std::strerror(errno)));
    }
  }
  privsep::UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) Die(2, absl::StrCat("BROKER_STATE_DIR=", dir, ": ", std::strerror(errno)));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) Die(2, absl::StrCat("BROKER_STATE_DIR=", dir, ": ", std::strerror(errno)));
  // Anyone else owning it could swap the database under the broker.
  if (st.st_uid != 0 && st.st_uid != user->uid) {
    Die(2, absl::StrCat("BROKER_STATE_DIR=", dir, ": must be owned by root or ", policy->identity.user));
  }
  // Mode before owner, each only when it differs: root changes the mode of its own
  // directory without CAP_FOWNER, and under broker.service (User=coolify-broker,
  // StateDirectory=) both are already right, so no call is made that its filter refuses.
  if ((st.st_mode & 07777) != 0700 && fchmod(fd.get(), 0700) != 0) {
    Die(2, absl::StrCat("BROKER_STATE_DIR=", dir, ": chmod: ", std::strerror(errno)));
  }
  if ((st.st_uid != user->uid || st.st_gid != user->gid) && fchown(fd.get(), user->uid, user->gid) != 0) {
    Die(2, absl::StrCat("BROKER_STATE_DIR=", dir, ": chown: ", std::strerror(errno)));
  }
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string name = absl::StrCat(kStateFile, suffix);
    if (fstatat(fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode)) Die(2, absl::StrCat("BROKER_STATE_DIR=", dir, ": ", name, " is not a regular file"));
    if (st.st_uid != user->uid && fchownat(fd.get(), name.c_str(), user->uid, user->gid, AT_SYMLINK_NOFOLLOW) != 0) {
      Die(2, absl::StrCat("BROKER_STATE_DIR=", dir, ": chown ", name, ": ", std::strerror(errno)));
    }
  }
  return fd;
}

void Sweep(boost::asio::steady_timer& timer, Hub& hub, IdentityStore& store, int round) {
  timer.expires_after(std::chrono::milliseconds(100));
  timer.async_wait([&timer, &hub, &store, round](const boost::system::error_code& ec) {
    if (ec) return;
    hub.Sweep(absl::Now());
    if (round % 600 == 0) store.ForgetExpired(absl::Now());
    // Every 5 s: hand the heap's free pages back. Thousands of TLS handshakes leave
    // freed memory in every thread's arena that glibc would otherwise keep mapped.
    if (round % 50 == 0) malloc_trim(0);
    Sweep(timer, hub, store, round + 1);
  });
}

int Run() {
  SetLogRole("broker");
  // absl's mutex deadlock detector (on in builds without NDEBUG) records every lock in
  // a global graph: a few percent of the broker's CPU for no use in production.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::StatusOr<BrokerConfig> config = ParseBrokerConfig(BrokerEnvironment());
  if (!config.ok()) Die(2, std::string(config.status().message()));
  absl::StatusOr<JwtVerifier> verifier = JwtVerifier::FromKeySpec(config->jwt_keys);
  if (!verifier.ok()) Die(2, std::string(verifier.status().message()));
  TokenPolicy policy;
  policy.audience = config->jwt_audience;
  policy.issuer = config->jwt_issuer;
  policy.max_lifetime = config->token_max_lifetime;
  policy.skew = config->jwt_leeway;
  verifier->set_policy(policy);

  std::shared_ptr<boost::asio::ssl::context> tls;
  if (!config->insecure_plaintext) {
    auto made = MakeGrpcTlsContext(ReadOrDie("BROKER_TLS_CERT", config->tls_cert),
                                   ReadOrDie("BROKER_TLS_KEY", config->tls_key));
    if (!made.ok()) Die(2, absl::StrCat("BROKER_TLS_CERT/BROKER_TLS_KEY: ", made.status().message()));
    tls = *std::move(made);
  }
  // Socket-activated (broker.socket, broker-grpc.socket), systemd made the listeners,
  // Laravel's socket's path, group and mode included: only one it did not pass is bound
  // here, from BROKER_*.
  absl::StatusOr<PassedListeners> passed = TakePassedListeners();
  if (!passed.ok()) Die(2, std::string(passed.status().message()));
  int unix_fd = passed->unix_socket.passed() ? passed->unix_socket.fd : OpenUnixSocket(*config);
  privsep::UniqueFd grpc_fd = passed->grpc.passed() ? privsep::UniqueFd(passed->grpc.fd) : OpenGrpcListener(*config);
  const int port = BoundPort(grpc_fd);
  privsep::UniqueFd state_dir = OpenStateDir(config->state_dir);

  // Everything the broker reads is in memory now and its Unix socket is bound: from here
  // on it runs as coolify-broker with no capability, no filesystem (Landlock) and only
  // the system calls of hardening/seccomp/broker.list. gRPC starts its threads after
  // this, as EnterSandbox requires a single-threaded process.
  privsep::EnterSandbox({privsep::ROLE_BROKER, {unix_fd, grpc_fd.get()}, {state_dir.get()}, {}});
  // Single-threaded still: SQLite's first open is here, inside the sandbox.
  absl::StatusOr<std::unique_ptr<IdentityStore>> store =
      IdentityStore::Open(absl::StrCat(config->state_dir, "/", kStateFile),
                          policy.max_lifetime + 2 * policy.skew);
  if (!store.ok()) Die(1, absl::StrCat("BROKER_STATE_DIR=", config->state_dir, ": ", store.status().message()));
  (*store)->ForgetExpired(absl::Now());

  if (config->insecure_plaintext) {
    LogWarn("*** BROKER_INSECURE_PLAINTEXT=1: host tokens and commands cross %s WITHOUT TLS; local development only ***",
            config->grpc_bind);
  }

  HubOptions options;
  options.pending_max = config->pending_max;
  options.pending_per_host = config->pending_per_host;
  options.answered_max = config->pending_max;
  options.dispatch_timeout = config->dispatch_timeout;
  options.landed_ttl = config->landed_ttl;
  options.token_grace = policy.skew;
  Hub hub(options);
  PeerAddresses peers;
  AgentServiceOptions agent_options;
  agent_options.require_enrollment = config->require_enrollment;
  agent_options.peer_address = [&peers](const std::string& peer) { return peers.Resolve(peer); };
  AgentService service(hub, *verifier, **store, agent_options);

  // gRPC listens on no port: every connection comes from the guarded listener below, as
  // a descriptor, after TLS and under the HTTP/2 guard. gRPC starts its threads here.
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(commands::kMaxStreamMessageBytes);
  // Dead peers are found by keepalive pings, not by the next dispatch timing out.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  // A connection without a call for 30 s is closed: a host always has its stream open,
  // so an idle connection is one that never became (or stopped being) a host's.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 30000);
  // Hardening against peers that have not proven anything yet; what gRPC 1.51 cannot do
  // the listener's HTTP/2 guard does (h2_guard.h, docs/architecture.md). One host needs one stream per connection; a few more let a
  // reconnect overlap. Metadata carries a token of at most 8 KiB. Compression is off: a
  // message in any encoding but identity is refused from its grpc-encoding header, before
  // a byte is inflated.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 4);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 16 * 1024);
  builder.AddChannelArgument(GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET, 1);
  // Thousands of mostly idle hosts: small per-connection buffers. Reads start at 4 KiB and
  // grow with traffic; no BDP probing to widen windows nobody fills. (TLS is the
  // listener's, not gRPC's.)
  builder.AddChannelArgument(GRPC_ARG_TCP_READ_CHUNK_SIZE, 4096);
  builder.AddChannelArgument(GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, 256);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  // No channelz bookkeeping per connection: nothing here reads it.
  builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) Die(1, "gRPC server did not start");
  GuardedListener listener(std::move(grpc_fd), tls,
                           [&server](int fd) { grpc::AddInsecureChannelFromFd(server.get(), fd); }, &peers,
                           config->connections_per_address);
  listener.Start();

  boost::asio::io_context io(1);
  IdentityApiOptions identity{config->public_url, config->installer_url, {}};
  identity.stats = [&hub, &service]() {
    const AgentServiceStats& a = service.stats();
    HubStats h = hub.stats();
    return boost::json::object{{"refused_credentials", a.refused_credentials.load()},
                               {"refused_hellos", a.refused_hellos.load()},
                               {"refused_proofs", a.refused_proofs.load()},
                               {"refused_enrollments", a.refused_enrollments.load()},
                               {"refused_renewals", a.refused_renewals.load()},
                               {"streams_opened", a.streams_opened.load()},
                               {"streams_replaced", h.replaced},
                               {"tokens_renewed", h.renewed},
                               {"streams_expired", h.expired},
                               {"streams_cut_off", h.cut_off},
                               {"late_or_duplicate_answers", h.stray_responses},
                               {"repeats_answered", h.replayed},
                               {"refused_host_quota", h.refused_host_quota}};
  };
  BrokerMetrics metrics(hub, &service.stats(), &listener.stats());
  UdsApi api(hub, **store, std::move(identity), &metrics);
  auto http = http::Server::Create(io, unix_fd, nullptr, UdsLimits(),
                                   [&api](http::Request request, http::Responder respond) {
                                     api.Handle(std::move(request), std::move(respond));
                                   });
  if (!http.ok()) Die(1, std::string(http.status().message()));
  (*http)->Start();
  boost::asio::steady_timer sweeper(io);
  Sweep(sweeper, hub, **store, 1);
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code&, int) {
    LogInfo("shutting down");
    (*http)->Stop();
    sweeper.cancel();
    io.stop();
  });
  std::string host = config->grpc_bind.substr(0, config->grpc_bind.rfind(':'));
  LogInfo("identity store %s/%s: %d hosts, %d revoked tokens; tokens for audience \"%s\", at most %s, %s of clock skew",
          config->state_dir, kStateFile, (*store)->ListHosts().size(), (*store)->revoked_count(), policy.audience,
          absl::FormatDuration(policy.max_lifetime), absl::FormatDuration(policy.skew));
  LogInfo("listening: gRPC %s (%s, %s), Unix socket %s (%s)",
          passed->grpc.passed() ? passed->grpc.address : absl::StrCat(host, ":", port),
          config->insecure_plaintext ? "plaintext" : "TLS",
          passed->grpc.passed() ? "passed by systemd, BROKER_GRPC_BIND unused" : "bound from BROKER_GRPC_BIND",
          passed->unix_socket.passed() ? passed->unix_socket.address : config->unix_socket,
          passed->unix_socket.passed()
              ? "passed by systemd; its socket unit sets the mode and group, BROKER_UNIX_SOCKET and _GROUP unused"
              : absl::StrCat("bound from BROKER_UNIX_SOCKET, mode ",
                             config->unix_socket_group.empty() ? "0600" : "0660 group " + config->unix_socket_group));
  io.run();
  // The socket file stays (the sandbox reaches no path); the next start replaces it.
  listener.Stop();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace
}  // namespace coolify::broker

int main() { return coolify::broker::Run(); }
