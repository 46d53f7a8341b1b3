#include "services/broker/h2_guard.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/broker/h2_frames.h"

namespace coolify::broker {
namespace {

namespace h2 = testing::h2;
using Kind = H2Guard::Verdict::Kind;
using Clock = H2Guard::Clock;
using std::chrono::seconds;

const Clock::time_point t0 = Clock::time_point() + std::chrono::hours(1);

std::string Opening() {
  return h2::Preface() + h2::Settings() + h2::Frame(h2::kHeaders, h2::kEndHeaders, 1, h2::AgentStreamHeaders("Bearer x"));
}

struct Fed {
  H2Guard::Verdict verdict;
  size_t forward;
};

Fed Feed(H2Guard& guard, const std::string& bytes, Clock::time_point now = t0) {
  Fed f;
  f.verdict = guard.Feed(bytes, now, &f.forward);
  return f;
}

TEST(H2GuardTest, ForwardsAWholeCallInOneChunkOrByteByByte) {
  std::string call = Opening() + h2::Frame(h2::kData, 0, 1, h2::GrpcMessage("hello") + h2::GrpcMessage("")) +
                     h2::Frame(h2::kPing, 0, 0, std::string(8, 'p')) + h2::Frame(h2::kPing, h2::kAck, 0, std::string(8, 'q')) +
                     h2::Frame(h2::kWindowUpdate, 0, 0, std::string("\0\0\1\0", 4)) +
                     h2::Frame(h2::kData, h2::kEndStream, 1, h2::GrpcMessage(std::string(20000 - 5, 'm')).substr(0, 16384));
  H2Guard whole;
  Fed f = Feed(whole, call);
  // The last message is cut by END_STREAM: nothing more can come on the stream.
  EXPECT_EQ(f.verdict.kind, Kind::kOk);
  EXPECT_EQ(f.forward, call.size());

  H2Guard bytewise;
  for (size_t i = 0; i < call.size(); ++i) {
    Fed b = Feed(bytewise, call.substr(i, 1));
    ASSERT_NE(b.verdict.kind, Kind::kRefuse) << "at byte " << i;
    ASSERT_EQ(b.forward, 1u);
  }
  EXPECT_EQ(bytewise.Expired(t0 + seconds(100)).kind, Kind::kOk);
  EXPECT_EQ(bytewise.last_stream_id(), 1u);
}

TEST(H2GuardTest, MessagesSplitAcrossFramesAndInterleavedStreams) {
  H2Guard guard;
  std::string m1 = h2::GrpcMessage(std::string(3000, 'a'));
  std::string m3 = h2::GrpcMessage(std::string(100, 'b'));
  std::string bytes = Opening() + h2::Frame(h2::kHeaders, h2::kEndHeaders, 3, h2::AgentStreamHeaders("Bearer y")) +
                      h2::Frame(h2::kData, 0, 1, m1.substr(0, 3)) + h2::Frame(h2::kData, 0, 3, m3.substr(0, 50));
  Fed f = Feed(guard, bytes);
  EXPECT_EQ(f.verdict.kind, Kind::kDeadline);
  EXPECT_EQ(f.verdict.deadline, t0 + seconds(30));
  // Padding is skipped: 7 bytes of padding after the data.
  std::string padded = std::string(1, '\7') + m1.substr(3) + std::string(7, '\0');
  f = Feed(guard, h2::Frame(h2::kData, h2::kPadded, 1, padded) + h2::Frame(h2::kData, 0, 3, m3.substr(50)),
           t0 + seconds(1));
  EXPECT_EQ(f.verdict.kind, Kind::kOk);
}

TEST(H2GuardTest, RefusesAWrongPreface) {
  H2Guard guard;
  Fed f = Feed(guard, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(f.verdict.kind, Kind::kRefuse);
  EXPECT_EQ(f.verdict.reason, GuardRefusal::kPreface);
  EXPECT_EQ(f.verdict.code, H2Error::kProtocolError);
}

TEST(H2GuardTest, RefusesAFrameLongerThanTheDefaultMaximumFromItsHeader) {
  H2Guard guard;
  std::string before = Opening();
  Fed f = Feed(guard, before + h2::FrameHeader(16385, h2::kData, 0, 1));
  EXPECT_EQ(f.verdict.reason, GuardRefusal::kFrameSize);
  EXPECT_EQ(f.verdict.code, H2Error::kFrameSizeError);
  EXPECT_EQ(f.forward, before.size());
  // Refused stays refused.
  EXPECT_EQ(Feed(guard, h2::Settings()).verdict.reason, GuardRefusal::kFrameSize);
  EXPECT_EQ(Feed(guard, h2::Settings()).forward, 0u);
}

TEST(H2GuardTest, RefusesAnOversizedMessageFromItsPrefixBeforeForwardingIt) {
  H2Guard guard;
  std::string before = Opening();
  // 4 GiB - 1 promised, 1 KiB sent.
  Fed f = Feed(guard, before + h2::Frame(h2::kData, 0, 1, h2::GrpcPrefix(0xffffffffu) + std::string(1024, 'x')));
  EXPECT_EQ(f.verdict.reason, GuardRefusal::kMessageSize);
  EXPECT_EQ(f.verdict.code, H2Error::kEnhanceYourCalm);
  EXPECT_EQ(f.forward, before.size());

  H2Guard exact;
  EXPECT_EQ(Feed(exact, before + h2::Frame(h2::kData, 0, 1, h2::GrpcPrefix(4 << 20))).verdict.kind, Kind::kDeadline);
  H2Guard over;
  EXPECT_EQ(Feed(over, before + h2::Frame(h2::kData, 0, 1, h2::GrpcPrefix((4 << 20) + 1))).verdict.reason,
            GuardRefusal::kMessageSize);
}

TEST(H2GuardTest, RefusesACompressedOrReservedFlag) {
  H2Guard guard;
  Fed f = Feed(guard, Opening() + h2::Frame(h2::kData, 0, 1, h2::GrpcMessage("zz", 1)));
  EXPECT_EQ(f.verdict.reason, GuardRefusal::kCompressedMessage);
  EXPECT_EQ(f.verdict.code, H2Error::kProtocolError);
  H2Guard reserved;
  EXPECT_EQ(Feed(reserved, Opening() + h2::Frame(h2::kData, 0, 1, h2::GrpcMessage("zz", 2))).verdict.reason,
            GuardRefusal::kProtocol);
}

TEST(H2GuardTest, AFrameCutShortHasADeadlineAndIsRefusedAtIt) {
  H2Guard guard;
  std::string frame = h2::Frame(h2::kData, 0, 1, h2::GrpcMessage("hello"));
  Fed f = Feed(guard, Opening() + frame.substr(0, 12), t0);
  EXPECT_EQ(f.verdict.kind, Kind::kDeadline);
  EXPECT_EQ(f.verdict.deadline, t0 + seconds(10));
  // Bytes dripping in do not move the deadline.
  f = Feed(guard, frame.substr(12, 1), t0 + seconds(9));
  EXPECT_EQ(f.verdict.deadline, t0 + seconds(10));
  EXPECT_EQ(guard.Expired(t0 + seconds(9)).kind, Kind::kDeadline);
  H2Guard::Verdict v = guard.Expired(t0 + seconds(10));
  EXPECT_EQ(v.reason, GuardRefusal::kFrameDeadline);
  EXPECT_EQ(v.code, H2Error::kEnhanceYourCalm);
}

TEST(H2GuardTest, AHalfHeaderAndAHalfPrefaceHaveTheFrameDeadline) {
  H2Guard header;
  EXPECT_EQ(Feed(header, Opening() + h2::Settings().substr(0, 4)).verdict.deadline, t0 + seconds(10));
  H2Guard preface;
  EXPECT_EQ(Feed(preface, h2::Preface().substr(0, 5)).verdict.deadline, t0 + seconds(10));
  EXPECT_EQ(preface.Expired(t0 + seconds(10)).reason, GuardRefusal::kFrameDeadline);
}

TEST(H2GuardTest, ThePrefaceIsOwedFromTheFirstCallEvenEmpty) {
  H2Guard silent;
  Fed f = Feed(silent, "", t0);
  EXPECT_EQ(f.verdict.kind, Kind::kDeadline);
  EXPECT_EQ(f.verdict.deadline, t0 + seconds(10));
  EXPECT_EQ(silent.Expired(t0 + seconds(10)).reason, GuardRefusal::kFrameDeadline);
  // Once the preface and a whole frame are in, nothing is owed.
  H2Guard honest;
  Feed(honest, "", t0);
  EXPECT_EQ(Feed(honest, h2::Preface() + h2::Settings(), t0 + seconds(1)).verdict.kind, Kind::kOk);
}

TEST(H2GuardTest, AMessageBegunHasTheMessageDeadlineBetweenWholeFrames) {
  H2Guard guard;
  Fed f = Feed(guard, Opening() + h2::Frame(h2::kData, 0, 1, h2::GrpcPrefix(1 << 20) + std::string(1024, 'x')), t0);
  EXPECT_EQ(f.verdict.kind, Kind::kDeadline);
  EXPECT_EQ(f.verdict.deadline, t0 + seconds(30));
  EXPECT_EQ(guard.Expired(t0 + seconds(30)).reason, GuardRefusal::kMessageDeadline);

  // A prefix cut in two is a message begun too.
  H2Guard prefix;
  EXPECT_EQ(Feed(prefix, Opening() + h2::Frame(h2::kData, 0, 1, h2::GrpcPrefix(10).substr(0, 2))).verdict.deadline,
            t0 + seconds(30));
}

TEST(H2GuardTest, EndStreamOrResetForgetsAMessageCutShort) {
  H2Guard ended;
  EXPECT_EQ(Feed(ended, Opening() + h2::Frame(h2::kData, h2::kEndStream, 1, h2::GrpcPrefix(100))).verdict.kind,
            Kind::kOk);
  H2Guard reset;
  EXPECT_EQ(Feed(reset, Opening() + h2::Frame(h2::kData, 0, 1, h2::GrpcPrefix(100)) + h2::RstStream(1)).verdict.kind,
            Kind::kOk);
}

TEST(H2GuardTest, RefusesAHeaderBlockBeyondItsSizeOrContinuationCount) {
  H2Guard big;
  std::string bytes = h2::Preface() + h2::Settings() + h2::Frame(h2::kHeaders, 0, 1, std::string(16384, 'h'));
  Fed f = Feed(big, bytes + h2::Frame(h2::kContinuation, 0, 1, std::string(16384, 'h')));
  EXPECT_EQ(f.verdict.kind, Kind::kDeadline);  // the block is open: frame deadline
  EXPECT_EQ(f.verdict.deadline, t0 + seconds(10));
  f = Feed(big, h2::Frame(h2::kContinuation, 0, 1, "h"));
  EXPECT_EQ(f.verdict.reason, GuardRefusal::kHeaderBlock);
  EXPECT_EQ(f.verdict.code, H2Error::kEnhanceYourCalm);
  EXPECT_EQ(f.forward, 0u);

  H2Guard empties;
  bytes = h2::Preface() + h2::Settings() + h2::Frame(h2::kHeaders, 0, 1, "h");
  for (int i = 0; i < 16; ++i) bytes += h2::Frame(h2::kContinuation, 0, 1, "");
  EXPECT_EQ(Feed(empties, bytes).verdict.kind, Kind::kDeadline);
  EXPECT_EQ(Feed(empties, h2::Frame(h2::kContinuation, h2::kEndHeaders, 1, "")).verdict.reason,
            GuardRefusal::kHeaderBlock);

  H2Guard ends;
  bytes = h2::Preface() + h2::Settings() + h2::Frame(h2::kHeaders, 0, 1, "h") +
          h2::Frame(h2::kContinuation, h2::kEndHeaders, 1, "h");
  EXPECT_EQ(Feed(ends, bytes).verdict.kind, Kind::kOk);
}

TEST(H2GuardTest, OnlyContinuationsOfTheSameStreamInsideAHeaderBlock) {
  std::string open = h2::Preface() + h2::Settings() + h2::Frame(h2::kHeaders, 0, 1, "h");
  H2Guard other_frame;
  EXPECT_EQ(Feed(other_frame, open + h2::Frame(h2::kPing, 0, 0, std::string(8, 0))).verdict.reason,
            GuardRefusal::kProtocol);
  H2Guard other_stream;
  EXPECT_EQ(Feed(other_stream, open + h2::Frame(h2::kContinuation, h2::kEndHeaders, 3, "")).verdict.reason,
            GuardRefusal::kProtocol);
  H2Guard stray;
  EXPECT_EQ(Feed(stray, h2::Preface() + h2::Frame(h2::kContinuation, h2::kEndHeaders, 1, "")).verdict.reason,
            GuardRefusal::kProtocol);
}

TEST(H2GuardTest, RefusesARapidResetFlood) {
  H2Guard guard;
  std::string bytes = h2::Preface() + h2::Settings();
  for (uint32_t i = 0; i < 16; ++i) {
    bytes += h2::Frame(h2::kHeaders, h2::kEndHeaders, 2 * i + 1, "h") + h2::RstStream(2 * i + 1);
  }
  EXPECT_EQ(Feed(guard, bytes).verdict.kind, Kind::kOk);
  Fed f = Feed(guard, h2::Frame(h2::kHeaders, h2::kEndHeaders, 33, "h") + h2::RstStream(33));
  EXPECT_EQ(f.verdict.reason, GuardRefusal::kResets);
  EXPECT_EQ(f.verdict.code, H2Error::kEnhanceYourCalm);
  // The HEADERS before it went through; the RST_STREAM did not.
  EXPECT_EQ(f.forward, h2::Frame(h2::kHeaders, h2::kEndHeaders, 33, "h").size());
  std::string goaway = guard.Goaway(f.verdict);
  ASSERT_EQ(h2::ParseFrames(goaway).size(), 1u);
  EXPECT_EQ(h2::GoawayCode(goaway), 0xb);
  EXPECT_EQ(goaway.substr(9, 4), std::string("\0\0\0\x21", 4));  // last stream 33
  EXPECT_EQ(goaway.substr(17), "resets");
}

TEST(H2GuardTest, ResetsAreRefilledOverTime) {
  H2Guard guard;
  std::string bytes = h2::Preface() + h2::Settings();
  uint32_t stream = 1;
  for (int i = 0; i < 16; ++i, stream += 2) {
    bytes += h2::Frame(h2::kHeaders, h2::kEndHeaders, stream, "h") + h2::RstStream(stream);
  }
  EXPECT_EQ(Feed(guard, bytes, t0).verdict.kind, Kind::kOk);
  // One reset a second comes back.
  EXPECT_EQ(Feed(guard, h2::Frame(h2::kHeaders, h2::kEndHeaders, stream, "h") + h2::RstStream(stream), t0 + seconds(2))
                .verdict.kind,
            Kind::kOk);
}

TEST(H2GuardTest, RefusesNewStreamsBeyondTheirBudget) {
  H2Guard guard;
  std::string bytes = h2::Preface() + h2::Settings();
  for (uint32_t i = 0; i < 32; ++i) bytes += h2::Frame(h2::kHeaders, h2::kEndHeaders | h2::kEndStream, 2 * i + 1, "h");
  EXPECT_EQ(Feed(guard, bytes).verdict.kind, Kind::kOk);
  EXPECT_EQ(Feed(guard, h2::Frame(h2::kHeaders, h2::kEndHeaders, 65, "h")).verdict.reason, GuardRefusal::kNewStreams);
  // Trailers on an existing stream are not a new stream.
  H2Guard trailers;
  bytes = Opening();
  for (int i = 0; i < 40; ++i) bytes += h2::Frame(h2::kHeaders, h2::kEndHeaders, 1, "t");
  EXPECT_EQ(Feed(trailers, bytes).verdict.kind, Kind::kOk);
}

TEST(H2GuardTest, RefusesPingAndSettingsFloodsButNotAcks) {
  H2Guard guard;
  std::string bytes = h2::Preface();
  for (int i = 0; i < 256; ++i) bytes += h2::Frame(h2::kPing, 0, 0, std::string(8, 'p'));
  for (int i = 0; i < 1000; ++i) bytes += h2::Frame(h2::kPing, h2::kAck, 0, std::string(8, 'p'));
  EXPECT_EQ(Feed(guard, bytes).verdict.kind, Kind::kOk);
  EXPECT_EQ(Feed(guard, h2::Settings()).verdict.reason, GuardRefusal::kControlFrames);
}

TEST(H2GuardTest, RefusesProtocolErrorsItSees) {
  auto reason = [](const std::string& frame) {
    H2Guard guard;
    return Feed(guard, h2::Preface() + frame).verdict.reason;
  };
  EXPECT_EQ(reason(h2::Frame(h2::kData, 0, 0, "x")), GuardRefusal::kProtocol);
  EXPECT_EQ(reason(h2::Frame(h2::kData, 0, 2, "x")), GuardRefusal::kProtocol);
  EXPECT_EQ(reason(h2::Frame(h2::kHeaders, h2::kEndHeaders, 0, "x")), GuardRefusal::kProtocol);
  EXPECT_EQ(reason(h2::Frame(h2::kData, h2::kPadded, 1, "")), GuardRefusal::kProtocol);
  EXPECT_EQ(reason(h2::Frame(h2::kData, h2::kPadded, 1, std::string(1, '\5') + "abcd")), GuardRefusal::kProtocol);
  EXPECT_EQ(reason(h2::Frame(0x5, h2::kEndHeaders, 1, std::string(4, 0))), GuardRefusal::kProtocol);
}

TEST(H2GuardTest, RefusesMoreStreamsMidMessageThanItTracks) {
  H2Guard guard;
  std::string bytes = h2::Preface() + h2::Settings();
  for (uint32_t i = 0; i < 8; ++i) {
    bytes += h2::Frame(h2::kHeaders, h2::kEndHeaders, 2 * i + 1, "h") + h2::Frame(h2::kData, 0, 2 * i + 1, h2::GrpcPrefix(9));
  }
  EXPECT_EQ(Feed(guard, bytes).verdict.kind, Kind::kDeadline);
  EXPECT_EQ(Feed(guard, h2::Frame(h2::kHeaders, h2::kEndHeaders, 17, "h") + h2::Frame(h2::kData, 0, 17, std::string(1, 0)))
                .verdict.reason,
            GuardRefusal::kPartialMessages);
}

TEST(H2FrameBoundaryTest, FollowsFramesByteByByte) {
  std::string frames = h2::Settings() + h2::Frame(h2::kData, 0, 1, "abcdef") + h2::Frame(h2::kPing, 0, 0, "12345678");
  H2FrameBoundary boundary;
  EXPECT_EQ(boundary.ToBoundary(), 0u);
  std::vector<size_t> at_boundary;
  for (size_t i = 0; i < frames.size(); ++i) {
    boundary.Consume(reinterpret_cast<const uint8_t*>(&frames[i]), 1);
    if (boundary.ToBoundary() == 0) at_boundary.push_back(i + 1);
  }
  EXPECT_EQ(at_boundary, (std::vector<size_t>{9, 24, 41}));
  H2FrameBoundary half;
  half.Consume(reinterpret_cast<const uint8_t*>(frames.data()), 13);
  EXPECT_EQ(half.ToBoundary(), 5u);  // the DATA frame's header is 4 of 9 bytes in
  half.Consume(reinterpret_cast<const uint8_t*>(frames.data() + 13), 5);
  EXPECT_EQ(half.ToBoundary(), 6u);
}

TEST(GuardRefusalNameTest, EveryReasonHasAName) {
  for (int i = 0; i < static_cast<int>(GuardRefusal::kCount); ++i) {
    EXPECT_NE(GuardRefusalName(static_cast<GuardRefusal>(i)), "unknown");
  }
}

}  // namespace
}  // namespace coolify::broker
