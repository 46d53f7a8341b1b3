#include "privsep/channel.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/unknown_field_set.h"
#include "gtest/gtest.h"
#include "proto/privsep.pb.h"

namespace coolify::privsep {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

MATCHER_P2(StatusIs, code, substring, "") {
  return arg.code() == code &&
         ::testing::Matches(HasSubstr(substring))(std::string(arg.message()));
}

std::pair<Channel, Channel> MakePair() {
  auto fds = SeqpacketPair();
  EXPECT_TRUE(fds.ok()) << fds.status();
  return {Channel(std::move(fds->first)), Channel(std::move(fds->second))};
}

std::pair<UniqueFd, UniqueFd> MakePipe() {
  int p[2];
  EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
  return {UniqueFd(p[0]), UniqueFd(p[1])};
}

int CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  int count = 0;
  while (readdir(dir) != nullptr) ++count;
  closedir(dir);
  return count;
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

std::vector<uint8_t> RawFrame(uint32_t magic, uint16_t version, uint16_t reserved,
                              uint32_t length, const std::string& payload) {
  std::string frame;
  for (int i = 0; i < 4; ++i) frame.push_back(static_cast<char>(magic >> (8 * i)));
  frame.push_back(static_cast<char>(version));
  frame.push_back(static_cast<char>(version >> 8));
  frame.push_back(static_cast<char>(reserved));
  frame.push_back(static_cast<char>(reserved >> 8));
  for (int i = 0; i < 4; ++i) frame.push_back(static_cast<char>(length >> (8 * i)));
  frame += payload;
  return std::vector<uint8_t>(frame.begin(), frame.end());
}

std::vector<uint8_t> RawFrame(const std::string& payload) {
  return RawFrame(kFrameMagic, kFrameVersion, 0, static_cast<uint32_t>(payload.size()), payload);
}

void SendRaw(int fd, const std::vector<uint8_t>& datagram) {
  ASSERT_EQ(send(fd, datagram.data(), datagram.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(datagram.size()));
}

// Sends `payload` with `fds` attached, bypassing Channel::Send's limits.
void SendRawWithFds(int fd, const std::vector<uint8_t>& payload, const std::vector<int>& fds) {
  iovec iov{const_cast<uint8_t*>(payload.data()), payload.size()};
  std::vector<uint8_t> control(CMSG_SPACE(sizeof(int) * fds.size()));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  ASSERT_EQ(sendmsg(fd, &msg, MSG_NOSIGNAL), static_cast<ssize_t>(payload.size()));
}

HealthReport GoodReport(Role role = ROLE_PODMAN) {
  HealthReport report;
  report.set_role(role);
  report.set_pid(1234);
  report.set_uid(65534);
  report.set_cap_bnd(0);
  report.set_no_new_privs(true);
  report.set_seccomp_mode(2);
  report.set_landlock_abi(3);
  return report;
}

PodmanRequest HealthRequestFor(uint64_t request_id) {
  PodmanRequest request;
  request.set_protocol_version(kProtocolVersion);
  request.set_request_id(request_id);
  request.set_role(ROLE_PODMAN);
  request.mutable_health();
  return request;
}

absl::Status Decode(const google::protobuf::Message& message, google::protobuf::Message* out) {
  absl::StatusOr<std::vector<uint8_t>> frame = EncodeFrame(message);
  EXPECT_TRUE(frame.ok()) << frame.status();
  return DecodeFrame(*frame, out);
}

// ---- encoding

TEST(FrameTest, HeaderLayout) {
  HealthReport report = GoodReport();
  absl::StatusOr<std::vector<uint8_t>> frame = EncodeFrame(report);
  ASSERT_TRUE(frame.ok()) << frame.status();
  const std::string payload = report.SerializeAsString();
  ASSERT_EQ(frame->size(), kFrameHeaderBytes + payload.size());
  const std::vector<uint8_t> header(frame->begin(), frame->begin() + kFrameHeaderBytes);
  EXPECT_EQ(header, (std::vector<uint8_t>{0x44, 0x4C, 0x4F, 0x43, 1, 0, 0, 0,
                                          static_cast<uint8_t>(payload.size()), 0, 0, 0}));
  EXPECT_EQ(std::string(frame->begin() + kFrameHeaderBytes, frame->end()), payload);

  HealthReport decoded;
  ASSERT_TRUE(DecodeFrame(*frame, &decoded).ok());
  EXPECT_EQ(decoded.SerializeAsString(), payload);
}

TEST(FrameTest, EmptyMessageIsAHeaderOnly) {
  HealthRequest empty;
  absl::StatusOr<std::vector<uint8_t>> frame = EncodeFrame(empty);
  ASSERT_TRUE(frame.ok());
  EXPECT_THAT(*frame, SizeIs(kFrameHeaderBytes));
  EXPECT_TRUE(DecodeFrame(*frame, &empty).ok());
}

TEST(FrameTest, EncodeRefusesOversize) {
  NetlinkReply reply;
  reply.set_request_id(1);
  reply.mutable_status()->set_message(std::string(kMaxFrameBytes, 'x'));
  EXPECT_THAT(EncodeFrame(reply).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "over the payload limit"));
}

// ---- decoding

TEST(DecodeFrameTest, RejectsBadHeaders) {
  const std::string payload = GoodReport().SerializeAsString();
  const uint32_t length = static_cast<uint32_t>(payload.size());
  HealthReport out;
  const auto kInvalid = absl::StatusCode::kInvalidArgument;

  EXPECT_THAT(DecodeFrame({}, &out), StatusIs(kInvalid, "frame: 0 bytes, shorter than"));
  std::vector<uint8_t> short_frame = RawFrame(payload);
  short_frame.resize(kFrameHeaderBytes - 1);
  EXPECT_THAT(DecodeFrame(short_frame, &out), StatusIs(kInvalid, "shorter than the header"));

  EXPECT_THAT(DecodeFrame(RawFrame(0x444C4F43, kFrameVersion, 0, length, payload), &out),
              StatusIs(kInvalid, "frame: bad magic 0x444c4f43"));
  EXPECT_THAT(DecodeFrame(RawFrame(kFrameMagic, 2, 0, length, payload), &out),
              StatusIs(kInvalid, "frame: version 2, want 1"));
  EXPECT_THAT(DecodeFrame(RawFrame(kFrameMagic, 0, 0, length, payload), &out),
              StatusIs(kInvalid, "frame: version 0, want 1"));
  EXPECT_THAT(DecodeFrame(RawFrame(kFrameMagic, kFrameVersion, 1, length, payload), &out),
              StatusIs(kInvalid, "frame: reserved header field is 1"));
  EXPECT_THAT(DecodeFrame(RawFrame(kFrameMagic, kFrameVersion, 0, length + 1, payload), &out),
              StatusIs(kInvalid, "header says " + std::to_string(length + 1)));
  EXPECT_THAT(DecodeFrame(RawFrame(kFrameMagic, kFrameVersion, 0, length - 1, payload), &out),
              StatusIs(kInvalid, "header says " + std::to_string(length - 1)));
  EXPECT_THAT(DecodeFrame(RawFrame(kFrameMagic, kFrameVersion, 0, 0xFFFFFFFF, payload), &out),
              StatusIs(kInvalid, "header says 4294967295"));

  const std::string big(kMaxFrameBytes - kFrameHeaderBytes + 1, '\0');
  EXPECT_THAT(DecodeFrame(RawFrame(big), &out), StatusIs(kInvalid, "over the limit of 65536"));
}

TEST(DecodeFrameTest, RejectsGarbagePayloadAndClearsOutput) {
  HealthReport out = GoodReport();
  EXPECT_THAT(DecodeFrame(RawFrame(std::string(20, '\xff')), &out),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "frame: payload does not parse as coolify.privsep.HealthReport"));
  EXPECT_EQ(out.ByteSizeLong(), 0u);
}

