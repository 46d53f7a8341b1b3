// coolctl: the operator CLI against coold's local REST API, and against the broker's
// Unix socket for host identities.
//
//   coolctl [global flags] firewall allow --namespace NS --src IP --dst IP --proto tcp|udp --port N
//   coolctl [global flags] firewall delete ID
//   coolctl [global flags] firewall list [--namespace NS]
//   coolctl [global flags] firewall reconcile FILE|-     (JSON {"rules": [...]}, the full desired set)
//   coolctl [--broker-socket PATH] host enroll HOST --caps VERB,VERB,... [--ttl SECONDS]
//   coolctl [--broker-socket PATH] host reenroll HOST --caps ... [--ttl SECONDS]   (HOST must be known)
//   coolctl [--broker-socket PATH] host list
//   coolctl [--broker-socket PATH] host revoke HOST
//   coolctl [--broker-socket PATH] host delete HOST
//
// --broker-socket defaults to $COOLCTL_BROKER_SOCKET, else /run/coolify/broker.sock.
//
// Global flags: --api URL (default $COOLCTL_API, else https://127.0.0.1:8443),
// --token-file FILE (default $COOLCTL_TOKEN_FILE, else /etc/coolify/api-token),
// --cacert FILE, --insecure (skip TLS verification; for a self-signed test setup only).
//
// Exit status: 0 success, 1 the API refused or failed (its JSON error is printed),
// 2 bad usage or the API unreachable.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "boost/json/array.hpp"
#include "boost/json/object.hpp"
#include "boost/json/serialize.hpp"
#include "tools/coolctl/http_client.h"

namespace coolify::coolctl {
namespace {

constexpr char kUsage[] =
    "usage: coolctl [--api URL] [--token-file FILE] [--cacert FILE] [--insecure] COMMAND\n"
    "  firewall allow --namespace NS --src IP --dst IP --proto tcp|udp --port N\n"
    "  firewall delete ID\n"
    "  firewall list [--namespace NS]\n"
    "  firewall reconcile FILE|-      JSON {\"rules\": [...]}: the full desired set\n"
    "usage: coolctl [--broker-socket PATH] host COMMAND\n"
    "  host enroll HOST --caps VERB,... [--ttl SECONDS]    a one-time token and the install command\n"
    "  host reenroll HOST --caps VERB,... [--ttl SECONDS]  the same for a known host, its state kept\n"
    "  host list\n"
    "  host revoke HOST                                   cut off now, refused from now on\n"
    "  host delete HOST                                   revoked, its key and grant forgotten\n";

int Usage(const std::string& why) {
  std::cerr << "coolctl: " << why << "\n" << kUsage;
  return 2;
}

// Splits "--flag value" pairs from positional words; a flag without a value is an error
// unless it is one of `switches`.
struct Args {
  std::map<std::string, std::string> flags;
  std::vector<std::string> words;
};

bool Parse(int argc, char** argv, Args* args, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--insecure") {
      args->flags[arg] = "1";
    } else if (arg.rfind("--", 0) == 0) {
      if (i + 1 >= argc) {
        *error = absl::StrCat(arg, " needs a value");
        return false;
      }
      args->flags[arg] = argv[++i];
    } else {
      args->words.push_back(arg);
    }
  }
  return true;
}

std::string Flag(const Args& args, const std::string& name, const char* env, const std::string& fallback) {
  auto it = args.flags.find(name);
  if (it != args.flags.end()) return it->second;
  if (env != nullptr) {
    if (const char* value = getenv(env); value != nullptr && *value != '\0') return value;
  }
  return fallback;
}

// Prints the answer; the exit status for it.
int Finish(const absl::StatusOr<HttpResult>& result) {
  if (!result.ok()) {
    std::cerr << "coolctl: " << result.status().message() << "\n";
    return 2;
  }
  if (!result->body.empty()) std::cout << result->body << "\n";
  if (result->status >= 400) {
    std::cerr << "coolctl: HTTP " << result->status << "\n";
    return 1;
  }
  return 0;
}

