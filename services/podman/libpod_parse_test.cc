// Adversarial inputs for the pure parsers and the request builder: what Podman's socket
// could send if it were compromised or confused, and what a caller could put in an id.
#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "services/podman/libpod_client.h"
#include "services/podman/libpod_demux.h"
#include "services/podman/libpod_http_parse.h"
#include "services/podman/libpod_path.h"
#include "services/podman/libpod_verbs.h"

namespace coolify::podman {
namespace {

using std::string_literals::operator""s;

TEST(ParseHttpResponseHead, ReadsStatusHeadersAndFraming) {
  std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n";
  ASSERT_EQ(FindHeadEnd(head + "body"), head.size());
  auto h = ParseHttpResponseHead(head);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->status, 200u);
  EXPECT_EQ(h->reason, "OK");
  EXPECT_EQ(h->Header("content-type"), "application/json");
  EXPECT_EQ(h->framing, BodyFraming::kContentLength);
  EXPECT_EQ(h->content_length, 12u);

  auto chunked = ParseHttpResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  ASSERT_TRUE(chunked.ok());
  EXPECT_EQ(chunked->framing, BodyFraming::kChunked);
  auto raw = ParseHttpResponseHead("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n");
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->framing, BodyFraming::kUntilClose);
  auto none = ParseHttpResponseHead("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->framing, BodyFraming::kNone);
  EXPECT_EQ(FindHeadEnd("HTTP/1.1 200 OK\r\nA: b\r\n"), 0u);
}

TEST(ParseHttpResponseHead, PersistentOnlyForHttp11WithoutClose) {
  const std::pair<std::string, bool> cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 404 Not Found\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.1 200 OK\r\nConnection: Keep-Alive , CLOSE\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false},
  };
  for (const auto& [head, persistent] : cases) {
    absl::StatusOr<HttpResponseHead> h = ParseHttpResponseHead(head);
    ASSERT_TRUE(h.ok()) << head;
    EXPECT_EQ(h->persistent, persistent) << head;
  }
}

TEST(ParseHttpResponseHead, RefusesAmbiguousOrMalformedHeads) {
  for (const std::string& bad : {
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"s,
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"s,
           "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"s,
           "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"s,
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"s,
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"s,
           "HTTP/1.1 200 OK\r\n folded: value\r\n\r\n"s,
           "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"s,
           "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"s,
           "HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n"s,
           "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"s,
           "HTTP/1.1 200 OK\r\n: novalue\r\n\r\n"s,
           "HTTP/2 200 OK\r\n\r\n"s,
           "HTTP/1.1 2x0 OK\r\n\r\n"s,
           "HTTP/1.1 099 Low\r\n\r\n"s,
           "HTTP/1.1 200OK\r\n\r\n"s,
           "HTTP/1.1 200 OK\r\n\r\ntrailing"s,
           "\r\n\r\n"s,
           ""s,
       }) {
    EXPECT_FALSE(ParseHttpResponseHead(bad).ok()) << bad;
  }
}

TEST(ParseHttpResponseHead, EnforcesItsLimits) {
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 101; ++i) many += "X-A: b\r\n";
  many += "\r\n";
  EXPECT_EQ(ParseHttpResponseHead(many).status().code(), absl::StatusCode::kResourceExhausted);
  HeadLimits small;
  small.max_head_bytes = 32;
  EXPECT_EQ(ParseHttpResponseHead("HTTP/1.1 200 OK\r\nX-Long: aaaaaaaaaaaaaaaaaaa\r\n\r\n", small)
                .status()
                .code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(DecodeChunked, DecodesWithExtensionsAndTrailers) {
  auto body = DecodeChunked("4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: v\r\n\r\n", 1024);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "Wikipedia in\r\n\r\nchunks.");
}

