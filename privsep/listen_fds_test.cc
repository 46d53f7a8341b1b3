#include "privsep/listen_fds.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "privsep/unique_fd.h"

namespace coolify::privsep {
namespace {

using ::testing::HasSubstr;

constexpr pid_t kSelf = 4242;

TEST(ParseListenFdsTest, NothingSetIsNoDescriptor) {
  auto passed = ParseListenFds(nullptr, nullptr, nullptr, kSelf);
  ASSERT_TRUE(passed.ok()) << passed.status();
  EXPECT_TRUE(passed->empty());
}

TEST(ParseListenFdsTest, NamesInOrderFromDescriptorThree) {
  auto passed = ParseListenFds("4242", "2", "unix:grpc", kSelf);
  ASSERT_TRUE(passed.ok()) << passed.status();
  ASSERT_EQ(passed->size(), 2u);
  EXPECT_EQ((*passed)[0].name, "unix");
  EXPECT_EQ((*passed)[0].fd, 3);
  EXPECT_EQ((*passed)[1].name, "grpc");
  EXPECT_EQ((*passed)[1].fd, 4);
}

TEST(ParseListenFdsTest, UnnamedAreUnknownAsSystemdCallsThem) {
  auto passed = ParseListenFds("4242", "1", nullptr, kSelf);
  ASSERT_TRUE(passed.ok()) << passed.status();
  ASSERT_EQ(passed->size(), 1u);
  EXPECT_EQ((*passed)[0].name, "unknown");
  EXPECT_EQ((*passed)[0].fd, 3);
}

TEST(ParseListenFdsTest, ZeroDescriptors) {
  auto passed = ParseListenFds("4242", "0", "", kSelf);
  ASSERT_TRUE(passed.ok()) << passed.status();
  EXPECT_TRUE(passed->empty());
}

struct Bad {
  const char* pid;
  const char* fds;
  const char* names;
  const char* error;
};

TEST(ParseListenFdsTest, RefusesWithTheVariableAndTheReason) {
  const Bad kBad[] = {
      {"4243", "1", "unix", "LISTEN_PID=4243: the passed sockets are for that process, not this one (4242)"},
      {nullptr, "1", "unix", "LISTEN_PID: unset while LISTEN_FDS and LISTEN_FDNAMES set"},
      {"4242", nullptr, nullptr, "LISTEN_FDS: unset while LISTEN_PID set"},
      {nullptr, nullptr, "unix", "LISTEN_PID: unset while LISTEN_FDNAMES set"},
      {"-1", "1", "unix", "LISTEN_PID=\"-1\": not a process id"},
      {"0", "1", "unix", "LISTEN_PID=\"0\": not a process id"},
      {" 4242", "1", "unix", "not a process id"},
      {"4242", "x", "unix", "LISTEN_FDS=\"x\": expected a number of descriptors, 0..1024"},
      {"4242", "+1", "unix", "LISTEN_FDS=\"+1\""},
      {"4242", "1025", nullptr, "LISTEN_FDS=\"1025\""},
      {"4242", "2", "unix", "LISTEN_FDNAMES=\"unix\": 1 names for LISTEN_FDS=2"},
      {"4242", "1", "unix:grpc", "2 names for LISTEN_FDS=1"},
      {"4242", "2", "unix:", "descriptor 4 has an empty name"},
      {"4242", "2", "unix:unix", "unix twice"},
  };
  for (const Bad& b : kBad) {
    SCOPED_TRACE(absl::StrCat(b.pid ? b.pid : "(unset)", " ", b.fds ? b.fds : "(unset)", " ",
                              b.names ? b.names : "(unset)"));
    auto passed = ParseListenFds(b.pid, b.fds, b.names, kSelf);
    ASSERT_FALSE(passed.ok());
    EXPECT_THAT(passed.status().message(), HasSubstr(b.error));
  }
}

UniqueFd Listening(int family, const std::string& unix_path = "") {
  UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(fd.valid()) << strerror(errno);
  if (family == AF_UNIX) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, unix_path.data(), unix_path.size());
    EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  } else {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  }
  EXPECT_EQ(listen(fd.get(), 4), 0) << strerror(errno);
  return fd;
}

std::string ScratchSocketPath() {
  char dir[] = "/tmp/listen-fds-XXXXXX";
  EXPECT_NE(mkdtemp(dir), nullptr);
  return std::string(dir) + "/s.sock";
}