// The broker's identity routes (services/broker/identity_api.h) over its Unix socket.
int RunHost(const Args& args) {
  for (const auto& [flag, value] : args.flags) {
    if (flag != "--broker-socket" && flag != "--caps" && flag != "--ttl") return Usage(absl::StrCat("unknown flag ", flag));
  }
  Endpoint broker;
  broker.unix_path = Flag(args, "--broker-socket", "COOLCTL_BROKER_SOCKET", "/run/coolify/broker.sock");
  const std::string& verb = args.words[1];
  auto one_host = [&]() -> std::string { return args.words.size() == 3 ? args.words[2] : ""; };
  if (verb == "list") {
    if (args.words.size() != 2) return Usage("host list takes no argument");
    return Finish(SendRequest(broker, {}, "GET", "/v1/hosts", ""));
  }
  if (verb == "revoke" || verb == "delete") {
    if (one_host().empty()) return Usage(absl::StrCat("host ", verb, " takes one HOST"));
    return verb == "revoke" ? Finish(SendRequest(broker, {}, "POST", absl::StrCat("/v1/hosts/", one_host(), "/revoke"), ""))
                            : Finish(SendRequest(broker, {}, "DELETE", absl::StrCat("/v1/hosts/", one_host()), ""));
  }
  if (verb != "enroll" && verb != "reenroll") return Usage(absl::StrCat("unknown host command ", verb));
  if (one_host().empty()) return Usage(absl::StrCat("host ", verb, " takes one HOST"));
  std::string caps = Flag(args, "--caps", nullptr, "");
  if (caps.empty()) return Usage(absl::StrCat("host ", verb, " needs --caps VERB,VERB,..."));
  if (verb == "reenroll") {
    // Re-enrolling is for a host the broker knows; a typo must not enroll a new one.
    auto listed = SendRequest(broker, {}, "GET", "/v1/hosts", "");
    if (!listed.ok() || listed->status != 200) return Finish(listed);
    if (listed->body.find(absl::StrCat("\"host_id\":\"", one_host(), "\"")) == std::string::npos) {
      std::cerr << "coolctl: no host " << one_host() << " to re-enroll (host enroll makes a new one)\n";
      return 1;
    }
  }
  boost::json::object body;
  body["host_id"] = one_host();
  boost::json::array list;
  for (absl::string_view cap : absl::StrSplit(caps, ',', absl::SkipEmpty())) list.emplace_back(std::string(cap));
  body["caps"] = std::move(list);
  std::string ttl = Flag(args, "--ttl", nullptr, "");
  if (!ttl.empty()) {
    int seconds = 0;
    if (!absl::SimpleAtoi(ttl, &seconds) || seconds < 1) return Usage("--ttl must be a number of seconds");
    body["ttl_seconds"] = seconds;
  }
  return Finish(SendRequest(broker, {}, "POST", "/v1/hosts/enroll", boost::json::serialize(body)));
}

int Run(int argc, char** argv) {
  Args args;
  std::string error;
  if (!Parse(argc, argv, &args, &error)) return Usage(error);
  if (args.words.size() >= 2 && args.words[0] == "host") return RunHost(args);
  if (args.words.size() < 2 || args.words[0] != "firewall") return Usage("expected a firewall or host command");
  for (const auto& [flag, value] : args.flags) {
    static const char* kKnown[] = {"--api", "--token-file", "--cacert", "--insecure", "--namespace",
                                   "--src", "--dst", "--proto", "--port"};
    bool known = false;
    for (const char* k : kKnown) known = known || flag == k;
    if (!known) return Usage(absl::StrCat("unknown flag ", flag));
  }

  auto endpoint = ParseApiUrl(Flag(args, "--api", "COOLCTL_API", "https://127.0.0.1:8443"));
  if (!endpoint.ok()) return Usage(std::string(endpoint.status().message()));
  ClientOptions options;
  options.ca_file = Flag(args, "--cacert", nullptr, "");
  options.insecure = args.flags.count("--insecure") > 0;
  std::string token_file = Flag(args, "--token-file", "COOLCTL_TOKEN_FILE", "/etc/coolify/api-token");
  {
    std::ifstream in(token_file);
    if (!in) return Usage(absl::StrCat("cannot read token file ", token_file));
    std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    options.bearer_token = std::string(absl::StripAsciiWhitespace(token));
  }

  const std::string& verb = args.words[1];
  std::string method, target, body;
  if (verb == "allow") {
    boost::json::object rule;
    for (const char* field : {"namespace", "src", "dst", "proto"}) {
      std::string value = Flag(args, absl::StrCat("--", field), nullptr, "");
      if (value.empty()) return Usage(absl::StrCat("firewall allow needs --", field));
      rule[field] = value;
    }
    int port = 0;
    if (!absl::SimpleAtoi(Flag(args, "--port", nullptr, ""), &port)) return Usage("--port must be a number");
    rule["port"] = port;
    method = "POST";
    target = "/api/v1/firewall/allow";
    body = boost::json::serialize(rule);
  } else if (verb == "delete") {
    if (args.words.size() != 3) return Usage("firewall delete takes one ID");
    method = "DELETE";
    target = absl::StrCat("/api/v1/firewall/allow/", args.words[2]);
  } else if (verb == "list") {
    method = "GET";
    target = "/api/v1/firewall/allow";
    std::string ns = Flag(args, "--namespace", nullptr, "");
    if (!ns.empty()) target += absl::StrCat("?namespace=", ns);
  } else if (verb == "reconcile") {
    if (args.words.size() != 3) return Usage("firewall reconcile takes FILE or -");
    std::stringstream text;
    if (args.words[2] == "-") {
      text << std::cin.rdbuf();
    } else {
      std::ifstream in(args.words[2]);
      if (!in) return Usage(absl::StrCat("cannot read ", args.words[2]));
      text << in.rdbuf();
    }
    method = "POST";
    target = "/api/v1/firewall/reconcile";
    body = text.str();
  } else {
    return Usage(absl::StrCat("unknown firewall command ", verb));
  }

  return Finish(SendRequest(*endpoint, options, method, target, body));
}

}  // namespace
}  // namespace coolify::coolctl

int main(int argc, char** argv) { return coolify::coolctl::Run(argc, argv); }
