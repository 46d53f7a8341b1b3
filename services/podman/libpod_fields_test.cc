#include "services/podman/libpod_fields.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace coolify::podman {
namespace {

using Kind = JsonScalar::Kind;

TEST(ExtractFieldsTest, ReadsOnlyTheWantedPaths) {
  const std::string text = R"({"Id":"abc","Config":{"User":"","Tty":true,
    "Labels":{"coolify.coold.owner":"coold","a":"b","coolify.coold.namespace":"alpha"},
    "Env":["coolify.coold.owner=evil"]},"Labels":{"coolify.coold.owner":"evil"}})";
  auto found = ExtractFields(text, {{"Id"},
                                    {"Config", "Labels", "coolify.coold.owner"},
                                    {"Config", "Labels", "coolify.coold.namespace"},
                                    {"Config", "Tty"},
                                    {"Config", "Missing"}});
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*OneString((*found)[0], "Id"), "abc");
  EXPECT_EQ(*OneString((*found)[1], "owner"), "coold");
  EXPECT_EQ(*OneString((*found)[2], "namespace"), "alpha");
  ASSERT_EQ((*found)[3].size(), 1u);
  EXPECT_EQ((*found)[3][0].kind, Kind::kBool);
  EXPECT_TRUE((*found)[3][0].boolean);
  EXPECT_TRUE((*found)[4].empty());
  EXPECT_EQ(OneString((*found)[4], "Missing").status().code(), absl::StatusCode::kNotFound);
}

TEST(ExtractFieldsTest, EscapedKeysAndValuesCompareUnescaped) {
  auto found = ExtractFields(R"({"I\u0064":"a\"b\u00e9"})", {{"Id"}});
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*OneString((*found)[0], "Id"), "a\"b\xc3\xa9");
}

TEST(ExtractFieldsTest, ArraysAndRepeats) {
  auto found = ExtractFields(R"([{"Err":"x"},{"Err":null},{"Err":"y"},{"Other":1}])", {{"[]", "Err"}});
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ((*found)[0].size(), 3u);
  EXPECT_EQ((*found)[0][0].text, "x");
  EXPECT_EQ((*found)[0][1].kind, Kind::kNull);
  EXPECT_EQ((*found)[0][2].text, "y");
  // A key given twice is two values: the caller that wants one refuses it.
  auto twice = ExtractFields(R"({"Id":"a","Id":"b"})", {{"Id"}});
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(OneString((*twice)[0], "Id").status().code(), absl::StatusCode::kInvalidArgument);
  // A container where a string is wanted is not a string.
  auto nested = ExtractFields(R"({"Id":{"x":1},"N":12345678901,"D":1.5,"B":18446744073709551615})",
                              {{"Id"}, {"N"}, {"D"}, {"B"}});
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ((*nested)[0].at(0).kind, Kind::kOther);
  EXPECT_EQ((*nested)[1].at(0).kind, Kind::kInt);
  EXPECT_EQ((*nested)[1].at(0).integer, 12345678901);
  EXPECT_EQ((*nested)[2].at(0).kind, Kind::kOther);
  EXPECT_EQ((*nested)[3].at(0).kind, Kind::kOther);
}

TEST(ExtractFieldsTest, RefusesWhatIsNotOneBoundedJsonValue) {
  for (const std::string bad : {"", "{", "{\"a\":1} x", "{\"a\":1}{}", "{'a':1}", "{\"a\":1,}", "[1,]",
                                "{\"a\":\"\xff\"}", "/* c */ {}", "nul", "{\"a\":01}"}) {
    EXPECT_FALSE(ExtractFields(bad, {{"a"}}).ok()) << bad;
  }
  std::string deep(kMaxDepth + 1, '[');
  deep += std::string(kMaxDepth + 1, ']');
  EXPECT_FALSE(ExtractFields(deep, {{"a"}}).ok());
  std::string fits(kMaxDepth, '[');
  fits += std::string(kMaxDepth, ']');
  EXPECT_TRUE(ExtractFields(fits, {{"a"}}).ok());
  // A wanted value longer than the bound is refused, not cut; an unwanted one is skipped.
  const std::string long_value(5000, 'x');
  EXPECT_FALSE(ExtractFields(absl::StrCat(R"({"a":")", long_value, R"("})"), {{"a"}}).ok());
  EXPECT_TRUE(ExtractFields(absl::StrCat(R"({"b":")", long_value, R"("})"), {{"a"}}).ok());
  // A key longer than kMaxKeyBytes matches nothing, even when it starts like a wanted one.
  const std::string long_key = "Id" + std::string(kMaxKeyBytes, 'x');
  auto found = ExtractFields(absl::StrCat(R"({")", long_key, R"(":"v"})"), {{"Id"}});
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE((*found)[0].empty());
}

}  // namespace
}  // namespace coolify::podman
