// ParseJsonValue gives what protobuf's own JSON parser gives, for the shapes Podman
// answers with, and refuses what it refuses.
#include "services/commands/json_value.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
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

// Random Values built from `pieces` of text (beside random ASCII) and `numbers`, nested
// up to five levels, the same sequence for the same seed.
class RandomValues {
 public:
  RandomValues(uint32_t seed, std::vector<std::string> pieces, std::vector<double> numbers)
      : random_(seed), pieces_(std::move(pieces)), numbers_(std::move(numbers)) {}

  void Fill(google::protobuf::Value* v, int depth = 0) {
    switch (depth > 3 ? random_() % 4 : random_() % 6) {
      case 0: v->set_null_value(google::protobuf::NULL_VALUE); break;
      case 1: v->set_bool_value(random_() % 2); break;
      case 2: v->set_number_value(numbers_[random_() % numbers_.size()]); break;
      case 3: v->set_string_value(String()); break;
      case 4:
        for (int i = 0, n = static_cast<int>(random_() % 4); i < n; ++i) Fill(v->mutable_list_value()->add_values(), depth + 1);
        if (!v->has_list_value()) v->mutable_list_value();
        break;
      default:
        for (int i = 0, n = static_cast<int>(random_() % 4); i < n; ++i) {
          Fill(&(*v->mutable_struct_value()->mutable_fields())[String()], depth + 1);
        }
        if (!v->has_struct_value()) v->mutable_struct_value();
    }
  }

 private:
  std::string String() {
    std::string text;
    for (int i = 0, n = static_cast<int>(random_() % 12); i < n; ++i) {
      if (random_() % 3 == 0) {
        text += pieces_[random_() % pieces_.size()];
      } else {
        text.push_back(static_cast<char>(random_() % 128));
      }
    }
    return text;
  }

  std::mt19937 random_;
  const std::vector<std::string> pieces_;
  const std::vector<double> numbers_;
};

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
                                 std::string(""), std::string("[1,]"),
                                 std::string("[1e2148]"), std::string("{\"a\":-1e400}")}) {
    EXPECT_FALSE(ParseJsonValue(text).ok()) << text;
  }
  std::string deep(kMaxJsonValueDepth + 1, '[');
  deep += std::string(kMaxJsonValueDepth + 1, ']');
  EXPECT_FALSE(ParseJsonValue(deep).ok());
  std::string fits(kMaxJsonValueDepth, '[');
  fits += std::string(kMaxJsonValueDepth, ']');
  EXPECT_TRUE(ParseJsonValue(fits).ok());
}

// Every byte a string may hold (control characters, quotes, '<', '&', DEL, multi-byte
// UTF-8 including U+2028), numbers of every form, nested: the same text protobuf prints.
TEST(JsonValueTextTest, PrintsWhatProtobufPrints) {
  const std::vector<std::string> pieces = {"\xc3\xa9", "\xf0\x9f\x98\x80", "\xe2\x80\xa8", "\xe2\x80\xa9",
                                           "\xef\xbf\xbd", "</script>", "&amp;", "'", "\x7f"};
  const std::vector<double> numbers = {0, -0.0, 1, -1, 0.1, 0.1 + 0.2, 1e21, 1e-7, 123456789012345678.0, 9007199254740993.0,
                                       536870912, 3.5, -2.25e-300, 1.7976931348623157e308, 4.9e-324};
  RandomValues values(7, pieces, numbers);
  for (int round = 0; round < 2000; ++round) {
    google::protobuf::Value value;
    values.Fill(&value);
    std::string theirs;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(value, &theirs).ok());
    absl::StatusOr<std::string> ours = JsonValueText(value);
    ASSERT_TRUE(ours.ok()) << ours.status();
    ASSERT_EQ(*ours, theirs) << value.DebugString();
  }
  std::string unset;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(google::protobuf::Value(), &unset).ok());
  EXPECT_EQ(unset, "") << "a Value with no kind: what the REST API answers as {}";
  google::protobuf::Value nan;
  nan.set_number_value(std::nan(""));
  EXPECT_FALSE(JsonValueText(nan).ok());
}

// Every code point as a one-character string: escaped exactly where protobuf escapes it.
TEST(JsonValueTextTest, EscapesEveryCodePointAsProtobufDoes) {
  std::string mismatches;
  for (uint32_t cp = 0; cp <= 0x10ffff; ++cp) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    std::string text;
    if (cp < 0x80) {
      text.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      text = {static_cast<char>(0xc0 | cp >> 6), static_cast<char>(0x80 | (cp & 0x3f))};
    } else if (cp < 0x10000) {
      text = {static_cast<char>(0xe0 | cp >> 12), static_cast<char>(0x80 | ((cp >> 6) & 0x3f)),
              static_cast<char>(0x80 | (cp & 0x3f))};
    } else {
      text = {static_cast<char>(0xf0 | cp >> 18), static_cast<char>(0x80 | ((cp >> 12) & 0x3f)),
              static_cast<char>(0x80 | ((cp >> 6) & 0x3f)), static_cast<char>(0x80 | (cp & 0x3f))};
    }
    google::protobuf::Value value;
    value.set_string_value(text);
    std::string theirs;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(value, &theirs).ok());
    if (*JsonValueText(value) != theirs && mismatches.size() < 2000) absl::StrAppend(&mismatches, absl::Hex(cp), " ");
  }
  EXPECT_EQ(mismatches, "");
}

