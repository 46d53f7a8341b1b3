// LibpodClient's kept connection against a scripted peer on a real Unix socket: which
// calls reuse a connection, and that nothing a peer leaves on one (a close, stray bytes,
// a second answer) ever reaches the next call.
#include "services/podman/libpod_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace coolify::podman {
namespace {

// What the peer does with one request: `bytes` are written back, then the connection is
// closed when `close` is set (without answering at all when `bytes` is empty); `later`,
// when set, is written 50 ms after `bytes`, once the client has its answer.
struct Reply {
  Reply(std::string bytes_in, bool close_in = false) : bytes(std::move(bytes_in)), close(close_in) {}
  std::string bytes;
  bool close = false;
  std::string later;
};

std::string Answer(const std::string& body, const std::string& extra_headers = "") {
  return absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", extra_headers,
                      "Content-Length: ", body.size(), "\r\n\r\n", body);
}

// A peer on a Unix socket serving any number of connections at once from one thread.
// `script` gets the connection's number (from 1, in accept order), the request's
// number on it (from 1) and the request's head.
class ScriptedPeer {
 public:
  using Script = std::function<Reply(int connection, int request, const std::string& head)>;

  explicit ScriptedPeer(Script script) : script_(std::move(script)) {
    char dir[] = "/tmp/libpod-client-test.XXXXXX";
    if (mkdtemp(dir) == nullptr) std::abort();
    dir_ = dir;
    path_ = dir_ + "/podman.sock";
    listener_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(listener_, 16) != 0) {
      std::abort();
    }
    if (pipe(stop_) != 0) std::abort();
    thread_ = std::thread([this] { Serve(); });
  }

  ~ScriptedPeer() {
    (void)!write(stop_[1], "x", 1);
    thread_.join();
    for (auto& [fd, state] : connections_) close(fd);
    close(listener_);
    close(stop_[0]);
    close(stop_[1]);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  const std::string& path() const { return path_; }
  int accepted() const { return accepted_.load(); }
  std::vector<std::string> heads() {
    std::lock_guard<std::mutex> lock(mu_);
    return heads_;
  }

 private:
  struct Connection {
    int number = 0;
    int requests = 0;
    std::string buf;
  };

  void Serve() {
    for (;;) {
      std::vector<pollfd> fds = {{stop_[0], POLLIN, 0}, {listener_, POLLIN, 0}};
      for (const auto& [fd, state] : connections_) fds.push_back({fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[0].revents != 0) return;
      if (fds[1].revents != 0) {
        int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) connections_[fd].number = ++accepted_;
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents != 0) Read(fds[i].fd);
      }
    }
  }

  void Read(int fd) {
    Connection& c = connections_[fd];
    char bytes[4096];
    ssize_t n = read(fd, bytes, sizeof(bytes));
    if (n <= 0) {
      close(fd);
      connections_.erase(fd);
      return;
    }
    c.buf.append(bytes, static_cast<size_t>(n));
    for (size_t end; (end = c.buf.find("\r\n\r\n")) != std::string::npos;) {
      std::string head = c.buf.substr(0, end + 4);
      size_t length = 0;
      if (size_t at = head.find("Content-Length: "); at != std::string::npos) {
        (void)absl::SimpleAtoi(head.substr(at + 16, head.find("\r\n", at) - at - 16), &length);
      }
      if (c.buf.size() < end + 4 + length) return;
      c.buf.erase(0, end + 4 + length);
      {
        std::lock_guard<std::mutex> lock(mu_);
        heads_.push_back(head);
      }
      const Reply reply = script_(c.number, ++c.requests, head);
      if (!reply.bytes.empty()) (void)!write(fd, reply.bytes.data(), reply.bytes.size());
      if (!reply.later.empty()) {
        usleep(50 * 1000);
        (void)!write(fd, reply.later.data(), reply.later.size());
      }
      if (reply.close) {
        close(fd);
        connections_.erase(fd);
        return;
      }
    }
  }

  Script script_;
  std::string dir_;
  std::string path_;
  int listener_ = -1;
  int stop_[2] = {-1, -1};
  std::map<int, Connection> connections_;  // the serving thread's alone
  std::atomic<int> accepted_{0};
  std::mutex mu_;
  std::vector<std::string> heads_;
  std::thread thread_;
};

