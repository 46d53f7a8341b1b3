#include "services/metrics/exposition_parse.h"

#include <cmath>
#include <cstdlib>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace coolify::metrics {
namespace {

bool NameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

absl::StatusOr<double> ParseValue(absl::string_view text) {
  if (text == "+Inf") return HUGE_VAL;
  if (text == "-Inf") return -HUGE_VAL;
  if (text == "NaN") return std::nan("");
  std::string copy(text);
  char* end = nullptr;
  double value = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size()) return absl::InvalidArgumentError(absl::StrCat("bad value ", text));
  return value;
}

// The family a sample belongs to: its name, or a histogram's name without the suffix.
std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  if (types.count(name) > 0) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (absl::EndsWith(name, suffix)) {
      std::string base = name.substr(0, name.size() - absl::string_view(suffix).size());
      auto it = types.find(base);
      if (it != types.end() && it->second == "histogram") return base;
    }
  }
  return "";
}

absl::StatusOr<ParsedSample> ParseSample(absl::string_view line) {
  ParsedSample sample;
  size_t i = 0;
  while (i < line.size() && NameChar(line[i], i == 0)) ++i;
  if (i == 0) return absl::InvalidArgumentError(absl::StrCat("no metric name: ", line));
  sample.name = std::string(line.substr(0, i));
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      size_t start = i;
      while (i < line.size() && NameChar(line[i], i == start) && line[i] != ':') ++i;
      if (i == start || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
        return absl::InvalidArgumentError(absl::StrCat("bad label: ", line));
      }
      std::string key(line.substr(start, i - start));
      i += 2;
      std::string value;
      for (;;) {
        if (i >= line.size()) return absl::InvalidArgumentError(absl::StrCat("unterminated label value: ", line));
        char c = line[i++];
        if (c == '"') break;
        if (c == '\n') return absl::InvalidArgumentError("raw newline in a label value");
        if (c == '\\') {
          if (i >= line.size()) return absl::InvalidArgumentError("dangling escape");
          char e = line[i++];
          if (e == 'n') {
            value += '\n';
          } else if (e == '\\' || e == '"') {
            value += e;
          } else {
            return absl::InvalidArgumentError(absl::StrCat("bad escape \\", std::string(1, e)));
          }
          continue;
        }
        value += c;
      }
      if (!sample.labels.emplace(key, value).second) return absl::InvalidArgumentError("label named twice");
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return absl::InvalidArgumentError(absl::StrCat("unterminated labels: ", line));
    ++i;
  }
  if (i >= line.size() || line[i] != ' ') return absl::InvalidArgumentError(absl::StrCat("no value: ", line));
  absl::StatusOr<double> value = ParseValue(line.substr(i + 1));
  if (!value.ok()) return value.status();
  sample.value = *value;
  return sample;
}

std::string Unescape(absl::string_view help) {
  std::string out;
  for (size_t i = 0; i < help.size(); ++i) {
    if (help[i] == '\\' && i + 1 < help.size() && (help[i + 1] == 'n' || help[i + 1] == '\\')) {
      out += help[i + 1] == 'n' ? '\n' : '\\';
      ++i;
    } else {
      out += help[i];
    }
  }
  return out;
}

}  // namespace

double Exposition::Sum(const std::string& name, const std::map<std::string, std::string>& labels) const {
  double total = 0;
  for (const ParsedSample& sample : samples) {
    if (sample.name != name) continue;
    bool match = true;
    for (const auto& [key, value] : labels) {
      auto it = sample.labels.find(key);
      match = match && it != sample.labels.end() && it->second == value;
    }
    if (match) total += sample.value;
  }
  return total;
}

absl::StatusOr<Exposition> ParseExposition(std::string_view whole) {
  const absl::string_view text(whole.data(), whole.size());
  Exposition out;
  std::set<std::pair<std::string, std::map<std::string, std::string>>> seen;
  if (!text.empty() && text.back() != '\n') return absl::InvalidArgumentError("the text does not end with a newline");
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "# HELP ") || absl::StartsWith(line, "# TYPE ")) {
      absl::string_view rest = line.substr(7);
      size_t space = rest.find(' ');
      if (space == absl::string_view::npos) return absl::InvalidArgumentError(absl::StrCat("bad line: ", line));
      std::string name(rest.substr(0, space));
      absl::string_view value = rest.substr(space + 1);
      if (line[2] == 'H') {
        out.helps[name] = Unescape(value);
      } else {
        if (value != "counter" && value != "gauge" && value != "histogram" && value != "summary" && value != "untyped") {
          return absl::InvalidArgumentError(absl::StrCat("bad type: ", line));
        }
        if (!out.types.emplace(name, std::string(value)).second) return absl::InvalidArgumentError("TYPE given twice");
      }
      continue;
    }
    if (absl::StartsWith(line, "#")) continue;
    absl::StatusOr<ParsedSample> sample = ParseSample(line);
    if (!sample.ok()) return sample.status();
    if (FamilyOf(sample->name, out.types).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("sample of an undeclared family: ", line));
    }
    if (!seen.emplace(sample->name, sample->labels).second) {
      return absl::InvalidArgumentError(absl::StrCat("sample written twice: ", line));
    }
    out.samples.push_back(*std::move(sample));
  }
  return out;
}

}  // namespace coolify::metrics
