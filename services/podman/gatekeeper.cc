#include "services/podman/gatekeeper.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "boost/json/value.hpp"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "policy/engine.h"
#include "policy/host_path.h"
#include "policy/namespace_rules.h"
#include "policy/shown_value.h"
#include "policy/render.h"
#include "policy/spec_validation.h"
#include "privsep/channel.h"
#include "privsep/log.h"
#include "privsep/unique_fd.h"
#include "privsep/validate.h"
#include "services/commands/verbs.h"
#include "services/http/status.h"
#include "services/podman/libpod_client.h"
#include "services/podman/libpod_fields.h"
#include "services/podman/libpod_path.h"
#include "services/podman/libpod_verbs.h"

namespace coolify::podman {
namespace {

namespace json = boost::json;
using privsep::PodmanCall;
using privsep::PodmanResponse;
using v1::Command;

json::string_view JsonView(std::string_view s) { return json::string_view(s.data(), s.size()); }

GatekeeperAnswer Answer(unsigned status, const json::value& body) {
  return GatekeeperAnswer{status, json::serialize(body), {}};
}

GatekeeperAnswer ErrorAnswer(unsigned status, std::string_view message) {
  json::object o;
  o["error"] = JsonView(message);
  return Answer(status, o);
}

// The HTTP answer for a failed step: Podman's failures as coold answers an upstream's
// (services/http/status.h), through the one Status -> HTTP map.
GatekeeperAnswer FromStatus(const absl::Status& status) {
  const absl::Status answered = http::UpstreamFailure("podman", status);
  return ErrorAnswer(http::HttpStatusOf(answered), std::string(answered.message()));
}

// A field validation failure: 400 {"error", "field"}, the field the status carries.
GatekeeperAnswer InvalidRequest(const absl::Status& status) {
  json::object o;
  o["error"] = JsonView(std::string(status.message()));
  if (const std::string field = http::FieldOf(status); !field.empty()) o["field"] = JsonView(field);
  return Answer(400, o);
}

GatekeeperAnswer Denied(const policy::Verdict& verdict) {
  json::object o;
  o["error"] = "denied by policy";
  json::array violations;
  for (const policy::Violation& v : verdict.violations) {
    json::object e;
    e["field"] = JsonView(v.field);
    e["value"] = JsonView(v.value);
    e["rule"] = JsonView(v.rule);
    e["reason"] = JsonView(v.reason);
    violations.emplace_back(std::move(e));
  }
  o["violations"] = std::move(violations);
  return Answer(403, o);
}

GatekeeperAnswer IdAnswer(unsigned status, std::string_view key, std::string_view id) {
  json::object o;
  o[JsonView(key)] = JsonView(id);
  return Answer(status, o);
}

// Podman's answer relayed as it sent it: the front end parses it.
GatekeeperAnswer JsonOrError(unsigned status, absl::StatusOr<std::string> text) {
  if (!text.ok()) return FromStatus(text.status());
  return GatekeeperAnswer{status, *std::move(text), {}};
}

// What confines a create, from the policy alone: every call arrives from the front end,
// which cannot prove who asks, so nothing it says widens what a request may do. The
// request's namespace must be one of the host's (and the gatekeeper records it in the
// container's labels); which of them a caller may act in is the API token's business,
// and the token is the whole host's (docs/architecture.md, "The Podman channel").
policy::CallerContext Caller(const GatekeeperOptions& options) {
  const v1::Policy& policy = options.policy;
  policy::CallerContext caller;
  caller.management_ip = options.management_ip;
  if (options.api_port != 0) caller.reserved_host_ports.push_back(options.api_port);
  // The host's namespaces are those the policy names; a "*" rule governs any other, so
  // then the list is left empty (every namespace the rules govern is the host's).
  bool wildcard = false;
  for (const v1::NamespaceRule& rule : policy.namespaces()) {
    if (rule.namespace_() == "*") wildcard = true;
  }
  if (!wildcard) {
    for (const v1::NamespaceRule& rule : policy.namespaces()) {
      caller.host_namespaces.push_back(rule.namespace_());
    }
  }
  return caller;
}

// Podman's image inspect Digest, when it has one.
std::optional<std::string> ImageDigest(const LibpodClient& client, std::string_view id) {
  absl::StatusOr<std::string> target = BuildTarget(
      {{SegmentKind::kLiteral, "images"}, {SegmentKind::kImageRef, id}, {SegmentKind::kLiteral, "json"}});
  if (!target.ok()) return std::nullopt;
  absl::StatusOr<HttpResult> result = client.Call(Method::kGet, *target);
  if (!result.ok() || !StatusFromResponse(result->status, result->body).ok()) return std::nullopt;
  absl::StatusOr<std::vector<std::vector<JsonScalar>>> found = ExtractFields(result->body, {{"Digest"}});
  if (!found.ok()) return std::nullopt;
  absl::StatusOr<std::string> digest = OneString((*found)[0], "Digest");
  if (!digest.ok() || digest->empty()) return std::nullopt;
  return *std::move(digest);
}

// Sends `data` as frames of at most kMaxBodyBytesPerFrame, each made by `field`.
absl::Status SendPieces(privsep::Channel& out, std::string_view data, size_t* bytes,
                        const std::function<std::string*(privsep::PodmanStreamFrame&)>& field) {
  while (!data.empty()) {
    const size_t piece = std::min(data.size(), static_cast<size_t>(privsep::kMaxBodyBytesPerFrame));
    privsep::PodmanStreamFrame frame;
    field(frame)->assign(data.data(), piece);
    if (absl::Status sent = out.Send(frame); !sent.ok()) return absl::CancelledError("front end gone");
    *bytes += piece;
    data.remove_prefix(piece);
  }
  return absl::OkStatus();
}

// Streams at once: each holds a thread and a Podman connection.
std::atomic<int>& OpenStreams() {
  static std::atomic<int> count{0};
  return count;
}

// What feeds a stream: runs against Podman until done, sending frames to `out`; the
// stream options carry the cancel descriptor (the front end closing its end).
using StreamProducer = std::function<absl::Status(privsep::Channel& out, const LibpodClient& client,
                                                  const LibpodClient::StreamOptions& stream_options,
                                                  size_t* bytes)>;

// Runs `produce` in a thread of its own feeding one end of a new socket pair, whose other
// end is the answer's stream; the last frame is `end` with the producer's status.
GatekeeperAnswer StartStream(const ClientOptions& client_options, std::string what, StreamProducer produce) {
  if (OpenStreams().fetch_add(1) >= kMaxFollowStreams) {
    OpenStreams().fetch_sub(1);
    return ErrorAnswer(503, absl::StrCat("already serving ", kMaxFollowStreams, " streams"));
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    OpenStreams().fetch_sub(1);
    return ErrorAnswer(500, absl::StrCat("socketpair: ", strerror(errno)));
  }
  GatekeeperAnswer answer{200, "", privsep::UniqueFd(pair[0])};
  std::thread(
      [client_options, what = std::move(what), produce = std::move(produce)](privsep::UniqueFd end) {
        privsep::Channel channel(std::move(end));
        const LibpodClient client(client_options);
        LibpodClient::StreamOptions stream_options;
        stream_options.cancel_fd = channel.fd();
        size_t bytes = 0;
        const absl::Time start = absl::Now();
        const absl::Status status = produce(channel, client, stream_options, &bytes);
        privsep::PodmanStreamFrame last;
        last.mutable_end()->set_code(static_cast<int>(status.code()));
        last.mutable_end()->set_message(std::string(status.message()));
        // The front end may be gone already (that is how a stream is cancelled).
        (void)channel.Send(last);
        coolify::LogInfo("podman stream verb=%s status=%s duration_ms=%d bytes=%u", what,
                         absl::StatusCodeToString(status.code()),
                         static_cast<int>(absl::ToInt64Milliseconds(absl::Now() - start)),
                         static_cast<unsigned>(bytes));
        OpenStreams().fetch_sub(1);
      },
      privsep::UniqueFd(pair[1]))
      .detach();
  return answer;
}

class Runner {
 public:
  Runner(const GatekeeperOptions& options, const LibpodClient& client, const PodmanCall& call)
      : options_(options), call_(call), client_(client) {}

