#include "services/endpoints/corrosion_wire.h"

#include "gtest/gtest.h"

namespace coolify::endpoints {
namespace {

TEST(Encode, StatementsWithParams) {
  EXPECT_EQ(EncodeTransaction({{"INSERT INTO t VALUES (?, ?, ?)", {int64_t{1}, std::string("a\"b"), std::monostate()}},
                               {"DELETE FROM t", {}}}),
            R"j([["INSERT INTO t VALUES (?, ?, ?)",[1,"a\"b",null]],["DELETE FROM t",[]]])j");
  EXPECT_EQ(EncodeQuery({"SELECT 1", {}}), R"(["SELECT 1",[]])");
}

TEST(ParseExecResponse, AsDocumented) {
  auto n = ParseExecResponse(R"({"results":[{"rows_affected":1,"time":0.000027208}],"time":0.000300708})", 1);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ((*n)[0], 1);
  auto with_version = ParseExecResponse(R"({"results":[{"rows_affected":0,"time":0},{"rows_affected":3,"time":0}],"time":0,"version":7})", 2);
  ASSERT_TRUE(with_version.ok());
  EXPECT_EQ((*with_version)[1], 3);
}

TEST(ParseExecResponse, ClearErrors) {
  auto msg = [](std::string_view body, size_t n = 1) { return std::string(ParseExecResponse(body, n).status().message()); };
  EXPECT_EQ(msg(R"({"results":[{"error":"no such table: x"}],"time":0})"),
            "corrosion: statement 1 failed: no such table: x");
  EXPECT_EQ(msg("<html>"), "corrosion: unexpected answer: not JSON (syntax error)");
  EXPECT_EQ(msg(R"({"time":0})"), "corrosion: unexpected answer: no \"results\" array");
  EXPECT_EQ(msg(R"({"results":[{"rows_affected":-1}]})"),
            "corrosion: unexpected answer: a result without a valid rows_affected");
  EXPECT_EQ(msg(R"({"results":[]})"), "corrosion: unexpected answer: 0 results for 1 statements");
  EXPECT_EQ(msg(R"({"results":[7]})"), "corrosion: unexpected answer: a result that is not an object");
}

TEST(ParseQueryResponse, AsDocumented) {
  auto rows = ParseQueryResponse(
      "{\"columns\":[\"sandwich\",\"n\"]}\n{\"row\":[1,[\"burger\",1]]}\n{\"row\":[2,[null,2.5]]}\n"
      "{\"eoq\":{\"time\":5e-8}}\n");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->columns, (std::vector<std::string>{"sandwich", "n"}));
  ASSERT_EQ(rows->rows.size(), 2u);
  EXPECT_EQ(std::get<std::string>(rows->rows[0][0]), "burger");
  EXPECT_EQ(std::get<int64_t>(rows->rows[0][1]), 1);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(rows->rows[1][0]));
  EXPECT_EQ(std::get<double>(rows->rows[1][1]), 2.5);
  auto empty = ParseQueryResponse("{\"columns\":[\"a\"]}\n{\"eoq\":{\"time\":0,\"change_id\":3}}");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->rows.empty());
}

TEST(ParseQueryResponse, ClearErrors) {
  auto msg = [](std::string_view body) { return std::string(ParseQueryResponse(body).status().message()); };
  EXPECT_EQ(msg("{\"error\":\"no such column: x\"}"), "corrosion: query failed: no such column: x");
  EXPECT_EQ(msg("{\"columns\":[\"a\"]}\n{\"row\":[1,[1]]}\n"),
            "corrosion: unexpected answer: no eoq: the answer was cut short");
  EXPECT_EQ(msg("{\"row\":[1,[1]]}"), "corrosion: unexpected answer: a row before the columns");
  EXPECT_EQ(msg("{\"columns\":[\"a\"]}\n{\"row\":[1,[1,2]]}"),
            "corrosion: unexpected answer: a row with the wrong number of values");
  EXPECT_EQ(msg("{\"columns\":[\"a\"]}\n{\"row\":[1,[[1]]]}"),
            "corrosion: unexpected answer: a value that is not null, a number or text");
  EXPECT_EQ(msg("{\"columns\":[\"a\"]}\n{\"row\":[\"x\",[1]]}"),
            "corrosion: unexpected answer: a row that is not [rowid, [values]]");
  EXPECT_EQ(msg("{\"columns\":[\"a\"]}\n{\"eoq\":{}}\n{\"row\":[1,[1]]}"),
            "corrosion: unexpected answer: events after eoq");
  EXPECT_EQ(msg("{\"columns\":[\"a\"],\"row\":[1,[1]]}"),
            "corrosion: unexpected answer: an event that is not a one-key object");
  EXPECT_EQ(msg("{\"change\":[]}"), "corrosion: unexpected answer: an unknown event \"change\"");
  EXPECT_EQ(msg("{\"columns\":[\"a\"]}\n{\"row\":[1,[18446744073709551615]]}\n{\"eoq\":{}}"),
            "corrosion: unexpected answer: integer out of range");
  EXPECT_EQ(msg(""), "corrosion: unexpected answer: no eoq: the answer was cut short");
}

}  // namespace
}  // namespace coolify::endpoints
