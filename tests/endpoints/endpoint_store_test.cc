// EndpointStore on both backends: a real SQLite file, and the Corrosion HTTP API served by
// tests/corrosion_fake (a real process over a real SQLite file).
#include "services/endpoints/endpoint_store.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "privsep/unique_fd.h"
#include "services/endpoints/corrosion_backend.h"
#include "services/endpoints/sqlite_backend.h"
#include "tests/shell_testing.h"

namespace coolify::endpoints {
namespace {

using namespace std::chrono_literals;

std::string TempDir() {
  std::string tmpl = std::string(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") + "/store_XXXXXX";
  return mkdtemp(tmpl.data());
}

uint16_t FreePort() {
  privsep::UniqueFd fd(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  socklen_t len = sizeof(sin);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sin), &len);
  return ntohs(sin.sin_port);
}

// The fake Corrosion agent as a child process.
class FakeCorrosion {
 public:
  FakeCorrosion(std::string db, uint16_t port, bool schema = true) : db_(std::move(db)), port_(port), schema_(schema) {
    Start();
  }
  ~FakeCorrosion() { Stop(); }
  void Start() {
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    std::string binary = coolify::testing::Runfile("tests/corrosion_fake/corrosion_fake");
    std::string listen = "127.0.0.1:" + std::to_string(port_);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      if (schema_) {
        execl(binary.c_str(), binary.c_str(), "--db", db_.c_str(), "--listen", listen.c_str(), nullptr);
      } else {
        execl(binary.c_str(), binary.c_str(), "--db", db_.c_str(), "--listen", listen.c_str(), "--no-schema",
              nullptr);
      }
      _exit(127);
    }
    close(out[1]);
    char buf[128] = {};
    ASSERT_GT(read(out[0], buf, sizeof(buf) - 1), 0) << "corrosion_fake did not start";
    close(out[0]);
    ASSERT_NE(std::string(buf).find("listening"), std::string::npos) << buf;
  }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  uint16_t port() const { return port_; }

 private:
  std::string db_;
  uint16_t port_;
  bool schema_;
  pid_t pid_ = -1;
};

EndpointRow Row(const std::string& service, const std::string& container, const std::string& name,
                const std::string& ip, const std::string& health = "healthy") {
  EndpointRow r;
  r.service_id = service;
  r.container_id = container;
  r.namespace_name = "default";
  r.container_name = name;
  r.ip = ip;
  r.port = 80;
  r.state = "running";
  r.health = health;
  return r;
}

enum class Kind { kSqlite, kCorrosion };

class StoreTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    if (GetParam() == Kind::kCorrosion) fake_ = std::make_unique<FakeCorrosion>(dir_ + "/corrosion.db", FreePort());
    store_ = Open("host-a");
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<EndpointStore> Open(const std::string& host) {
    std::unique_ptr<SqlBackend> backend;
    if (GetParam() == Kind::kSqlite) {
      auto sqlite = SqliteBackend::Open(dir_ + "/endpoints.db");
      EXPECT_TRUE(sqlite.ok()) << sqlite.status();
      backend = std::move(*sqlite);
    } else {
      backend = std::make_unique<CorrosionBackend>(CorrosionAddress{"127.0.0.1", fake_->port()}, 2000ms);
    }
    auto store = EndpointStore::Open(std::move(backend), host);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::string dir_;
  std::unique_ptr<FakeCorrosion> fake_;
  std::unique_ptr<EndpointStore> store_;
};

TEST_P(StoreTest, UpsertListDelete) {
  ASSERT_TRUE(store_->Upsert(Row("web", "aaaaaaaaaaaa", "web-1", "10.210.0.5")).ok());
  ASSERT_TRUE(store_->Upsert(Row("web", "bbbbbbbbbbbb", "web-2", "10.210.0.6")).ok());
  auto rows = store_->ListService("web");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].host_id, "host-a");
  EXPECT_EQ((*rows)[0].container_name, "web-1");
  EXPECT_EQ((*rows)[0].port, 80u);
  EXPECT_GT((*rows)[0].updated_at_ms, 0);
  // An upsert changes the row in place.
  ASSERT_TRUE(store_->Upsert(Row("web", "aaaaaaaaaaaa", "web-1", "10.210.0.9", "unhealthy")).ok());
  rows = store_->ListService("web");
  EXPECT_EQ((*rows)[0].ip, "10.210.0.9");
  EXPECT_EQ((*rows)[0].health, "unhealthy");
  ASSERT_TRUE(store_->Delete("web", "aaaaaaaaaaaa").ok());
  EXPECT_EQ(store_->ListService("web")->size(), 1u);
  EXPECT_EQ(store_->Delete("web", "aaaaaaaaaaaa").message(), "no endpoint web/aaaaaaaaaaaa on this host");
  EXPECT_TRUE(store_->ListService("nothing")->empty());
}