TEST(DecodeChunked, RefusesTruncatedOversizeAndBadHex) {
  EXPECT_FALSE(DecodeChunked("4\r\nWiki\r\n", 1024).ok());          // no last-chunk
  EXPECT_FALSE(DecodeChunked("4\r\nWi", 1024).ok());                 // data cut
  EXPECT_FALSE(DecodeChunked("0\r\n", 1024).ok());                   // no final CRLF
  EXPECT_FALSE(DecodeChunked("4\r\nWikiXX0\r\n\r\n", 1024).ok());   // no CRLF after data
  EXPECT_FALSE(DecodeChunked("g\r\nx\r\n0\r\n\r\n", 1024).ok());     // bad hex
  EXPECT_FALSE(DecodeChunked("\r\n0\r\n\r\n", 1024).ok());           // empty size
  EXPECT_FALSE(DecodeChunked("-1\r\n", 1024).ok());
  EXPECT_FALSE(DecodeChunked("4\nWiki\r\n0\r\n\r\n", 1024).ok());    // bare LF
  EXPECT_FALSE(DecodeChunked("0\r\n\r\nextra", 1024).ok());          // bytes after the end
  EXPECT_EQ(DecodeChunked("ffffffffffffffff\r\n", 1024).status().code(),
            absl::StatusCode::kInvalidArgument);  // more digits than any cap needs
  EXPECT_EQ(DecodeChunked("401\r\n", 1024).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(DecodeChunked(std::string(2000, '0'), 1 << 20).status().code(),
            absl::StatusCode::kResourceExhausted);  // endless size line
}

TEST(ChunkedDecoder, SameResultWhenFedOneByteAtATime) {
  std::string wire = "3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\nNEXT";
  ChunkedDecoder decoder(1024);
  std::string out;
  size_t used = 0;
  for (size_t i = 0; i < wire.size() && !decoder.done(); ++i) {
    auto n = decoder.Feed(std::string_view(wire).substr(i, 1), &out);
    ASSERT_TRUE(n.ok()) << n.status();
    used += *n;
  }
  EXPECT_TRUE(decoder.done());
  EXPECT_EQ(out, "abc0123456789abcdef");
  EXPECT_EQ(wire.substr(used), "NEXT");
}

TEST(DemuxFrames, SplitsFramesAndKeepsAPartialOne) {
  std::string wire = "\x01\0\0\0\0\0\0\x04out\n"s + "\x02\0\0\0\0\0\0\x04" "err\n"s + "\x01\0\0\0\0\0\0\x05pa"s;
  auto r = DemuxFrames(wire, 1024);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->frames.size(), 2u);
  EXPECT_EQ(r->frames[0].stream, StreamKind::kStdout);
  EXPECT_EQ(r->frames[0].data, "out\n");
  EXPECT_EQ(r->frames[1].stream, StreamKind::kStderr);
  EXPECT_EQ(r->frames[1].data, "err\n");
  EXPECT_EQ(r->consumed, wire.size() - 10);
  auto empty = DemuxFrames("\x01\0\0"s, 1024);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->consumed, 0u);
}

TEST(DemuxFrames, RefusesUnknownStreamsPaddingAndHugeFrames) {
  EXPECT_EQ(DemuxFrames("\x04\0\0\0\0\0\0\x01x"s, 1024).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DemuxFrames("\x01\x01\0\0\0\0\0\x01x"s, 1024).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Refused from the header alone, before any payload.
  EXPECT_EQ(DemuxFrames("\x01\0\0\0\xff\xff\xff\xff"s, 1 << 20).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(DemuxFrames("plain text, not multiplexed", 1024).ok());
}

TEST(BuildTarget, ValidatesAndEncodesEverySegment) {
  auto t = BuildTarget({{SegmentKind::kLiteral, "images"}, {SegmentKind::kImageRef, "localhost/busybox:latest"}},
                       {{"force", SegmentKind::kQueryText, "true"}});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "/v4.0.0/libpod/images/localhost%2Fbusybox%3Alatest?force=true");
  auto q = BuildTarget({{SegmentKind::kLiteral, "images"}, {SegmentKind::kLiteral, "pull"}},
                       {{"reference", SegmentKind::kImageRef, "reg.example:5000/a/b@sha256:ab"}});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, "/v4.0.0/libpod/images/pull?reference=reg.example%3A5000%2Fa%2Fb%40sha256%3Aab");
}

