// JSON RPC: codec, Server over a unix socket and over a channel stream, BlockingClient.
#include "test_util.hpp"  // first: silences a GCC false positive in Asio
// (keep the line above first)
#include <sys/un.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>
#include <thread>

#include "cordon/rpc/rpc.hpp"

using namespace cordon;
using namespace cordon::rpc;
using namespace std::chrono_literals;
using boost::system::error_code;

namespace {

Message decode_ok(std::string_view line) {
    Message m;
    RemoteError e;
    std::optional<std::uint64_t> id;
    EXPECT_TRUE(decode_message(line, m, e, id)) << line << ": " << e.message;
    return m;
}

RemoteError decode_bad(std::string_view line, std::optional<std::uint64_t>* id_out = nullptr) {
    Message m;
    RemoteError e;
    std::optional<std::uint64_t> id;
    EXPECT_FALSE(decode_message(line, m, e, id)) << line;
    if (id_out)
        *id_out = id;
    return e;
}

}  // namespace

TEST(RpcCodec, DecodesEveryKind) {
    auto r = decode_ok(R"({"id":7,"method":"info","params":{"verbose":true}})");
    EXPECT_EQ(r.kind, Message::Kind::request);
    EXPECT_EQ(*r.id, 7u);
    EXPECT_EQ(r.method, "info");
    EXPECT_EQ(r.params["verbose"], true);

    auto n = decode_ok(R"({"method":"progress","params":{"pct":50}})");
    EXPECT_EQ(n.kind, Message::Kind::notification);
    EXPECT_FALSE(n.id);

    auto ok = decode_ok(R"({"id":7,"result":{"uptime":3}})");
    EXPECT_EQ(ok.kind, Message::Kind::response);
    EXPECT_EQ(ok.result["uptime"], 3);
    EXPECT_FALSE(ok.error);

    auto err = decode_ok(R"({"id":null,"error":{"code":"x","message":"m","hint":"h"}})");
    ASSERT_TRUE(err.error);
    EXPECT_EQ(err.error->code, "x");
    EXPECT_EQ(err.error->message, "m");
    EXPECT_EQ(err.error->hint, "h");

    auto no_params = decode_ok(R"({"id":1,"method":"ping"})");
    EXPECT_TRUE(no_params.params.is_object());
}

TEST(RpcCodec, RejectsMalformedMessagesPrecisely) {
    EXPECT_EQ(decode_bad("not json").code, code::parse_error);
    EXPECT_EQ(decode_bad("").code, code::parse_error);
    EXPECT_EQ(decode_bad(R"({"id":1,"method":"x")").code, code::parse_error);
    EXPECT_EQ(decode_bad("[1,2]").message, "a message must be a JSON object, got array");
    EXPECT_EQ(decode_bad(R"({"id":-1,"method":"x"})").message,
              "\"id\" must be a non-negative integer");
    EXPECT_EQ(decode_bad(R"({"id":"a","method":"x"})").code, code::invalid_request);
    EXPECT_EQ(decode_bad(R"({"id":1.5,"method":"x"})").code, code::invalid_request);
    EXPECT_EQ(decode_bad(R"({"id":1,"method":""})").message,
              "\"method\" must be a non-empty string");
    EXPECT_EQ(decode_bad(R"({"id":1,"method":"x","params":3})").message,
              "\"params\" must be an object or an array");
    EXPECT_EQ(decode_bad(R"({"id":1,"method":"x","result":1})").code, code::invalid_request);
    EXPECT_EQ(decode_bad(R"({"id":1})").message,
              "a message needs \"method\", \"result\" or \"error\"");
    EXPECT_EQ(decode_bad(R"({"result":1})").message, "a result needs an \"id\"");
    EXPECT_EQ(decode_bad(R"({"id":1,"result":1,"error":{"code":"x"}})").code,
              code::invalid_request);
    EXPECT_EQ(decode_bad(R"({"id":1,"error":"oops"})").code, code::invalid_request);
    // The id is reported when readable, so the error reply can carry it.
    std::optional<std::uint64_t> id;
    decode_bad(R"({"id":42,"method":7})", &id);
    EXPECT_EQ(id, 42u);
    // Deep nesting is refused before parsing.
    std::string deep = R"({"id":1,"method":"x","params":)" + std::string(100000, '[') +
                       std::string(100000, ']') + "}";
    EXPECT_NE(decode_bad(deep).message.find("nests deeper than 64"), std::string::npos);
    // Brackets inside strings do not count.
    decode_ok(R"({"id":1,"method":"x","params":{"s":")" + std::string(200, '[') + R"("}})");
}

