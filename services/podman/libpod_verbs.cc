// Each verb is the smallest sequence of libpod calls that gives the result Podman's CLI
// would. The non-obvious parts, learned against Podman 4.3:
// - a pull answers 200 and reports failure inside the stream, as {"error": ...};
// - an exec's exit code is not in its output stream: it comes from inspecting the exec
//   session afterwards, which may still say Running for a moment after the stream closes;
// - logs and exec output are multiplexed unless the container has a TTY;
// - stop and start answer 304 when there is nothing to do, which is success.
#include "services/podman/libpod_verbs.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "policy/namespace_rules.h"
#include "services/podman/libpod_fields.h"
#include "services/podman/libpod_path.h"

namespace coolify::podman {
namespace {

namespace json = boost::json;

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The fields at `paths` of Podman's answer `text` (libpod_fields.h); a text the bounded
// reader refuses is Internal, like any answer that is not what the verb expects.
absl::StatusOr<std::vector<std::vector<JsonScalar>>> Fields(std::string_view text,
                                                            const std::vector<FieldPath>& paths) {
  absl::StatusOr<std::vector<std::vector<JsonScalar>>> found = ExtractFields(text, paths);
  if (!found.ok()) return absl::InternalError(found.status().message());
  return found;
}

// The one string at `path` of `text`, "" when absent or not a string; Internal when the
// text is refused or names the field twice.
absl::StatusOr<std::string> StringField(std::string_view text, const FieldPath& path) {
  absl::StatusOr<std::vector<std::vector<JsonScalar>>> found = Fields(text, {path});
  if (!found.ok()) return found.status();
  const std::vector<JsonScalar>& values = (*found)[0];
  if (values.size() > 1) return absl::InternalError("podman's answer names a field twice");
  if (values.empty() || values[0].kind != JsonScalar::Kind::kString) return std::string();
  return values[0].text;
}

absl::Status RequireObject(std::string_view spec_json) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(spec_json.data(), spec_json.size()), ec);
  if (ec || !v.is_object()) return absl::InvalidArgumentError("spec must be a JSON object");
  return absl::OkStatus();
}


// A call whose success is any status below 400 and whose body is not needed.
absl::Status CallStatus(const LibpodClient& client, Method method,
                        const absl::StatusOr<std::string>& target, std::string_view body = {}) {
  if (!target.ok()) return target.status();
  absl::StatusOr<HttpResult> r = client.Call(method, *target, body);
  if (!r.ok()) return r.status();
  return StatusFromResponse(r->status, r->body);
}

// A call whose successful body is relayed as Podman sent it, unread.
absl::StatusOr<std::string> CallText(const LibpodClient& client, Method method,
                                     const absl::StatusOr<std::string>& target, std::string_view body = {}) {
  if (!target.ok()) return target.status();
  absl::StatusOr<HttpResult> r = client.Call(method, *target, body);
  if (!r.ok()) return r.status();
  if (absl::Status s = StatusFromResponse(r->status, r->body); !s.ok()) return s;
  return std::move(r->body);
}


std::string_view Bool(bool b) { return b ? "true" : "false"; }

QueryParam Param(std::string_view key, std::string value) {
  return QueryParam{key, SegmentKind::kQueryText, std::move(value)};
}

std::string_view PolicyName(PullPolicy policy) {
  switch (policy) {
    case PullPolicy::kAlways: return "always";
    case PullPolicy::kMissing: return "missing";
    case PullPolicy::kNewer: return "newer";
  }
  return "newer";
}

// Registries say "not found", "manifest unknown" or "name unknown" for an absent image.
absl::Status PullFailure(std::string_view message) {
  std::string text = absl::StrCat("image pull failed: ", AV(message));
  if (absl::StrContains(AV(message), "not found") || absl::StrContains(AV(message), "manifest unknown") ||
      absl::StrContains(AV(message), "name unknown")) {
    return absl::NotFoundError(text);
  }
  return absl::InternalError(text);
}

// Feeds a multiplexed (or, with a TTY, raw) byte stream to an OutputSink, keeping only a
// partial frame between calls.
class OutputDemuxer {
 public:
  OutputDemuxer(bool raw, size_t max_frame_bytes, const OutputSink& sink)
      : raw_(raw), max_frame_bytes_(max_frame_bytes), sink_(sink) {}

