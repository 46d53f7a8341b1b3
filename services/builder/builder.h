// The one-shot build: shallow git clone, then buildah bud into containers-storage, with
// every step recorded in the work directory (build_files.h).
//
// Exit codes: 0 the image is built (result.json), 1 the build failed (error.json),
// 2 usage or I/O error (error.json when the work directory is usable), 130 stopped by
// SIGTERM or SIGINT (error.json, code 499).
#ifndef COOLD_SERVICES_BUILDER_BUILDER_H_
#define COOLD_SERVICES_BUILDER_BUILDER_H_

#include "services/builder/options.h"

namespace coolify::build {

inline constexpr int kExitOk = 0;
inline constexpr int kExitBuildError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitTerminated = 130;

// Runs the build `options` describes (already validated). SIGTERM and SIGINT must be
// blocked by the caller: they are taken through a signalfd, passed on to the running
// tool's process group, and end the build with kExitTerminated.
int RunBuild(const BuilderOptions& options);

// Writes error.json for a request refused before it ran (phase usage, code 400).
// Returns kExitUsage.
int ReportUsageError(const BuilderOptions& options, const std::string& reason);

}  // namespace coolify::build

#endif  // COOLD_SERVICES_BUILDER_BUILDER_H_