ClientOptions OptionsFor(const ScriptedPeer& peer) {
  ClientOptions options;
  options.socket_path = peer.path();
  options.io_timeout = absl::Seconds(10);
  return options;
}

// The body the peer answered, as the call returned it.
std::string BodyOf(const absl::StatusOr<HttpResult>& result) {
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->body : "";
}

TEST(LibpodClientKeepAlive, GetsShareOneConnectionAndSayNothingOfClosing) {
  ScriptedPeer peer([](int connection, int request, const std::string&) {
    return Reply(Answer(absl::StrCat("{\"connection\":", connection, ",\"request\":", request, "}")));
  });
  const LibpodClient client(OptionsFor(peer));
  for (int i = 1; i <= 10; ++i) {
    EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/v4.0.0/libpod/info")),
              absl::StrCat("{\"connection\":1,\"request\":", i, "}"));
  }
  EXPECT_EQ(peer.accepted(), 1);
  for (const std::string& head : peer.heads()) EXPECT_EQ(head.find("Connection:"), std::string::npos) << head;
}

TEST(LibpodClientKeepAlive, AnAnswerWithoutABodyKeepsItsConnection) {
  ScriptedPeer peer([](int connection, int request, const std::string&) {
    if (request == 1) return Reply("HTTP/1.1 204 No Content\r\n\r\n");
    return Reply(Answer(absl::StrCat("{\"connection\":", connection, "}")));
  });
  const LibpodClient client(OptionsFor(peer));
  absl::StatusOr<HttpResult> empty = client.Call(Method::kGet, "/a");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->status, 204u);
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/b")), "{\"connection\":1}");
  EXPECT_EQ(peer.accepted(), 1);
}

TEST(LibpodClientKeepAlive, WritesHaveConnectionsOfTheirOwnAndLeaveTheKeptOneAlone) {
  ScriptedPeer peer([](int connection, int, const std::string&) {
    return Reply(Answer(absl::StrCat("{\"connection\":", connection, "}")));
  });
  const LibpodClient client(OptionsFor(peer));
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/a")), "{\"connection\":1}");
  EXPECT_EQ(BodyOf(client.Call(Method::kPost, "/b", "{}")), "{\"connection\":2}");
  EXPECT_EQ(BodyOf(client.Call(Method::kDelete, "/c")), "{\"connection\":3}");
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/d")), "{\"connection\":1}");
  const std::vector<std::string> heads = peer.heads();
  ASSERT_EQ(heads.size(), 4u);
  EXPECT_NE(heads[1].find("Connection: close\r\n"), std::string::npos) << heads[1];
  EXPECT_NE(heads[2].find("Connection: close\r\n"), std::string::npos) << heads[2];
}

TEST(LibpodClientKeepAlive, BytesAfterAnAnswerAreNeverReadAsTheNextOne) {
  // A second, unasked answer right behind the first: the connection it arrived on is
  // never used again, whether the bytes came with the answer or after it.
  ScriptedPeer peer([](int connection, int request, const std::string&) {
    if (connection == 1) return Reply(Answer("{\"asked\":1}") + Answer("{\"smuggled\":true}"));
    if (connection == 2 && request == 1) return Reply(Answer("{\"asked\":2}"));
    return Reply(Answer(absl::StrCat("{\"connection\":", connection, "}")));
  });
  const LibpodClient client(OptionsFor(peer));
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/a")), "{\"asked\":1}");
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/b")), "{\"asked\":2}");
  EXPECT_EQ(peer.accepted(), 2);
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/c")), "{\"connection\":2}");
}