  // Runs the call through the gatekeeper's table (kPodmanVerbs below).
  GatekeeperAnswer Run();

  // The handlers, one per verb of kPodmanVerbs; each runs after the verb's validator.
  GatekeeperAnswer PullImage(const Command& c) { return ImagesPull_(c.images_pull()); }
  GatekeeperAnswer ListImages(const Command&) { return JsonOrError(200, ImagesList(client_)); }
  GatekeeperAnswer DeleteImage(const Command& c) {
    return JsonOrError(200, ImagesDelete(client_, c.images_delete().ref(), c.images_delete().force()));
  }
  GatekeeperAnswer CreateContainer(const Command& c) { return Create(c.containers_create().spec()); }
  GatekeeperAnswer StartContainer(const Command& c) {
    const v1::ContainersStart& r = c.containers_start();
    Access a = Check(r.id(), r.namespace_());
    if (!a.ok) return std::move(a.refused);
    if (std::optional<GatekeeperAnswer> refused = BindsStillHold(a.container)) return *std::move(refused);
    return Done(ContainersStart(client_, a.container.id), r.id());
  }
  GatekeeperAnswer StopContainer(const Command& c) {
    const v1::ContainersStop& r = c.containers_stop();
    Access a = Check(r.id(), r.namespace_());
    if (!a.ok) return std::move(a.refused);
    return Done(ContainersStop(client_, a.container.id, Timeout(r.has_timeout_seconds(), r.timeout_seconds())),
                r.id());
  }
  GatekeeperAnswer RestartContainer(const Command& c) {
    const v1::ContainersRestart& r = c.containers_restart();
    Access a = Check(r.id(), r.namespace_());
    if (!a.ok) return std::move(a.refused);
    return Done(ContainersRestart(client_, a.container.id, Timeout(r.has_timeout_seconds(), r.timeout_seconds())),
                r.id());
  }
  GatekeeperAnswer DeleteContainer(const Command& c) {
    const v1::ContainersDelete& r = c.containers_delete();
    Access a = Check(r.id(), r.namespace_());
    if (!a.ok) return std::move(a.refused);
    return Done(ContainersDelete(client_, a.container.id, r.force()), r.id());
  }
  GatekeeperAnswer InspectOneContainer(const Command& c) {
    const v1::ContainersInspect& r = c.containers_inspect();
    Access a = Check(r.id(), r.namespace_());
    if (!a.ok) return std::move(a.refused);
    // Relayed as Podman sent it: the front end parses it.
    return GatekeeperAnswer{200, std::move(a.container.inspect), {}};
  }
  GatekeeperAnswer ContainerLogs(const Command& c) { return Logs(c.containers_logs()); }
  GatekeeperAnswer ExecInContainer(const Command& c) { return Exec(c.containers_exec()); }
  GatekeeperAnswer RunHealthcheck(const Command& c) {
    const v1::ContainersHealthcheckRun& r = c.containers_healthcheck_run();
    Access a = Check(r.id(), r.namespace_());
    if (!a.ok) return std::move(a.refused);
    absl::StatusOr<HealthResult> health = ContainersHealthcheck(client_, a.container.id);
    if (!health.ok()) return FromStatus(health.status());
    return IdAnswer(200, "status", health->status);
  }
  GatekeeperAnswer CreateVolume(const Command& c) { return VolumeCreate(c.volumes_create()); }
  GatekeeperAnswer DeleteVolume(const Command& c) {
    return Done(VolumesDelete(client_, c.volumes_delete().name(), c.volumes_delete().force()),
                c.volumes_delete().name(), "name");
  }
  GatekeeperAnswer InspectVolume(const Command& c) {
    return JsonOrError(200, VolumesInspect(client_, c.volumes_inspect().name()));
  }
  GatekeeperAnswer CreateNetwork(const Command& c) { return NetworkCreate(c.networks_create()); }
  GatekeeperAnswer DeleteNetwork(const Command& c) {
    return Done(NetworksDelete(client_, c.networks_delete().name(), c.networks_delete().force()),
                c.networks_delete().name(), "name");
  }
  GatekeeperAnswer ListNetworks(const Command&) { return JsonOrError(200, NetworksList(client_)); }
  GatekeeperAnswer Info(const Command&) { return JsonOrError(200, HostInfo(client_)); }
  GatekeeperAnswer ListContainers(const Command&) {
    // Podman filters by coold's label itself, so the list is relayed unread.
    return JsonOrError(200, HostContainers(client_, options_.policy.adopt_unlabelled()
                                                        ? std::string()
                                                        : std::string(policy::kOwnerLabel) + "=" +
                                                              std::string(policy::kOwnerValue)));
  }
  GatekeeperAnswer Stats(const Command&) { return JsonOrError(200, HostStats(client_)); }