TEST_P(StoreTest, BadRowRefusedAndNothingWritten) {
  absl::Status s = store_->Upsert(Row("web", "aaaaaaaaaaaa", "web.evil", "10.210.0.5"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("container_name"), absl::string_view::npos);
  EXPECT_TRUE(store_->ListService("web")->empty());
}

TEST_P(StoreTest, AnotherHostsRowsAreNotOurs) {
  auto other = Open("host-b");
  ASSERT_TRUE(other->Upsert(Row("web", "cccccccccccc", "web-3", "10.210.1.5")).ok());
  absl::Status s = store_->Upsert(Row("web", "cccccccccccc", "web-3", "10.210.0.99"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "endpoint web/cccccccccccc belongs to another host");
  EXPECT_EQ(store_->Delete("web", "cccccccccccc").code(), absl::StatusCode::kNotFound);
  auto reconciled = store_->ReplaceHostRows({});
  ASSERT_TRUE(reconciled.ok());
  auto rows = store_->ListService("web");
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].ip, "10.210.1.5");
  EXPECT_EQ((*rows)[0].host_id, "host-b");
}

TEST_P(StoreTest, ReplaceHostRows) {
  ASSERT_TRUE(store_->Upsert(Row("web", "aaaaaaaaaaaa", "web-1", "10.210.0.5")).ok());
  ASSERT_TRUE(store_->Upsert(Row("web", "bbbbbbbbbbbb", "web-2", "10.210.0.6")).ok());
  const int64_t web1_time = (*store_->ListService("web"))[0].updated_at_ms;
  auto result = store_->ReplaceHostRows({
      Row("web", "aaaaaaaaaaaa", "web-1", "10.210.0.5"),                // unchanged
      Row("api", "dddddddddddd", "api-1", "10.210.0.7", "unknown"),     // new
      Row("bad", "eeeeeeeeeeee", "Bad Name", "10.210.0.8"),             // refused
  });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->written, 1u);
  EXPECT_EQ(result->removed, 1u);
  ASSERT_EQ(result->skipped.size(), 1u);
  EXPECT_NE(result->skipped[0].find("bad/eeeeeeeeeeee: container_name"), std::string::npos);
  auto host = store_->ListHost();
  ASSERT_EQ(host->size(), 2u);
  auto web = store_->ListService("web");
  ASSERT_EQ(web->size(), 1u);
  EXPECT_EQ((*web)[0].updated_at_ms, web1_time);  // untouched, so no churn
  // Same set again: nothing to write.
  auto again = store_->ReplaceHostRows(
      {Row("web", "aaaaaaaaaaaa", "web-1", "10.210.0.5"), Row("api", "dddddddddddd", "api-1", "10.210.0.7", "unknown")});
  EXPECT_EQ(again->written + again->removed, 0u);
}

TEST_P(StoreTest, ServingRowsAndFingerprint) {
  auto f0 = store_->Fingerprint();
  ASSERT_TRUE(f0.ok()) << f0.status();
  EXPECT_EQ(*f0, "0:0:0");
  ASSERT_TRUE(store_->Upsert(Row("web", "aaaaaaaaaaaa", "web-1", "10.210.0.5")).ok());
  ASSERT_TRUE(store_->Upsert(Row("web", "bbbbbbbbbbbb", "web-2", "10.210.0.6", "unknown")).ok());
  ASSERT_TRUE(store_->Upsert(Row("web", "cccccccccccc", "web-3", "10.210.0.7", "starting")).ok());
  EndpointRow exited = Row("web", "dddddddddddd", "web-4", "10.210.0.8");
  exited.state = "exited";
  ASSERT_TRUE(store_->Upsert(exited).ok());
  auto serving = store_->ListServing();
  ASSERT_TRUE(serving.ok());
  EXPECT_EQ(serving->size(), 2u);
  auto f1 = *store_->Fingerprint();
  EXPECT_NE(f1, *f0);
  EXPECT_EQ(*store_->Fingerprint(), f1);  // nothing moved
  ASSERT_TRUE(store_->Delete("web", "dddddddddddd").ok());
  EXPECT_NE(*store_->Fingerprint(), f1);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values(Kind::kSqlite, Kind::kCorrosion),
                         [](const auto& info) { return info.param == Kind::kSqlite ? "Sqlite" : "Corrosion"; });