  absl::Status Feed(std::string_view bytes) {
    if (raw_) return sink_(StreamKind::kStdout, bytes);
    pending_.append(bytes.data(), bytes.size());
    absl::StatusOr<DemuxResult> r = DemuxFrames(pending_, max_frame_bytes_);
    if (!r.ok()) return absl::InternalError(absl::StrCat("podman output stream: ", r.status().message()));
    for (const Frame& frame : r->frames) {
      if (absl::Status s = sink_(frame.stream, frame.data); !s.ok()) return s;
    }
    pending_.erase(0, r->consumed);
    return absl::OkStatus();
  }

  // A stream that ends inside a frame lost bytes.
  absl::Status Finish() const {
    return pending_.empty() ? absl::OkStatus()
                            : absl::InternalError("podman output stream ended inside a frame");
  }

 private:
  bool raw_;
  size_t max_frame_bytes_;
  const OutputSink& sink_;
  std::string pending_;
};

}  // namespace

// ---------------------------------------------------------------- images

std::string RegistryAuthHeader(const RegistryCredentials& credentials) {
  json::object config;
  if (!credentials.identity_token.empty()) {
    config["identitytoken"] = json::string_view(credentials.identity_token);
  } else {
    config["username"] = json::string_view(credentials.username);
    config["password"] = json::string_view(credentials.password);
  }
  std::string encoded;
  absl::WebSafeBase64Escape(json::serialize(config), &encoded);
  // Podman decodes with Go's padded base64.URLEncoding.
  while (encoded.size() % 4 != 0) encoded.push_back('=');
  return encoded;
}

absl::StatusOr<std::string> ImagesPull(const LibpodClient& client, std::string_view ref,
                                       PullPolicy policy, const RegistryCredentials* credentials) {
  absl::Status ref_ok = ValidateSegment(SegmentKind::kImageRef, ref);
  if (!ref_ok.ok()) return ref_ok;
  absl::StatusOr<std::string> target =
      BuildTarget({{SegmentKind::kLiteral, "images"}, {SegmentKind::kLiteral, "pull"}},
                  {{"reference", SegmentKind::kImageRef, std::string(ref)},
                   Param("policy", std::string(PolicyName(policy))),
                   Param("quiet", "false")});
  if (!target.ok()) return target.status();

  LibpodClient::StreamOptions stream_options;
  if (credentials != nullptr) stream_options.registry_auth = RegistryAuthHeader(*credentials);
  // One JSON object per line; a line is capped so a hostile stream cannot grow it.
  constexpr size_t kMaxLine = 1 << 20;
  std::string line;
  std::string id;
  std::string error;
  auto handle_line = [&](std::string_view text) -> absl::Status {
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) return absl::OkStatus();
    absl::StatusOr<std::vector<std::vector<JsonScalar>>> report = Fields(text, {{"error"}, {"id"}});
    if (!report.ok()) return report.status();
    for (const JsonScalar& e : (*report)[0]) {
      if (e.kind == JsonScalar::Kind::kString && !e.text.empty() && error.empty()) error = e.text;
    }
    for (const JsonScalar& i : (*report)[1]) {
      if (i.kind == JsonScalar::Kind::kString && !i.text.empty()) id = i.text;
    }
    return absl::OkStatus();
  };
  absl::StatusOr<unsigned> status = client.Stream(
      Method::kPost, *target, "",
      [&](std::string_view bytes) -> absl::Status {
        for (char c : bytes) {
          if (c != '\n') {
            if (line.size() >= kMaxLine) return absl::ResourceExhaustedError("pull report line too long");
            line.push_back(c);
            continue;
          }
          if (absl::Status s = handle_line(line); !s.ok()) return s;
          line.clear();
        }
        return absl::OkStatus();
      },
      stream_options);
  if (!status.ok()) return status.status();
  if (absl::Status s = handle_line(line); !s.ok()) return s;
  if (!error.empty()) return PullFailure(error);
  if (id.empty()) return absl::InternalError("image pull ended without an image id");
  return id;
}

absl::StatusOr<std::string> ImagesList(const LibpodClient& client) {
  return CallText(client, Method::kGet,
                  BuildTarget({{SegmentKind::kLiteral, "images"}, {SegmentKind::kLiteral, "json"}}));
}

