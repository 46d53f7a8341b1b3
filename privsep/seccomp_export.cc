// seccomp_export DIR: writes DIR/<role>.pfc, each sandboxed role's seccomp filter in
// libseccomp's pseudo-filter-code, as compiled from the embedded lists. These are the
// golden files under hardening/seccomp/ that sandbox_test compares with, so a change
// to a list shows up in review as a change to the filter the kernel will run.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "privsep/roles.h"
#include "privsep/sandbox.h"

int main(int argc, char** argv) {
  using namespace coolify::privsep;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  for (Role role : kSandboxedRoles) {
    absl::StatusOr<SeccompFilter> filter = RoleSeccompFilter(role);
    absl::StatusOr<std::string> pfc =
        filter.ok() ? filter->ExportPfc() : absl::StatusOr<std::string>(filter.status());
    if (!pfc.ok()) {
      std::fprintf(stderr, "%s\n", pfc.status().ToString().c_str());
      return 1;
    }
    const std::string path = absl::StrCat(argv[1], "/", RoleName(role), ".pfc");
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr || std::fwrite(pfc->data(), 1, pfc->size(), f) != pfc->size() ||
        std::fclose(f) != 0) {
      std::perror(path.c_str());
      return 1;
    }
    std::printf("wrote %s\n", path.c_str());
  }
  return 0;
}