TEST(DecodeFrameTest, RejectsUnknownFields) {
  HealthReport report = GoodReport();
  report.GetReflection()->MutableUnknownFields(&report)->AddVarint(99, 1);
  HealthReport out;
  EXPECT_THAT(Decode(report, &out),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "frame: unknown field 99 in coolify.privsep.HealthReport"));

  MonitorRequest request;
  request.set_protocol_version(1);
  request.set_request_id(1);
  *request.mutable_health_round()->add_reports() = GoodReport(ROLE_FRONT);
  HealthReport* nested = request.mutable_health_round()->add_reports();
  *nested = GoodReport(ROLE_NETLINK);
  nested->GetReflection()->MutableUnknownFields(nested)->AddLengthDelimited(7000, "smuggled");
  MonitorRequest request_out;
  EXPECT_THAT(Decode(request, &request_out),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "frame: unknown field 7000 in coolify.privsep.HealthReport at "
                       "health_round.reports[1]"));
}

TEST(DecodeFrameTest, RejectsKnownFieldNumberWithWrongWireType) {
  // Field 2 (pid) as a length-delimited field instead of a varint.
  HealthReport out;
  EXPECT_THAT(DecodeFrame(RawFrame(std::string("\x08\x01\x12\x01x", 5)), &out),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown field 2 in"));
}

TEST(DecodeFrameTest, RejectsUnknownEnumValues) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  const std::string kWhat =
      "frame: value 99 of coolify.privsep.HealthReport.role is not a coolify.privsep.Role";

  // Raw wire bytes: field 1 (role), varint 99.
  HealthReport out;
  EXPECT_THAT(DecodeFrame(RawFrame(std::string("\x08\x63\x10\x01", 4)), &out),
              StatusIs(kInvalid, kWhat));

  // Through reflection, nested in a oneof.
  NetlinkReply reply;
  reply.set_request_id(1);
  *reply.mutable_health() = GoodReport();
  reply.mutable_health()->GetReflection()->SetEnumValue(
      reply.mutable_health(), HealthReport::descriptor()->FindFieldByName("role"), 99);
  NetlinkReply reply_out;
  EXPECT_THAT(Decode(reply, &reply_out), StatusIs(kInvalid, kWhat + " at health"));

  // In a repeated message field.
  HealthRound round;
  *round.add_reports() = GoodReport(ROLE_FRONT);
  round.add_reports()->set_role(static_cast<Role>(99));
  HealthRound round_out;
  EXPECT_THAT(Decode(round, &round_out), StatusIs(kInvalid, kWhat + " at reports[1]"));
}

