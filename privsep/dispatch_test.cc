#include "privsep/dispatch.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "privsep/channel.h"
#include "proto/privsep.pb.h"

namespace coolify::privsep {
namespace {

using ::testing::HasSubstr;
using Table = DispatchTable<NetlinkRequest, NetlinkReply>;

enum Phase { kHandshake = 0, kServing = 1, kStaging = 2 };

// A table shaped like the firewall writer's, with handlers that count their calls.
struct Fixture {
  int health = 0, list = 0, stage = 0, commit = 0;
  Table table{"test", kHandshake,
              {
                  {NetlinkRequest::kHealth, Phases({kHandshake, kServing}), false, 0, nullptr,
                   [this](const NetlinkRequest&, Table::Call&) { ++health; return NetlinkReply(); }, kServing},
                  {NetlinkRequest::kList, Phases({kServing}), false, 0,
                   [](const NetlinkRequest& r) {
                     return r.list().offset() > 100 ? absl::InvalidArgumentError("list.offset: past 100")
                                                    : absl::OkStatus();
                   },
                   [this](const NetlinkRequest&, Table::Call&) { ++list; return NetlinkReply(); }},
                  {NetlinkRequest::kStage, Phases({kServing, kStaging}), false, 0, nullptr,
                   [this](const NetlinkRequest&, Table::Call&) { ++stage; return NetlinkReply(); }, kStaging},
                  // Once, and with one descriptor, to exercise both.
                  {NetlinkRequest::kCommit, Phases({kStaging}), true, 1, nullptr,
                   [this](const NetlinkRequest&, Table::Call& call) {
                     ++commit;
                     EXPECT_EQ(call.fds.size(), 1u);
                     return NetlinkReply();
                   },
                   kServing},
              }};
};

NetlinkRequest Request(uint64_t id) {
  NetlinkRequest request;
  request.set_protocol_version(kProtocolVersion);
  request.set_request_id(id);
  request.set_role(ROLE_NETLINK);
  return request;
}
NetlinkRequest Health(uint64_t id) {
  NetlinkRequest r = Request(id);
  r.mutable_health();
  return r;
}
NetlinkRequest List(uint64_t id, uint32_t offset = 0) {
  NetlinkRequest r = Request(id);
  r.mutable_list()->set_offset(offset);
  return r;
}
NetlinkRequest Stage(uint64_t id) {
  NetlinkRequest r = Request(id);
  r.mutable_stage()->add_rules();
  return r;
}
NetlinkRequest Commit(uint64_t id) {
  NetlinkRequest r = Request(id);
  r.mutable_commit()->set_mode(FIREWALL_COMMIT_MODE_BULK);
  return r;
}

struct Pair {
  Channel front;
  Channel child;
};
Pair MakePair() {
  auto fds = SeqpacketPair();
  EXPECT_TRUE(fds.ok());
  return {Channel(std::move(fds->first)), Channel(std::move(fds->second))};
}

// Sends `request` from the front end's side and serves one frame.
absl::Status SendAndServe(Pair& p, Fixture& f, const NetlinkRequest& request, std::vector<int> fds = {}) {
  EXPECT_TRUE(p.front.Send(request, fds).ok());
  absl::Status served = f.table.ServeOne(p.child);
  if (served.ok()) {
    NetlinkReply reply;
    EXPECT_TRUE(p.front.Receive(&reply).ok());
    EXPECT_EQ(reply.request_id(), request.request_id());
  }
  return served;
}

// The front end sees its end closed: the child's channel is cut off.
void ExpectCutOff(Pair& p) {
  EXPECT_TRUE(p.child.cut_off());
  NetlinkReply reply;
  EXPECT_TRUE(absl::IsUnavailable(p.front.Receive(&reply)));
}

TEST(DispatchTableTest, ServesOpsInTheirPhasesAndMovesBetweenThem) {
  Pair p = MakePair();
  Fixture f;
  EXPECT_EQ(f.table.phase(), kHandshake);
  ASSERT_TRUE(SendAndServe(p, f, Health(1)).ok());
  EXPECT_EQ(f.table.phase(), kServing);
  ASSERT_TRUE(SendAndServe(p, f, List(2)).ok());
  ASSERT_TRUE(SendAndServe(p, f, Stage(3)).ok());
  EXPECT_EQ(f.table.phase(), kStaging);
  ASSERT_TRUE(SendAndServe(p, f, Stage(4)).ok());
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  ASSERT_TRUE(SendAndServe(p, f, Commit(5), {pipe_fds[0]}).ok());
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  EXPECT_EQ(f.table.phase(), kServing);
  EXPECT_EQ(f.health + f.list + f.stage + f.commit, 5);
}

// What a handler leaves for after its reply runs once the reply is sent: the peer can
// already read it then.
TEST(DispatchTableTest, AfterReplyRunsOnceTheReplyIsSent) {
  Pair p = MakePair();
  int ran = 0;
  bool reply_was_there = false;
  Table table{"test", kServing,
              {{NetlinkRequest::kList, Phases({kServing}), false, 0, nullptr,
                [&](const NetlinkRequest&, Table::Call& call) {
                  call.after_reply = [&] {
                    ++ran;
                    reply_was_there = recv(p.front.fd(), nullptr, 0, MSG_PEEK | MSG_DONTWAIT) >= 0;
                  };
                  EXPECT_EQ(ran, 0);
                  return NetlinkReply();
                }}}};
  ASSERT_TRUE(p.front.Send(List(1)).ok());
  ASSERT_TRUE(table.ServeOne(p.child).ok());
  EXPECT_EQ(ran, 1);
  EXPECT_TRUE(reply_was_there);
  NetlinkReply reply;
  ASSERT_TRUE(p.front.Receive(&reply).ok());
  EXPECT_EQ(reply.request_id(), 1u);
}

// A reply the child cannot send is its own failure, not a refusal: the log line does not
// accuse the front end, and the exit status is not kRefusedExit.
TEST(DispatchTableTest, AReplyThatCannotBeSentIsNotCalledARefusal) {
  Pair p = MakePair();
  Table table{"test", kServing,
              {{NetlinkRequest::kList, Phases({kServing}), false, 0, nullptr, [](const NetlinkRequest&, Table::Call&) {
                  NetlinkReply reply;
                  for (int i = 0; i < 10000; ++i) reply.mutable_changes()->add_ids("0123456789ab");
                  return reply;
                }}}};
  ASSERT_TRUE(p.front.Send(List(1)).ok());
  absl::Status s = table.ServeOne(p.child);
  EXPECT_THAT(std::string(s.message()), HasSubstr("over the payload limit"));
  EXPECT_EQ(table.Describe(s).rfind("could not send a reply to the front end: ", 0), 0u) << table.Describe(s);
  EXPECT_EQ(table.Stop(s), 1);
}

TEST(DispatchTableTest, OpOutsideItsPhaseIsFatal) {
  Pair p = MakePair();
  Fixture f;
  absl::Status s = SendAndServe(p, f, List(1));
  EXPECT_THAT(std::string(s.message()), HasSubstr("test: op list is not allowed in phase 0"));
  EXPECT_EQ(f.list, 0);
  ExpectCutOff(p);
  EXPECT_EQ(f.table.Stop(s), kRefusedExit);
}

TEST(DispatchTableTest, OpOutsideTheTableIsFatal) {
  Pair p = MakePair();
  Fixture f;
  ASSERT_TRUE(SendAndServe(p, f, Health(1)).ok());
  NetlinkRequest allow = Request(2);
  allow.mutable_allow()->mutable_rule();
  absl::Status s = SendAndServe(p, f, allow);
  EXPECT_THAT(std::string(s.message()), HasSubstr("test: op allow is not served here"));
  ExpectCutOff(p);
}

TEST(DispatchTableTest, OnceOnlyOpRepeatedIsFatal) {
  Pair p = MakePair();
  Fixture f;
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  ASSERT_TRUE(SendAndServe(p, f, Health(1)).ok());
  ASSERT_TRUE(SendAndServe(p, f, Stage(2)).ok());
  ASSERT_TRUE(SendAndServe(p, f, Commit(3), {pipe_fds[0]}).ok());
  ASSERT_TRUE(SendAndServe(p, f, Stage(4)).ok());
  absl::Status s = SendAndServe(p, f, Commit(5), {pipe_fds[0]});
  EXPECT_THAT(std::string(s.message()), HasSubstr("test: op commit may come only once"));
  EXPECT_EQ(f.commit, 1);
  ExpectCutOff(p);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST(DispatchTableTest, WrongDescriptorCountIsFatalAndClosesThem) {
  for (int sent : {0, 2}) {
    SCOPED_TRACE(sent);
    Pair p = MakePair();
    Fixture f;
    int pipe_fds[2];
    ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
    ASSERT_TRUE(SendAndServe(p, f, Health(1)).ok());
    ASSERT_TRUE(SendAndServe(p, f, Stage(2)).ok());
    std::vector<int> fds(sent, pipe_fds[1]);
    absl::Status s = SendAndServe(p, f, Commit(3), fds);
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("op commit came with " + std::to_string(sent) + " descriptors, carries exactly 1"));
    EXPECT_EQ(f.commit, 0);
    ExpectCutOff(p);
    // Every copy of the write end the child received is closed: the read end sees EOF.
    close(pipe_fds[1]);
    char c;
    EXPECT_EQ(read(pipe_fds[0], &c, 1), 0);
    close(pipe_fds[0]);
  }
}

TEST(DispatchTableTest, DescriptorsWhereNoneBelongAreFatal) {
  Pair p = MakePair();
  Fixture f;
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  absl::Status s = SendAndServe(p, f, Health(1), {pipe_fds[0]});
  EXPECT_THAT(std::string(s.message()), HasSubstr("op health came with 1 descriptors, carries exactly 0"));
  EXPECT_EQ(f.health, 0);
  ExpectCutOff(p);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST(DispatchTableTest, RowValidatorFailureIsFatal) {
  Pair p = MakePair();
  Fixture f;
  ASSERT_TRUE(SendAndServe(p, f, Health(1)).ok());
  absl::Status s = SendAndServe(p, f, List(2, 101));
  EXPECT_THAT(std::string(s.message()), HasSubstr("list.offset: past 100"));
  EXPECT_EQ(f.list, 0);
  ExpectCutOff(p);
}

TEST(DispatchTableTest, EnvelopeFailuresAreFatal) {
  // Another role's request, a zero request id, a bad field: Validate() refuses each,
  // and the first is the last.
  NetlinkRequest other_role = Health(1);
  other_role.set_role(ROLE_PODMAN);
  NetlinkRequest zero_id = Health(1);
  zero_id.set_request_id(0);
  NetlinkRequest bad_id = Request(1);
  bad_id.mutable_delete_()->set_id("../../etc");
  for (const auto& [request, error] : {std::pair{other_role, "NetlinkRequest.role: ROLE_PODMAN"},
                                       std::pair{zero_id, "NetlinkRequest.request_id: 0 is reserved"},
                                       std::pair{bad_id, "NetlinkRequest.delete.id"}}) {
    SCOPED_TRACE(error);
    Pair p = MakePair();
    Fixture f;
    absl::Status s = SendAndServe(p, f, request);
    EXPECT_THAT(std::string(s.message()), HasSubstr(error));
    EXPECT_EQ(f.health, 0);
    ExpectCutOff(p);
  }
}

TEST(DispatchTableTest, UndecodableFrameIsFatal) {
  Pair p = MakePair();
  Fixture f;
  const char garbage[] = "COLD garbage";
  ASSERT_EQ(send(p.front.fd(), garbage, sizeof garbage, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof garbage));
  absl::Status s = f.table.ServeOne(p.child);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(f.table.Stop(s), kRefusedExit);
  ExpectCutOff(p);
}

TEST(DispatchTableTest, ServeReturnsOneForAClosedPeerAndRefusedForABadFrame) {
  {
    Pair p = MakePair();
    Fixture f;
    ASSERT_TRUE(p.front.Send(Health(1)).ok());
    { Channel gone = std::move(p.front); }
    EXPECT_EQ(f.table.Serve(p.child), 1);
    EXPECT_EQ(f.health, 1);
  }
  {
    Pair p = MakePair();
    Fixture f;
    ASSERT_TRUE(p.front.Send(Health(1)).ok());
    ASSERT_TRUE(p.front.Send(Health(2)).ok());
    ASSERT_TRUE(p.front.Send(Commit(3)).ok());  // kServing: not allowed
    ASSERT_TRUE(p.front.Send(Health(4)).ok());  // never served
    EXPECT_EQ(f.table.Serve(p.child), kRefusedExit);
    EXPECT_EQ(f.health, 2);
  }
}

}  // namespace
}  // namespace coolify::privsep