 private:
  static std::optional<unsigned> Timeout(bool has, uint32_t seconds) {
    if (!has) return std::nullopt;
    return seconds;
  }

  static GatekeeperAnswer Done(const absl::Status& status, std::string_view id,
                               std::string_view key = "id") {
    if (!status.ok()) return FromStatus(status);
    return IdAnswer(200, key, id);
  }

  // A container a verb may act on, and what the gatekeeper read of it.
  struct Access {
    bool ok = false;
    GatekeeperAnswer refused;  // when !ok
    ContainerFacts container;  // when ok; container.id is Podman's full id
  };

  // Looks the container up and applies policy::EvaluateContainerAccess. The verb then
  // acts on the full id Podman answered, never on the name asked, so a container
  // removed and created again under the same name between the check and the act is
  // not the one acted on.
  Access Check(const std::string& asked, const std::string& namespace_name) {
    Access access;
    absl::StatusOr<ContainerFacts> facts = InspectContainer(client_, asked);
    if (!facts.ok()) {
      access.refused = FromStatus(facts.status());
      return access;
    }
    policy::ContainerRecord record{asked, facts->owner, facts->namespace_name};
    absl::StatusOr<policy::Verdict> verdict =
        policy::EvaluateContainerAccess(record, namespace_name, options_.policy);
    if (!verdict.ok()) {
      access.refused = InvalidRequest(verdict.status());
      return access;
    }
    if (!verdict->allowed()) {
      coolify::LogWarn("podman call refused: container %s, rule %s", policy::ShownValue(asked),
                       verdict->violations.front().rule);
      access.refused = Denied(*verdict);
      return access;
    }
    access.ok = true;
    access.container = *std::move(facts);
    return access;
  }