TEST(DecodeFrameTest, ChecksMapEntries) {
  google::protobuf::Struct object;
  (*object.mutable_fields())["ok"].set_string_value("fine");
  google::protobuf::Struct out;
  EXPECT_TRUE(Decode(object, &out).ok());

  (*object.mutable_fields())["bad"].GetReflection()->SetEnumValue(
      &(*object.mutable_fields())["bad"],
      google::protobuf::Value::descriptor()->FindFieldByName("null_value"), 5);
  EXPECT_THAT(Decode(object, &out),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "value 5 of google.protobuf.Value.null_value is not a "
                       "google.protobuf.NullValue at fields["));
}

TEST(DecodeFrameTest, RejectsAMessageOfAnotherType) {
  // A NetlinkReply read as a PodmanRequest: its status (field 2, length-delimited) is no
  // request_id (field 2, varint), and its HealthReport is no HealthRequest.
  NetlinkReply reply;
  reply.set_request_id(1);
  reply.mutable_status()->set_code(5);
  *reply.mutable_health() = GoodReport();
  PodmanRequest out;
  EXPECT_THAT(Decode(reply, &out),
              StatusIs(absl::StatusCode::kInvalidArgument, "frame: unknown field"));
}

// ---- channel: round trips

TEST(ChannelTest, RoundTrip) {
  auto [a, b] = MakePair();
  NetlinkReply reply;
  reply.set_request_id(77);
  reply.mutable_status()->set_message("ok");
  *reply.mutable_health() = GoodReport(ROLE_NETLINK);
  ASSERT_TRUE(a.Send(reply).ok());
  NetlinkReply got;
  ASSERT_TRUE(b.Receive(&got).ok());
  EXPECT_EQ(got.SerializeAsString(), reply.SerializeAsString());

  // And the other way, with an empty message.
  ASSERT_TRUE(b.Send(HealthRequest()).ok());
  HealthRequest empty;
  ASSERT_TRUE(a.Receive(&empty).ok());
  EXPECT_EQ(a.rejected() + b.rejected(), 0);
}

