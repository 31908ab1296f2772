#include "cordon/guest/http_ping.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "cordon/quiet_asio.hpp"  // GCC 12 false positive in Asio (see the header)
#include "test_util.hpp"

using namespace std::chrono_literals;
using cordon::guest::async_http_ping;
using cordon::guest::test::run_until;
using cordon::guest::test::TempDir;
namespace asio = boost::asio;
using local = asio::local::stream_protocol;

namespace {
// A one-shot HTTP server on a real unix socket answering `reply` after reading the request.
struct FakeServer {
    FakeServer(asio::io_context& io, const std::string& path, std::string reply_text)
        : acceptor(io, local::endpoint(path)), socket(io), reply(std::move(reply_text)) {
        acceptor.async_accept(socket, [this](boost::system::error_code ec) {
            if (ec)
                return;
            asio::async_read_until(
                socket, request, "\r\n\r\n", [this](boost::system::error_code ec2, std::size_t) {
                    if (ec2)
                        return;
                    std::istream is(&request);
                    std::getline(is, first_line);
                    if (reply.empty())
                        return;  // never answer
                    asio::async_write(socket, asio::buffer(reply),
                                      [this](boost::system::error_code, std::size_t) {
                                          boost::system::error_code ignored;
                                          socket.shutdown(local::socket::shutdown_send, ignored);
                                      });
                });
        });
    }
    local::acceptor acceptor;
    local::socket socket;
    asio::streambuf request;
    std::string reply;
    std::string first_line;
};
}  // namespace

TEST(HttpPing, OkOn200) {
    TempDir tmp;
    asio::io_context io;
    FakeServer server(io, tmp.file("d.sock"), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
    bool called = false, ok = false;
    std::string detail;
    async_http_ping(io, tmp.file("d.sock"), 2s, [&](bool o, const std::string& d) {
        called = true;
        ok = o;
        detail = d;
    });
    ASSERT_TRUE(run_until(io, [&] { return called; }));
    EXPECT_TRUE(ok) << detail;
    EXPECT_EQ(server.first_line, "GET /_ping HTTP/1.0\r");
}

TEST(HttpPing, NotOkOnOtherStatusNoServerOrSilence) {
    TempDir tmp;
    asio::io_context io;
    FakeServer server(io, tmp.file("e.sock"), "HTTP/1.1 500 Internal Server Error\r\n\r\n");
    bool called = false, ok = true;
    std::string detail;
    auto cb = [&](bool o, const std::string& d) {
        called = true;
        ok = o;
        detail = d;
    };
    async_http_ping(io, tmp.file("e.sock"), 2s, cb);
    ASSERT_TRUE(run_until(io, [&] { return called; }));
    EXPECT_FALSE(ok);
    EXPECT_NE(detail.find("500"), std::string::npos);

    called = false;
    async_http_ping(io, tmp.file("absent.sock"), 2s, cb);
    ASSERT_TRUE(run_until(io, [&] { return called; }));
    EXPECT_FALSE(ok);
    EXPECT_NE(detail.find("cannot connect"), std::string::npos);

    FakeServer silent(io, tmp.file("s.sock"), "");
    called = false;
    async_http_ping(io, tmp.file("s.sock"), 200ms, cb);
    ASSERT_TRUE(run_until(io, [&] { return called; }));
    EXPECT_FALSE(ok);
    EXPECT_NE(detail.find("timeout"), std::string::npos);
}