  GatekeeperAnswer ImagesPull_(const v1::ImagesPull& request) {
    absl::StatusOr<policy::Verdict> verdict = policy::EvaluateImagePull(request, options_.policy);
    if (!verdict.ok()) return InvalidRequest(verdict.status());
    if (!verdict->allowed()) return Denied(*verdict);
    RegistryCredentials credentials{request.auth().username(), request.auth().password(),
                                    request.auth().identity_token()};
    absl::StatusOr<std::string> id =
        ImagesPull(client_, request.ref(), PullPolicy::kNewer, request.has_auth() ? &credentials : nullptr);
    if (!id.ok()) return FromStatus(id.status());
    json::object o;
    o["id"] = JsonView(*id);
    if (std::optional<std::string> digest = ImageDigest(client_, *id)) o["digest"] = JsonView(*digest);
    return Answer(200, o);
  }

  GatekeeperAnswer Create(const v1::ContainerSpec& spec) {
    policy::CallerContext caller = Caller(options_);
    std::unique_ptr<policy::PinningHostPathResolver> resolver;
    if (options_.pin_host_paths) {
      absl::StatusOr<std::unique_ptr<policy::PinningHostPathResolver>> created =
          policy::PinningHostPathResolver::Create(options_.host_root);
      if (!created.ok()) {
        return ErrorAnswer(500, absl::StrCat("host root: ", created.status().message()));
      }
      resolver = *std::move(created);
      caller.host_paths = resolver.get();
    }
    absl::StatusOr<policy::Verdict> verdict = policy::Evaluate(spec, options_.policy, caller);
    if (!verdict.ok()) return InvalidRequest(verdict.status());
    // Podman creates a named volume that does not exist, with its default driver and
    // options, past the volume policy (EvaluateVolumeCreate): a volume must exist first.
    for (int i = 0; i < spec.volumes_size(); ++i) {
      absl::StatusOr<std::string> found = VolumesInspect(client_, spec.volumes(i).volume());
      if (absl::IsNotFound(found.status())) {
        verdict->violations.push_back(policy::Violation{
            absl::StrCat("volumes[", i, "].volume"), policy::ShownValue(spec.volumes(i).volume()), "existing_volumes",
            absl::StrCat("volume ", spec.volumes(i).volume(),
                         " does not exist; create it first (volumes create, which the policy checks)")});
      } else if (!found.ok()) {
        return FromStatus(found.status());
      }
    }
    if (!verdict->allowed()) return Denied(*verdict);
    absl::StatusOr<std::string> body = policy::RenderSpecGenerator(spec, options_.policy, resolver.get());
    if (!body.ok()) return FromStatus(body.status());
    absl::StatusOr<std::string> id = ContainersCreate(client_, *body);
    if (!id.ok()) return FromStatus(id.status());
    if (options_.after_create_for_test) options_.after_create_for_test();
    if (resolver != nullptr && !spec.binds().empty()) {
      if (absl::Status same = SameBindSources(spec, *resolver); !same.ok()) {
        absl::Status removed = ContainersDelete(client_, *id, /*force=*/true);
        coolify::LogWarn("containers_create: bind source changed after the check; container %s %s",
                         *id, removed.ok() ? "deleted" : absl::StrCat("NOT deleted: ", removed.ToString()));
        return ErrorAnswer(409, std::string(same.message()));
      }
    }
    // Podman 4.3 drops the runtime a create names and runs its own default: a container
    // the policy put under runsc would otherwise run under runc without a word.
    const std::string& runtime = spec.runtime().empty() ? options_.policy.default_runtime() : spec.runtime();
    absl::StatusOr<ContainerFacts> created = InspectContainer(client_, *id);
    if (!created.ok() || created->oci_runtime != runtime) {
      absl::Status removed = ContainersDelete(client_, *id, /*force=*/true);
      const std::string got = created.ok() ? created->oci_runtime : created.status().ToString();
      coolify::LogWarn("containers_create: Podman created container %s with runtime %s, not %s; %s", *id, got,
                       runtime, removed.ok() ? "deleted" : absl::StrCat("NOT deleted: ", removed.ToString()));
      return ErrorAnswer(502, absl::StrCat("Podman created the container with runtime ", got, ", not ", runtime,
                                           "; it runs its own default runtime whatever a create names"));
    }
    return IdAnswer(201, "id", *id);
  }

