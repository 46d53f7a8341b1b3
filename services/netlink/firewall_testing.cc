#include "services/netlink/firewall_testing.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace coolify::netlink::testing {
namespace {

absl::Status Errno(std::string_view what) {
  return absl::InternalError(absl::StrFormat("%s: %s", what, std::strerror(errno)));
}

// Subprocess input and output go through memory files rather than pipes: nothing can
// block on a full pipe, whatever the tool prints.
absl::StatusOr<privsep::UniqueFd> MemoryFile(std::string_view name, std::string_view contents) {
  privsep::UniqueFd fd(memfd_create(std::string(name).c_str(), MFD_CLOEXEC));
  if (!fd) return Errno("memfd_create");
  if (!contents.empty() &&
      pwrite(fd.get(), contents.data(), contents.size(), 0) !=
          static_cast<ssize_t>(contents.size())) {
    return Errno("pwrite");
  }
  return fd;
}

absl::StatusOr<std::string> ReadAll(int fd) {
  std::string result;
  char buffer[65536];
  off_t offset = 0;
  for (;;) {
    const ssize_t n = pread(fd, buffer, sizeof buffer, offset);
    if (n < 0) return Errno("pread");
    if (n == 0) return result;
    result.append(buffer, static_cast<size_t>(n));
    offset += n;
  }
}

}  // namespace

absl::StatusOr<NetworkNamespace> NetworkNamespace::CreateAndEnter() {
  if (unshare(CLONE_NEWNET) != 0) return Errno("unshare(CLONE_NEWNET)");
  privsep::UniqueFd fd(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!fd) return Errno("open(/proc/thread-self/ns/net)");
  return NetworkNamespace(std::move(fd));
}

absl::Status NetworkNamespace::Enter() const {
  if (setns(fd_.get(), CLONE_NEWNET) != 0) return Errno("setns(CLONE_NEWNET)");
  return absl::OkStatus();
}

absl::StatusOr<CommandResult> Run(const std::vector<std::string>& argv, std::string_view input) {
  absl::StatusOr<privsep::UniqueFd> in = MemoryFile("stdin", input);
  if (!in.ok()) return in.status();
  absl::StatusOr<privsep::UniqueFd> out = MemoryFile("stdout", "");
  if (!out.ok()) return out.status();
  absl::StatusOr<privsep::UniqueFd> err = MemoryFile("stderr", "");
  if (!err.ok()) return err.status();

  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  char* env[] = {nullptr};
  const pid_t pid = fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) {
    // dup2 clears close-on-exec on the copies.
    if (dup2(in->get(), STDIN_FILENO) < 0 || dup2(out->get(), STDOUT_FILENO) < 0 ||
        dup2(err->get(), STDERR_FILENO) < 0) {
      _exit(126);
    }
    execve(args[0], args.data(), env);
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Errno("waitpid");
  }
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  absl::StatusOr<std::string> out_text = ReadAll(out->get());
  if (!out_text.ok()) return out_text.status();
  absl::StatusOr<std::string> err_text = ReadAll(err->get());
  if (!err_text.ok()) return err_text.status();
  result.out = std::move(*out_text);
  result.err = std::move(*err_text);
  return result;
}

absl::StatusOr<std::string> RunOk(const std::vector<std::string>& argv, std::string_view input) {
  absl::StatusOr<CommandResult> result = Run(argv, input);
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InternalError(absl::StrFormat("`%s` exited %d: %s", absl::StrJoin(argv, " "),
                                               result->exit_code, result->err));
  }
  return std::move(result->out);
}

std::string StripIptablesSave(std::string_view text) {
  std::string result;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == ':') {
      const size_t counters = line.rfind(" [");
      if (counters != absl::string_view::npos) line = line.substr(0, counters);
    }
    result.append(line.data(), line.size());
    result.push_back('\n');
  }
  return result;
}

absl::StatusOr<std::string> Sha256sumPrefix(std::string_view input) {
  absl::StatusOr<std::string> out =
      RunOk({"/bin/sh", "-c", "printf '%s' \"$1\" | /usr/bin/sha256sum", "sh", std::string(input)});
  if (!out.ok()) return out.status();
  if (out->size() < 12) return absl::InternalError("sha256sum printed too little: " + *out);
  return out->substr(0, 12);
}

std::vector<Rule> RandomRules(size_t count, uint32_t seed) {
  std::mt19937 random(seed);
  const char* const namespaces[] = {"web", "tenant-a", "tenant-b", "db", "z"};
  auto prefix = [&random]() {
    Ipv4Prefix p;
    p.length = static_cast<uint8_t>(std::uniform_int_distribution<int>(0, 32)(random));
    p.address = static_cast<uint32_t>(random()) & p.Mask();
    return p;
  };
  std::vector<Rule> rules;
  absl::flat_hash_set<std::string> ids;
  while (rules.size() < count) {
    Rule rule;
    rule.namespace_name = namespaces[std::uniform_int_distribution<int>(0, 4)(random)];
    rule.src = prefix();
    rule.dst = prefix();
    rule.protocol = random() % 2 == 0 ? Protocol::kTcp : Protocol::kUdp;
    rule.port = static_cast<uint16_t>(std::uniform_int_distribution<int>(1, 65535)(random));
    if (ids.insert(RuleId(rule)).second) rules.push_back(rule);
  }
  return rules;
}

std::vector<std::string> IptablesAppend(const Rule& rule) {
  return {kIptables, "-A", "COOLIFY-ALLOW", "-s", FormatIpv4Prefix(rule.src), "-d",
          FormatIpv4Prefix(rule.dst), "-p", std::string(ProtocolName(rule.protocol)),
          "--dport", std::to_string(rule.port), "-m", "comment", "--comment", RuleId(rule),
          "-j", "ACCEPT"};
}

std::string NftAddRule(const Rule& rule) {
  return absl::StrFormat(
      "add rule bridge coolify_bridge coolify_allow ip saddr %s ip daddr %s meta l4proto %s "
      "th dport %d accept comment \"%s\"",
      FormatIpv4Prefix(rule.src), FormatIpv4Prefix(rule.dst), ProtocolName(rule.protocol),
      rule.port, RuleId(rule));
}

absl::Status CreateBridgeScaffold() {
  return RunOk({kNft, "-f", "-"},
               "add table bridge coolify_bridge\nadd chain bridge coolify_bridge coolify_allow\n")
      .status();
}

StderrCapture::StderrCapture() : file_(memfd_create("stderr", MFD_CLOEXEC)), saved_(dup(STDERR_FILENO)) {
  dup2(file_, STDERR_FILENO);
}

StderrCapture::~StderrCapture() {
  dup2(saved_, STDERR_FILENO);
  close(saved_);
  close(file_);
}

std::string StderrCapture::Text() const {
  std::string text(static_cast<size_t>(lseek(file_, 0, SEEK_END)), '\0');
  if (pread(file_, text.data(), text.size(), 0) < 0) return "";
  return text;
}

}  // namespace coolify::netlink::testing
