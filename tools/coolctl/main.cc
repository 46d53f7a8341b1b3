// coolctl: the operator CLI against coold's local REST API, and against the broker's
// Unix socket for host identities.
//
//   coolctl [global flags] firewall allow --namespace NS --src IP --dst IP --proto tcp|udp --port N
//   coolctl [global flags] firewall delete ID
//   coolctl [global flags] firewall list [--namespace NS]
//   coolctl [global flags] firewall reconcile FILE|-     (JSON {"rules": [...]}, the full desired set)
//   coolctl [global flags] containers list [--namespace NS] | containers inspect ID [--namespace NS]
//   coolctl [global flags] images list | networks list | volumes inspect NAME
//   coolctl [global flags] services endpoints SERVICE_ID | dns lookup NAME | dns stats
//     (read only: a table by default, the API's JSON answer with --json)
//   coolctl [--broker-socket PATH] host enroll HOST --caps VERB,VERB,... [--ttl SECONDS]
//   coolctl [--broker-socket PATH] host reenroll HOST --caps ... [--ttl SECONDS]   (HOST must be known)
//   coolctl [--broker-socket PATH] host list
//   coolctl [--broker-socket PATH] host revoke HOST
//   coolctl [--broker-socket PATH] host delete HOST
//   coolctl [--broker-socket PATH] dispatch FILE|- [--json]
//     (JSON {"host_id","request_id","command":{...}}: one command to a connected host)
//
// --broker-socket defaults to $COOLCTL_BROKER_SOCKET, else /run/coolify/broker.sock.
//
// Global flags: --api URL (default $COOLCTL_API, else https://127.0.0.1:8443),
// --token-file FILE (default $COOLCTL_TOKEN_FILE, else /etc/coolify/api-token),
// --cacert FILE, --insecure (skip TLS verification; for a self-signed test setup only).
//
// `coolctl --help`, `coolctl GROUP --help`: the usage (of that group), exit status 0.
//
// Exit status: 0 success, 1 the API refused or failed (its error is printed),
// 2 bad usage or the API unreachable.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "boost/json/array.hpp"
#include "boost/json/object.hpp"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "boost/json/value.hpp"
#include "services/podman/libpod_path.h"
#include "tools/coolctl/http_client.h"

namespace coolify::coolctl {
namespace {

constexpr char kUsage[] =
    "usage: coolctl [--api URL] [--token-file FILE] [--cacert FILE] [--insecure] COMMAND\n"
    "  firewall allow --namespace NS --src IP --dst IP --proto tcp|udp --port N\n"
    "  firewall delete ID\n"
    "  firewall list [--namespace NS]\n"
    "  firewall reconcile FILE|-      JSON {\"rules\": [...]}: the full desired set\n"
    "  containers list [--namespace NS] [--json]       coold's containers: ID, NAME, IMAGE, STATE, NAMESPACE\n"
    "  containers inspect ID [--namespace NS] [--json]\n"
    "  images list [--json]\n"
    "  networks list [--json]\n"
    "  volumes inspect NAME [--json]\n"
    "  services endpoints SERVICE_ID [--json]\n"
    "  dns lookup NAME [--json]\n"
    "  dns stats [--json]\n"
    "usage: coolctl [--broker-socket PATH] host COMMAND\n"
    "  host enroll HOST --caps VERB,... [--ttl SECONDS]    a one-time token and the install command\n"
    "  host reenroll HOST --caps VERB,... [--ttl SECONDS]  the same for a known host, its state kept\n"
    "  host list\n"
    "  host revoke HOST                                   cut off now, refused from now on\n"
    "  host delete HOST                                   revoked, its key and grant forgotten\n"
    "usage: coolctl [--broker-socket PATH] dispatch FILE|- [--json]\n"
    "  dispatch FILE|- [--json]   JSON {\"host_id\",\"request_id\",\"command\":{...}}: one command to a host\n";

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
    if (arg == "--insecure" || arg == "--json" || arg == "--help") {
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

// `coolctl GROUP --help`: the usage lines of that group.
int Help(const std::string& group) {
  std::istringstream lines(kUsage);
  std::string shown, header;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("usage:", 0) == 0) {
      header = line + "\n";
      if (group.empty()) shown += line + "\n";
    } else if (group.empty()) {
      shown += line + "\n";
    } else if (line.rfind("  " + group + " ", 0) == 0) {
      // The group's usage line once, before its first command.
      shown += header + line + "\n";
      header.clear();
    }
  }
  if (shown.empty()) return Usage(absl::StrCat("no command group ", group));
  std::cout << shown;
  return 0;
}

// One cell: strings as they are, arrays of scalars joined with commas, "-" for nothing.
std::string Cell(const boost::json::value* value) {
  if (value == nullptr || value->is_null()) return "-";
  if (value->is_string()) return std::string(value->get_string());
  if (value->is_array()) {
    std::string joined;
    for (const auto& item : value->get_array()) {
      if (!joined.empty()) joined += ",";
      joined += Cell(&item);
    }
    return joined.empty() ? "-" : joined;
  }
  return boost::json::serialize(*value);
}

// The value at `path` inside nested objects, or nullptr.
const boost::json::value* At(const boost::json::value& value, std::initializer_list<const char*> path) {
  const boost::json::value* at = &value;
  for (const char* key : path) {
    if (!at->is_object()) return nullptr;
    at = at->get_object().if_contains(key);
    if (at == nullptr) return nullptr;
  }
  return at;
}

std::string ShortId(std::string id) {
  if (absl::StartsWith(id, "sha256:")) id = id.substr(7);
  return id.substr(0, 12);
}

// A Unix time as "2026-12-05 18:41 UTC", else the cell as it is.
std::string Time(const boost::json::value* value) {
  if (value == nullptr || !value->is_int64()) return Cell(value);
  time_t seconds = static_cast<time_t>(value->get_int64());
  struct tm utc;
  char text[32];
  if (gmtime_r(&seconds, &utc) == nullptr || strftime(text, sizeof(text), "%Y-%m-%d %H:%M UTC", &utc) == 0) return Cell(value);
  return text;
}

void PrintTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  };
  print(header);
  for (const auto& row : rows) print(row);
}