  // Podman binds by path again at every start: each bind source must still pass the
  // policy and still be exactly the path it was (policy::EvaluateBindsAtStart). What is
  // left is the moment between this check and Podman's mount; the policy keeps writable
  // binds off the directories other sources pass through (policy/README.md).
  std::optional<GatekeeperAnswer> BindsStillHold(const ContainerFacts& container) {
    if (container.binds.empty()) return std::nullopt;
    policy::CallerContext caller = Caller(options_);
    std::unique_ptr<policy::PinningHostPathResolver> resolver;
    if (options_.pin_host_paths) {
      absl::StatusOr<std::unique_ptr<policy::PinningHostPathResolver>> created =
          policy::PinningHostPathResolver::Create(options_.host_root);
      if (!created.ok()) return ErrorAnswer(500, absl::StrCat("host root: ", created.status().message()));
      resolver = *std::move(created);
      caller.host_paths = resolver.get();
    }
    std::vector<v1::BindMount> binds;
    for (const BindFacts& facts : container.binds) {
      v1::BindMount& bind = binds.emplace_back();
      bind.set_source(facts.source);
      bind.set_destination(facts.destination);
      bind.set_read_only(facts.read_only);
    }
    absl::StatusOr<policy::Verdict> verdict = policy::EvaluateBindsAtStart(binds, options_.policy, caller);
    if (!verdict.ok()) return InvalidRequest(verdict.status());
    if (verdict->allowed()) return std::nullopt;
    coolify::LogWarn("containers_start refused: container %s, rule %s", container.id, verdict->violations.front().rule);
    return Denied(*verdict);
  }

  // Step 3 of host_path.h: every bind source opened again names the pinned object.
  absl::Status SameBindSources(const v1::ContainerSpec& spec,
                               const policy::PinningHostPathResolver& resolver) {
    privsep::UniqueFd root(open(options_.host_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid()) return absl::FailedPreconditionError("bind sources: cannot open the host root");
    for (const v1::BindMount& bind : spec.binds()) {
      absl::StatusOr<std::string> lexical = policy::CanonicalizeLexically(bind.source());
      if (!lexical.ok()) return lexical.status();
      const policy::OpenedPath* pinned = resolver.Pinned(*lexical);
      if (pinned == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat("bind source ", *lexical, " was not pinned"));
      }
      absl::StatusOr<policy::OpenedPath> again = policy::OpenBeneath(root.get(), *lexical);
      if (!again.ok() || again->device != pinned->device || again->inode != pinned->inode) {
        return absl::FailedPreconditionError(
            absl::StrCat("bind source ", *lexical, " changed while the container was created"));
      }
    }
    return absl::OkStatus();
  }

