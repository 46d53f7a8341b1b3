#include "policy/catalogue.h"

#include <fstream>
#include <iterator>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace coolify::policy {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

absl::Status ParseExpect(const std::string& path, const std::string& text, CatalogueCase* c) {
  int line_number = 0;
  bool have_verdict = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    const auto fail = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": ", what));
    };
    const std::string& key = words[0];
    if (key == "profile" && words.size() == 2) {
      c->profile = words[1];
    } else if (key == "namespace" && words.size() == 2) {
      c->caller_namespace = words[1];
    } else if (key == "verdict" && words.size() == 2 && !have_verdict) {
      have_verdict = true;
      if (words[1] == "allowed") {
        c->outcome = CatalogueCase::Outcome::kAllowed;
      } else if (words[1] == "denied") {
        c->outcome = CatalogueCase::Outcome::kDenied;
      } else if (words[1] == "invalid") {
        c->outcome = CatalogueCase::Outcome::kInvalid;
      } else {
        return fail("verdict is allowed, denied or invalid");
      }
    } else if (key == "violation" && words.size() == 3) {
      c->violations.emplace(words[1], words[2]);
    } else if (key == "error" && words.size() >= 2) {
      c->error_contains = std::string(absl::StripAsciiWhitespace(line.substr(key.size())));
    } else {
      return fail(absl::StrCat("cannot read \"", line, "\""));
    }
  }
  if (!have_verdict) return absl::InvalidArgumentError(absl::StrCat(path, ": no verdict line"));
  if (c->outcome == CatalogueCase::Outcome::kDenied && c->violations.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": a denial needs violation lines"));
  }
  if (c->outcome != CatalogueCase::Outcome::kDenied && !c->violations.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": violations only with verdict denied"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<CatalogueCase>> LoadCatalogue(const std::vector<std::string>& paths) {
  std::map<std::string, std::pair<std::string, std::string>> files;  // name -> {json, expect}
  for (const std::string& path : paths) {
    const size_t slash = path.rfind('/');
    const std::string file = path.substr(slash == std::string::npos ? 0 : slash + 1);
    const size_t dot = file.rfind('.');
    if (dot == std::string::npos) continue;
    const std::string name = file.substr(0, dot);
    const std::string ext = file.substr(dot + 1);
    if (ext == "json") files[name].first = path;
    if (ext == "expect") files[name].second = path;
  }
  std::vector<CatalogueCase> cases;
  for (const auto& [name, pair] : files) {
    if (pair.first.empty() || pair.second.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": needs both .json and .expect"));
    }
    CatalogueCase c;
    c.name = name;
    absl::StatusOr<std::string> request = ReadFile(pair.first);
    if (!request.ok()) return request.status();
    c.request = *std::move(request);
    absl::StatusOr<std::string> expect = ReadFile(pair.second);
    if (!expect.ok()) return expect.status();
    if (absl::Status s = ParseExpect(pair.second, *expect, &c); !s.ok()) return s;
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace coolify::policy
