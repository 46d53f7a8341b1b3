#include "tools/coolctl/http_client.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/local/stream_protocol.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"

namespace coolify::coolctl {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

template <typename Stream>
absl::StatusOr<HttpResult> Exchange(Stream& stream, const Endpoint& endpoint, const ClientOptions& options,
                                    const std::string& method, const std::string& target,
                                    const std::string& body) {
  bhttp::request<bhttp::string_body> request(bhttp::string_to_verb(method), target, 11);
  request.set(bhttp::field::host, endpoint.unix_path.empty() ? endpoint.host : "broker");
  request.set(bhttp::field::user_agent, "coolctl");
  if (!options.bearer_token.empty()) {
    request.set(bhttp::field::authorization, absl::StrCat("Bearer ", options.bearer_token));
  }
  if (!body.empty()) request.set(bhttp::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  beast::error_code ec;
  bhttp::write(stream, request, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("sending request: ", ec.message()));
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 << 20);
  bhttp::read(stream, buffer, parser, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("reading response: ", ec.message()));
  return HttpResult{parser.get().result_int(), parser.get().body()};
}

}  // namespace

absl::StatusOr<Endpoint> ParseApiUrl(const std::string& url) {
  Endpoint endpoint;
  std::string rest;
  if (absl::StartsWith(url, "unix:/")) {
    endpoint.unix_path = url.substr(5);
    return endpoint;
  }
  if (absl::StartsWith(url, "https://")) {
    endpoint.tls = true;
    rest = url.substr(8);
  } else if (absl::StartsWith(url, "http://")) {
    rest = url.substr(7);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--api must start with http:// or https://: ", url));
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || rest.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--api must be SCHEME://HOST:PORT: ", url));
  }
  endpoint.host = rest.substr(0, colon);
  endpoint.port = rest.substr(colon + 1);
  return endpoint;
}

absl::StatusOr<HttpResult> SendRequest(const Endpoint& endpoint, const ClientOptions& options,
                                       const std::string& method, const std::string& target,
                                       const std::string& body) {
  asio::io_context io;
  beast::error_code ec;
  if (!endpoint.unix_path.empty()) {
    asio::local::stream_protocol::socket socket(io);
    socket.connect(asio::local::stream_protocol::endpoint(endpoint.unix_path), ec);
    if (ec) return absl::UnavailableError(absl::StrCat("connecting to ", endpoint.unix_path, ": ", ec.message()));
    return Exchange(socket, endpoint, options, method, target, body);
  }
  asio::ip::tcp::resolver resolver(io);
  auto addresses = resolver.resolve(endpoint.host, endpoint.port, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("resolving ", endpoint.host, ": ", ec.message()));
  if (!endpoint.tls) {
    beast::tcp_stream stream(io);
    stream.connect(addresses, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("connecting to ", endpoint.host, ":", endpoint.port, ": ", ec.message()));
    return Exchange(stream, endpoint, options, method, target, body);
  }
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                  asio::ssl::context::no_tlsv1_1);
  if (options.insecure) {
    tls.set_verify_mode(asio::ssl::verify_none);
  } else {
    tls.set_verify_mode(asio::ssl::verify_peer);
    if (options.ca_file.empty()) {
      tls.set_default_verify_paths(ec);
    } else {
      tls.load_verify_file(options.ca_file, ec);
    }
    if (ec) return absl::InvalidArgumentError(absl::StrCat("CA certificates: ", ec.message()));
  }
  beast::ssl_stream<beast::tcp_stream> stream(io, tls);
  if (!options.insecure) stream.set_verify_callback(asio::ssl::host_name_verification(endpoint.host));
  SSL_set_tlsext_host_name(stream.native_handle(), endpoint.host.c_str());
  beast::get_lowest_layer(stream).connect(addresses, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("connecting to ", endpoint.host, ":", endpoint.port, ": ", ec.message()));
  stream.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("TLS handshake: ", ec.message()));
  return Exchange(stream, endpoint, options, method, target, body);
}

}  // namespace coolify::coolctl