TEST(RpcCodec, EncodersRoundTrip) {
    auto req = encode_request(3, "logs", {{"lines", 10}});
    ASSERT_EQ(req.back(), '\n');
    auto m = decode_ok(std::string_view(req).substr(0, req.size() - 1));
    EXPECT_EQ(m.method, "logs");
    EXPECT_EQ(m.params["lines"], 10);

    auto e = encode_error(std::nullopt, {"c", "line1\nline2", "h"});
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1);  // newlines in strings are escaped
    auto em = decode_ok(std::string_view(e).substr(0, e.size() - 1));
    EXPECT_EQ(em.error->message, "line1\nline2");
    EXPECT_FALSE(em.id);

    // Invalid UTF-8 never throws.
    auto bad = encode_result(1, std::string("\xff\xfe", 2));
    EXPECT_FALSE(bad.empty());
    auto n = encode_notification("progress", {{"step", "pull"}});
    EXPECT_EQ(decode_ok(std::string_view(n).substr(0, n.size() - 1)).kind,
              Message::Kind::notification);
}

TEST(RpcCodec, LineDecoder) {
    LineDecoder d(16);
    std::string line;
    d.feed("ab");
    EXPECT_EQ(d.next(line), LineDecoder::Status::need_more);
    d.feed("c\r\nde");
    ASSERT_EQ(d.next(line), LineDecoder::Status::line);
    EXPECT_EQ(line, "abc");
    EXPECT_EQ(d.next(line), LineDecoder::Status::need_more);
    d.feed("\n\n");
    ASSERT_EQ(d.next(line), LineDecoder::Status::line);
    EXPECT_EQ(line, "de");
    ASSERT_EQ(d.next(line), LineDecoder::Status::line);
    EXPECT_EQ(line, "");
    d.feed(std::string(16, 'x') + "\n");  // exactly the limit
    ASSERT_EQ(d.next(line), LineDecoder::Status::line);
    EXPECT_EQ(line.size(), 16u);
    d.feed(std::string(17, 'y') + "\n");
    EXPECT_EQ(d.next(line), LineDecoder::Status::too_long);
    EXPECT_EQ(d.next(line), LineDecoder::Status::too_long);  // sticky

    LineDecoder e(16);
    e.feed(std::string(40, 'z'));  // no newline yet, already too long
    EXPECT_EQ(e.next(line), LineDecoder::Status::too_long);
}

// ---------------------------------------------------------------- server + client

namespace {

struct ServerThread {
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{
        io.get_executor()};
    Server server{io, "rpc-test"};
    std::thread thread;

    ServerThread() {
        server.register_method("echo", [](const json& params, Call&) { return params; });
        server.register_method("fail", [](const json&, Call&) -> json {
            throw Error("disk is full", "/var/lib/cordon/data.img", "free some space");
        });
        server.register_method("coded", [](const json&, Call&) -> json {
            throw CallError("busy", "another update runs", "coded", "wait for it");
        });
        server.register_method(
            "boom", [](const json&, Call&) -> json { throw std::runtime_error("unexpected"); });
        server.register_async_method("progress", [this](std::shared_ptr<Call> call) {
            for (int i = 1; i <= 3; ++i) call->notify("progress", {{"step", i}});
            auto t = std::make_shared<boost::asio::steady_timer>(io, 20ms);
            t->async_wait([call, t](error_code) { call->reply({{"done", true}}); });
        });
        server.register_async_method("drop", [](std::shared_ptr<Call>) {});
        server.register_async_method("slow", [this](std::shared_ptr<Call> call) {
            auto t = std::make_shared<boost::asio::steady_timer>(io, 500ms);
            t->async_wait([call, t](error_code) { call->reply("late"); });
        });
    }
    void run() {
        thread = std::thread([this] { io.run(); });
    }
    ~ServerThread() {
        work.reset();
        io.stop();
        if (thread.joinable())
            thread.join();
    }
    // A connected client over a socketpair.
    BlockingClient client() {
        auto [a, b] = channel::test::socket_pair();
        boost::asio::local::stream_protocol::socket s(io, boost::asio::local::stream_protocol(),
                                                      a.release());
        boost::asio::post(io, [this, s = std::move(s)]() mutable { server.serve(std::move(s)); });
        return BlockingClient(std::move(b), "test server");
    }
};

}  // namespace