absl::StatusOr<std::string> ImagesDelete(const LibpodClient& client, std::string_view ref,
                                         bool force) {
  return CallText(client, Method::kDelete,
                  BuildTarget({{SegmentKind::kLiteral, "images"}, {SegmentKind::kImageRef, ref}},
                              {Param("force", std::string(Bool(force)))}));
}

// ---------------------------------------------------------------- containers

absl::StatusOr<std::string> ContainersCreate(const LibpodClient& client,
                                             std::string_view spec_json) {
  if (absl::Status s = RequireObject(spec_json); !s.ok()) return s;
  absl::StatusOr<std::string> r = CallText(
      client, Method::kPost,
      BuildTarget({{SegmentKind::kLiteral, "containers"}, {SegmentKind::kLiteral, "create"}}),
      spec_json);
  if (!r.ok()) return r.status();
  absl::StatusOr<std::string> id = StringField(*r, {"Id"});
  if (!id.ok()) return id.status();
  if (!ValidateSegment(SegmentKind::kExecId, *id).ok()) {
    return absl::InternalError("container create answered without a good Id");
  }
  return id;
}

absl::Status ContainersStart(const LibpodClient& client, std::string_view name) {
  return CallStatus(client, Method::kPost,
                    BuildTarget({{SegmentKind::kLiteral, "containers"},
                                 {SegmentKind::kName, name},
                                 {SegmentKind::kLiteral, "start"}}));
}

absl::Status ContainersStop(const LibpodClient& client, std::string_view name,
                            std::optional<unsigned> timeout_seconds) {
  std::vector<QueryParam> query;
  if (timeout_seconds) query.push_back(Param("timeout", absl::StrCat(*timeout_seconds)));
  return CallStatus(client, Method::kPost,
                    BuildTarget({{SegmentKind::kLiteral, "containers"},
                                 {SegmentKind::kName, name},
                                 {SegmentKind::kLiteral, "stop"}},
                                query));
}

absl::Status ContainersRestart(const LibpodClient& client, std::string_view name,
                               std::optional<unsigned> timeout_seconds) {
  // libpod's restart names its timeout "t", unlike stop's "timeout".
  std::vector<QueryParam> query;
  if (timeout_seconds) query.push_back(Param("t", absl::StrCat(*timeout_seconds)));
  return CallStatus(client, Method::kPost,
                    BuildTarget({{SegmentKind::kLiteral, "containers"},
                                 {SegmentKind::kName, name},
                                 {SegmentKind::kLiteral, "restart"}},
                                query));
}

