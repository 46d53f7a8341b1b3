#include "policy/api_json.h"

#include <string>

#include "gtest/gtest.h"

namespace coolify::policy {
namespace {

std::string ErrorFor(const std::string& json) {
  const absl::StatusOr<v1::ContainerSpec> spec = ParseContainerSpecJson(json);
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(spec.status().message());
}

TEST(ParseContainerSpecJsonTest, BothFieldSpellings) {
  const absl::StatusOr<v1::ContainerSpec> spec = ParseContainerSpecJson(
      R"({"image": "nginx", "capAdd": ["NET_RAW"], "read_only_root": true,
          "ports": [{"hostPort": 80, "container_port": 8080, "protocol": "PORT_PROTOCOL_UDP"}],
          "resources": {"memoryBytes": "134217728"}})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->image(), "nginx");
  EXPECT_EQ(spec->cap_add(0), "NET_RAW");
  EXPECT_TRUE(spec->read_only_root());
  EXPECT_EQ(spec->ports(0).container_port(), 8080u);
  EXPECT_EQ(spec->ports(0).protocol(), v1::PORT_PROTOCOL_UDP);
  EXPECT_EQ(spec->resources().memory_bytes(), 134217728u);
}

TEST(ParseContainerSpecJsonTest, UnknownFieldsAreNamed) {
  EXPECT_EQ(ErrorFor(R"({"image": "nginx", "securityOpt": ["seccomp=unconfined"]})"),
            "securityOpt: Cannot find field.");
  EXPECT_NE(ErrorFor(R"({"image": "nginx", "ports": [{"hostPort": 80, "hostNetwork": true}]})")
                .find("hostNetwork: Cannot find field."),
            std::string::npos);
  EXPECT_NE(ErrorFor(R"({"image": "nginx", "pidns": "host"})").find("pidns"), std::string::npos);
}

TEST(ParseContainerSpecJsonTest, RepeatedKeysInEitherSpelling) {
  EXPECT_EQ(ErrorFor(R"({"image": "nginx", "privileged": true, "privileged": false})"),
            "\"privileged\": key given more than once");
  EXPECT_EQ(ErrorFor(R"({"image": "nginx", "readOnlyRoot": false, "read_only_root": true})"),
            "\"read_only_root\": key given more than once");
  EXPECT_EQ(ErrorFor(R"({"image": "nginx", "capAdd": [], "cap_add": ["ALL"]})"),
            "\"cap_add\": key given more than once");
  EXPECT_EQ(ErrorFor(R"({"image": "nginx", "binds": [{"source": "/a", "source": "/etc"}]})"),
            "\"source\": key given more than once");
  // The same key in sibling objects is no repetition.
  EXPECT_EQ(ErrorFor(R"({"image": "nginx", "env": [{"key": "A"}, {"key": "B"}]})"), "");
}

TEST(ParseContainerSpecJsonTest, WrongTypesAndShapes) {
  EXPECT_NE(ErrorFor(R"({"image": "nginx", "privileged": 1})"), "");
  EXPECT_NE(ErrorFor(R"({"image": "nginx", "ports": [{"hostPort": -1}]})"), "");
  EXPECT_NE(ErrorFor(R"({"image": "nginx", "restartPolicy": "RESTART_POLICY_SOMETIMES"})"), "");
  EXPECT_NE(ErrorFor(R"(["nginx"])"), "");
  EXPECT_NE(ErrorFor(R"({"image": "nginx"} {})"), "");
  EXPECT_NE(ErrorFor(R"({"image": "nginx" /* comment */})"), "");
  EXPECT_NE(ErrorFor(""), "");
  EXPECT_NE(ErrorFor("{"), "");
  EXPECT_EQ(ErrorFor(std::string(33, '[') + std::string(33, ']')).rfind("not JSON", 0), 0u);
  EXPECT_EQ(ErrorFor(std::string(kMaxBodyBytes + 1, ' ')).rfind("body is", 0), 0u);
}

TEST(ParseContainerSpecJsonTest, ErrorsAreEscaped) {
  const std::string error = ErrorFor("{\"image\": \"nginx\", \"\\u001b[31m\": 1}");
  EXPECT_EQ(error.find('\x1b'), std::string::npos) << error;
}

TEST(ParseStrictJsonTest, AnyMessage) {
  v1::VolumesCreate request;
  ASSERT_TRUE(
      ParseStrictJson(R"({"name": "data", "options": [{"key": "o", "value": "bind"}]})", &request)
          .ok());
  EXPECT_EQ(request.options(0).value(), "bind");
  EXPECT_FALSE(ParseStrictJson(R"({"name": "data", "name": "x"})", &request).ok());
}

TEST(ParseStrictJsonTest, AMillionKeysAreRefusedAtTheBound) {
  std::string body = "{";
  for (int i = 0; i < 1000000; ++i) {
    if (i > 0) body += ",";
    body += "\"k" + std::to_string(i) + "\":0";
  }
  body += "}";
  v1::ContainerSpec spec;
  const absl::Status one_object = ParseStrictJson(body, &spec, 64 << 20);
  EXPECT_EQ(one_object.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(one_object.message().find("more than 64 keys"), absl::string_view::npos) << one_object;
  // Spread over many objects: the bound on all keys.
  std::string many = "{\"binds\":[";
  for (int i = 0; i < 200001; ++i) many += std::string(i > 0 ? "," : "") + "{\"source\":\"/a\",\"destination\":\"/b\"}";
  many += "]}";
  const absl::Status spread = ParseStrictJson(many, &spec, 64 << 20);
  EXPECT_NE(spread.message().find("400000 in all"), absl::string_view::npos) << spread;
  // 64 keys in one object are still read.
  std::string fits = "{";
  for (int i = 0; i < 64; ++i) fits += std::string(i > 0 ? "," : "") + "\"k" + std::to_string(i) + "\":0";
  fits += "}";
  EXPECT_NE(ParseStrictJson(fits, &spec, 64 << 20).message().find("Cannot find field"), absl::string_view::npos);
}

TEST(VerdictToJsonTest, Shape) {
  Verdict verdict;
  EXPECT_EQ(boost::json::serialize(VerdictToJson(verdict)), R"({"allowed":true,"violations":[]})");
  verdict.violations.push_back({"privileged", "true", "allow_privileged", "no"});
  EXPECT_EQ(boost::json::serialize(VerdictToJson(verdict)),
            R"({"allowed":false,"violations":[{"field":"privileged","value":"true",)"
            R"("rule":"allow_privileged","reason":"no"}]})");
}

}  // namespace
}  // namespace coolify::policy