TEST(ChannelTest, PassesDescriptors) {
  auto [a, b] = MakePair();
  auto [read_end, write_end] = MakePipe();
  ASSERT_TRUE(a.Send(HealthRequestFor(1), {write_end.get()}).ok());
  PodmanRequest got;
  std::vector<UniqueFd> fds;
  ASSERT_TRUE(b.Receive(&got, &fds).ok());
  ASSERT_THAT(fds, SizeIs(1));
  EXPECT_NE(fds[0].get(), write_end.get());
  EXPECT_TRUE(fcntl(fds[0].get(), F_GETFD) & FD_CLOEXEC);
  ASSERT_EQ(write(fds[0].get(), "hi", 2), 2);
  char buf[2];
  ASSERT_EQ(read(read_end.get(), buf, 2), 2);
  EXPECT_EQ(std::string(buf, 2), "hi");
}

TEST(ChannelTest, PassesUpToFourDescriptors) {
  auto [a, b] = MakePair();
  auto [r, w] = MakePipe();
  const std::vector<int> four = {r.get(), w.get(), r.get(), w.get()};
  ASSERT_TRUE(a.Send(HealthRequestFor(1), four).ok());
  PodmanRequest got;
  std::vector<UniqueFd> fds;
  ASSERT_TRUE(b.Receive(&got, &fds).ok());
  EXPECT_THAT(fds, SizeIs(4));
}

TEST(ChannelTest, ReceiveWithFdsButNoneSent) {
  auto [a, b] = MakePair();
  ASSERT_TRUE(a.Send(HealthRequestFor(1)).ok());
  PodmanRequest got;
  std::vector<UniqueFd> fds;
  fds.push_back(MakePipe().first);  // Replaced, so closed.
  ASSERT_TRUE(b.Receive(&got, &fds).ok());
  EXPECT_TRUE(fds.empty());
}

// ---- channel: refusals on the sending side (not rejections)

TEST(ChannelTest, TrySendNeverWaitsForAReader) {
  auto [a, b] = MakePair();
  NetlinkReply reply;
  reply.set_request_id(1);
  int sent = 0;
  absl::Status s;
  // Nobody reads b: the buffer fills, and TrySend says so instead of blocking.
  while ((s = a.TrySend(reply)).ok()) ++sent;
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted, "full"));
  EXPECT_GT(sent, 0);
  NetlinkReply got;
  ASSERT_TRUE(b.Receive(&got).ok());
  EXPECT_EQ(got.request_id(), 1u);
}

