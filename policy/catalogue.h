// The adversarial catalogue (tests/policy_catalogue/): create requests, each with the
// verdict the deny filter must reach, run through the engine and through the audit tool.
//
// A case is NAME.json (the request body, exactly as the API receives it) and
// NAME.expect, read line by line:
//
//   # why the request is adversarial           comments, any number
//   profile restricted                         the embedded profile (default baseline)
//   caller coold                               the request comes from coold itself
//   namespace alpha                            the caller is confined to a namespace
//   verdict allowed|denied|invalid             exactly once
//   violation RULE FIELD                       each expected violation (denied only;
//                                              the set must match exactly)
//   error TEXT                                 invalid only: the 400 message contains TEXT
#ifndef COOLD_POLICY_CATALOGUE_H_
#define COOLD_POLICY_CATALOGUE_H_

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace coolify::policy {

struct CatalogueCase {
  enum class Outcome { kAllowed, kDenied, kInvalid };

  std::string name;
  std::string request;
  std::string profile = "baseline";
  std::string caller_namespace;
  Outcome outcome = Outcome::kAllowed;
  std::set<std::pair<std::string, std::string>> violations;  // {rule, field}
  std::string error_contains;
};

// The cases among `paths` (files named NAME.json and NAME.expect, as a test's data
// arguments list them), sorted by name. An unpaired file or a malformed .expect is an
// error naming the file and line.
absl::StatusOr<std::vector<CatalogueCase>> LoadCatalogue(const std::vector<std::string>& paths);

}  // namespace coolify::policy

#endif  // COOLD_POLICY_CATALOGUE_H_
