// The names every DNS listener of this host answers, kept in memory: namespace →
// lower-cased container name → IPv4 addresses. Replace() rebuilds it from the endpoint
// store's rows (those ServesDns accepts) and swaps it in whole, so a lookup is one hash
// probe on an immutable snapshot and never waits for the store.
//
// Thread-safe: Replace() from the sync loop, lookups from the DNS threads. A reader keeps
// its snapshot and checks generation() (one atomic load) before each query, taking the
// new snapshot only when it changed.
#ifndef COOLD_SERVICES_DNS_NAME_TABLE_H_
#define COOLD_SERVICES_DNS_NAME_TABLE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/endpoints/endpoint.h"

namespace coolify::dns {

struct NameSnapshot {
  using Names = absl::flat_hash_map<std::string, std::vector<uint32_t>>;  // IPv4 in host order, sorted
  absl::flat_hash_map<std::string, Names> namespaces;
  size_t names = 0;

  // The namespace's names, or nullptr when it has none.
  const Names* Find(const std::string& namespace_name) const;
};

class NameTable {
 public:
  NameTable();

  // Replaces the whole table with the serving rows of `rows` (rows that fail
  // ValidateEndpointRow are skipped: the store is shared with other hosts). Returns the
  // number of names.
  size_t Replace(const std::vector<endpoints::EndpointRow>& rows);

  std::shared_ptr<const NameSnapshot> Current() const;
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const NameSnapshot> current_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> generation_{0};
};

}  // namespace coolify::dns

#endif  // COOLD_SERVICES_DNS_NAME_TABLE_H_
