// The verb registry: every verb coold is sent, in one table. Per verb: the names it
// answers to (ours first, then central's spellings), the v1::Command field that carries
// it, the Hello capability a host must advertise for it, which part of coold serves it,
// its route on coold's REST API and central's field spellings. The broker's codec, its
// capability check, the front end's REST routes and router, the gatekeeper's dispatch
// and the tests' catalogue all read it; adding a verb is one entry here plus its handler
// (a test fails for a verb the gatekeeper or the REST routes do not serve).
//
// Entries without a field are verbs of central's catalogue that no coold serves: they
// parse, and are answered 501 "primitive <verb> is not supported by host", the answer
// central degrades on.
#ifndef COOLD_SERVICES_COMMANDS_VERBS_H_
#define COOLD_SERVICES_COMMANDS_VERBS_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/commands.pb.h"

namespace coolify::commands {

// Who serves a verb, i.e. where the front end's router sends it.
enum class Server {
  kNone,       // no coold: central's catalogue only
  kPodman,     // coold-podman (the gatekeeper and its policy)
  kFirewall,   // coold-netlink (the firewall writer)
  kDirectory,  // the front end's service directory and DNS servers
  kFront,      // the front end itself (from another verb's answer, or its own state)
};

struct Verb {
  std::vector<const char*> names;  // names[0] is canonical ("firewall.delete"), then aliases
  int field = 0;                   // the v1::Command field; 0 for Server::kNone
  v1::Capability capability = v1::CAPABILITY_UNSPECIFIED;
  Server server = Server::kNone;
  // "METHOD /api/v1/path/{param}?query&names" on coold's REST API, "" when only the
  // broker lane has it. Each {param} and query name is a field of the verb's message.
  const char* rest = "";
  std::vector<std::pair<const char*, const char*>> renames;  // central's field name -> ours
  // The field of the verb's message that a JSON body (REST) or command object (broker)
  // fills, "" for the message itself: a create's body is its ContainerSpec.
  const char* body = "";
};

// Every verb, in the order of commands.proto.
const std::vector<Verb>& Verbs();

// The verb `name` is one of the names of, or nullptr.
const Verb* FindVerb(std::string_view name);

// The verb `command` carries, or nullptr when none is set.
const Verb* VerbOf(const v1::Command& command);

}  // namespace coolify::commands

#endif  // COOLD_SERVICES_COMMANDS_VERBS_H_