TEST(ChannelTest, SendRefusesOversize) {
  auto [a, b] = MakePair();
  NetlinkReply reply;
  reply.set_request_id(1);
  reply.mutable_status()->set_message(std::string(kMaxFrameBytes - kFrameHeaderBytes, 'x'));
  EXPECT_THAT(a.Send(reply), StatusIs(absl::StatusCode::kInvalidArgument, "over the payload"));
  EXPECT_FALSE(Readable(b.fd()));
  EXPECT_EQ(a.refused_sends(), 1u);

  // The largest payload that fits does go through.
  const size_t excess = reply.ByteSizeLong() - (kMaxFrameBytes - kFrameHeaderBytes);
  reply.mutable_status()->mutable_message()->resize(reply.status().message().size() - excess);
  ASSERT_EQ(reply.ByteSizeLong(), kMaxFrameBytes - kFrameHeaderBytes);
  ASSERT_TRUE(a.Send(reply).ok());
  NetlinkReply got;
  EXPECT_TRUE(b.Receive(&got).ok());
}

TEST(ChannelTest, SendRefusesMoreThanFourDescriptors) {
  auto [a, b] = MakePair();
  auto [r, w] = MakePipe();
  const std::vector<int> five(5, r.get());
  EXPECT_THAT(a.Send(HealthRequestFor(1), five),
              StatusIs(absl::StatusCode::kInvalidArgument, "5 descriptors"));
  EXPECT_FALSE(Readable(b.fd()));
  EXPECT_EQ(a.rejected(), 0);
}

// ---- channel: rejections

TEST(ChannelTest, RejectsTruncatedDatagram) {
  auto [a, b] = MakePair();
  SendRaw(a.fd(), RawFrame(std::string(kMaxFrameBytes + 100 - kFrameHeaderBytes, '\0')));
  HealthReport got;
  EXPECT_THAT(b.Receive(&got),
              StatusIs(absl::StatusCode::kInvalidArgument, "frame: datagram truncated"));
  EXPECT_EQ(b.rejected(), 1);
}

TEST(ChannelTest, RejectsBadHeaders) {
  const std::string payload = GoodReport().SerializeAsString();
  const uint32_t length = static_cast<uint32_t>(payload.size());
  const struct {
    std::vector<uint8_t> datagram;
    const char* error;
  } cases[] = {
      {RawFrame(0x12345678, kFrameVersion, 0, length, payload), "bad magic 0x12345678"},
      {RawFrame(kFrameMagic, 7, 0, length, payload), "version 7"},
      {RawFrame(kFrameMagic, kFrameVersion, 0, length + 3, payload), "header says"},
      {{0x44, 0x4C, 0x4F}, "shorter than the header"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.error);
    auto [a, b] = MakePair();
    SendRaw(a.fd(), c.datagram);
    SendRaw(a.fd(), RawFrame(payload));  // A good frame after it never reaches anyone.
    HealthReport got;
    EXPECT_THAT(b.Receive(&got), StatusIs(absl::StatusCode::kInvalidArgument, c.error));
    EXPECT_EQ(b.rejected(), 1);
    EXPECT_THAT(b.Receive(&got), StatusIs(absl::StatusCode::kPermissionDenied, "channel cut off"));
  }
}

TEST(ChannelTest, RejectsWrongMessageType) {
  auto [a, b] = MakePair();
  NetlinkReply reply;
  reply.set_request_id(1);
  reply.mutable_status()->set_code(5);
  *reply.mutable_health() = GoodReport();
  ASSERT_TRUE(a.Send(reply).ok());
  PodmanRequest got;
  EXPECT_THAT(b.Receive(&got), StatusIs(absl::StatusCode::kInvalidArgument, "unknown field"));
  EXPECT_EQ(b.rejected(), 1);
}

TEST(ChannelTest, RejectsUnknownFieldsAndEnumValues) {
  auto [a, b] = MakePair();
  HealthReport report = GoodReport();
  report.GetReflection()->MutableUnknownFields(&report)->AddFixed32(7777, 1);
  // The sender refuses what the receiver would reject; only a raw datagram gets through.
  EXPECT_THAT(a.Send(report), StatusIs(absl::StatusCode::kInvalidArgument, "refusing to send"));
  EXPECT_EQ(a.refused_sends(), 1u);
  SendRaw(a.fd(), RawFrame(report.SerializeAsString()));
  HealthReport got;
  EXPECT_THAT(b.Receive(&got),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "frame: unknown field 7777 in coolify.privsep.HealthReport"));
  EXPECT_EQ(b.rejected(), 1);
}