TEST(RpcServer, RoundTripAndErrors) {
    ServerThread st;
    st.run();
    auto c = st.client();
    EXPECT_EQ(c.call("echo", {{"x", 1}}), json({{"x", 1}}));
    EXPECT_EQ(c.call("echo", json::array({1, 2})), json::array({1, 2}));

    try {
        c.call("nosuch");
        FAIL() << "expected a CallError";
    } catch (const CallError& e) {
        EXPECT_EQ(e.code(), code::unknown_method);
        EXPECT_EQ(e.failure(), "unknown method 'nosuch'");
        EXPECT_EQ(e.subject(), "nosuch");
        EXPECT_NE(e.hint().find("echo"), std::string::npos) << e.hint();
    }
    try {
        c.call("fail");
        FAIL();
    } catch (const CallError& e) {
        EXPECT_EQ(e.code(), code::failed);
        EXPECT_EQ(e.failure(), "disk is full (/var/lib/cordon/data.img)");
        EXPECT_EQ(e.hint(), "free some space");
    }
    try {
        c.call("coded");
        FAIL();
    } catch (const CallError& e) {
        EXPECT_EQ(e.code(), "busy");
        EXPECT_EQ(e.hint(), "wait for it");
    }
    try {
        c.call("boom");
        FAIL();
    } catch (const CallError& e) {
        EXPECT_EQ(e.code(), code::internal);
        EXPECT_NE(e.failure().find("unexpected"), std::string::npos);
    }
    try {
        c.call("drop");
        FAIL();
    } catch (const CallError& e) {
        EXPECT_EQ(e.code(), code::internal);
        EXPECT_NE(e.failure().find("ended without an answer"), std::string::npos);
    }
    // The connection still works after all those errors.
    EXPECT_EQ(c.call("echo", {{"still", "ok"}})["still"], "ok");
}

TEST(RpcServer, NotificationsArriveBeforeTheReply) {
    ServerThread st;
    st.run();
    auto c = st.client();
    std::vector<int> steps;
    auto result = c.call("progress", json::object(), 5s, [&](const std::string& m, const json& p) {
        EXPECT_EQ(m, "progress");
        steps.push_back(p["step"].get<int>());
    });
    EXPECT_EQ(result["done"], true);
    EXPECT_EQ(steps, (std::vector<int>{1, 2, 3}));
}

TEST(RpcServer, TimeoutThenLateReplyIsSkipped) {
    ServerThread st;
    st.run();
    auto c = st.client();
    try {
        c.call("slow", json::object(), 100ms);
        FAIL();
    } catch (const CallError&) {
        FAIL() << "a timeout is not a remote error";
    } catch (const Error& e) {
        EXPECT_EQ(e.failure(), "no reply to 'slow' within 100 ms");
        EXPECT_FALSE(e.hint().empty());
    }
    // The late reply to the first call must not be taken for the next one.
    std::this_thread::sleep_for(600ms);
    EXPECT_EQ(c.call("echo", {{"n", 2}})["n"], 2);
}

