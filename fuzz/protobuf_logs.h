// Fuzz targets parse protobuf from mutated bytes; the parser logs an error for every string
// field with invalid UTF-8 (and then fails the parse, which the target sees). Only fatal
// messages are worth printing.
#ifndef COOLD_FUZZ_PROTOBUF_LOGS_H_
#define COOLD_FUZZ_PROTOBUF_LOGS_H_

namespace coolify::fuzz {

// Call from LLVMFuzzerInitialize.
void KeepOnlyFatalProtobufLogs();

}  // namespace coolify::fuzz

#endif  // COOLD_FUZZ_PROTOBUF_LOGS_H_
