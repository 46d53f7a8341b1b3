// The broker's HTTP/2 guard (services/broker/h2_guard) over any byte stream a peer could
// send to the gRPC port, cut into chunks of varying size with the clock moving between
// them. No input may crash it, and what it says must hold together: it never forwards
// more than it was given, a refusal is final and names a reason, a deadline lies ahead,
// and its GOAWAY is one well-formed frame. The same bytes also go through the frame
// boundary tracker the listener runs on the server's side.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "services/broker/h2_guard.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using coolify::broker::GuardRefusal;
  using coolify::broker::H2Guard;
  using Kind = H2Guard::Verdict::Kind;
  static constexpr size_t kChunks[] = {1, 9, 4096, 3, 16393, 24, 5, 100000};
  H2Guard guard;
  coolify::broker::H2FrameBoundary boundary;
  auto now = H2Guard::Clock::time_point() + std::chrono::hours(1);
  std::string_view input(reinterpret_cast<const char*>(data), size);
  bool refused = false;
  for (size_t at = 0, i = size; at < size; ++i) {
    std::string_view chunk = input.substr(at, kChunks[i % 8]);
    at += chunk.size();
    size_t forward = ~size_t{0};
    H2Guard::Verdict v = guard.Feed(chunk, now, &forward);
    Check(forward <= chunk.size());
    Check(!refused || (v.kind == Kind::kRefuse && forward == 0));
    if (v.kind == Kind::kRefuse) {
      refused = true;
      Check(v.reason < GuardRefusal::kTlsHandshake);
      std::string goaway = guard.Goaway(v);
      Check(goaway.size() > 17 && goaway[3] == 0x7);
      Check(static_cast<size_t>((uint8_t(goaway[0]) << 16) | (uint8_t(goaway[1]) << 8) | uint8_t(goaway[2])) ==
            goaway.size() - 9);
    } else if (v.kind == Kind::kDeadline) {
      Check(v.deadline > now);
    } else {
      Check(forward == chunk.size());
    }
    boundary.Consume(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size());
    Check(boundary.ToBoundary() <= 0xffffff);
    // The clock moves 0 to 7 s between chunks, so deadlines pass in some inputs.
    now += std::chrono::seconds(i % 8);
    H2Guard::Verdict e = guard.Expired(now);
    if (e.kind == Kind::kRefuse) refused = true;
  }
  return 0;
}
