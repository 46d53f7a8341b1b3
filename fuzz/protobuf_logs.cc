#include "fuzz/protobuf_logs.h"

#include <cstdio>
#include <string>

#include "google/protobuf/stubs/logging.h"

namespace coolify::fuzz {
namespace {

void FatalOnly(google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
  if (level == google::protobuf::LOGLEVEL_FATAL) {
    std::fprintf(stderr, "[libprotobuf FATAL %s:%d] %s\n", file, line, message.c_str());
  }
}

}  // namespace

void KeepOnlyFatalProtobufLogs() { google::protobuf::SetLogHandler(&FatalOnly); }

}  // namespace coolify::fuzz