TEST(LibpodClientKeepAlive, StrayBytesArrivingWhileKeptCloseTheConnection) {
  // Bytes no request asked for, sent once the answer was read: found at the next call,
  // and that call goes to a new connection.
  ScriptedPeer peer([](int connection, int request, const std::string&) {
    Reply reply{Answer(absl::StrCat("{\"connection\":", connection, "}"))};
    if (connection == 1 && request == 2) reply.later = Answer("{\"smuggled\":true}");
    return reply;
  });
  const LibpodClient client(OptionsFor(peer));
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/a")), "{\"connection\":1}");
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/b")), "{\"connection\":1}");
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/c")), "{\"connection\":2}");
  EXPECT_EQ(peer.accepted(), 2);
}

TEST(LibpodClientKeepAlive, ChunkedAnswersAreKeptOnlyWhenNothingFollowsTheLastChunk) {
  ScriptedPeer peer([](int connection, int request, const std::string&) {
    std::string body = absl::StrCat("{\"connection\":", connection, "}");
    std::string reply = absl::StrCat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", absl::Hex(body.size()),
                                     "\r\n", body, "\r\n0\r\n\r\n");
    // The first connection's second answer comes with the start of another.
    if (connection == 1 && request == 2) reply += "HTTP/1.1 200 OK\r\n";
    return Reply(reply);
  });
  const LibpodClient client(OptionsFor(peer));
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/a")), "{\"connection\":1}");
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/b")), "{\"connection\":1}");
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/c")), "{\"connection\":2}");
  EXPECT_EQ(peer.accepted(), 2);
}

TEST(LibpodClientKeepAlive, AnswersThatEndTheConnectionAreNotKept) {
  // "Connection: close", HTTP/1.0, and a body that runs to the end of the stream.
  ScriptedPeer peer([](int connection, int, const std::string&) {
    const std::string body = absl::StrCat("{\"connection\":", connection, "}");
    switch (connection) {
      case 1: return Reply(Answer(body, "Connection: keep-alive, close\r\n"));
      case 2: return Reply(absl::StrCat("HTTP/1.0 200 OK\r\nContent-Length: ", body.size(), "\r\n\r\n", body));
      case 3: return Reply(absl::StrCat("HTTP/1.1 200 OK\r\n\r\n", body), /*close=*/true);
      default: return Reply(Answer(body));
    }
  });
  const LibpodClient client(OptionsFor(peer));
  for (int i = 1; i <= 5; ++i) {
    EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/a")), absl::StrCat("{\"connection\":", std::min(i, 4), "}"));
  }
  EXPECT_EQ(peer.accepted(), 4);
}

