// A blocking HTTP/1.1 client for coolctl: one request per call over TCP, with TLS when
// the URL is https (server certificate verified against --cacert or the system store,
// unless --insecure), or over a Unix socket ("unix:/path", the broker's).
#ifndef COOLD_TOOLS_COOLCTL_HTTP_CLIENT_H_
#define COOLD_TOOLS_COOLCTL_HTTP_CLIENT_H_

#include <string>

#include "absl/status/statusor.h"

namespace coolify::coolctl {

struct Endpoint {
  bool tls = false;
  std::string host;
  std::string port;
  std::string unix_path;  // set: HTTP over this Unix socket, host and port unused
};

// "http://HOST:PORT", "https://HOST:PORT" (no path) or "unix:/absolute/path".
absl::StatusOr<Endpoint> ParseApiUrl(const std::string& url);

struct ClientOptions {
  std::string bearer_token;
  std::string ca_file;  // "" = the system store
  bool insecure = false;
};

struct HttpResult {
  unsigned status = 0;
  std::string body;
};

absl::StatusOr<HttpResult> SendRequest(const Endpoint& endpoint, const ClientOptions& options,
                                       const std::string& method, const std::string& target,
                                       const std::string& body);

}  // namespace coolify::coolctl

#endif  // COOLD_TOOLS_COOLCTL_HTTP_CLIENT_H_
