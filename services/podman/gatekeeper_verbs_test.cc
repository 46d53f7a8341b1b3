// The gatekeeper serves exactly the verbs the registry gives it: a verb added to the
// registry for coold-podman without a handler, or a handler for a verb the registry gives
// to another part of coold, fails here.
#include <set>

#include "gtest/gtest.h"
#include "privsep/validate.h"
#include "proto/privsep.pb.h"
#include "services/commands/verbs.h"
#include "services/podman/gatekeeper.h"

namespace coolify::podman {
namespace {

std::set<int> RegistryPodmanVerbs() {
  std::set<int> fields;
  for (const commands::Verb& verb : commands::Verbs()) {
    if (verb.server == commands::Server::kPodman) fields.insert(verb.field);
  }
  return fields;
}

TEST(GatekeeperVerbs, EveryVerbOfTheRegistrysGatekeeperHasAHandlerAndNoOtherDoes) {
  const std::vector<int> handled = HandledVerbs();
  const std::set<int> handlers(handled.begin(), handled.end());
  EXPECT_EQ(handlers.size(), handled.size()) << "a verb with two handlers";
  const std::set<int> registry = RegistryPodmanVerbs();
  EXPECT_FALSE(registry.empty());
  for (int field : registry) {
    EXPECT_EQ(handlers.count(field), 1u) << "no handler for "
                                          << v1::Command::descriptor()->FindFieldByNumber(field)->name();
  }
  for (int field : handlers) {
    EXPECT_EQ(registry.count(field), 1u) << "a handler for a verb the registry does not give the gatekeeper: "
                                          << v1::Command::descriptor()->FindFieldByNumber(field)->name();
  }
}

// The channel admits a call only for the registry's gatekeeper verbs: whatever else the
// front end sends is a bad frame, before the gatekeeper reads it.
TEST(GatekeeperVerbs, TheChannelAdmitsOnlyTheRegistrysGatekeeperVerbs) {
  const std::set<int> registry = RegistryPodmanVerbs();
  for (int i = 0; i < v1::Command::descriptor()->field_count(); ++i) {
    const auto* field = v1::Command::descriptor()->field(i);
    privsep::PodmanRequest request;
    request.set_protocol_version(privsep::kProtocolVersion);
    request.set_request_id(7);
    request.set_role(privsep::ROLE_PODMAN);
    v1::Command* command = request.mutable_call()->mutable_command();
    command->GetReflection()->MutableMessage(command, field);
    EXPECT_EQ(privsep::Validate(request).ok(), registry.count(field->number()) == 1) << field->name();
  }
}

}  // namespace
}  // namespace coolify::podman