// Any other answer: an object as "key: value" lines, a list of objects as a table of the
// first one's keys, anything else as JSON.
void PrintGeneric(const boost::json::value& answer) {
  auto rows_of_objects = [](const boost::json::value& value) {
    return value.is_array() && !value.get_array().empty() && value.get_array()[0].is_object();
  };
  if (answer.is_object()) {
    // Scalars first as "key: value"; a list of objects after them as its own table.
    for (const auto& [key, value] : answer.get_object()) {
      if (!rows_of_objects(value)) std::cout << std::string(key) << ": " << Cell(&value) << "\n";
    }
    for (const auto& [key, value] : answer.get_object()) {
      if (!rows_of_objects(value)) continue;
      std::cout << "\n" << std::string(key) << ":\n";
      PrintGeneric(value);
    }
    return;
  }
  if (rows_of_objects(answer)) {
    std::vector<std::string> header;
    for (const auto& field : answer.get_array()[0].get_object()) header.push_back(std::string(field.key()));
    std::vector<std::vector<std::string>> rows;
    for (const auto& item : answer.get_array()) {
      std::vector<std::string> row;
      for (const std::string& key : header) row.push_back(Cell(item.is_object() ? item.get_object().if_contains(key) : nullptr));
      rows.push_back(std::move(row));
    }
    PrintTable(header, rows);
    return;
  }
  std::cout << boost::json::serialize(answer) << "\n";
}

