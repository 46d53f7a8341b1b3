// coolify-policy: the deny-filter policy audit tool. Its behaviour lands with its own feature; until then it says so and exits 2
// so no caller can mistake it for a working command.
#include <cstdio>

int main() {
  std::fputs("coolify-policy: not yet implemented\n", stderr);
  return 2;
}
