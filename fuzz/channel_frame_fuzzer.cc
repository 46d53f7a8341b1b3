// Feeds arbitrary datagrams to DecodeFrame, the first thing that touches bytes from a
// less privileged peer. The first input byte picks the message type the datagram is
// decoded as; the rest is the datagram.
//
// Besides "does not crash", it checks that whatever decodes also passes through the
// validators without crashing and survives a re-encode: encoding the decoded message
// and decoding that again gives the same message.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "fuzz/protobuf_logs.h"
#include "privsep/channel.h"
#include "privsep/validate.h"
#include "proto/privsep.pb.h"

namespace coolify::privsep {
namespace {

template <typename T>
void DecodeAs(absl::Span<const uint8_t> datagram) {
  T message;
  if (!DecodeFrame(datagram, &message).ok()) return;
  Validate(message).IgnoreError();  // Only whether it crashes matters here.
  // Re-encoding can legitimately fail: a peer may spell a negative int32 in 5 bytes,
  // which serializes back in 10, pushing a full-size frame over the limit.
  const absl::StatusOr<std::vector<uint8_t>> frame = EncodeFrame(message);
  if (!frame.ok()) return;
  T again;
  if (!DecodeFrame(*frame, &again).ok()) std::abort();
  if (again.SerializeAsString() != message.SerializeAsString()) std::abort();
}

using DecodeFn = void (*)(absl::Span<const uint8_t>);

// Indexed by the first input byte: keep the order, the seeds in corpus/channel_frame/
// depend on it.
constexpr DecodeFn kDecoders[] = {
    &DecodeAs<NetlinkRequest>,       &DecodeAs<NetlinkReply>,
    &DecodeAs<PodmanRequest>,        &DecodeAs<PodmanReply>,
    &DecodeAs<BuildLauncherRequest>, &DecodeAs<BuildLauncherReply>,
    &DecodeAs<MonitorRequest>,       &DecodeAs<MonitorReply>,
};

}  // namespace
}  // namespace coolify::privsep

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  coolify::fuzz::KeepOnlyFatalProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using coolify::privsep::kDecoders;
  if (size == 0) return 0;
  kDecoders[data[0] % std::size(kDecoders)](absl::MakeConstSpan(data + 1, size - 1));
  return 0;
}
