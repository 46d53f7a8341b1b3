#include "services/commands/verbs.h"

#include <set>
#include <string>

#include "gtest/gtest.h"
#include "services/commands/dispatch_codec.h"

namespace coolify::commands {
namespace {

// Every field of v1::Command is one verb of the registry, and every name is one verb's.
TEST(VerbsTest, TheRegistryCoversTheCommandOnceAndNamesEachVerbOnce) {
  std::set<int> fields;
  std::set<std::string> names;
  for (const Verb& verb : Verbs()) {
    ASSERT_FALSE(verb.names.empty());
    for (const char* name : verb.names) EXPECT_TRUE(names.insert(name).second) << name;
    if (verb.field == 0) {
      EXPECT_EQ(verb.server, Server::kNone) << verb.names[0];
      continue;
    }
    EXPECT_TRUE(fields.insert(verb.field).second) << verb.names[0];
    EXPECT_NE(verb.server, Server::kNone) << verb.names[0];
    EXPECT_NE(verb.capability, v1::CAPABILITY_UNSPECIFIED) << verb.names[0];
    EXPECT_NE(v1::Command::descriptor()->FindFieldByNumber(verb.field), nullptr) << verb.names[0];
  }
  EXPECT_EQ(static_cast<int>(fields.size()), v1::Command::descriptor()->field_count());
}

// Each verb with a field parses from its canonical name and every alias to that field;
// the others are the 501 central degrades on.
TEST(VerbsTest, TheCodecParsesEveryNameOfTheRegistry) {
  for (const Verb& verb : Verbs()) {
    for (const char* name : verb.names) {
      absl::StatusOr<v1::Command> command = CommandFromJson(name, "{}");
      if (verb.field == 0) {
        EXPECT_EQ(command.status().code(), absl::StatusCode::kUnimplemented) << name;
        continue;
      }
      // Some verbs refuse an empty object later (a missing id); the verb is still known.
      if (command.ok()) {
        EXPECT_EQ(static_cast<int>(command->verb_case()), verb.field) << name;
        EXPECT_EQ(VerbOf(*command), &verb);
        EXPECT_EQ(RequiredCapability(*command), verb.capability);
      } else {
        EXPECT_EQ(std::string(command.status().message()).find("unknown type"), std::string::npos) << name;
      }
    }
  }
}

}  // namespace
}  // namespace coolify::commands