TEST(SqliteStore, RowsSurviveARestartAndUseWal) {
  std::string path = TempDir() + "/endpoints.db";
  {
    auto store = EndpointStore::Open(*SqliteBackend::Open(path), "host-a");
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Upsert(Row("web", "aaaaaaaaaaaa", "web-1", "10.210.0.5")).ok());
  }
  auto backend = SqliteBackend::Open(path);
  ASSERT_TRUE(backend.ok());
  auto mode = (*backend)->Query({"PRAGMA journal_mode", {}});
  ASSERT_TRUE(mode.ok());
  EXPECT_EQ(std::get<std::string>(mode->rows[0][0]), "wal");
  auto store = EndpointStore::Open(std::move(*backend), "host-a");
  auto rows = (*store)->ListService("web");
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].ip, "10.210.0.5");
}

TEST(SqliteStore, BadPathIsAClearError) {
  EXPECT_EQ(SqliteBackend::Open("relative.db").status().message(), "sqlite: the database path must be absolute");
  auto missing = SqliteBackend::Open("/nonexistent-dir/x.db");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(missing.status().message().find("/nonexistent-dir/x.db"), absl::string_view::npos);
}

TEST(CorrosionStore, DownLosesNothingAfterItReturns) {
  std::string dir = TempDir();
  FakeCorrosion fake(dir + "/corrosion.db", FreePort());
  auto store = EndpointStore::Open(std::make_unique<CorrosionBackend>(CorrosionAddress{"127.0.0.1", fake.port()}, 1000ms),
                                   "host-a");
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Upsert(Row("web", "aaaaaaaaaaaa", "web-1", "10.210.0.5")).ok());

  fake.Stop();
  const std::vector<EndpointRow> desired = {Row("web", "aaaaaaaaaaaa", "web-1", "10.210.0.5"),
                                            Row("web", "bbbbbbbbbbbb", "web-2", "10.210.0.6")};
  auto down = (*store)->ReplaceHostRows(desired);
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(down.status().message(),
            "corrosion at 127.0.0.1:" + std::to_string(fake.port()) + ": connect: Connection refused");
  EXPECT_EQ((*store)->Upsert(Row("api", "cccccccccccc", "api-1", "10.210.0.7")).code(),
            absl::StatusCode::kUnavailable);

  fake.Start();  // the same database: the agent restarted
  auto up = (*store)->ReplaceHostRows(desired);  // the caller's next tick
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->written, 1u);
  auto rows = (*store)->ListHost();
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 2u);
}

TEST(CorrosionStore, MissingSchemaIsAClearError) {
  std::string dir = TempDir();
  FakeCorrosion fake(dir + "/empty.db", FreePort(), /*schema=*/false);
  auto store = EndpointStore::Open(std::make_unique<CorrosionBackend>(CorrosionAddress{"127.0.0.1", fake.port()}),
                                   "host-a");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("add services/endpoints/service_endpoints.sql to its schema paths"),
            absl::string_view::npos)
      << store.status();
}

// Something that is not Corrosion answers on the address.
TEST(CorrosionStore, GarbageAnswerIsAClearError) {
  privsep::UniqueFd listener(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  socklen_t len = sizeof(sin);
  getsockname(listener.get(), reinterpret_cast<sockaddr*>(&sin), &len);
  ASSERT_EQ(listen(listener.get(), 4), 0);
  std::thread server([&] {
    for (const char* answer : {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "SSH-2.0-OpenSSH\r\n",
                               "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad"}) {
      privsep::UniqueFd c(accept(listener.get(), nullptr, nullptr));
      char buf[4096];
      (void)!read(c.get(), buf, sizeof(buf));
      (void)!write(c.get(), answer, strlen(answer));
    }
  });
  CorrosionBackend backend({"127.0.0.1", ntohs(sin.sin_port)}, 1000ms);
  auto a = backend.Query({"SELECT 1", {}});
  EXPECT_EQ(a.status().message(), "corrosion: unexpected answer: not JSON (syntax error)");
  auto b = backend.Query({"SELECT 1", {}});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(b.status().message().find("read"), absl::string_view::npos) << b.status();
  auto c = backend.Execute({{"DELETE FROM t", {}}});
  EXPECT_EQ(c.status().message(), "corrosion: /v1/transactions answered HTTP 502: bad");
  server.join();
}

}  // namespace
}  // namespace coolify::endpoints