TEST(RpcServer, MalformedLineGetsErrorAndServingContinues) {
    ServerThread st;
    st.run();
    auto c = st.client();
    const std::string junk = "this is not json\n{\"id\":5,\"method\":17}\n";
    ASSERT_EQ(::write(c.fd(), junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
    // Read the two error replies by hand.
    std::string got;
    char buf[4096];
    while (std::count(got.begin(), got.end(), '\n') < 2) {
        ssize_t n = ::read(c.fd(), buf, sizeof buf);
        ASSERT_GT(n, 0);
        got.append(buf, static_cast<std::size_t>(n));
    }
    auto l1 = json::parse(got.substr(0, got.find('\n')));
    EXPECT_TRUE(l1["id"].is_null());
    EXPECT_EQ(l1["error"]["code"], "parse_error");
    auto l2 = json::parse(got.substr(got.find('\n') + 1, got.rfind('\n') - got.find('\n') - 1));
    EXPECT_EQ(l2["id"], 5);
    EXPECT_EQ(l2["error"]["code"], "invalid_request");
    EXPECT_EQ(c.call("echo", {{"ok", 1}})["ok"], 1);
}

TEST(RpcServer, OversizeLineClosesTheConnection) {
    ServerThread st;
    st.run();
    auto c = st.client();
    const std::string big(kMaxLine + 100, 'a');  // no newline
    std::thread writer([&] {
        std::size_t off = 0;
        while (off < big.size()) {
            ssize_t n = ::send(c.fd(), big.data() + off, big.size() - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += static_cast<std::size_t>(n);
        }
    });
    std::string got;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(c.fd(), buf, sizeof buf);
        if (n <= 0)
            break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    writer.join();
    ASSERT_NE(got.find('\n'), std::string::npos) << got;
    auto reply = json::parse(got.substr(0, got.find('\n')));
    EXPECT_EQ(reply["error"]["code"], "line_too_long");
    EXPECT_NE(reply["error"]["message"].get<std::string>().find("1048576"), std::string::npos);
}

TEST(RpcClient, ConnectErrorsHaveHints) {
    try {
        BlockingClient::connect("/nonexistent/cordon/control.sock");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(e.failure().find("No such file"), std::string::npos) << e.what();
        EXPECT_EQ(e.subject(), "/nonexistent/cordon/control.sock");
        EXPECT_NE(e.hint().find("vmctl start"), std::string::npos);
    }
    EXPECT_THROW(BlockingClient::connect(std::string(200, 'x')), Error);
}

TEST(RpcClient, ConnectsByPath) {
    ServerThread st;
    char dir_tmpl[] = "/tmp/cordon-rpc-XXXXXX";
    ASSERT_TRUE(::mkdtemp(dir_tmpl));
    const std::string path = std::string(dir_tmpl) + "/control.sock";
    boost::asio::local::stream_protocol::acceptor acc(
        st.io, boost::asio::local::stream_protocol::endpoint(path));
    std::function<void()> accept_one = [&] {
        acc.async_accept([&](error_code ec, boost::asio::local::stream_protocol::socket s) {
            if (ec)
                return;
            st.server.serve(std::move(s));
            accept_one();
        });
    };
    accept_one();
    st.run();
    for (int i = 0; i < 3; ++i) {
        auto c = BlockingClient::connect(path);
        EXPECT_EQ(c.call("echo", {{"via", i}})["via"], i);
    }
    st.work.reset();
    st.io.stop();
    st.thread.join();  // the acceptor dies on this thread, not under the io thread
    ::unlink(path.c_str());
    ::rmdir(dir_tmpl);
}

TEST(RpcClient, PeerClosingBeforeTheReplyIsAClearError) {
    auto [a, b] = channel::test::socket_pair();
    BlockingClient c(std::move(b), "guest agent");
    std::thread peer([fd = a.get()] {
        char buf[256];
        (void)::read(fd, buf, sizeof buf);  // take the request, answer nothing
        ::shutdown(fd, SHUT_RDWR);
    });
    try {
        c.call("info");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.failure(), "the connection closed before the reply to 'info'");
        EXPECT_EQ(e.subject(), "guest agent");
    }
    peer.join();
    EXPECT_THROW(c.call("info"), Error);  // closed for good
}

// ---------------------------------------------------------------- over a channel stream

TEST(RpcServer, ServesAChannelStream) {
    using namespace cordon::channel;
    using namespace cordon::channel::test;
    boost::asio::io_context io;
    auto [a, b] = socket_pair();
    auto host = Session::create(io, std::move(a), host_options());
    auto guest = Session::create(io, std::move(b), guest_options());
    Server server(io, "rpc-test");
    server.register_method("info", [](const json&, Call& call) {
        call.notify("progress", {{"phase", "collecting"}});
        return json{{"agent", "guest"}, {"peer", call.peer()}};
    });
    guest->set_stream_handler([&](std::shared_ptr<Stream> s, const std::string& svc) {
        if (svc == "rpc")
            server.serve(s);
        else
            s->reset("unknown service");
    });
    int ready = 0;
    host->start([&](error_code ec, const PeerInfo&) { ready += !ec; });
    guest->start([&](error_code ec, const PeerInfo&) { ready += !ec; });
    ASSERT_TRUE(run_until(io, [&] { return ready == 2; }));
    std::shared_ptr<Stream> s;
    host->open("rpc", [&](error_code ec, std::shared_ptr<Stream> st) {
        ASSERT_FALSE(ec);
        s = st;
    });
    ASSERT_TRUE(run_until(io, [&] { return s != nullptr; }));
    EXPECT_EQ(server.connections(), 1u);
    const std::string req =
        encode_request(1, "info", json::object()) + encode_request(2, "nope", json::object());
    bool written = false;
    s->async_write(boost::asio::buffer(req), [&](error_code, std::size_t) {
        written = true;
        s->shutdown_send();
    });
    std::string got;
    bool eof = false;
    std::array<char, 4096> buf;
    std::function<void()> rd = [&] {
        s->async_read_some(boost::asio::buffer(buf), [&](error_code ec, std::size_t n) {
            if (ec) {
                eof = ec == boost::asio::error::eof;
                return;
            }
            got.append(buf.data(), n);
            rd();
        });
    };
    rd();
    ASSERT_TRUE(run_until(io, [&] { return written && eof; }));
    // notification, result, error, then eof (the server half-closed after our eof)
    std::vector<json> lines;
    std::size_t pos = 0;
    while (pos < got.size()) {
        auto nl = got.find('\n', pos);
        lines.push_back(json::parse(got.substr(pos, nl - pos)));
        pos = nl + 1;
    }
    ASSERT_EQ(lines.size(), 3u) << got;
    EXPECT_EQ(lines[0]["method"], "progress");
    EXPECT_EQ(lines[1]["id"], 1);
    EXPECT_EQ(lines[1]["result"]["agent"], "guest");
    EXPECT_EQ(lines[1]["result"]["peer"], "stream 1 (rpc)");
    EXPECT_EQ(lines[2]["id"], 2);
    EXPECT_EQ(lines[2]["error"]["code"], "unknown_method");
    host->close("done");
    guest->close("done");
    run_for(io, 20ms);
}