  GatekeeperAnswer Logs(const v1::ContainersLogs& request) {
    Access a = Check(request.id(), request.namespace_());
    if (!a.ok) return std::move(a.refused);
    LogsOptions logs;
    logs.follow = request.follow();
    logs.timestamps = request.timestamps();
    logs.tty = a.container.tty;
    if (request.tail() != 0) logs.tail = request.tail();
    if (request.follow()) return Follow(a.container.id, logs);
    std::string out, err;
    bool truncated = false;
    OutputSink sink = [&](StreamKind stream, std::string_view data) {
      const size_t used = out.size() + err.size();
      const size_t room = kMaxLogBytes - std::min(kMaxLogBytes, used);
      if (data.size() > room) truncated = true;
      std::string& to = stream == StreamKind::kStderr ? err : out;
      to.append(data.data(), std::min(room, data.size()));
      return absl::OkStatus();
    };
    LibpodClient::StreamOptions stream_options;
    stream_options.idle_timeout = options_.io_timeout;
    if (absl::Status s = ContainersLogs(client_, a.container.id, logs, sink, stream_options); !s.ok()) {
      return FromStatus(s);
    }
    json::object o;
    o["stdout"] = JsonView(out);
    o["stderr"] = JsonView(err);
    if (truncated) o["truncated"] = true;
    return Answer(200, o);
  }

  // The container was looked up already (Logs), so a missing one is a 404 answer rather
  // than a stream that ends at once; the output goes to a stream of its own.
  GatekeeperAnswer Follow(const std::string& id, const LogsOptions& logs) {
    return StartStream(client_.options(), "containers_logs",
                       [id, logs](privsep::Channel& out, const LibpodClient& client,
                                  const LibpodClient::StreamOptions& stream_options, size_t* bytes) {
                         OutputSink sink = [&](StreamKind stream, std::string_view data) {
                           return SendPieces(out, data, bytes, [stream](privsep::PodmanStreamFrame& f) {
                             return stream == StreamKind::kStderr ? f.mutable_stderr_data() : f.mutable_stdout_data();
                           });
                         };
                         return ContainersLogs(client, id, logs, sink, stream_options);
                       });
  }

  GatekeeperAnswer Exec(const v1::ContainersExec& request) {
    Access a = Check(request.id(), request.namespace_());
    if (!a.ok) return std::move(a.refused);
    absl::StatusOr<policy::Verdict> verdict = policy::EvaluateExec(request, options_.policy, a.container.user);
    if (!verdict.ok()) return InvalidRequest(verdict.status());
    if (!verdict->allowed()) return Denied(*verdict);
    absl::StatusOr<ExecResult> result =
        ContainersExec(client_, a.container.id, policy::RenderExecConfig(request), request.tty(), kMaxLogBytes);
    if (!result.ok()) return FromStatus(result.status());
    json::object o;
    o["exit_code"] = result->exit_code;
    o["stdout"] = JsonView(result->stdout_text);
    o["stderr"] = JsonView(result->stderr_text);
    if (result->truncated) o["truncated"] = true;
    return Answer(200, o);
  }

  static json::object KeyValues(const google::protobuf::RepeatedPtrField<v1::KeyValue>& kvs) {
    json::object o;
    for (const v1::KeyValue& kv : kvs) o[JsonView(kv.key())] = JsonView(kv.value());
    return o;
  }

  GatekeeperAnswer VolumeCreate(const v1::VolumesCreate& request) {
    absl::StatusOr<policy::Verdict> verdict = policy::EvaluateVolumeCreate(request, options_.policy);
    if (!verdict.ok()) return InvalidRequest(verdict.status());
    if (!verdict->allowed()) return Denied(*verdict);
    json::object spec;
    spec["Name"] = JsonView(request.name());
    spec["Driver"] = request.driver().empty() ? json::string_view("local") : JsonView(request.driver());
    spec["Labels"] = KeyValues(request.labels());
    spec["Options"] = KeyValues(request.options());
    return JsonOrError(201, VolumesCreate(client_, json::serialize(spec)));
  }

  GatekeeperAnswer NetworkCreate(const v1::NetworksCreate& request) {
    absl::StatusOr<policy::Verdict> verdict =
        policy::EvaluateNetworkCreate(request, options_.policy, Caller(options_));
    if (!verdict.ok()) return InvalidRequest(verdict.status());
    if (!verdict->allowed()) return Denied(*verdict);
    json::object spec;
    spec["name"] = JsonView(request.name());
    spec["driver"] = request.driver().empty() ? json::string_view("bridge") : JsonView(request.driver());
    if (!request.subnet().empty()) {
      json::object subnet;
      subnet["subnet"] = JsonView(request.subnet());
      if (!request.gateway().empty()) subnet["gateway"] = JsonView(request.gateway());
      spec["subnets"] = json::array{std::move(subnet)};
    }
    spec["internal"] = request.internal();
    spec["labels"] = KeyValues(request.labels());
    spec["options"] = KeyValues(request.options());
    return JsonOrError(201, NetworksCreate(client_, json::serialize(spec)));
  }