TEST(ChannelTest, RejectsUnknownEnumValues) {
  auto [a, b] = MakePair();
  HealthReport got;
  HealthReport report = GoodReport();
  report.GetReflection()->SetEnumValue(&report, report.GetDescriptor()->FindFieldByName("role"),
                                       99);
  EXPECT_THAT(a.Send(report), StatusIs(absl::StatusCode::kInvalidArgument, "refusing to send"));
  EXPECT_EQ(a.refused_sends(), 1u);
  SendRaw(a.fd(), RawFrame(report.SerializeAsString()));
  EXPECT_THAT(b.Receive(&got), StatusIs(absl::StatusCode::kInvalidArgument,
                                        "value 99 of coolify.privsep.HealthReport.role"));
  EXPECT_EQ(b.rejected(), 1);
}

TEST(ChannelTest, RejectsAndClosesMoreThanFourDescriptors) {
  auto [a, b] = MakePair();
  auto [r, w] = MakePipe();
  const absl::StatusOr<std::vector<uint8_t>> frame = EncodeFrame(HealthRequestFor(1));
  ASSERT_TRUE(frame.ok());
  const int before = CountOpenFds();
  SendRawWithFds(a.fd(), *frame, std::vector<int>(6, w.get()));
  PodmanRequest got;
  std::vector<UniqueFd> fds;
  EXPECT_THAT(b.Receive(&got, &fds), StatusIs(absl::StatusCode::kInvalidArgument,
                                               "control data truncated"));
  EXPECT_TRUE(fds.empty());
  EXPECT_EQ(CountOpenFds(), before - 1);  // and the channel's own socket, closed by the cut-off
  EXPECT_EQ(b.rejected(), 1);
}

TEST(ChannelTest, RejectsAndClosesUnexpectedDescriptors) {
  auto [a, b] = MakePair();
  auto [r, w] = MakePipe();
  const int before = CountOpenFds();
  ASSERT_TRUE(a.Send(HealthRequestFor(1), {r.get(), w.get()}).ok());
  PodmanRequest got;
  EXPECT_THAT(b.Receive(&got), StatusIs(absl::StatusCode::kInvalidArgument,
                                        "2 descriptors where none were expected"));
  EXPECT_EQ(CountOpenFds(), before - 1);  // and the channel's own socket, closed by the cut-off
  EXPECT_EQ(b.rejected(), 1);

  // Nothing was left holding the pipe's write end: closing ours makes it read EOF.
  w.reset();
  char c;
  EXPECT_EQ(read(r.get(), &c, 1), 0);
}

TEST(ChannelTest, ClosesDescriptorsOfUndecodableFrames) {
  auto [a, b] = MakePair();
  auto [r, w] = MakePipe();
  const int before = CountOpenFds();
  SendRawWithFds(a.fd(), RawFrame(std::string(8, '\xff')), {w.get()});
  PodmanRequest got;
  std::vector<UniqueFd> fds;
  EXPECT_THAT(b.Receive(&got, &fds),
              StatusIs(absl::StatusCode::kInvalidArgument, "does not parse"));
  EXPECT_TRUE(fds.empty());
  EXPECT_EQ(CountOpenFds(), before - 1);  // and the channel's own socket, closed by the cut-off
}

TEST(ChannelTest, PeerClosed) {
  auto [a, b] = MakePair();
  ASSERT_TRUE(a.Send(HealthRequestFor(1)).ok());
  { Channel gone = std::move(a); }
  PodmanRequest got;
  EXPECT_TRUE(b.Receive(&got).ok());  // What was sent before the close still arrives.
  EXPECT_THAT(b.Receive(&got), StatusIs(absl::StatusCode::kUnavailable, "peer closed"));
  EXPECT_THAT(b.Receive(&got), StatusIs(absl::StatusCode::kUnavailable, "peer closed"));
  EXPECT_THAT(b.Send(HealthRequestFor(2)),
              StatusIs(absl::StatusCode::kUnavailable, "peer closed"));
  EXPECT_EQ(b.rejected(), 0);
  EXPECT_FALSE(b.cut_off());
}

