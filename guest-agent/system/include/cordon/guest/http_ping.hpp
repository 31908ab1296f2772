#pragma once
// Asks an HTTP server on a unix socket (dockerd) "GET /_ping" and reports whether it
// answered 200. Used to learn when dockerd is ready.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <string>

namespace cordon::guest {

// done(ok, detail): ok when the status is 200; detail is the status line or the error.
void async_http_ping(boost::asio::io_context& io, const std::string& socket_path,
                     std::chrono::milliseconds timeout,
                     std::function<void(bool ok, const std::string& detail)> done);

}  // namespace cordon::guest