// The read-only commands: a GET on coold's REST API, its answer as a table.
int RunRead(const Args& args, const Endpoint& endpoint, const ClientOptions& options) {
  const std::string& group = args.words[0];
  const std::string& verb = args.words[1];
  const std::string what = absl::StrCat(group, " ", verb);
  const std::string ns = Flag(args, "--namespace", nullptr, "");
  auto operand = [&]() { return podman::PercentEncode(args.words[2]); };
  size_t operands = 0;
  std::string target;
  if (what == "containers list" || what == "images list" || what == "networks list" || what == "dns stats") {
    static const std::map<std::string, std::string> kTargets = {{"containers list", "/api/v1/host/containers"},
                                                                {"images list", "/api/v1/images"},
                                                                {"networks list", "/api/v1/networks"},
                                                                {"dns stats", "/api/v1/dns/stats"}};
    target = kTargets.at(what);
  } else if (what == "containers inspect" || what == "volumes inspect" || what == "services endpoints" ||
             what == "dns lookup") {
    operands = 1;
    if (args.words.size() != 3) return Usage(absl::StrCat(what, " takes one argument"));
    if (what == "containers inspect") target = absl::StrCat("/api/v1/containers/", operand());
    if (what == "volumes inspect") target = absl::StrCat("/api/v1/volumes/", operand());
    if (what == "services endpoints") target = absl::StrCat("/api/v1/services/", operand(), "/endpoints");
    if (what == "dns lookup") target = absl::StrCat("/api/v1/dns/lookup/", operand());
  } else {
    return Usage(absl::StrCat("unknown command ", what));
  }
  if (args.words.size() != 2 + operands) return Usage(absl::StrCat(what, " takes no argument"));
  if (!ns.empty() && group != "containers") return Usage(absl::StrCat(what, " takes no --namespace"));
  // The list route has no namespace filter; inspect checks the namespace server side.
  if (!ns.empty() && verb == "inspect") target += absl::StrCat("?namespace=", podman::PercentEncode(ns));

  auto result = SendRequest(endpoint, options, "GET", target, "");
  if (!result.ok()) {
    std::cerr << "coolctl: " << result.status().message() << "\n";
    return 2;
  }
  const bool json = args.flags.count("--json") > 0;
  boost::system::error_code ec;
  boost::json::value answer = boost::json::parse(result->body, ec);
  if (result->status >= 400) {
    if (json) std::cout << result->body << "\n";
    const boost::json::value* error = ec ? nullptr : At(answer, {"error"});
    if (error == nullptr && !ec) error = At(answer, {"message"});  // the broker's envelope
    std::cerr << "coolctl: HTTP " << result->status << ": "
              << (error != nullptr && error->is_string() ? std::string(error->get_string()) : result->body) << "\n";
    return 1;
  }
  if (json) {
    std::cout << result->body << "\n";
    return 0;
  }
  if (ec) {
    std::cerr << "coolctl: the answer is not JSON: " << ec.message() << "\n";
    return 1;
  }
  std::vector<std::vector<std::string>> rows;
  const bool list = answer.is_array();
  if (what == "containers list" && list) {
    for (const auto& c : answer.get_array()) {
      const auto* item_ns = At(c, {"Labels", "coolify.coold.namespace"});
      if (!ns.empty() && (item_ns == nullptr || Cell(item_ns) != ns)) continue;
      const auto* id = At(c, {"Id"});
      rows.push_back({ShortId(Cell(id)), Cell(At(c, {"Names"})), Cell(At(c, {"Image"})), Cell(At(c, {"State"})),
                      Cell(item_ns)});
    }
    PrintTable({"ID", "NAME", "IMAGE", "STATE", "NAMESPACE"}, rows);
  } else if (what == "images list" && list) {
    for (const auto& i : answer.get_array()) {
      rows.push_back({ShortId(Cell(At(i, {"Id"}))), Cell(At(i, {"RepoTags"})), Cell(At(i, {"Size"})), Time(At(i, {"Created"}))});
    }
    PrintTable({"ID", "TAGS", "SIZE", "CREATED"}, rows);
  } else if (what == "networks list" && list) {
    for (const auto& n : answer.get_array()) {
      std::string subnets;
      if (const auto* all = At(n, {"subnets"}); all != nullptr && all->is_array()) {
        for (const auto& subnet : all->get_array()) {
          if (!subnets.empty()) subnets += ",";
          subnets += Cell(At(subnet, {"subnet"}));
        }
      }
      rows.push_back({Cell(At(n, {"name"})), ShortId(Cell(At(n, {"id"}))), Cell(At(n, {"driver"})), subnets.empty() ? "-" : subnets});
    }
    PrintTable({"NAME", "ID", "DRIVER", "SUBNETS"}, rows);
  } else if (what == "containers inspect" && answer.is_object()) {
    PrintTable({"ID", "NAME", "IMAGE", "STATE", "RUNTIME", "NAMESPACE"},
               {{ShortId(Cell(At(answer, {"Id"}))), Cell(At(answer, {"Name"})), Cell(At(answer, {"ImageName"})),
                 Cell(At(answer, {"State", "Status"})), Cell(At(answer, {"OCIRuntime"})),
                 Cell(At(answer, {"Config", "Labels", "coolify.coold.namespace"}))}});
  } else {
    PrintGeneric(answer);
  }
  return 0;
}