TEST(LibpodClientKeepAlive, AFailedAnswerLeavesNothingKept) {
  // The first answer is cut short: the call fails, and the next opens a new connection.
  ScriptedPeer peer([](int connection, int, const std::string&) {
    if (connection == 1) return Reply("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"cut", /*close=*/true);
    return Reply(Answer(absl::StrCat("{\"connection\":", connection, "}")));
  });
  const LibpodClient client(OptionsFor(peer));
  EXPECT_EQ(client.Call(Method::kGet, "/a").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/b")), "{\"connection\":2}");
  EXPECT_EQ(peer.accepted(), 2);
}

TEST(LibpodClientKeepAlive, AClosedKeptConnectionCostsTheGetNothing) {
  // The peer closes its side after every answer, as Podman does at its idle timeout or a
  // restart: either the client sees the close before sending, or its request meets it.
  ScriptedPeer closes_after([](int connection, int, const std::string&) {
    return Reply(Answer(absl::StrCat("{\"connection\":", connection, "}")), /*close=*/true);
  });
  const LibpodClient client(OptionsFor(closes_after));
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/a")), absl::StrCat("{\"connection\":", i, "}"));

  // The request reaches the peer on the kept connection, which closes without a word:
  // the GET is sent again on a new connection, once.
  ScriptedPeer drops_second([](int connection, int request, const std::string&) {
    if (connection == 1 && request == 2) return Reply("", /*close=*/true);
    return Reply(Answer(absl::StrCat("{\"connection\":", connection, ",\"request\":", request, "}")));
  });
  const LibpodClient resending(OptionsFor(drops_second));
  EXPECT_EQ(BodyOf(resending.Call(Method::kGet, "/a")), "{\"connection\":1,\"request\":1}");
  EXPECT_EQ(BodyOf(resending.Call(Method::kGet, "/b")), "{\"connection\":2,\"request\":1}");
  const std::vector<std::string> heads = drops_second.heads();
  ASSERT_EQ(heads.size(), 3u);
  EXPECT_EQ(heads[1].substr(0, 7), "GET /b ");
  EXPECT_EQ(heads[2].substr(0, 7), "GET /b ");
}

TEST(LibpodClientKeepAlive, AGetIsSentAgainOnlyOnceAndOnlyBeforeAnyAnswer) {
  // Every connection but the first drops its request unanswered: the resend fails too,
  // and the error is the caller's (no third try).
  ScriptedPeer drops([](int connection, int request, const std::string&) {
    if (connection == 1 && request == 1) return Reply(Answer("{}"));
    return Reply("", /*close=*/true);
  });
  const LibpodClient client(OptionsFor(drops));
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/a")), "{}");
  EXPECT_EQ(client.Call(Method::kGet, "/b").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(drops.heads().size(), 3u);

  // Part of an answer arrived before the close: not sent again.
  ScriptedPeer cuts([](int connection, int request, const std::string&) {
    if (connection == 1 && request == 1) return Reply(Answer("{}"));
    return Reply("HTTP/1.1 200", /*close=*/true);
  });
  const LibpodClient cut_client(OptionsFor(cuts));
  EXPECT_EQ(BodyOf(cut_client.Call(Method::kGet, "/a")), "{}");
  EXPECT_FALSE(cut_client.Call(Method::kGet, "/b").ok());
  EXPECT_EQ(cuts.heads().size(), 2u);

  // A write is never sent twice, kept connection or not.
  ScriptedPeer drops_writes([](int, int, const std::string& head) {
    if (head.substr(0, 4) == "POST") return Reply("", /*close=*/true);
    return Reply(Answer("{}"));
  });
  const LibpodClient writer(OptionsFor(drops_writes));
  EXPECT_EQ(BodyOf(writer.Call(Method::kGet, "/a")), "{}");
  EXPECT_EQ(writer.Call(Method::kPost, "/b", "{}").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(drops_writes.heads().size(), 2u);
}

TEST(LibpodClientKeepAlive, AConnectionIdleTooLongIsNotUsed) {
  ScriptedPeer peer([](int connection, int, const std::string&) {
    return Reply(Answer(absl::StrCat("{\"connection\":", connection, "}")));
  });
  ClientOptions options = OptionsFor(peer);
  options.keep_idle = absl::Milliseconds(100);
  const LibpodClient client(options);
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/a")), "{\"connection\":1}");
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/b")), "{\"connection\":1}");
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/c")), "{\"connection\":2}");
}

TEST(LibpodClientKeepAlive, OffMeansAConnectionPerCall) {
  ScriptedPeer peer([](int connection, int, const std::string&) {
    return Reply(Answer(absl::StrCat("{\"connection\":", connection, "}")));
  });
  ClientOptions options = OptionsFor(peer);
  options.keep_alive = false;
  const LibpodClient client(options);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(BodyOf(client.Call(Method::kGet, "/a")), absl::StrCat("{\"connection\":", i, "}"));
  for (const std::string& head : peer.heads()) EXPECT_NE(head.find("Connection: close\r\n"), std::string::npos);
}

TEST(LibpodClientKeepAlive, CopiesAndThreadsShareOneKeptConnectionSafely) {
  ScriptedPeer peer([](int, int, const std::string&) { return Reply(Answer("{\"ok\":true}")); });
  const LibpodClient client(OptionsFor(peer));
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([copy = client, &good] {
      for (int i = 0; i < 50; ++i) {
        absl::StatusOr<HttpResult> r = copy.Call(Method::kGet, "/a");
        if (r.ok() && r->body == "{\"ok\":true}") ++good;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(good.load(), 200);
}

}  // namespace
}  // namespace coolify::podman