absl::Status ContainersDelete(const LibpodClient& client, std::string_view name, bool force,
                              std::optional<unsigned> timeout_seconds) {
  std::vector<QueryParam> query = {Param("force", std::string(Bool(force)))};
  if (timeout_seconds) query.push_back(Param("timeout", absl::StrCat(*timeout_seconds)));
  absl::StatusOr<std::string> r = CallText(
      client, Method::kDelete,
      BuildTarget({{SegmentKind::kLiteral, "containers"}, {SegmentKind::kName, name}}, query));
  if (!r.ok()) return r.status();
  // The answer is a list of per-container reports, each of which may carry its own error.
  absl::StatusOr<std::vector<std::vector<JsonScalar>>> errors = Fields(*r, {{kAnyElement, "Err"}});
  if (!errors.ok()) return errors.status();
  for (const JsonScalar& err : (*errors)[0]) {
    if (err.kind == JsonScalar::Kind::kString && !err.text.empty()) {
      return absl::InternalError(absl::StrCat("container delete: ", err.text));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ContainersInspect(const LibpodClient& client, std::string_view name) {
  return CallText(client, Method::kGet,
                  BuildTarget({{SegmentKind::kLiteral, "containers"},
                               {SegmentKind::kName, name},
                               {SegmentKind::kLiteral, "json"}}));
}

absl::StatusOr<ContainerFacts> InspectContainer(const LibpodClient& client, std::string_view name) {
  absl::StatusOr<std::string> text = ContainersInspect(client, name);
  if (!text.ok()) return text.status();
  const std::vector<FieldPath> paths = {{"Id"},
                                        {"Config", "Labels", policy::kOwnerLabel},
                                        {"Config", "Labels", policy::kNamespaceLabel},
                                        {"Config", "User"},
                                        {"Config", "Tty"},
                                        {"OCIRuntime"},
                                        {"Mounts", kAnyElement, "Type"},
                                        {"Mounts", kAnyElement, "Source"},
                                        {"Mounts", kAnyElement, "Destination"},
                                        {"Mounts", kAnyElement, "RW"}};
  absl::StatusOr<std::vector<std::vector<JsonScalar>>> found = ExtractFields(*text, paths);
  if (!found.ok()) return absl::InternalError(found.status().message());
  const auto& f = *found;
  constexpr size_t kSingleFields = 6;  // the ones before Mounts[]
  for (size_t i = 0; i < kSingleFields; ++i) {
    if (f[i].size() > 1) return absl::InternalError("container inspect names a field twice");
  }
  ContainerFacts facts;
  absl::StatusOr<std::string> id = OneString(f[0], "container inspect Id");
  if (!id.ok()) return absl::InternalError(id.status().message());
  if (absl::Status s = ValidateSegment(SegmentKind::kExecId, *id); !s.ok() || id->size() != 64) {
    return absl::InternalError("container inspect answered a bad Id");
  }
  facts.id = *std::move(id);
  auto optional_string = [](const std::vector<JsonScalar>& values) -> absl::StatusOr<std::optional<std::string>> {
    if (values.empty() || values[0].kind == JsonScalar::Kind::kNull) return std::nullopt;
    if (values[0].kind != JsonScalar::Kind::kString) return absl::InternalError("a label is not a string");
    return values[0].text;
  };
  absl::StatusOr<std::optional<std::string>> owner = optional_string(f[1]);
  if (!owner.ok()) return owner.status();
  facts.owner = *std::move(owner);
  absl::StatusOr<std::optional<std::string>> ns = optional_string(f[2]);
  if (!ns.ok()) return ns.status();
  facts.namespace_name = *std::move(ns);
  absl::StatusOr<std::optional<std::string>> user = optional_string(f[3]);
  if (!user.ok()) return user.status();
  facts.user = user->value_or("");
  facts.tty = !f[4].empty() && f[4][0].kind == JsonScalar::Kind::kBool && f[4][0].boolean;
  absl::StatusOr<std::optional<std::string>> runtime = optional_string(f[5]);
  if (!runtime.ok()) return runtime.status();
  facts.oci_runtime = runtime->value_or("");
  // Podman writes all four keys for every mount: the n-th of each belong together, and
  // anything else is refused rather than paired wrongly.
  const auto& types = f[6];
  const auto& sources = f[7];
  const auto& destinations = f[8];
  const auto& writable = f[9];
  if (sources.size() != types.size() || destinations.size() != types.size() || writable.size() != types.size()) {
    return absl::InternalError("container inspect: Mounts entries lack Type, Source, Destination or RW");
  }
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i].kind != JsonScalar::Kind::kString || sources[i].kind != JsonScalar::Kind::kString ||
        destinations[i].kind != JsonScalar::Kind::kString || writable[i].kind != JsonScalar::Kind::kBool) {
      return absl::InternalError("container inspect: a Mounts entry has a field of the wrong type");
    }
    if (types[i].text != "bind") continue;
    facts.binds.push_back(BindFacts{sources[i].text, destinations[i].text, !writable[i].boolean});
  }
  facts.inspect = *std::move(text);
  return facts;
}

absl::Status ContainersLogs(const LibpodClient& client, std::string_view name,
                            const LogsOptions& options, const OutputSink& sink,
                            const LibpodClient::StreamOptions& stream_options) {
  const bool tty = options.tty;
  std::vector<QueryParam> query = {Param("follow", std::string(Bool(options.follow))),
                                   Param("stdout", std::string(Bool(options.include_stdout))),
                                   Param("stderr", std::string(Bool(options.include_stderr)))};
  if (options.tail) query.push_back(Param("tail", absl::StrCat(*options.tail)));
  if (options.timestamps) query.push_back(Param("timestamps", "true"));
  absl::StatusOr<std::string> target = BuildTarget(
      {{SegmentKind::kLiteral, "containers"}, {SegmentKind::kName, name}, {SegmentKind::kLiteral, "logs"}},
      query);
  if (!target.ok()) return target.status();
  OutputDemuxer demux(tty, options.max_frame_bytes, sink);
  absl::StatusOr<unsigned> status = client.Stream(
      Method::kGet, *target, "", [&](std::string_view bytes) { return demux.Feed(bytes); },
      stream_options);
  if (!status.ok()) return status.status();
  return demux.Finish();
}

