// coold-podman. The Podman-socket gatekeeper: the one coold process that can reach podman.sock.
// It acts only on requests from the front end (fd 3) that its dispatch table admits.
//
//   coold-podman SOCKET_PATH POLICY MGMT_IP API_PORT [NAMESPACE...]
//
// NAMESPACEs are coold's namespaces (COOLD_NAMESPACES), under which alone a build's image
// may be named (image_load.h).
//
// SOCKET_PATH is Podman's API socket (absolute). POLICY is embedded:baseline,
// embedded:restricted, or fd: the policy textproto on fd 4, read whole before the sandbox.
// An invalid policy exits 2.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "policy/policy_file.h"
#include "privsep/channel.h"
#include "privsep/child.h"
#include "privsep/dispatch.h"
#include "privsep/log.h"
#include "privsep/spawn.h"
#include "privsep/validate.h"
#include "proto/privsep.pb.h"
#include "services/builder/options.h"
#include "services/podman/gatekeeper.h"
#include "services/podman/image_load.h"
#include "services/podman/libpod_client.h"

namespace coolify::privsep {
namespace {

constexpr int kPolicyFd = kFirstPassedFd + 1;

// The gatekeeper's phases: until the first health request only `health`; then every op;
// `next` only while an answer has pieces still to come.
enum Phase { kHandshake = 0, kServing = 1, kPending = 2 };
constexpr size_t kMaxPolicyBytes = 1 << 20;

// The whole of fd 4 (a file or a pipe), at most kMaxPolicyBytes.
absl::StatusOr<std::string> ReadPolicyFd() {
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = read(kPolicyFd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat("read policy fd: ", strerror(errno)));
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxPolicyBytes) return absl::InvalidArgumentError("policy larger than 1 MiB");
  }
}