TEST(BuildTarget, RefusesInjectionInIds) {
  for (const std::string& name :
       {"web\r\nX-Evil: 1"s, "web HTTP/1.1"s, "../../info"s, "a/b"s, "a?b=c"s, "a#b"s, "a%2Fb"s,
        ""s, "-name"s, ".hidden"s, std::string(129, 'a'), "caf\xc3\xa9"s, "a\0b"s}) {
    EXPECT_EQ(BuildTarget({{SegmentKind::kLiteral, "containers"}, {SegmentKind::kName, name}}).status().code(),
              absl::StatusCode::kInvalidArgument)
        << name;
  }
  for (const std::string& ref : {"a//b"s, "a/../b"s, "/abs"s, "a/"s, "a b"s, "a\r\n"s, "a?x"s}) {
    EXPECT_FALSE(ValidateSegment(SegmentKind::kImageRef, ref).ok()) << ref;
  }
  EXPECT_FALSE(ValidateSegment(SegmentKind::kExecId, std::string(64, 'g')).ok());
  EXPECT_FALSE(ValidateSegment(SegmentKind::kExecId, std::string(64, 'A')).ok());
  EXPECT_TRUE(ValidateSegment(SegmentKind::kExecId, std::string(64, 'a')).ok());
  EXPECT_FALSE(ValidateSegment(SegmentKind::kQueryText, "x\ny").ok());
  EXPECT_FALSE(BuildTarget({{SegmentKind::kQueryText, "free"}}).ok());
  EXPECT_FALSE(BuildTarget({{SegmentKind::kLiteral, "Info"}}).ok());
  EXPECT_EQ(PercentEncode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
}

TEST(SerializeRequest, CarriesRegistryAuthOnlyAsBase64url) {
  RegistryCredentials credentials{"deploy", "p\"w\r\nX: y", ""};
  const std::string header = RegistryAuthHeader(credentials);
  EXPECT_EQ(header.size() % 4, 0u);
  std::string decoded;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(header, &decoded));
  EXPECT_EQ(decoded, R"({"username":"deploy","password":"p\"w\r\nX: y"})");
  EXPECT_EQ(RegistryAuthHeader({"", "", "refresh-token"}), "eyJpZGVudGl0eXRva2VuIjoicmVmcmVzaC10b2tlbiJ9");

  auto r = SerializeRequest(Method::kPost, "/v4.0.0/libpod/images/pull?reference=x", "", header);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(r->find("\r\nX-Registry-Auth: " + header + "\r\n"), std::string::npos) << *r;
  // Whatever is not base64url text could end the header and start another.
  for (const char* bad : {"abc\r\nX: y", "a b", "a:b", "a\n"}) {
    EXPECT_FALSE(SerializeRequest(Method::kPost, "/x", "", bad).ok()) << bad;
  }
}

TEST(SerializeRequest, RefusesTargetsThatCouldCarryHeaders) {
  auto r = SerializeRequest(Method::kPost, "/v4.0.0/libpod/containers/create", "{}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r,
            "POST /v4.0.0/libpod/containers/create HTTP/1.1\r\nHost: podman\r\nUser-Agent: coold\r\n"
            "Connection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  for (const std::string& target : {"/a\r\nX: y"s, "/a b"s, "a"s, ""s, "/a\x7f"s}) {
    EXPECT_FALSE(SerializeRequest(Method::kGet, target, "").ok()) << target;
  }
}

TEST(StatusFromResponse, MapsPodmanErrors) {
  EXPECT_TRUE(StatusFromResponse(304, "").ok());
  EXPECT_EQ(StatusFromResponse(404, R"({"cause":"no such container","message":"no container","response":404})").code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusFromResponse(409, R"({"cause":"network already exists","message":"m"})").code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(StatusFromResponse(409, R"({"cause":"x has no defined healthcheck","message":"m"})").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusFromResponse(500, R"({"cause":"volume already exists","message":"m"})").code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(StatusFromResponse(500, R"({"cause":"container state improper","message":"m"})").code(),
            absl::StatusCode::kFailedPrecondition);
  absl::Status internal = StatusFromResponse(500, R"({"cause":"boom","message":"disk on fire"})");
  EXPECT_EQ(internal.code(), absl::StatusCode::kInternal);
  EXPECT_NE(internal.message().find("disk on fire"), absl::string_view::npos);
  EXPECT_EQ(StatusFromResponse(500, "not json").code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace coolify::podman