  const GatekeeperOptions& options_;
  const PodmanCall& call_;
  const LibpodClient& client_;
};

// The gatekeeper's verbs: per Command field, the validator that judges the request's
// fields before anything acts (none where the handler's own lookup judges them: a
// container is looked up by its id and checked before any verb acts on it) and the
// handler. It serves exactly the verbs the registry gives it (services/commands/verbs.h,
// Server::kPodman); gatekeeper_verbs_test holds the two to each other.
struct PodmanVerb {
  int field;
  absl::Status (*validate)(const Command& command);
  GatekeeperAnswer (Runner::*serve)(const Command& command);
};

const PodmanVerb kPodmanVerbs[] = {
    {Command::kImagesPullFieldNumber, [](const Command& c) { return policy::ValidateImagesPull(c.images_pull()); },
     &Runner::PullImage},
    {Command::kImagesListFieldNumber, nullptr, &Runner::ListImages},
    {Command::kImagesDeleteFieldNumber, nullptr, &Runner::DeleteImage},
    {Command::kContainersCreateFieldNumber,
     [](const Command& c) { return policy::ValidateContainerSpec(c.containers_create().spec()); },
     &Runner::CreateContainer},
    {Command::kContainersStartFieldNumber, nullptr, &Runner::StartContainer},
    {Command::kContainersStopFieldNumber, nullptr, &Runner::StopContainer},
    {Command::kContainersRestartFieldNumber, nullptr, &Runner::RestartContainer},
    {Command::kContainersDeleteFieldNumber, nullptr, &Runner::DeleteContainer},
    {Command::kContainersInspectFieldNumber, nullptr, &Runner::InspectOneContainer},
    {Command::kContainersLogsFieldNumber, nullptr, &Runner::ContainerLogs},
    {Command::kContainersExecFieldNumber,
     [](const Command& c) { return policy::ValidateContainersExec(c.containers_exec()); }, &Runner::ExecInContainer},
    {Command::kContainersHealthcheckRunFieldNumber, nullptr, &Runner::RunHealthcheck},
    {Command::kVolumesCreateFieldNumber,
     [](const Command& c) { return policy::ValidateVolumesCreate(c.volumes_create()); }, &Runner::CreateVolume},
    {Command::kVolumesDeleteFieldNumber, nullptr, &Runner::DeleteVolume},
    {Command::kVolumesInspectFieldNumber, nullptr, &Runner::InspectVolume},
    {Command::kNetworksCreateFieldNumber,
     [](const Command& c) { return policy::ValidateNetworksCreate(c.networks_create()); }, &Runner::CreateNetwork},
    {Command::kNetworksDeleteFieldNumber, nullptr, &Runner::DeleteNetwork},
    {Command::kNetworksListFieldNumber, nullptr, &Runner::ListNetworks},
    {Command::kHostInfoFieldNumber, nullptr, &Runner::Info},
    {Command::kHostContainersFieldNumber, nullptr, &Runner::ListContainers},
    {Command::kHostStatsFieldNumber, nullptr, &Runner::Stats},
};

const PodmanVerb* FindPodmanVerb(int field) {
  for (const PodmanVerb& verb : kPodmanVerbs) {
    if (verb.field == field) return &verb;
  }
  return nullptr;
}

GatekeeperAnswer Runner::Run() {
  const Command& c = call_.command();
  const commands::Verb* registered = commands::VerbOf(c);
  const PodmanVerb* verb = FindPodmanVerb(static_cast<int>(c.verb_case()));
  if (registered == nullptr || registered->server != commands::Server::kPodman || verb == nullptr) {
    return ErrorAnswer(400, absl::StrCat("not a Podman verb: ", std::string(VerbName(c))));
  }
  if (verb->validate != nullptr) {
    if (absl::Status s = verb->validate(c); !s.ok()) return InvalidRequest(s);
  }
  return (this->*verb->serve)(c);
}

PodmanResponse Piece(unsigned status, std::string body, bool more) {
  PodmanResponse r;
  r.set_http_status(status);
  r.set_body(std::move(body));
  r.set_more(more);
  return r;
}

}  // namespace

std::vector<int> HandledVerbs() {
  std::vector<int> fields;
  for (const PodmanVerb& verb : kPodmanVerbs) fields.push_back(verb.field);
  return fields;
}

std::string_view VerbName(const Command& command) {
  const google::protobuf::OneofDescriptor* verb = Command::descriptor()->FindOneofByName("verb");
  if (verb == nullptr) return "unknown";
  const google::protobuf::FieldDescriptor* field =
      command.GetReflection()->GetOneofFieldDescriptor(command, verb);
  if (field == nullptr) return "none";
  return field->name();
}

BodyChunker::BodyChunker(size_t max_piece) : max_piece_(std::max<size_t>(1, max_piece)) {}

PodmanResponse BodyChunker::Start(const GatekeeperAnswer& answer) {
  pieces_.clear();
  status_ = answer.http_status;
  std::string_view body = answer.body;
  std::string first(body.substr(0, max_piece_));
  for (size_t at = first.size(); at < body.size(); at += max_piece_) {
    pieces_.emplace_back(body.substr(at, max_piece_));
  }
  return Piece(status_, std::move(first), !pieces_.empty());
}

PodmanResponse BodyChunker::Next() {
  if (pieces_.empty()) return Piece(409, R"({"error":"nothing pending"})", false);
  std::string piece = std::move(pieces_.front());
  pieces_.pop_front();
  return Piece(status_, std::move(piece), !pieces_.empty());
}

namespace {

ClientOptions ClientOptionsFor(const GatekeeperOptions& options) {
  ClientOptions client_options;
  client_options.socket_path = options.socket_path;
  client_options.io_timeout = options.io_timeout;
  return client_options;
}

}  // namespace

Gatekeeper::Gatekeeper(GatekeeperOptions options)
    : options_(std::move(options)),
      client_(ClientOptionsFor(options_)),
      chunker_(privsep::kMaxBodyBytesPerFrame) {}

GatekeeperAnswer Gatekeeper::Run(const PodmanCall& call, std::string* log_line) {
  const absl::Time start = absl::Now();
  GatekeeperAnswer answer = Runner(options_, client_, call).Run();
  *log_line = absl::StrFormat("podman call verb=%s status=%u duration_ms=%d body_bytes=%u",
                              std::string(VerbName(call.command())), answer.http_status,
                              static_cast<int>(absl::ToInt64Milliseconds(absl::Now() - start)),
                              static_cast<unsigned>(answer.body.size()));
  return answer;
}

GatekeeperAnswer Gatekeeper::Execute(const PodmanCall& call) {
  std::string log_line;
  GatekeeperAnswer answer = Run(call, &log_line);
  coolify::LogLine(coolify::LogLevel::kInfo, log_line);
  return answer;
}

void Gatekeeper::WriteCallLog() {
  if (call_log_.empty()) return;
  coolify::LogLine(coolify::LogLevel::kInfo, call_log_);
  call_log_.clear();
}

PodmanResponse Gatekeeper::Call(const PodmanCall& call, privsep::UniqueFd* stream) {
  WriteCallLog();  // an earlier call's line, should its caller not have written it
  GatekeeperAnswer answer = Run(call, &call_log_);
  if (answer.stream.valid()) {
    chunker_.Start(GatekeeperAnswer{});  // nothing of an earlier answer stays pending
    *stream = std::move(answer.stream);
    PodmanResponse response;
    response.set_http_status(200);
    response.set_stream(true);
    return response;
  }
  return chunker_.Start(answer);
}

PodmanResponse Gatekeeper::Next() { return chunker_.Next(); }

PodmanResponse Gatekeeper::WatchEvents(privsep::UniqueFd* stream) {
  GatekeeperAnswer answer = StartStream(
      client_.options(), "events",
      [](privsep::Channel& out, const LibpodClient& client, const LibpodClient::StreamOptions& stream_options,
         size_t* bytes) {
        return ContainerEvents(
            client,
            [&](std::string_view line) {
              return SendPieces(out, line.substr(0, privsep::kMaxBodyBytesPerFrame), bytes,
                                [](privsep::PodmanStreamFrame& f) { return f.mutable_event(); });
            },
            stream_options);
      });
  if (!answer.stream.valid()) return chunker_.Start(answer);
  chunker_.Start(GatekeeperAnswer{});
  *stream = std::move(answer.stream);
  PodmanResponse response;
  response.set_http_status(200);
  response.set_stream(true);
  return response;
}

}  // namespace coolify::podman