TEST(ChannelTest, CutOffAtTheFirstRejection) {
  auto [a, b] = MakePair();
  for (int i = 0; i < 2; ++i) SendRaw(a.fd(), {1, 2, 3});
  HealthReport got;
  EXPECT_FALSE(b.cut_off());
  const int fd = b.fd();
  EXPECT_THAT(b.Receive(&got), StatusIs(absl::StatusCode::kInvalidArgument, "frame: 3 bytes, shorter"));
  EXPECT_TRUE(b.cut_off());
  EXPECT_EQ(b.rejected(), 1);
  EXPECT_EQ(b.fd(), -1);
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);

  EXPECT_THAT(b.Receive(&got),
              StatusIs(absl::StatusCode::kPermissionDenied, "channel cut off: frame: 3 bytes, shorter"));
  EXPECT_THAT(b.Send(GoodReport()), StatusIs(absl::StatusCode::kPermissionDenied, "channel cut off"));
  EXPECT_THAT(b.Reject(absl::InvalidArgumentError("more")),
              StatusIs(absl::StatusCode::kPermissionDenied, "channel cut off"));
  EXPECT_EQ(b.rejected(), 1);

  // The peer sees its end closed.
  EXPECT_THAT(a.Receive(&got), StatusIs(absl::StatusCode::kUnavailable, "peer closed"));
}

// ---- client and server

using PodmanClient = Client<PodmanRequest, PodmanReply>;
using PodmanServer = Server<PodmanRequest, PodmanReply>;

TEST(ClientServerTest, CallsCorrelateAndCarryDescriptors) {
  auto [a, b] = MakePair();
  auto [read_end, write_end] = MakePipe();
  std::thread server_thread([&b = b, &write_end = write_end] {
    PodmanServer server(b);
    for (uint64_t want_id = 1; want_id <= 2; ++want_id) {
      std::vector<UniqueFd> fds;
      absl::StatusOr<PodmanRequest> request = server.Next(&fds);
      ASSERT_TRUE(request.ok()) << request.status();
      EXPECT_EQ(request->protocol_version(), kProtocolVersion);
      EXPECT_EQ(request->request_id(), want_id);
      EXPECT_THAT(fds, SizeIs(want_id == 1 ? 1 : 0));
      PodmanReply reply;
      reply.set_request_id(request->request_id());
      *reply.mutable_health() = GoodReport();
      ASSERT_TRUE(server.Reply(reply, {write_end.get()}).ok());
    }
  });

  PodmanClient client(a);
  PodmanRequest request;
  request.mutable_health();
  std::vector<UniqueFd> reply_fds;
  absl::StatusOr<PodmanReply> reply = client.Call(request, {read_end.get()}, &reply_fds);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->request_id(), 1u);
  EXPECT_EQ(reply->health().pid(), 1234);
  ASSERT_THAT(reply_fds, SizeIs(1));
  ASSERT_EQ(write(reply_fds[0].get(), "x", 1), 1);
  char c;
  ASSERT_EQ(read(read_end.get(), &c, 1), 1);

  reply = client.Call(request, {}, &reply_fds);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->request_id(), 2u);
  server_thread.join();
  EXPECT_EQ(a.rejected() + b.rejected(), 0);
}

