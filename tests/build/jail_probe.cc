// jail_probe: run by the build launcher in place of the builder, so with everything a
// build's root holds (its user namespace's capabilities, CAP_SYS_ADMIN among them), it
// tries what its jail must refuse to that root: to change the slot's base image store
// or any other read-only mount of the jail. Prints one line per attempt to its log
// (builder.log): "<what>: refused (<reason>)", or "<what>: DONE" when the jail let it.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace {

void Attempt(const char* what, int result) {
  if (result < 0) {
    std::printf("%s: refused (%s)\n", what, std::strerror(errno));
  } else {
    std::printf("%s: DONE\n", what);
  }
  std::fflush(stdout);
}

}  // namespace

int main() {
  struct stat st;
  std::printf("base store %s\n", stat("/base/overlay-images", &st) == 0 ? "present" : "missing");
  Attempt("remount /base read-write", mount(nullptr, "/base", nullptr, MS_REMOUNT | MS_BIND, nullptr));
  Attempt("remount / read-write", mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND, nullptr));
  Attempt("remount /usr read-write", mount(nullptr, "/usr", nullptr, MS_REMOUNT | MS_BIND, nullptr));
  // A second bind of the store, then that one read-write.
  if (mkdir("/tmp/again", 0700) != 0) std::printf("mkdir /tmp/again: %s\n", std::strerror(errno));
  // Allowed, and what it makes is as read-only and as locked as the store's mount.
  std::printf("bind /base again: %s\n", mount("/base", "/tmp/again", nullptr, MS_BIND, nullptr) == 0 ? "made" : std::strerror(errno));
  Attempt("remount that bind read-write", mount(nullptr, "/tmp/again", nullptr, MS_REMOUNT | MS_BIND, nullptr));
  int fd = open("/base/planted", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  Attempt("create a file in /base", fd);
  if (fd >= 0) close(fd);
  fd = open("/tmp/again/planted", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  Attempt("create a file through the second bind", fd);
  if (fd >= 0) close(fd);
  Attempt("chmod a file of /base", chmod("/base/overlay-images/images.json", 04777));
  Attempt("chown a file of /base", chown("/base/overlay-images/images.json", 1000, 1000));
  Attempt("remove a file of /base", unlink("/base/overlay-images/images.json"));
  // The store cannot be uncovered either: unmounting it would show the jail's own
  // directory, and a build could put a store of its own there only in its own view.
  Attempt("unmount /base", umount2("/base", MNT_DETACH));
  return 0;
}