// POST /v1/coold/dispatch on the broker's socket: the answer's data as "key: value" lines,
// or with --json the envelope as it came.
int RunDispatch(const Args& args) {
  for (const auto& [flag, value] : args.flags) {
    if (flag != "--broker-socket" && flag != "--json") return Usage(absl::StrCat("unknown flag ", flag));
  }
  if (args.words.size() != 2) return Usage("dispatch takes FILE or -");
  std::stringstream text;
  if (args.words[1] == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(args.words[1]);
    if (!in) return Usage(absl::StrCat("cannot read ", args.words[1]));
    text << in.rdbuf();
  }
  boost::system::error_code ec;
  boost::json::value request = boost::json::parse(text.str(), ec);
  if (ec || !request.is_object()) return Usage("dispatch: the request is not a JSON object");
  Endpoint broker;
  broker.unix_path = Flag(args, "--broker-socket", "COOLCTL_BROKER_SOCKET", "/run/coolify/broker.sock");
  auto result = SendRequest(broker, {}, "POST", "/v1/coold/dispatch", text.str());
  if (!result.ok()) {
    std::cerr << "coolctl: " << result.status().message() << "\n";
    return 2;
  }
  const bool json = args.flags.count("--json") > 0;
  boost::json::value answer = boost::json::parse(result->body, ec);
  if (json) std::cout << result->body << "\n";
  if (result->status >= 400) {
    const boost::json::value* message = ec ? nullptr : At(answer, {"message"});
    if (message == nullptr && !ec) message = At(answer, {"error"});
    std::cerr << "coolctl: HTTP " << result->status << ": "
              << (message != nullptr && message->is_string() ? std::string(message->get_string()) : result->body) << "\n";
    return 1;
  }
  if (json) return 0;
  if (ec) {
    std::cerr << "coolctl: the answer is not JSON: " << ec.message() << "\n";
    return 1;
  }
  const boost::json::value* data = At(answer, {"data"});
  PrintGeneric(data != nullptr ? *data : answer);
  return 0;
}

// The REST API's address and credentials from the global flags.
absl::Status ApiClient(const Args& args, Endpoint* endpoint, ClientOptions* options) {
  auto parsed = ParseApiUrl(Flag(args, "--api", "COOLCTL_API", "https://127.0.0.1:8443"));
  if (!parsed.ok()) return parsed.status();
  *endpoint = *parsed;
  options->ca_file = Flag(args, "--cacert", nullptr, "");
  options->insecure = args.flags.count("--insecure") > 0;
  std::string token_file = Flag(args, "--token-file", "COOLCTL_TOKEN_FILE", "/etc/coolify/api-token");
  std::ifstream in(token_file);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read token file ", token_file));
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  options->bearer_token = std::string(absl::StripAsciiWhitespace(token));
  return absl::OkStatus();
}

int Run(int argc, char** argv) {
  Args args;
  std::string error;
  if (!Parse(argc, argv, &args, &error)) return Usage(error);
  if (args.flags.count("--help") > 0) return Help(args.words.empty() ? "" : args.words[0]);
  if (args.words.size() >= 2 && args.words[0] == "host") return RunHost(args);
  if (!args.words.empty() && args.words[0] == "dispatch") return RunDispatch(args);
  static const char* kReadGroups[] = {"containers", "images", "networks", "volumes", "services", "dns"};
  bool read = false;
  for (const char* group : kReadGroups) read = read || (!args.words.empty() && args.words[0] == group);
  if (args.words.size() < 2 || (!read && args.words[0] != "firewall")) {
    return Usage("expected a firewall, containers, images, networks, volumes, services, dns, host or dispatch command");
  }
  for (const auto& [flag, value] : args.flags) {
    static const char* kKnown[] = {"--api", "--token-file", "--cacert", "--insecure", "--namespace"};
    static const char* kFirewall[] = {"--src", "--dst", "--proto", "--port"};
    bool known = read && flag == "--json";
    for (const char* k : kKnown) known = known || flag == k;
    for (const char* k : kFirewall) known = known || (!read && flag == k);
    if (!known) return Usage(absl::StrCat("unknown flag ", flag));
  }

  if (read) {
    static const char* kReadCommands[] = {"containers list", "containers inspect", "images list", "networks list",
                                          "volumes inspect", "services endpoints", "dns lookup", "dns stats"};
    bool known = false;
    for (const char* command : kReadCommands) known = known || absl::StrCat(args.words[0], " ", args.words[1]) == command;
    if (!known) return Usage(absl::StrCat("unknown command ", args.words[0], " ", args.words[1]));
  }

  Endpoint api;
  ClientOptions options;
  if (absl::Status s = ApiClient(args, &api, &options); !s.ok()) return Usage(std::string(s.message()));
  if (read) return RunRead(args, api, options);

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

  return Finish(SendRequest(api, options, method, target, body));
}

}  // namespace
}  // namespace coolify::coolctl

int main(int argc, char** argv) { return coolify::coolctl::Run(argc, argv); }
