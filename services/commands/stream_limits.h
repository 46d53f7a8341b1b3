// The agent stream's message size limit (proto/agent.proto's Stream, both directions),
// in one place for the broker's gRPC server and HTTP/2 guard and coold's broker link.
#ifndef COOLD_SERVICES_COMMANDS_STREAM_LIMITS_H_
#define COOLD_SERVICES_COMMANDS_STREAM_LIMITS_H_

#include <cstdint>

namespace coolify::commands {

// The largest message either end receives. A larger one is a protocol error that ends
// the whole connection, so a sender checks its own messages against it first.
inline constexpr uint32_t kMaxStreamMessageBytes = 4 << 20;

}  // namespace coolify::commands

#endif  // COOLD_SERVICES_COMMANDS_STREAM_LIMITS_H_