TEST(ClientServerTest, UnsolicitedResponseIsRejected) {
  auto [a, b] = MakePair();
  PodmanReply stray;
  stray.set_request_id(42);
  ASSERT_TRUE(b.Send(stray).ok());  // Queued before the call is made.

  PodmanClient client(a);
  PodmanRequest request;
  request.mutable_health();
  EXPECT_THAT(client.Call(request).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "unsolicited response: coolify.privsep.PodmanReply for request 42 "
                       "while waiting for 1"));
  EXPECT_EQ(a.rejected(), 1);

  // The request itself did go out.
  PodmanServer server(b);
  absl::StatusOr<PodmanRequest> sent = server.Next();
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->request_id(), 1u);
}

TEST(ClientServerTest, InvalidReplyIsRejected) {
  auto [a, b] = MakePair();
  PodmanReply bad;
  bad.set_request_id(1);
  bad.mutable_status()->set_code(99);
  ASSERT_TRUE(b.Send(bad).ok());

  PodmanClient client(a);
  PodmanRequest request;
  request.mutable_health();
  EXPECT_THAT(client.Call(request).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "PodmanReply.status.code: 99"));
  EXPECT_EQ(a.rejected(), 1);
}

TEST(ClientServerTest, InvalidRequestIsRejectedAndItsDescriptorsClosed) {
  auto [a, b] = MakePair();
  auto [r, w] = MakePipe();
  PodmanRequest no_op;
  no_op.set_protocol_version(kProtocolVersion);
  no_op.set_request_id(1);
  no_op.set_role(ROLE_PODMAN);
  const int before = CountOpenFds();
  ASSERT_TRUE(a.Send(no_op, {w.get()}).ok());

  PodmanServer server(b);
  std::vector<UniqueFd> fds;
  EXPECT_THAT(server.Next(&fds).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "PodmanRequest.op: not set"));
  EXPECT_TRUE(fds.empty());
  EXPECT_EQ(CountOpenFds(), before - 1);  // and the channel's own socket, closed by the cut-off
  EXPECT_EQ(b.rejected(), 1);
  EXPECT_TRUE(b.cut_off());
}

TEST(ClientServerTest, ARequestItsReceiverWouldRefuseIsNotSentAndIsCounted) {
  auto [a, b] = MakePair();
  PodmanClient client(a);
  EXPECT_THAT(client.Call(PodmanRequest()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "PodmanRequest.op: not set"));
  EXPECT_EQ(a.refused_sends(), 1u);
  EXPECT_FALSE(Readable(b.fd()));
  EXPECT_FALSE(a.cut_off());
}

TEST(ClientServerTest, RequestForAnotherRoleIsRejected) {
  auto [a, b] = MakePair();
  PodmanRequest wrong_version = HealthRequestFor(2);
  wrong_version.set_protocol_version(2);
  ASSERT_TRUE(a.Send(wrong_version).ok());
  EXPECT_THAT(PodmanServer(b).Next().status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "PodmanRequest.protocol_version: 2"));

  // A netlink health request down the Podman channel decodes as a PodmanRequest (the
  // envelopes share their field numbers) and is refused by its role.
  auto [c, d] = MakePair();
  NetlinkRequest netlink;
  netlink.set_protocol_version(kProtocolVersion);
  netlink.set_request_id(3);
  netlink.set_role(ROLE_NETLINK);
  netlink.mutable_health();
  ASSERT_TRUE(c.Send(netlink).ok());
  EXPECT_THAT(PodmanServer(d).Next().status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "PodmanRequest.role: ROLE_NETLINK (3) is not ROLE_PODMAN: a request meant for another process"));
  EXPECT_TRUE(d.cut_off());
}

TEST(ClientServerTest, CallFailsWhenPeerIsGone) {
  auto [a, b] = MakePair();
  { Channel gone = std::move(b); }
  PodmanClient client(a);
  PodmanRequest request;
  request.mutable_health();
  EXPECT_THAT(client.Call(request).status(),
              StatusIs(absl::StatusCode::kUnavailable, "peer closed"));
  EXPECT_EQ(a.rejected(), 0);
}

}  // namespace
}  // namespace coolify::privsep
