#include "policy/json_writer.h"

#include <string>

#include "boost/json.hpp"
#include "gtest/gtest.h"

namespace coolify::policy {
namespace {

TEST(JsonWriterTest, CommasAndNesting) {
  JsonWriter w;
  w.BeginObject();
  w.Member("a", int64_t{-1});
  w.Key("b");
  w.BeginArray();
  w.String("x");
  w.BeginObject();
  w.EndObject();
  w.BeginArray();
  w.EndArray();
  w.Bool(true);
  w.EndArray();
  w.Member("c", uint64_t{18446744073709551615u});
  w.Member("d", "text");
  w.Member("e", false);
  w.EndObject();
  EXPECT_EQ(w.text(),
            R"({"a":-1,"b":["x",{},[],true],"c":18446744073709551615,"d":"text","e":false})");
}

TEST(JsonWriterTest, EscapesAsRfc8259Requires) {
  JsonWriter w;
  w.String(std::string("q\"b\\s/\n\t\x01\x1f\x7f\0end", 15));
  EXPECT_EQ(w.text(), R"("q\"b\\s/\u000a\u0009\u0001\u001f)"
                      "\x7f"
                      R"(\u0000end")");
}

TEST(JsonWriterTest, Utf8PassesAndInvalidBytesBecomeReplacement) {
  JsonWriter w;
  w.BeginArray();
  w.String("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");  // é € 😀
  w.String(
      "a\xFF"
      "b");                  // not UTF-8
  w.String("\xC0\xAF");      // overlong "/"
  w.String("\xED\xA0\x80");  // a surrogate
  w.String("\xE2\x82");      // truncated
  w.EndArray();
  EXPECT_EQ(w.text(),
            "[\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\",\"a\xEF\xBF\xBD"
            "b\","
            "\"\xEF\xBF\xBD\xEF\xBF\xBD\",\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\","
            "\"\xEF\xBF\xBD\xEF\xBF\xBD\"]");
  // Whatever the bytes, the output parses.
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  JsonWriter any;
  any.String(all);
  EXPECT_NO_THROW(boost::json::parse(any.text()));
}

}  // namespace
}  // namespace coolify::policy
