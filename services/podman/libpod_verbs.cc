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
#include "services/podman/libpod_path.h"

namespace coolify::podman {
namespace {

namespace json = boost::json;

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::StatusOr<json::value> ParseJson(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return absl::InternalError(absl::StrCat("podman sent invalid JSON: ", ec.message()));
  return v;
}

absl::Status RequireObject(std::string_view spec_json) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(spec_json.data(), spec_json.size()), ec);
  if (ec || !v.is_object()) return absl::InvalidArgumentError("spec must be a JSON object");
  return absl::OkStatus();
}

std::string StringField(const json::value& v, std::string_view key) {
  if (!v.is_object()) return {};
  const json::value* f = v.as_object().if_contains(json::string_view(key.data(), key.size()));
  return f && f->is_string() ? std::string(f->as_string()) : std::string();
}

// A call whose success is any status below 400 and whose body is not needed.
absl::Status CallStatus(const LibpodClient& client, Method method,
                        const absl::StatusOr<std::string>& target, std::string_view body = {}) {
  if (!target.ok()) return target.status();
  absl::StatusOr<HttpResult> r = client.Call(method, *target, body);
  if (!r.ok()) return r.status();
  return StatusFromResponse(r->status, r->body);
}

// A call whose successful body is JSON.
absl::StatusOr<json::value> CallJson(const LibpodClient& client, Method method,
                                     const absl::StatusOr<std::string>& target,
                                     std::string_view body = {}) {
  if (!target.ok()) return target.status();
  absl::StatusOr<HttpResult> r = client.Call(method, *target, body);
  if (!r.ok()) return r.status();
  if (absl::Status s = StatusFromResponse(r->status, r->body); !s.ok()) return s;
  return ParseJson(r->body);
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
    absl::StatusOr<json::value> report = ParseJson(text);
    if (!report.ok()) return report.status();
    if (std::string e = StringField(*report, "error"); !e.empty() && error.empty()) error = e;
    if (std::string i = StringField(*report, "id"); !i.empty()) id = i;
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

absl::StatusOr<json::value> ImagesList(const LibpodClient& client) {
  return CallJson(client, Method::kGet,
                  BuildTarget({{SegmentKind::kLiteral, "images"}, {SegmentKind::kLiteral, "json"}}));
}

absl::StatusOr<json::value> ImagesDelete(const LibpodClient& client, std::string_view ref,
                                         bool force) {
  return CallJson(client, Method::kDelete,
                  BuildTarget({{SegmentKind::kLiteral, "images"}, {SegmentKind::kImageRef, ref}},
                              {Param("force", std::string(Bool(force)))}));
}

// ---------------------------------------------------------------- containers

absl::StatusOr<std::string> ContainersCreate(const LibpodClient& client,
                                             std::string_view spec_json) {
  if (absl::Status s = RequireObject(spec_json); !s.ok()) return s;
  absl::StatusOr<json::value> r = CallJson(
      client, Method::kPost,
      BuildTarget({{SegmentKind::kLiteral, "containers"}, {SegmentKind::kLiteral, "create"}}),
      spec_json);
  if (!r.ok()) return r.status();
  std::string id = StringField(*r, "Id");
  if (id.empty()) return absl::InternalError("container create answered without an Id");
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
  absl::StatusOr<json::value> r = CallJson(
      client, Method::kDelete,
      BuildTarget({{SegmentKind::kLiteral, "containers"}, {SegmentKind::kName, name}}, query));
  if (!r.ok()) return r.status();
  // The answer is a list of per-container reports, each of which may carry its own error.
  if (r->is_array()) {
    for (const json::value& report : r->as_array()) {
      if (std::string err = StringField(report, "Err"); !err.empty()) {
        return absl::InternalError(absl::StrCat("container delete: ", err));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<json::value> ContainersInspect(const LibpodClient& client, std::string_view name) {
  return CallJson(client, Method::kGet,
                  BuildTarget({{SegmentKind::kLiteral, "containers"},
                               {SegmentKind::kName, name},
                               {SegmentKind::kLiteral, "json"}}));
}

absl::Status ContainersLogs(const LibpodClient& client, std::string_view name,
                            const LogsOptions& options, const OutputSink& sink,
                            const LibpodClient::StreamOptions& stream_options) {
  // A TTY container's log is one raw stream; only inspect says which kind this is.
  absl::StatusOr<json::value> inspect = ContainersInspect(client, name);
  if (!inspect.ok()) return inspect.status();
  bool tty = false;
  if (const json::value* config = inspect->as_object().if_contains("Config");
      config && config->is_object()) {
    if (const json::value* t = config->as_object().if_contains("Tty"); t && t->is_bool()) {
      tty = t->as_bool();
    }
  }
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
  absl::StatusOr<json::value> created = CallJson(
      client, Method::kPost,
      BuildTarget({{SegmentKind::kLiteral, "containers"}, {SegmentKind::kName, name}, {SegmentKind::kLiteral, "exec"}}),
      exec_config_json);
  if (!created.ok()) return created.status();
  std::string exec_id = StringField(*created, "Id");
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
    absl::StatusOr<json::value> session = CallJson(client, Method::kGet, inspect_target);
    if (!session.ok()) return session.status();
    const json::object* o = session->if_object();
    const json::value* running = o ? o->if_contains("Running") : nullptr;
    const json::value* code = o ? o->if_contains("ExitCode") : nullptr;
    if (!running || !running->is_bool() || !code || !code->is_int64()) {
      return absl::InternalError("exec inspect lacks Running or ExitCode");
    }
    if (!running->as_bool()) {
      result.exit_code = static_cast<int>(code->as_int64());
      return result;
    }
    if (absl::Now() > deadline) return absl::DeadlineExceededError("exec still running after its output ended");
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::StatusOr<HealthResult> ContainersHealthcheck(const LibpodClient& client,
                                                   std::string_view name) {
  absl::StatusOr<json::value> r = CallJson(
      client, Method::kGet,
      BuildTarget({{SegmentKind::kLiteral, "containers"}, {SegmentKind::kName, name}, {SegmentKind::kLiteral, "healthcheck"}}));
  if (!r.ok()) return r.status();
  HealthResult result;
  result.status = StringField(*r, "Status");
  if (result.status.empty()) return absl::InternalError("healthcheck answered without a Status");
  result.report = std::move(*r);
  return result;
}

// ---------------------------------------------------------------- volumes

absl::StatusOr<json::value> VolumesCreate(const LibpodClient& client, std::string_view spec_json) {
  if (absl::Status s = RequireObject(spec_json); !s.ok()) return s;
  return CallJson(client, Method::kPost,
                  BuildTarget({{SegmentKind::kLiteral, "volumes"}, {SegmentKind::kLiteral, "create"}}),
                  spec_json);
}

absl::Status VolumesDelete(const LibpodClient& client, std::string_view name, bool force) {
  return CallStatus(client, Method::kDelete,
                    BuildTarget({{SegmentKind::kLiteral, "volumes"}, {SegmentKind::kName, name}},
                                {Param("force", std::string(Bool(force)))}));
}

absl::StatusOr<json::value> VolumesInspect(const LibpodClient& client, std::string_view name) {
  return CallJson(client, Method::kGet,
                  BuildTarget({{SegmentKind::kLiteral, "volumes"},
                               {SegmentKind::kName, name},
                               {SegmentKind::kLiteral, "json"}}));
}

// ---------------------------------------------------------------- networks

absl::StatusOr<json::value> NetworksCreate(const LibpodClient& client, std::string_view spec_json) {
  if (absl::Status s = RequireObject(spec_json); !s.ok()) return s;
  return CallJson(client, Method::kPost,
                  BuildTarget({{SegmentKind::kLiteral, "networks"}, {SegmentKind::kLiteral, "create"}}),
                  spec_json);
}

absl::Status NetworksDelete(const LibpodClient& client, std::string_view name, bool force) {
  return CallStatus(client, Method::kDelete,
                    BuildTarget({{SegmentKind::kLiteral, "networks"}, {SegmentKind::kName, name}},
                                {Param("force", std::string(Bool(force)))}));
}

absl::StatusOr<json::value> NetworksList(const LibpodClient& client) {
  return CallJson(client, Method::kGet,
                  BuildTarget({{SegmentKind::kLiteral, "networks"}, {SegmentKind::kLiteral, "json"}}));
}

// ---------------------------------------------------------------- host

absl::StatusOr<json::value> HostInfo(const LibpodClient& client) {
  return CallJson(client, Method::kGet, BuildTarget({{SegmentKind::kLiteral, "info"}}));
}

absl::StatusOr<json::value> HostContainers(const LibpodClient& client) {
  return CallJson(client, Method::kGet,
                  BuildTarget({{SegmentKind::kLiteral, "containers"}, {SegmentKind::kLiteral, "json"}},
                              {Param("all", "true")}));
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

absl::StatusOr<json::value> HostStats(const LibpodClient& client) {
  return CallJson(client, Method::kGet,
                  BuildTarget({{SegmentKind::kLiteral, "containers"}, {SegmentKind::kLiteral, "stats"}},
                              {Param("stream", "false")}));
}

}  // namespace coolify::podman