// A text protobuf printed comes back byte for byte: ReprintJson keeps the text's member
// order, which is the order protobuf's map printed them in.
TEST(ReprintJsonTest, PrintsProtobufsTextAgain) {
  const std::vector<std::string> pieces = {"\xc3\xa9", "\xf0\x9f\x98\x80", "\xe2\x80\xa8", "\xef\xbf\xbd",
                                           "</script>", "\"quoted\"", "back\\slash", "\x7f", "\x01"};
  // Not -0: protobuf prints it "-0", which Boost.JSON reads as the integer 0, as the
  // Value path does too (PrintsWhatTheValuePathPrints).
  const std::vector<double> numbers = {0,   1,    -1,   0.5,  3.5,  -2.25,           1e21,           1e-7,
                                       0.1, 1e15, 1e14, 536870912, 999999999999999.0, -123456789012.0, 9007199254740993.0};
  RandomValues values(11, pieces, numbers);
  for (int round = 0; round < 2000; ++round) {
    google::protobuf::Value value;
    values.Fill(&value);
    std::string theirs;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(value, &theirs).ok());
    if (theirs.empty()) continue;  // a Value with no kind prints nothing
    absl::StatusOr<std::string> ours = ReprintJson(theirs);
    ASSERT_TRUE(ours.ok()) << ours.status() << " " << theirs;
    ASSERT_EQ(*ours, theirs) << value.DebugString();
  }
}

// Where member order does not come in (arrays, scalars), the bytes are exactly those of
// reading into a Value and printing it, numbers read however Boost.JSON reads them.
TEST(ReprintJsonTest, PrintsWhatTheValuePathPrints) {
  for (const std::string& text : {
           std::string(R"([-0, -0.0, 0.0, 1e0, 1.0, 0.1, 0.30000000000000004, 1e-7, 2.5e-300, 1.7976931348623157e308])"),
           std::string(R"([18446744073709551615, -9223372036854775808, 9007199254740993, 999999999999999, 1000000000000000])"),
           std::string(R"([123456.789e3, 4.9e-324, 3.14159265358979323846, 100000000000000000000000])"),
           std::string(R"(["a\u0000b\u001f\u007f\u00ad\u2028\ud83d\ude00<>&'\\\"\/"])"),
           std::string(R"([true, false, null, [], {}, [[[]]]])"),
           std::string(R"("just a string")"),
           std::string("\"\xc3\xa9\xe2\x80\xae\xf3\xa0\x80\x81\""),
       }) {
    absl::StatusOr<google::protobuf::Value> value = ParseJsonValue(text);
    ASSERT_TRUE(value.ok()) << value.status() << " " << text;
    absl::StatusOr<std::string> expected = JsonValueText(*value);
    ASSERT_TRUE(expected.ok());
    absl::StatusOr<std::string> ours = ReprintJson(text);
    ASSERT_TRUE(ours.ok()) << ours.status() << " " << text;
    EXPECT_EQ(*ours, *expected) << text;
  }
}

TEST(ReprintJsonTest, KeepsAKeysLastValueWhereItFirstAppears) {
  absl::StatusOr<std::string> ours = ReprintJson(R"({"a":1,"b":{"c":2,"c":[3]},"a":"last"})");
  ASSERT_TRUE(ours.ok()) << ours.status();
  EXPECT_EQ(*ours, R"({"a":"last","b":{"c":[3]}})");
  // What a Value keeps of it too.
  absl::StatusOr<google::protobuf::Value> value = ParseJsonValue(R"({"a":1,"b":{"c":2,"c":[3]},"a":"last"})");
  ASSERT_TRUE(value.ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*value, ByProtobuf(*ours)));
}

TEST(ReprintJsonTest, RefusesWhatParseJsonValueRefuses) {
  for (const std::string& text : {std::string("{"), std::string("{\"a\":}"), std::string("\"\xff\""),
                                 std::string(""), std::string("[1,]"), std::string("[1] x"),
                                 std::string("[1e2148]"), std::string("{\"a\":-1e400}")}) {
    EXPECT_FALSE(ParseJsonValue(text).ok()) << text;
    EXPECT_FALSE(ReprintJson(text).ok()) << text;
  }
  std::string deep(kMaxJsonValueDepth + 1, '[');
  deep += std::string(kMaxJsonValueDepth + 1, ']');
  EXPECT_FALSE(ReprintJson(deep).ok());
  std::string fits(kMaxJsonValueDepth, '[');
  fits += std::string(kMaxJsonValueDepth, ']');
  ASSERT_TRUE(ReprintJson(fits).ok());
  EXPECT_EQ(*ReprintJson(fits), fits);
  // Larger than the first block of the document's arena.
  std::string big = "[";
  for (int i = 0; i < 20000; ++i) absl::StrAppend(&big, i == 0 ? "" : ",", R"({"k":"v)", i, R"("})");
  big += "]";
  ASSERT_TRUE(ReprintJson(big).ok());
  EXPECT_EQ(*ReprintJson(big), big);
}

}  // namespace
}  // namespace coolify::commands
