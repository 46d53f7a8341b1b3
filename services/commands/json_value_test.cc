// ParseJsonValue gives what protobuf's own JSON parser gives, for the shapes Podman
// answers with, and refuses what it refuses.
#include "services/commands/json_value.h"

#include <string>

#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace coolify::commands {
namespace {

google::protobuf::Value ByProtobuf(const std::string& text) {
  google::protobuf::Value value;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &value).ok()) << text;
  return value;
}

TEST(ParseJsonValueTest, GivesWhatProtobufsParserGives) {
  for (const std::string text : {
           R"({"Id":"0123","State":{"Status":"running","Running":true,"Pid":4321,"ExitCode":0,"Health":null}})",
           R"([1, -2, 3.5, 1e21, 18446744073709551615, -9223372036854775808, 0.1])",
           R"({"Config":{"Labels":{"io.coolify.owner":"coold"},"Env":["A=b","C=\u00e9\ud83d\ude00"],"Cmd":[]},"x":{}})",
           R"("just a string")",
           R"(true)",
           R"(null)",
       }) {
    absl::StatusOr<google::protobuf::Value> ours = ParseJsonValue(text);
    ASSERT_TRUE(ours.ok()) << ours.status() << " " << text;
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*ours, ByProtobuf(text))) << text;
    // Printed again, it reads back as the same value (an object's member order is a
    // hash map's either way).
    std::string ours_text;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(*ours, &ours_text).ok());
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(ByProtobuf(ours_text), *ours)) << ours_text;
  }
}

TEST(ParseJsonValueTest, RefusesWhatIsNotJsonOrTooDeep) {
  for (const std::string& text : {std::string("{"), std::string("{\"a\":}"), std::string("\"\xff\""),
                                 std::string(""), std::string("[1,]")}) {
    EXPECT_FALSE(ParseJsonValue(text).ok()) << text;
  }
  std::string deep(kMaxJsonValueDepth + 1, '[');
  deep += std::string(kMaxJsonValueDepth + 1, ']');
  EXPECT_FALSE(ParseJsonValue(deep).ok());
  std::string fits(kMaxJsonValueDepth, '[');
  fits += std::string(kMaxJsonValueDepth, ']');
  EXPECT_TRUE(ParseJsonValue(fits).ok());
}

}  // namespace
}  // namespace coolify::commands