int Main(int argc, char** argv) {
  SetLogRole("podman");
  const std::string socket_path = argc >= 5 ? argv[1] : "";
  const std::string policy_arg = argc >= 5 ? argv[2] : "";
  const std::string management_ip = argc >= 5 ? argv[3] : "";
  const std::string api_port = argc >= 5 ? argv[4] : "";
  const std::vector<std::string> namespaces(argv + std::min(argc, 5), argv + argc);
  const bool from_fd = policy_arg == "fd";
  // Read before the sandbox: the descriptor stays open, but nothing may be left to read
  // through it later.
  absl::StatusOr<std::string> policy_text = std::string();
  if (from_fd) policy_text = ReadPolicyFd();

  // Follow threads share the main malloc arena: a thread arena's heap, when it shrinks,
  // reads /proc/sys/vm/overcommit_memory, an open the sandbox forbids.
  mallopt(M_ARENA_MAX, 1);
  UniqueFd proc_status = EnterChildSandbox(ROLE_PODMAN, /*passed_fds=*/from_fd ? 2 : 1);
  if (from_fd) close(kPolicyFd);

  uint32_t port = 0;
  if (argc < 5 || socket_path.empty() || socket_path[0] != '/' ||
      !privsep::ValidateIpv4("management_ip", management_ip).ok() || !absl::SimpleAtoi(api_port, &port) ||
      port > 65535) {
    LogError("usage: coold-podman SOCKET_PATH embedded:baseline|embedded:restricted|fd MGMT_IP API_PORT [NAMESPACE...]");
    return 2;
  }
  for (const std::string& ns : namespaces) {
    if (!build::IsNamespaceName(ns)) {
      LogError("namespace \"%s\": must be [a-z][a-z0-9-]{0,30}", ns);
      return 2;
    }
  }
  absl::StatusOr<v1::Policy> policy;
  constexpr std::string_view kEmbedded = "embedded:";
  if (from_fd) {
    policy = policy_text.ok() ? policy::ParsePolicy("fd:4", *policy_text) : policy_text.status();
  } else if (policy_arg.rfind(kEmbedded, 0) == 0) {
    policy = policy::EmbeddedPolicy(std::string_view(policy_arg).substr(kEmbedded.size()));
  } else {
    policy = absl::InvalidArgumentError(absl::StrCat("unknown policy source: ", policy_arg));
  }
  if (policy.ok()) {
    if (absl::Status valid = policy::ValidatePolicy(*policy); !valid.ok()) policy = valid;
  }
  if (!policy.ok()) {
    LogError("policy: %s", policy.status().ToString());
    return 2;
  }
  LogInfo("policy %s, podman socket %s", policy->name(), socket_path);

  podman::GatekeeperOptions options;
  options.socket_path = socket_path;
  options.policy = *std::move(policy);
  options.management_ip = management_ip;
  options.api_port = port;
  podman::Gatekeeper gatekeeper(std::move(options));
  // Loading a large image takes Podman a while after the last byte.
  podman::ClientOptions load_options;
  load_options.socket_path = socket_path;
  load_options.io_timeout = absl::Minutes(10);
  const podman::LibpodClient load_client(load_options);

  Channel front{UniqueFd(kFirstPassedFd)};
  using Table = DispatchTable<PodmanRequest, PodmanReply>;
  // A call or next whose answer has more pieces leaves the gatekeeper in kPending, where
  // next is admitted; a new call (or any other op) drops what was pending.
  auto after = [](const PodmanReply& reply, Table::Call& call) {
    call.next_phase = reply.has_response() && reply.response().more() ? kPending : kServing;
  };
  auto answer_health = [&](const PodmanRequest&, Table::Call&) {
    PodmanReply reply;
    AnswerHealth(ROLE_PODMAN, proc_status.get(), &reply);
    return reply;
  };
  auto answer_call = [&](const PodmanRequest& request, Table::Call& call) {
    PodmanReply reply;
    UniqueFd stream;
    *reply.mutable_response() = gatekeeper.Call(request.call(), &stream);
    if (stream.valid()) call.reply_fds.push_back(std::move(stream));
    after(reply, call);
    // The call's log line once the answer is on its way.
    call.after_reply = [&gatekeeper] { gatekeeper.WriteCallLog(); };
    return reply;
  };
  auto answer_next = [&](const PodmanRequest&, Table::Call& call) {
    PodmanReply reply;
    *reply.mutable_response() = gatekeeper.Next();
    after(reply, call);
    return reply;
  };
  auto answer_watch_events = [&](const PodmanRequest&, Table::Call& call) {
    PodmanReply reply;
    UniqueFd stream;
    *reply.mutable_response() = gatekeeper.WatchEvents(&stream);
    if (stream.valid()) call.reply_fds.push_back(std::move(stream));
    return reply;
  };
  // Its one descriptor: the build's image archive, opened by the launcher.
  auto answer_image_load = [&](const PodmanRequest& request, Table::Call& call) {
    PodmanReply reply;
    absl::StatusOr<PodmanImageLoaded> loaded =
        podman::LoadImage(load_client, namespaces, request.image_load().name(), call.fds[0].get());
    if (loaded.ok()) {
      *reply.mutable_image_loaded() = *std::move(loaded);
    } else {
      reply.mutable_status()->set_code(static_cast<int>(loaded.status().code()));
      reply.mutable_status()->set_message(std::string(loaded.status().message()));
    }
    return reply;
  };
  // Validate(PodmanRequest) has checked that a call names a Podman verb; the verb's
  // fields are the gatekeeper's policy to judge, and a refusal is an answer (403/400),
  // not a bad frame.
  //  op                           phases                                     once   fds validator handler
  Table table("podman", kHandshake, {
      {PodmanRequest::kHealth,      Phases({kHandshake, kServing, kPending}), false, 0, nullptr, answer_health,       kServing},
      {PodmanRequest::kCall,        Phases({kServing, kPending}),             false, 0, nullptr, answer_call},
      {PodmanRequest::kNext,        Phases({kPending}),                       false, 0, nullptr, answer_next},
      {PodmanRequest::kWatchEvents, Phases({kServing, kPending}),             false, 0, nullptr, answer_watch_events, kServing},
      {PodmanRequest::kImageLoad,   Phases({kServing, kPending}),             false, 1, nullptr, answer_image_load,   kServing},
  });
  return table.Serve(front);
}

}  // namespace
}  // namespace coolify::privsep

int main(int argc, char** argv) { return coolify::privsep::Main(argc, argv); }
