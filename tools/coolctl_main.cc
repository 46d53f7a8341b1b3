// coolctl: the operator CLI. Its behaviour lands with its own feature; until then it says so and exits 2
// so no caller can mistake it for a working command.
#include <cstdio>

int main() {
  std::fputs("coolctl: not yet implemented\n", stderr);
  return 2;
}