TEST(CheckListeningSocketTest, ListenersOfTheFamilyGiveTheirAddress) {
  const std::string path = ScratchSocketPath();
  UniqueFd unix_fd = Listening(AF_UNIX, path);
  auto address = CheckListeningSocket(unix_fd.get(), {AF_UNIX});
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(*address, path);
  UniqueFd tcp = Listening(AF_INET);
  address = CheckListeningSocket(tcp.get(), {AF_INET, AF_INET6});
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_THAT(*address, HasSubstr("127.0.0.1:"));
  unlink(path.c_str());
}

TEST(CheckListeningSocketTest, RefusesWhatIsNotAListenerOfTheFamily) {
  const std::string path = ScratchSocketPath();
  UniqueFd unix_fd = Listening(AF_UNIX, path);
  UniqueFd tcp = Listening(AF_INET);
  UniqueFd file(open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd unbound(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  UniqueFd datagram(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  int pair[2];
  ASSERT_EQ(pipe2(pair, O_CLOEXEC), 0);
  UniqueFd pipe_read(pair[0]), pipe_write(pair[1]);

  auto expect_refused = [](int fd, std::initializer_list<int> families, const std::string& error) {
    SCOPED_TRACE(error);
    auto address = CheckListeningSocket(fd, families);
    ASSERT_FALSE(address.ok()) << *address;
    EXPECT_THAT(address.status().message(), HasSubstr(error));
  };
  expect_refused(tcp.get(), {AF_UNIX}, "a socket of AF_INET, not AF_UNIX");
  expect_refused(unix_fd.get(), {AF_INET, AF_INET6}, "a socket of AF_UNIX, not AF_INET or AF_INET6");
  expect_refused(file.get(), {AF_UNIX}, "not a socket");
  expect_refused(pipe_read.get(), {AF_UNIX}, "not a socket");
  expect_refused(unbound.get(), {AF_UNIX}, "a AF_UNIX socket that is not listening");
  expect_refused(datagram.get(), {AF_UNIX}, "not SOCK_STREAM");
  expect_refused(999, {AF_UNIX}, "SO_TYPE");
  unlink(path.c_str());
}

// As systemd execs a service: the sockets at 3 and 4, the variables naming this pid.
// In a child, whose descriptors 3 and 4 the test runner does not use.
TEST(TakeListenFdsTest, TakesTheDescriptorsAndUnsetsTheVariables) {
  const std::string path = ScratchSocketPath();
  UniqueFd unix_fd = Listening(AF_UNIX, path);
  UniqueFd tcp = Listening(AF_INET);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // dup2 leaves close-on-exec clear, as systemd passes them.
    if (dup2(unix_fd.get(), 3) != 3 || dup2(tcp.get(), 4) != 4) _exit(10);
    setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
    setenv("LISTEN_FDS", "2", 1);
    setenv("LISTEN_FDNAMES", "unix:grpc", 1);
    auto passed = TakeListenFds();
    if (!passed.ok() || passed->size() != 2) _exit(11);
    if (getenv("LISTEN_PID") || getenv("LISTEN_FDS") || getenv("LISTEN_FDNAMES")) _exit(12);
    if ((*passed)[0].name != "unix" || (*passed)[0].fd != 3 || (*passed)[1].name != "grpc") _exit(13);
    if (!(fcntl(3, F_GETFD) & FD_CLOEXEC) || !(fcntl(4, F_GETFD) & FD_CLOEXEC)) _exit(14);
    if (!CheckListeningSocket(3, {AF_UNIX}).ok() || !CheckListeningSocket(4, {AF_INET}).ok()) _exit(15);
    // A second read finds nothing: the variables are gone.
    auto again = TakeListenFds();
    if (!again.ok() || !again->empty()) _exit(16);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child exit " << WEXITSTATUS(status);
  unlink(path.c_str());
}

TEST(TakeListenFdsTest, AClosedDescriptorIsRefusedAndTheVariablesStillUnset) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(3);
    setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_FDNAMES", "unix", 1);
    auto passed = TakeListenFds();
    if (passed.ok()) _exit(10);
    if (std::string(passed.status().message()).find("descriptor 3 (unix) is not open") == std::string::npos) _exit(11);
    if (getenv("LISTEN_PID") || getenv("LISTEN_FDS") || getenv("LISTEN_FDNAMES")) _exit(12);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child exit " << WEXITSTATUS(status);
}

}  // namespace
}  // namespace coolify::privsep