absl::StatusOr<ExecResult> ContainersExec(const LibpodClient& client, std::string_view name,
                                          std::string_view exec_config_json, bool tty,
                                          size_t max_output_bytes) {
  absl::StatusOr<std::string> created = CallText(
      client, Method::kPost,
      BuildTarget({{SegmentKind::kLiteral, "containers"}, {SegmentKind::kName, name}, {SegmentKind::kLiteral, "exec"}}),
      exec_config_json);
  if (!created.ok()) return created.status();
  absl::StatusOr<std::string> id = StringField(*created, {"Id"});
  if (!id.ok()) return id.status();
  const std::string exec_id = *std::move(id);
  if (absl::Status s = ValidateSegment(SegmentKind::kExecId, exec_id); !s.ok()) {
    return absl::InternalError(absl::StrCat("exec create answered a bad Id: ", s.message()));
  }

  ExecResult result;
  OutputSink collect = [&](StreamKind stream, std::string_view data) {
    std::string& out = stream == StreamKind::kStderr ? result.stderr_text : result.stdout_text;
    size_t room = max_output_bytes - std::min(max_output_bytes, result.stdout_text.size() + result.stderr_text.size());
    if (data.size() > room) result.truncated = true;
    out.append(data.data(), std::min(room, data.size()));
    return absl::OkStatus();
  };
  OutputDemuxer demux(tty, 1 << 20, collect);
  json::object start;
  start["Detach"] = false;
  start["Tty"] = tty;
  absl::StatusOr<std::string> start_target = BuildTarget(
      {{SegmentKind::kLiteral, "exec"}, {SegmentKind::kExecId, exec_id}, {SegmentKind::kLiteral, "start"}});
  if (!start_target.ok()) return start_target.status();
  absl::StatusOr<unsigned> started = client.Stream(
      Method::kPost, *start_target, json::serialize(start),
      [&](std::string_view bytes) { return demux.Feed(bytes); }, {});
  if (!started.ok()) return started.status();
  if (absl::Status s = demux.Finish(); !s.ok()) return s;

  // The session may report Running for a moment after its output closed.
  absl::StatusOr<std::string> inspect_target = BuildTarget(
      {{SegmentKind::kLiteral, "exec"}, {SegmentKind::kExecId, exec_id}, {SegmentKind::kLiteral, "json"}});
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (;;) {
    absl::StatusOr<std::string> session = CallText(client, Method::kGet, inspect_target);
    if (!session.ok()) return session.status();
    absl::StatusOr<std::vector<std::vector<JsonScalar>>> f = Fields(*session, {{"Running"}, {"ExitCode"}});
    if (!f.ok()) return f.status();
    const std::vector<JsonScalar>& running = (*f)[0];
    const std::vector<JsonScalar>& code = (*f)[1];
    if (running.size() != 1 || running[0].kind != JsonScalar::Kind::kBool || code.size() != 1 ||
        code[0].kind != JsonScalar::Kind::kInt) {
      return absl::InternalError("exec inspect lacks Running or ExitCode");
    }
    if (!running[0].boolean) {
      result.exit_code = static_cast<int>(code[0].integer);
      return result;
    }
    if (absl::Now() > deadline) return absl::DeadlineExceededError("exec still running after its output ended");
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::StatusOr<HealthResult> ContainersHealthcheck(const LibpodClient& client,
                                                   std::string_view name) {
  absl::StatusOr<std::string> r = CallText(
      client, Method::kGet,
      BuildTarget({{SegmentKind::kLiteral, "containers"}, {SegmentKind::kName, name}, {SegmentKind::kLiteral, "healthcheck"}}));
  if (!r.ok()) return r.status();
  absl::StatusOr<std::string> status = StringField(*r, {"Status"});
  if (!status.ok()) return status.status();
  HealthResult result;
  result.status = *std::move(status);
  if (result.status != "healthy" && result.status != "unhealthy" && result.status != "starting") {
    return absl::InternalError("healthcheck answered without a known Status");
  }
  return result;
}

// ---------------------------------------------------------------- volumes

absl::StatusOr<std::string> VolumesCreate(const LibpodClient& client, std::string_view spec_json) {
  if (absl::Status s = RequireObject(spec_json); !s.ok()) return s;
  return CallText(client, Method::kPost,
                  BuildTarget({{SegmentKind::kLiteral, "volumes"}, {SegmentKind::kLiteral, "create"}}),
                  spec_json);
}

absl::Status VolumesDelete(const LibpodClient& client, std::string_view name, bool force) {
  return CallStatus(client, Method::kDelete,
                    BuildTarget({{SegmentKind::kLiteral, "volumes"}, {SegmentKind::kName, name}},
                                {Param("force", std::string(Bool(force)))}));
}

absl::StatusOr<std::string> VolumesInspect(const LibpodClient& client, std::string_view name) {
  return CallText(client, Method::kGet,
                  BuildTarget({{SegmentKind::kLiteral, "volumes"},
                               {SegmentKind::kName, name},
                               {SegmentKind::kLiteral, "json"}}));
}

// ---------------------------------------------------------------- networks

absl::StatusOr<std::string> NetworksCreate(const LibpodClient& client, std::string_view spec_json) {
  if (absl::Status s = RequireObject(spec_json); !s.ok()) return s;
  return CallText(client, Method::kPost,
                  BuildTarget({{SegmentKind::kLiteral, "networks"}, {SegmentKind::kLiteral, "create"}}),
                  spec_json);
}

absl::Status NetworksDelete(const LibpodClient& client, std::string_view name, bool force) {
  return CallStatus(client, Method::kDelete,
                    BuildTarget({{SegmentKind::kLiteral, "networks"}, {SegmentKind::kName, name}},
                                {Param("force", std::string(Bool(force)))}));
}

absl::StatusOr<std::string> NetworksList(const LibpodClient& client) {
  return CallText(client, Method::kGet,
                  BuildTarget({{SegmentKind::kLiteral, "networks"}, {SegmentKind::kLiteral, "json"}}));
}

// ---------------------------------------------------------------- host

absl::StatusOr<std::string> HostInfo(const LibpodClient& client) {
  return CallText(client, Method::kGet, BuildTarget({{SegmentKind::kLiteral, "info"}}));
}

absl::StatusOr<std::string> HostContainers(const LibpodClient& client, std::string_view label) {
  std::vector<QueryParam> query = {Param("all", "true")};
  if (!label.empty()) {
    json::object filters;
    filters["label"] = json::array{json::string_view(label.data(), label.size())};
    query.push_back(Param("filters", json::serialize(filters)));
  }
  return CallText(client, Method::kGet,
                  BuildTarget({{SegmentKind::kLiteral, "containers"}, {SegmentKind::kLiteral, "json"}}, query));
}

absl::Status ContainerEvents(const LibpodClient& client, const std::function<absl::Status(std::string_view)>& on_line,
                             const LibpodClient::StreamOptions& stream_options) {
  absl::StatusOr<std::string> target =
      BuildTarget({{SegmentKind::kLiteral, "events"}},
                  {Param("stream", "true"), Param("filters", R"({"type":["container"]})")});
  if (!target.ok()) return target.status();
  constexpr size_t kMaxLine = 64 * 1024;
  std::string line;
  absl::StatusOr<unsigned> status = client.Stream(
      Method::kGet, *target, "",
      [&](std::string_view bytes) -> absl::Status {
        for (char c : bytes) {
          if (c != '\n') {
            if (line.size() >= kMaxLine) return absl::ResourceExhaustedError("event line too long");
            line.push_back(c);
            continue;
          }
          if (!line.empty()) {
            if (absl::Status s = on_line(line); !s.ok()) return s;
          }
          line.clear();
        }
        return absl::OkStatus();
      },
      stream_options);
  return status.status();
}

absl::StatusOr<std::string> HostStats(const LibpodClient& client) {
  return CallText(client, Method::kGet,
                  BuildTarget({{SegmentKind::kLiteral, "containers"}, {SegmentKind::kLiteral, "stats"}},
                              {Param("stream", "false")}));
}

}  // namespace coolify::podman
