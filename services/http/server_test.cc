// The shared HTTP server over a real Unix socket, driven by a raw client: each framing
// a lenient reader would repair is refused with 400, the connection closes, and the
// bytes after the refused request never reach a handler (request smuggling).
#include "services/http/server.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "privsep/log.h"

namespace coolify::http {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    addr_.sun_family = AF_UNIX;
    std::string name = absl::StrCat("coold-http-server-test-", getpid());
    std::memcpy(addr_.sun_path + 1, name.data(), name.size());
    addr_len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr_), addr_len_), 0);
    ASSERT_EQ(listen(fd, 16), 0);
    Limits limits;
    limits.read_timeout = absl::Seconds(5);
    limits.request_log = "test";
    auto server = Server::Create(io_, fd, nullptr, limits, [this](Request request, Responder respond) {
      paths_seen_.push_back(request.path);
      ++dispatched_;
      respond(Response{200, "{\"ok\":true}", "application/json", nullptr, {}});
    });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    server_->Start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    io_.stop();
    thread_.join();
  }

  // Sends `bytes` at once, then reads until the server closes (or 5 s pass).
  std::string Exchange(const std::string& bytes) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr_), addr_len_), 0);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) {
        closed_ = n == 0;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    return out;
  }

  boost::asio::io_context io_;
  std::shared_ptr<Server> server_;
  std::thread thread_;
  sockaddr_un addr_ = {};
  socklen_t addr_len_ = 0;
  std::atomic<int> dispatched_{0};
  std::vector<std::string> paths_seen_;  // written on the io thread, read after it answered
  bool closed_ = false;
};

// A second request hidden where a lenient server reads a body or a next request.
const char kSmuggled[] = "GET /smuggled HTTP/1.1\r\nHost: b\r\n\r\n";

TEST_F(ServerTest, AnOrdinaryRequestAndAPipelinedOneAreServed) {
  std::string out = Exchange(absl::StrCat("POST /a HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\n{}",
                                          "GET /b HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"));
  EXPECT_THAT(out, StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(dispatched_, 2);
}

// The request log: one key=value line per answer, with the method, the path without its
// query, the status and the duration; never a header, the query or the body.
TEST_F(ServerTest, EachAnswerLeavesOneRequestLineWithoutSecrets) {
  const std::string body = R"({"env":{"DB_PASSWORD":"body-secret-4711"}})";
  std::string out = Exchange(absl::StrCat("POST /api/v1/containers?token=query-secret-4711 HTTP/1.1\r\nHost: b\r\n",
                                          "Authorization: Bearer header-secret-4711\r\nContent-Length: ", body.size(),
                                          "\r\nConnection: close\r\n\r\n", body));
  EXPECT_THAT(out, StartsWith("HTTP/1.1 200"));
  Exchange("GET /x HTTP/1.1\r\nHost: b\r\nContent-Length: 2, 2\r\n\r\n{}");
  std::vector<std::string> lines = RecentLogLines(2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("event=http_request server=test method=POST path=/api/v1/containers status=200 "
                                  "duration_ms="));
  EXPECT_THAT(lines[1], HasSubstr("event=http_request server=test method=GET path=/x status=400 duration_ms="));
  for (const std::string& line : RecentLogLines(kRecentLogLines)) {
    EXPECT_THAT(line, ::testing::Not(HasSubstr("secret-4711")));
  }
}

struct Refused {
  const char* what;
  std::string request;
};

TEST_F(ServerTest, EachLenientFramingIsRefusedAndNothingAfterItIsRead) {
  const Refused cases[] = {
      {"unknown transfer coding", "POST /x HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: xchunked\r\n\r\n"},
      {"listed transfer codings", "POST /x HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked, identity\r\n\r\n"},
      {"chunked", "POST /x HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"Transfer-Encoding on HTTP/1.0", "POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"both framing headers", "POST /x HTTP/1.1\r\nHost: b\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"},
      {"a listed Content-Length", "POST /x HTTP/1.1\r\nHost: b\r\nContent-Length: 2, 2\r\n\r\n{}"},
      {"two Content-Lengths", "POST /x HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"},
      {"a signed Content-Length", "POST /x HTTP/1.1\r\nHost: b\r\nContent-Length: +2\r\n\r\n{}"},
      {"obsolete line folding", "GET /x HTTP/1.1\r\nHost: b\r\nX-A: 1\r\n 2\r\n\r\n"},
      {"a folded Host", "GET /x HTTP/1.1\r\nHost:\r\n\tb\r\n\r\n"},
      {"no Host on HTTP/1.1", "GET /x HTTP/1.1\r\n\r\n"},
      {"two Hosts", "GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
      {"a bare LF ending a field", "GET /x HTTP/1.1\r\nHost: b\nX-A: 1\r\n\r\n"},
      {"bare LF lines only", "GET /x HTTP/1.1\nHost: b\n\n"},
      {"a lone CR", "GET /x HTTP/1.1\r\nHost: b\rX-A: 1\r\n\r\n"},
  };
  for (const Refused& c : cases) {
    SCOPED_TRACE(c.what);
    closed_ = false;
    std::string out = Exchange(c.request + kSmuggled);
    EXPECT_THAT(out, StartsWith("HTTP/1.1 400"));
    EXPECT_THAT(out, HasSubstr("malformed request"));
    // One answer, then the end of the connection: the smuggled request got none.
    EXPECT_EQ(out.find("\nHTTP/"), std::string::npos) << out;
    EXPECT_TRUE(closed_);
  }
  EXPECT_EQ(dispatched_, 0);
  EXPECT_TRUE(paths_seen_.empty());
}

TEST_F(ServerTest, AHeaderBlockBeyondItsLimitIs431EvenWithoutAnEnd) {
  std::string out = Exchange(absl::StrCat("GET /x HTTP/1.1\r\nHost: b\r\nX-A: ", std::string(20000, 'a')));
  EXPECT_THAT(out, StartsWith("HTTP/1.1 431"));
  EXPECT_EQ(dispatched_, 0);
}

TEST_F(ServerTest, HttpOneZeroWithoutHostIsServed) {
  std::string out = Exchange("GET /x HTTP/1.0\r\n\r\n");
  EXPECT_THAT(out, StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(dispatched_, 1);
}

TEST(SplitTargetTest, DecodesTheQueryAndKeepsThePathEncoded) {
  Request request;
  SplitTarget("/api/v1/containers/a%2Fb?force=true&namespace=t%C3%A9nant&&flag", request);
  EXPECT_EQ(request.path, "/api/v1/containers/a%2Fb");
  using Pair = std::pair<std::string, std::string>;
  EXPECT_THAT(request.query, ::testing::ElementsAre(Pair("force", "true"), Pair("namespace", "t\xc3\xa9nant"),
                                                    Pair("flag", "")));
}

// A parameter that does not decode is never handed on as something else (an empty value,
// the raw bytes): it becomes a name no handler knows, so the request is refused.
TEST(SplitTargetTest, AParameterThatDoesNotDecodeIsKeptUnderANameNoHandlerKnows) {
  for (const char* target : {"/x?namespace=defa\xff\xff\xff\xfdult", "/x?namespace=%ff", "/x?namespace=a%00b",
                             "/x?namespace=%zz", "/x?na%ffme=default"}) {
    Request request;
    SplitTarget(target, request);
    ASSERT_EQ(request.query.size(), 1u) << target;
    EXPECT_EQ(request.query[0].first, kUndecodableQueryParameter) << target;
    EXPECT_EQ(request.query[0].second, "") << target;
  }
}

}  // namespace
}  // namespace coolify::http
