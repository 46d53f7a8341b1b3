// Reads the text exposition format back into samples, strictly: for tests that check
// which counters moved by their names and labels, not by searching the text.
#ifndef COOLD_SERVICES_METRICS_EXPOSITION_PARSE_H_
#define COOLD_SERVICES_METRICS_EXPOSITION_PARSE_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace coolify::metrics {

struct ParsedSample {
  std::string name;                           // with _bucket/_sum/_count as written
  std::map<std::string, std::string> labels;  // unescaped
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> types;  // family name -> counter|gauge|histogram
  std::map<std::string, std::string> helps;  // family name -> help, unescaped
  std::vector<ParsedSample> samples;

  // The value of the sample `name` whose labels include every pair of `labels`, summed
  // over all such samples (0 when there is none).
  double Sum(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
};

// Fails on any line that is not a HELP, a TYPE, a comment or a well-formed sample, on a
// sample of an undeclared family, and on a label set written twice.
absl::StatusOr<Exposition> ParseExposition(std::string_view text);

}  // namespace coolify::metrics

#endif  // COOLD_SERVICES_METRICS_EXPOSITION_PARSE_H_
