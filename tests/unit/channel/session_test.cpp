// Two real Sessions over a socketpair (or one Session against a hand-driven raw peer).
// clang-format off
#include "test_util.hpp"  // first: it silences a GCC false positive inside Asio
// clang-format on

#include <boost/asio/post.hpp>
#include <map>

#include "cordon/error.hpp"

using namespace cordon;
using namespace cordon::channel;
using namespace cordon::channel::test;
using boost::system::error_code;
using namespace std::chrono_literals;

namespace {

struct Pair {
    boost::asio::io_context io;
    std::shared_ptr<Session> host, guest;
    bool host_ready = false, guest_ready = false;
    error_code host_ec, guest_ec;
    PeerInfo host_peer, guest_peer;
    int host_dup = -1;  // a dup of the host's fd, to kill the connection abruptly

    explicit Pair(SessionOptions ho = host_options(), SessionOptions go = guest_options(),
                  bool start = true) {
        auto [a, b] = socket_pair();
        host_dup = ::dup(a.get());
        host = Session::create(io, std::move(a), ho);
        guest = Session::create(io, std::move(b), go);
        if (start)
            this->start();
    }
    ~Pair() {
        if (host_dup >= 0)
            ::close(host_dup);
        host->close("test over");
        guest->close("test over");
        run_for(io, 20ms);
    }
    void start() {
        host->start([this](error_code ec, const PeerInfo& p) {
            host_ready = true;
            host_ec = ec;
            host_peer = p;
        });
        guest->start([this](error_code ec, const PeerInfo& p) {
            guest_ready = true;
            guest_ec = ec;
            guest_peer = p;
        });
    }
    bool wait_ready() {
        return run_until(io, [&] { return host_ready && guest_ready; });
    }

    std::shared_ptr<Stream> open(std::shared_ptr<Session> from, const std::string& service,
                                 error_code* out_ec = nullptr) {
        bool done = false;
        std::shared_ptr<Stream> s;
        error_code ec;
        from->open(service, [&](error_code e, std::shared_ptr<Stream> st) {
            done = true;
            ec = e;
            s = st;
        });
        EXPECT_TRUE(run_until(io, [&] { return done; }));
        if (out_ec)
            *out_ec = ec;
        return ec ? (out_ec ? s : nullptr) : s;
    }
};

// Reads until eof/error, collecting bytes.
struct Collector : std::enable_shared_from_this<Collector> {
    std::shared_ptr<Stream> s;
    std::string data;
    error_code ec;
    bool done = false;
    std::array<char, 8192> buf{};
    void start() {
        s->async_read_some(boost::asio::buffer(buf),
                           [self = shared_from_this()](error_code e, std::size_t n) {
                               if (e) {
                                   self->ec = e;
                                   self->done = true;
                                   return;
                               }
                               self->data.append(self->buf.data(), n);
                               self->start();
                           });
    }
};

void write_all(boost::asio::io_context& io, const std::shared_ptr<Stream>& s,
               const std::string& text, error_code* out = nullptr) {
    bool done = false;
    error_code ec;
    s->async_write(boost::asio::buffer(text), [&](error_code e, std::size_t) {
        done = true;
        ec = e;
    });
    EXPECT_TRUE(run_until(io, [&] { return done; }));
    if (out)
        *out = ec;
    else
        EXPECT_FALSE(ec) << ec.message();
}

// An echo service: reads and writes back, half-closes after the peer does.
void echo(std::shared_ptr<Stream> s) {
    auto buf = std::make_shared<std::array<char, 65536>>();
    s->async_read_some(boost::asio::buffer(*buf), [s, buf](error_code ec, std::size_t n) {
        if (ec == boost::asio::error::eof) {
            s->shutdown_send();
            return;
        }
        if (ec)
            return;
        s->async_write(boost::asio::buffer(buf->data(), n), [s, buf](error_code wec, std::size_t) {
            if (!wec)
                echo(s);
        });
    });
}

}  // namespace

TEST(ChannelSession, HandshakeExchangesPeerInfo) {
    Pair p;
    ASSERT_TRUE(p.wait_ready());
    EXPECT_FALSE(p.host_ec) << p.host_ec.message();
    EXPECT_FALSE(p.guest_ec);
    EXPECT_EQ(p.host_peer.version, 1);
    EXPECT_EQ(p.host_peer.agent_version, "cordon-guest-agent test");
    EXPECT_EQ(p.guest_peer.agent_version, "cordon-hostagent test");
    EXPECT_EQ(p.host_peer.initial_window, 256u * 1024);
    EXPECT_TRUE(p.host->established());
    EXPECT_TRUE(p.guest->established());
}

TEST(ChannelSession, NegotiatesHighestCommonVersion) {
    auto ho = host_options();
    ho.min_version = 1;
    ho.max_version = 3;
    auto go = guest_options();
    go.min_version = 2;
    go.max_version = 5;
    Pair p(ho, go);
    ASSERT_TRUE(p.wait_ready());
    EXPECT_FALSE(p.host_ec);
    EXPECT_EQ(p.host_peer.version, 3);
    EXPECT_EQ(p.guest_peer.version, 3);
}

TEST(ChannelSession, VersionMismatchGivesClearErrorOnBothEnds) {
    auto ho = host_options();
    auto go = guest_options();
    go.min_version = go.max_version = 2;
    Pair p(ho, go);
    std::string close_reason;
    p.host->set_close_handler([&](error_code, const std::string& r) { close_reason = r; });
    ASSERT_TRUE(p.wait_ready());
    EXPECT_EQ(p.host_ec, errc::version_mismatch);
    EXPECT_EQ(p.guest_ec, errc::version_mismatch);
    EXPECT_EQ(p.host->failure_reason(),
              "guest agent (cordon-guest-agent test) speaks protocol 2, this host speaks 1: "
              "update Cordon on this host to a release that speaks protocol 2");
    EXPECT_EQ(p.guest->failure_reason(),
              "host (cordon-hostagent test) speaks protocol 1, this guest agent speaks 2: "
              "update Cordon on the host (it is older than this VM image)");
    ASSERT_TRUE(run_until(p.io, [&] { return !close_reason.empty(); }));
    EXPECT_EQ(close_reason, p.host->failure_reason());
    EXPECT_TRUE(p.host->closed());
    EXPECT_FALSE(p.guest->closed());  // the guest waits for a matching host
}

TEST(ChannelSession, OlderGuestIsToldToUpdateTheImage) {
    auto ho = host_options();
    ho.min_version = ho.max_version = 3;
    Pair p(ho, guest_options());
    ASSERT_TRUE(p.wait_ready());
    EXPECT_EQ(p.host_ec, errc::version_mismatch);
    EXPECT_NE(p.host->failure_reason().find("speaks protocol 1, this host speaks 3: rebuild or "
                                            "update the VM image"),
              std::string::npos)
        << p.host->failure_reason();
}

TEST(ChannelSession, CreateRejectsBadTransportsAndOptions) {
    boost::asio::io_context io;
    EXPECT_THROW(Session::create(io, UniqueFd(), host_options()), Error);
    char path[] = "/tmp/cordon-channel-file-XXXXXX";
    UniqueFd file(::mkstemp(path));
    ::unlink(path);
    try {
        Session::create(io, std::move(file), host_options());
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(e.hint().find("virtio-serial"), std::string::npos);
    }
    auto o = host_options();
    o.max_frame_payload = 10;
    EXPECT_THROW(Session::create(io, socket_pair().first, o), Error);
    o = host_options();
    o.initial_window = 1024;  // below the frame size
    EXPECT_THROW(Session::create(io, socket_pair().first, o), Error);
    o = host_options();
    o.min_version = 2;
    o.max_version = 1;
    EXPECT_THROW(Session::create(io, socket_pair().first, o), Error);
}

TEST(ChannelSession, HandshakeTimeoutWithoutGuest) {
    boost::asio::io_context io;
    auto [a, b] = socket_pair();  // nobody answers on b
    auto ho = host_options();
    ho.handshake_timeout = 200ms;
    auto host = Session::create(io, std::move(a), ho);
    error_code ec;
    bool ready = false;
    host->start([&](error_code e, const PeerInfo&) {
        ready = true;
        ec = e;
    });
    ASSERT_TRUE(run_until(
        io, [&] { return ready; }, 3s));
    EXPECT_EQ(ec, errc::handshake_timeout);
    EXPECT_NE(host->failure_reason().find("no answer from the guest agent"), std::string::npos);
}

TEST(ChannelSession, OpenEchoAndHalfCloseHostToGuest) {
    Pair p;
    p.guest->set_stream_handler([](std::shared_ptr<Stream> s, const std::string& svc) {
        EXPECT_EQ(svc, "echo");
        echo(s);
    });
    ASSERT_TRUE(p.wait_ready());
    auto s = p.open(p.host, "echo");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->id() % 2, 1u);  // host ids are odd
    auto c = std::make_shared<Collector>();
    c->s = s;
    c->start();
    write_all(p.io, s, "hello ");
    write_all(p.io, s, "world");
    s->shutdown_send();
    ASSERT_TRUE(run_until(p.io, [&] { return c->done; }));
    EXPECT_EQ(c->ec, boost::asio::error::eof);
    EXPECT_EQ(c->data, "hello world");
    EXPECT_TRUE(s->finished());
    // Both sides forgot the stream.
    ASSERT_TRUE(run_until(p.io, [&] { return p.guest->stats().open_streams == 0; }));
    EXPECT_EQ(p.host->stats().open_streams, 0u);
    // Writing after shutdown_send fails clearly.
    error_code wec;
    write_all(p.io, s, "late", &wec);
    EXPECT_EQ(wec, errc::stream_closed);
}

TEST(ChannelSession, HalfCloseGuestToHostKeepsOtherDirection) {
    Pair p;
    std::shared_ptr<Stream> host_side;
    p.host->set_stream_handler([&](std::shared_ptr<Stream> s, const std::string&) {
        host_side = s;
        s->accept();
    });
    ASSERT_TRUE(p.wait_ready());
    auto g = p.open(p.guest, "from-guest");
    ASSERT_TRUE(g);
    EXPECT_EQ(g->id() % 2, 0u);  // guest ids are even
    ASSERT_TRUE(run_until(p.io, [&] { return host_side != nullptr; }));
    // Guest sends and half-closes; host reads eof but can still answer.
    auto hc = std::make_shared<Collector>();
    hc->s = host_side;
    hc->start();
    write_all(p.io, g, "request");
    g->shutdown_send();
    ASSERT_TRUE(run_until(p.io, [&] { return hc->done; }));
    EXPECT_EQ(hc->data, "request");
    EXPECT_EQ(hc->ec, boost::asio::error::eof);
    auto gc = std::make_shared<Collector>();
    gc->s = g;
    gc->start();
    write_all(p.io, host_side, "response");
    host_side->shutdown_send();
    ASSERT_TRUE(run_until(p.io, [&] { return gc->done; }));
    EXPECT_EQ(gc->data, "response");
    EXPECT_EQ(gc->ec, boost::asio::error::eof);
}

TEST(ChannelSession, RefusedOpensCarryTheReason) {
    Pair p;
    p.guest->set_stream_handler([](std::shared_ptr<Stream> s, const std::string& svc) {
        if (svc != "docker")
            s->reset("no service '" + svc + "' in this guest");
    });
    ASSERT_TRUE(p.wait_ready());
    error_code ec;
    auto s = p.open(p.host, "nosuch", &ec);
    EXPECT_EQ(ec, errc::stream_refused);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->reset_reason(), "refused: no service 'nosuch' in this guest");
    // Invalid names never leave this side.
    p.open(p.host, "bad name", &ec);
    EXPECT_EQ(ec, errc::invalid_service_name);
    // A handler that ignores the stream: refused instead of pending forever.
    p.guest->set_stream_handler([](std::shared_ptr<Stream>, const std::string&) {});
    s = p.open(p.host, "ignored", &ec);
    EXPECT_EQ(ec, errc::stream_refused);
    EXPECT_EQ(s->reset_reason(), "refused: the 'ignored' service did not take the stream");
    EXPECT_EQ(p.guest->stats().open_streams, 0u);
    // The host has no handler: everything the guest opens is refused.
    s = p.open(p.guest, "anything", &ec);
    EXPECT_EQ(ec, errc::stream_refused);
    EXPECT_NE(s->reset_reason().find("no service 'anything'"), std::string::npos);
}

TEST(ChannelSession, ResetAbortsOneStreamOnly) {
    Pair p;
    std::vector<std::shared_ptr<Stream>> in;
    p.guest->set_stream_handler([&](std::shared_ptr<Stream> s, const std::string&) {
        in.push_back(s);
        s->accept();
    });
    ASSERT_TRUE(p.wait_ready());
    auto a = p.open(p.host, "a");
    auto b = p.open(p.host, "b");
    ASSERT_TRUE(a && b);
    ASSERT_EQ(in.size(), 2u);
    auto ca = std::make_shared<Collector>();
    ca->s = in[0];
    ca->start();
    auto cb = std::make_shared<Collector>();
    cb->s = in[1];
    cb->start();
    write_all(p.io, a, "partial");
    a->reset("client went away");
    ASSERT_TRUE(run_until(p.io, [&] { return ca->done; }));
    EXPECT_EQ(ca->ec, errc::stream_reset);
    EXPECT_EQ(in[0]->reset_reason(), "cancelled: client went away");
    // b is unaffected.
    write_all(p.io, b, "still fine");
    b->shutdown_send();
    ASSERT_TRUE(run_until(p.io, [&] { return cb->done; }));
    EXPECT_EQ(cb->data, "still fine");
    EXPECT_EQ(cb->ec, boost::asio::error::eof);
    // Operations on the reset stream fail at once.
    error_code wec;
    write_all(p.io, a, "x", &wec);
    EXPECT_EQ(wec, boost::asio::error::operation_aborted);
}

TEST(ChannelSession, ManyStreamsBulkByteExact) {
    // 64 streams x 16 MiB host->guest at once, verified byte by byte and by checksum.
    // CORDON_CHANNEL_BULK_MIB shrinks the per-stream size for slow (sanitizer) builds.
    constexpr int kStreams = 64;
    static const std::size_t kBytes = [] {
        const char* env = std::getenv("CORDON_CHANNEL_BULK_MIB");
        return (env ? std::max<std::size_t>(1, std::strtoull(env, nullptr, 10)) : 16) << 20;
    }();
    constexpr std::size_t kChunk = 256 * 1024;
    Pair p;
    struct Sink : std::enable_shared_from_this<Sink> {
        std::shared_ptr<Stream> s;
        std::unique_ptr<ByteGen> gen;
        std::vector<std::uint8_t> expected = std::vector<std::uint8_t>(kChunk);
        std::size_t exp_pos = kChunk;
        std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(96 * 1024);
        std::size_t received = 0;
        std::uint64_t fnv = 1469598103934665603ULL;
        bool mismatch = false, eof = false;
        error_code ec;
        void read() {
            s->async_read_some(
                boost::asio::buffer(buf), [self = shared_from_this()](error_code e, std::size_t n) {
                    if (e) {
                        self->eof = e == boost::asio::error::eof;
                        self->ec = e;
                        // Reply with the checksum, then close.
                        auto sum = std::make_shared<std::string>(std::to_string(self->fnv));
                        self->s->async_write(
                            boost::asio::buffer(*sum),
                            [self, sum](error_code, std::size_t) { self->s->shutdown_send(); });
                        return;
                    }
                    for (std::size_t i = 0; i < n; ++i) {
                        if (self->exp_pos == kChunk) {
                            self->gen->fill(self->expected.data(), kChunk);
                            self->exp_pos = 0;
                        }
                        const std::uint8_t b = self->buf[i];
                        if (b != self->expected[self->exp_pos++])
                            self->mismatch = true;
                        self->fnv = (self->fnv ^ b) * 1099511628211ULL;
                    }
                    self->received += n;
                    self->read();
                });
        }
    };
    std::map<std::string, std::shared_ptr<Sink>> sinks;
    p.guest->set_stream_handler([&](std::shared_ptr<Stream> s, const std::string& svc) {
        auto k = std::make_shared<Sink>();
        k->s = s;
        k->gen = std::make_unique<ByteGen>(std::stoull(svc.substr(5)));
        sinks[svc] = k;
        k->read();
    });
    ASSERT_TRUE(p.wait_ready());

    struct Source : std::enable_shared_from_this<Source> {
        std::shared_ptr<Stream> s;
        std::unique_ptr<ByteGen> gen;
        std::vector<std::uint8_t> chunk = std::vector<std::uint8_t>(kChunk);
        std::size_t sent = 0;
        std::uint64_t fnv = 1469598103934665603ULL;
        std::shared_ptr<Collector> reply;
        bool write_failed = false;
        void write() {
            if (sent == kBytes) {
                s->shutdown_send();
                return;
            }
            gen->fill(chunk.data(), kChunk);
            for (auto b : chunk) fnv = (fnv ^ b) * 1099511628211ULL;
            s->async_write(boost::asio::buffer(chunk),
                           [self = shared_from_this()](error_code e, std::size_t n) {
                               if (e || n != kChunk) {
                                   self->write_failed = true;
                                   return;
                               }
                               self->sent += n;
                               self->write();
                           });
        }
    };
    std::vector<std::shared_ptr<Source>> sources;
    int opened = 0;
    for (int i = 0; i < kStreams; ++i) {
        p.host->open("bulk/" + std::to_string(i), [&, i](error_code ec, std::shared_ptr<Stream> s) {
            ASSERT_FALSE(ec) << ec.message();
            auto src = std::make_shared<Source>();
            src->s = s;
            src->gen = std::make_unique<ByteGen>(i);
            src->reply = std::make_shared<Collector>();
            src->reply->s = s;
            src->reply->start();
            sources.push_back(src);
            ++opened;
            src->write();
        });
    }
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(run_until(
        p.io,
        [&] {
            if (sources.size() != kStreams)
                return false;
            for (auto& s : sources)
                if (!s->reply->done)
                    return false;
            return true;
        },
        60s));
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("64 x %zu MiB in %.2f s (%.0f MiB/s), max transport queue %zu bytes\n",
                kBytes >> 20, secs, kStreams * static_cast<double>(kBytes >> 20) / secs,
                p.host->stats().max_transport_queued_bytes);
    ASSERT_EQ(sinks.size(), static_cast<std::size_t>(kStreams));
    for (int i = 0; i < kStreams; ++i) {
        auto& src = sources[static_cast<std::size_t>(i)];
        auto& sink = sinks["bulk/" + std::to_string(src->s->id() / 2)];  // ids 1,3,5.. -> 0,1,2..
        EXPECT_FALSE(src->write_failed);
        EXPECT_TRUE(sink->eof) << sink->ec.message();
        EXPECT_EQ(sink->received, kBytes);
        EXPECT_FALSE(sink->mismatch) << "stream " << i;
        EXPECT_EQ(src->reply->data, std::to_string(sink->fnv));
    }
    for (auto& [name, sink] : sinks) {
        const int idx = std::stoi(name.substr(5));
        std::uint64_t fnv = 0;
        for (auto& src : sources)
            if (static_cast<int>(src->s->id() / 2) == idx)
                fnv = src->fnv;
        EXPECT_EQ(sink->fnv, fnv) << name;
    }
    // Queued bytes stay bounded whatever the writers do.
    EXPECT_LT(p.host->stats().max_transport_queued_bytes, 1u << 20);
}

TEST(ChannelSession, SlowReaderDoesNotStallOtherStreams) {
    Pair p;
    std::map<std::string, std::shared_ptr<Stream>> in;
    p.guest->set_stream_handler([&](std::shared_ptr<Stream> s, const std::string& svc) {
        in[svc] = s;
        s->accept();  // accepted, but "slow" is never read (until later)
    });
    ASSERT_TRUE(p.wait_ready());
    auto slow = p.open(p.host, "slow");
    auto fast = p.open(p.host, "fast");
    ASSERT_TRUE(slow && fast);

    std::vector<std::uint8_t> big(8u << 20, 0x5a);
    bool slow_done = false;
    std::size_t slow_written = 0;
    slow->async_write(boost::asio::buffer(big), [&](error_code ec, std::size_t n) {
        EXPECT_FALSE(ec);
        slow_done = true;
        slow_written = n;
    });
    // 16 MiB through the fast stream while the slow one is stuck.
    auto fc = std::make_shared<Collector>();
    fc->s = in["fast"];
    fc->start();
    std::string payload(16u << 20, 'f');
    write_all(p.io, fast, payload);
    fast->shutdown_send();
    ASSERT_TRUE(run_until(
        p.io, [&] { return fc->done; }, 30s));
    EXPECT_EQ(fc->data.size(), payload.size());
    EXPECT_EQ(fc->ec, boost::asio::error::eof);

    // The slow writer waits: only one window is buffered at the receiver, nothing piles up.
    EXPECT_FALSE(slow_done);
    EXPECT_EQ(slow->send_window(), 0u);
    EXPECT_EQ(in["slow"]->buffered_bytes(), 256u * 1024);
    EXPECT_LT(p.host->stats().max_transport_queued_bytes, 1u << 20);
    EXPECT_LT(p.host->stats().transport_queued_bytes, 64u * 1024);

    // Once the reader starts, the write completes.
    auto sc = std::make_shared<Collector>();
    sc->s = in["slow"];
    sc->start();
    ASSERT_TRUE(run_until(
        p.io, [&] { return slow_done; }, 30s));
    EXPECT_EQ(slow_written, big.size());
    slow->shutdown_send();
    ASSERT_TRUE(run_until(p.io, [&] { return sc->done; }));
    EXPECT_EQ(sc->data.size(), big.size());
}

TEST(ChannelSession, PeerDeathFailsEveryStreamWithoutHanging) {
    Pair p;
    std::vector<std::shared_ptr<Stream>> in;
    p.guest->set_stream_handler([&](std::shared_ptr<Stream> s, const std::string&) {
        in.push_back(s);
        s->accept();
    });
    error_code host_close;
    std::string host_reason;
    p.host->set_close_handler([&](error_code ec, const std::string& r) {
        host_close = ec;
        host_reason = r;
    });
    ASSERT_TRUE(p.wait_ready());
    std::vector<std::shared_ptr<Collector>> readers;
    std::vector<std::shared_ptr<Stream>> out;
    for (int i = 0; i < 8; ++i) {
        auto s = p.open(p.host, "s");
        ASSERT_TRUE(s);
        out.push_back(s);
        auto c = std::make_shared<Collector>();
        c->s = s;
        c->start();
        readers.push_back(c);
    }
    ASSERT_TRUE(run_until(p.io, [&] { return in.size() == 8; }));
    // Stream 0 is not read on the guest side, so a big write on it blocks on the window.
    std::vector<std::shared_ptr<Collector>> guest_readers;
    for (auto& s : std::vector(in.begin() + 1, in.end())) {
        auto c = std::make_shared<Collector>();
        c->s = s;
        c->start();
        guest_readers.push_back(c);
    }
    // A writer blocked on a full window must also be released.
    std::vector<std::uint8_t> big(4u << 20);
    bool big_done = false;
    error_code big_ec;
    out[0]->async_write(boost::asio::buffer(big), [&](error_code ec, std::size_t) {
        big_done = true;
        big_ec = ec;
    });
    run_for(p.io, 50ms);
    ASSERT_FALSE(big_done);
    // The connection dies mid-stream.
    ::shutdown(p.host_dup, SHUT_RDWR);
    ASSERT_TRUE(run_until(p.io, [&] {
        for (auto& c : readers)
            if (!c->done)
                return false;
        for (auto& c : guest_readers)
            if (!c->done)
                return false;
        return big_done && host_close;
    }));
    for (auto& c : readers) EXPECT_EQ(c->ec, errc::session_closed);
    for (auto& c : guest_readers) EXPECT_EQ(c->ec, errc::session_closed);
    EXPECT_EQ(big_ec, errc::session_closed);
    EXPECT_EQ(host_close, errc::session_closed);
    EXPECT_NE(host_reason.find("transport closed"), std::string::npos) << host_reason;
    EXPECT_TRUE(p.host->closed());
    // The guest does not give up: it waits for the next host.
    EXPECT_FALSE(p.guest->closed());
    EXPECT_GE(p.guest->stats().session_resets, 1u);
    error_code ec;
    p.open(p.host, "x", &ec);
    EXPECT_EQ(ec, errc::not_established);
}

TEST(ChannelSession, CloseSendsGoAwayAndResetsStreams) {
    Pair p;
    std::shared_ptr<Stream> in;
    p.guest->set_stream_handler([&](std::shared_ptr<Stream> s, const std::string&) {
        in = s;
        s->accept();
    });
    ASSERT_TRUE(p.wait_ready());
    auto s = p.open(p.host, "x");
    ASSERT_TRUE(run_until(p.io, [&] { return in != nullptr; }));
    auto c = std::make_shared<Collector>();
    c->s = in;
    c->start();
    p.host->close("host agent shutting down");
    ASSERT_TRUE(run_until(p.io, [&] { return c->done; }));
    EXPECT_EQ(c->ec, errc::peer_went_away);
    EXPECT_EQ(in->reset_reason(), "the host closed the channel: host agent shutting down");
    EXPECT_EQ(p.guest->failure_reason(), "the host closed the channel: host agent shutting down");
}

namespace {

// Starts `host` and answers its HELLO by hand from `guest`, which then reads no more
// unless the test pumps it. Returns whether the host reported the session ready.
bool establish_with_raw_guest(boost::asio::io_context& io, Session& host, RawPeer& guest) {
    bool ready = false;
    host.start([&](error_code ec, const PeerInfo&) { ready = !ec; });
    if (!run_until(io, [&] {
            guest.pump();
            return guest.count(FrameType::hello) > 0;
        }))
        return false;
    std::string err;
    auto hello = decode_handshake(guest.find(FrameType::hello)->payload, err);
    if (!hello)
        return false;
    Handshake w = *hello;
    w.chosen_version = 1;
    guest.send(FrameType::welcome, 0, 0, encode_handshake(w));
    return run_until(io, [&] { return ready; });
}

}  // namespace

// A host session with a 50 ms keepalive interval and a 300 ms timeout, established with
// a raw guest that answers nothing unless the test makes it; `closed` is set on the end.
struct KeepaliveHost {
    boost::asio::io_context io;
    std::shared_ptr<Session> host;
    std::unique_ptr<RawPeer> guest;
    error_code closed;

    explicit KeepaliveHost(std::function<bool()> peer_paused = {}) {
        auto [a, b] = socket_pair();
        auto ho = host_options();
        ho.keepalive_interval = 50ms;
        ho.keepalive_timeout = 300ms;
        ho.peer_paused = std::move(peer_paused);
        host = Session::create(io, std::move(a), ho);
        guest = std::make_unique<RawPeer>(std::move(b));
    }
    bool establish() {
        if (!establish_with_raw_guest(io, *host, *guest))
            return false;
        host->set_close_handler([this](error_code ec, const std::string&) { closed = ec; });
        return true;
    }
    bool wait_closed(std::chrono::milliseconds within) {
        return run_until(
            io, [&] { return bool(closed); }, within);
    }
};

TEST(ChannelSession, KeepaliveDetectsAPeerThatStopsReading) {
    KeepaliveHost k;
    ASSERT_TRUE(k.establish());  // then the guest never reads again
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(k.wait_closed(5s));
    EXPECT_EQ(k.closed, errc::keepalive_timeout);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);  // timeout 300 ms (slack for loaded CI)
}

// A suspended VM (virsh suspend, the simulated host sleep) answers nothing, but it is not
// dead: while peer_paused() says so the host waits; once it is not paused, silence ends it.
TEST(ChannelSession, KeepaliveWaitsForAPausedVmAndEndsOnceItIsNotPaused) {
    bool paused = true;
    int asked = 0;
    KeepaliveHost k([&] {
        ++asked;
        return paused;
    });
    ASSERT_TRUE(k.establish());

    // Paused for 4 keepalive timeouts: still open, and the host did ask.
    EXPECT_FALSE(k.wait_closed(1200ms));
    EXPECT_GE(asked, 1);
    k.guest->pump();
    ASSERT_EQ(k.guest->count(FrameType::ping), 1u) << "one PING, outstanding through the pause";
    // Resumed: the guest answers the PING it was sent before the pause.
    const auto ping = *k.guest->find(FrameType::ping);
    k.guest->send(FrameType::ping, flag::ack, 0, ping.payload);
    paused = false;
    EXPECT_FALSE(k.wait_closed(200ms));
    // Not paused and silent again: the next unanswered PING ends the session.
    ASSERT_TRUE(k.wait_closed(5s));
    EXPECT_EQ(k.closed, errc::keepalive_timeout);
}

// This side's own stall (its event loop did not run) is not the peer's silence: a tick
// that runs far too late does not end the session; the peer is judged from then on.
TEST(ChannelSession, KeepaliveDoesNotBlameThePeerForThisSidesOwnStall) {
    KeepaliveHost k;
    ASSERT_TRUE(k.establish());
    ASSERT_TRUE(run_until(k.io, [&] {
        k.guest->pump();
        return k.guest->count(FrameType::ping) > 0;
    }));
    const auto ping = *k.guest->find(FrameType::ping);
    std::this_thread::sleep_for(700ms);  // the host's loop does not run: a stall of its own
    EXPECT_FALSE(k.wait_closed(30ms)) << "ended for a silence that was the host's own stall";
    k.guest->send(FrameType::ping, flag::ack, 0, ping.payload);  // answered after the stall
    EXPECT_FALSE(k.wait_closed(150ms));
    // A real silence still ends it.
    ASSERT_TRUE(k.wait_closed(5s));
    EXPECT_EQ(k.closed, errc::keepalive_timeout);
}

// A peer whose PONG is late but which keeps sending is alive (its answer waits behind other
// frames, or the TCG guest is starved): the host waits. Once it is silent too, it ends.
TEST(ChannelSession, KeepaliveWaitsForALatePongWhileThePeerKeepsSending) {
    KeepaliveHost k;
    ASSERT_TRUE(k.establish());
    // 1.2 s (4 timeouts) of the guest's own PINGs every 60 ms, and no PONG.
    std::uint64_t seq = 1000;
    for (int i = 0; i < 20 && !k.closed; ++i) {
        k.guest->send(FrameType::ping, 0, 0, encode_u64(++seq));
        k.wait_closed(60ms);
    }
    EXPECT_FALSE(k.closed) << "ended while the guest kept sending";
    k.guest->pump();
    EXPECT_GE(k.guest->count(FrameType::ping), 1u);
    // Silent from now on: the outstanding PING ends the session.
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(k.wait_closed(5s));
    EXPECT_EQ(k.closed, errc::keepalive_timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);  // it waited for the silence
    EXPECT_NE(k.host->failure_reason().find("nothing at all from it"), std::string::npos)
        << k.host->failure_reason();
}

// ---------------------------------------------------------------- malformed input (raw host)

namespace {

struct RawHost {
    boost::asio::io_context io;
    std::shared_ptr<Session> guest;
    std::unique_ptr<RawPeer> host;
    std::vector<std::shared_ptr<Stream>> incoming;
    bool hold_pending = false;  // the handler keeps streams pending (never accepts)
    int handshakes = 0;

    explicit RawHost(SessionOptions go = guest_options()) {
        auto [a, b] = socket_pair();
        host = std::make_unique<RawPeer>(std::move(a));
        host->io = &io;
        guest = Session::create(io, std::move(b), go);
        guest->set_stream_handler([this](std::shared_ptr<Stream> s, const std::string&) {
            incoming.push_back(s);
            if (!hold_pending)
                s->accept();
        });
        guest->start([this](error_code ec, const PeerInfo&) {
            if (!ec)
                ++handshakes;
        });
    }
    ~RawHost() {
        guest->close("test over");
        run_for(io, 10ms);
    }
    bool handshake(std::uint64_t nonce) {
        const int before = handshakes;
        host->send_hello(nonce);
        return run_until(io, [&] {
            host->pump();
            return handshakes > before;
        });
    }
    template <typename Pred>
    bool wait(Pred pred, std::chrono::milliseconds t = 5s) {
        return run_until(
            io,
            [&] {
                host->pump();
                return pred();
            },
            t);
    }
};

}  // namespace

TEST(ChannelMalformed, GarbageBeforeHelloIsDiscarded) {
    RawHost r;
    std::vector<std::uint8_t> junk(5000);
    for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<std::uint8_t>(i * 13 + 1);
    r.host->write_bytes(junk);
    ASSERT_TRUE(r.handshake(77));
    EXPECT_EQ(r.guest->stats().discarded_bytes, junk.size());
    const auto* w = r.host->find(FrameType::welcome);
    ASSERT_TRUE(w);
    std::string err;
    auto hs = decode_handshake(w->payload, err);
    ASSERT_TRUE(hs);
    EXPECT_EQ(hs->nonce, 77u);
    EXPECT_EQ(hs->chosen_version, 1);
}

TEST(ChannelMalformed, GarbageAfterHandshakeResetsSessionThenResyncs) {
    RawHost r;
    ASSERT_TRUE(r.handshake(1));
    r.host->send_open(1, "x");
    ASSERT_TRUE(r.wait([&] { return r.incoming.size() == 1; }));
    auto c = std::make_shared<Collector>();
    c->s = r.incoming[0];
    c->start();
    r.host->write_bytes({0x42, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xde, 0xad});
    ASSERT_TRUE(r.wait([&] { return c->done && r.host->count(FrameType::go_away) == 1; }));
    EXPECT_EQ(c->ec, errc::protocol_error);
    EXPECT_NE(r.guest->failure_reason().find("frame type 0x42 is unknown"), std::string::npos)
        << r.guest->failure_reason();
    // A new HELLO brings the session back.
    ASSERT_TRUE(r.handshake(2));
    EXPECT_EQ(r.guest->stats().handshakes, 2u);
    EXPECT_FALSE(r.guest->closed());
}

TEST(ChannelMalformed, OversizedFrameResetsSession) {
    RawHost r;
    ASSERT_TRUE(r.handshake(1));
    r.host->send_open(1, "x");
    std::vector<std::uint8_t> huge(70000, 1);
    r.host->send(FrameType::data, 0, 1, huge);
    ASSERT_TRUE(r.wait([&] { return r.host->count(FrameType::go_away) == 1; }));
    std::uint32_t code = 0;
    std::string reason, err;
    ASSERT_TRUE(decode_code_reason(r.host->find(FrameType::go_away)->payload, code, reason, err));
    EXPECT_EQ(code, static_cast<std::uint32_t>(GoAwayCode::protocol_error));
    EXPECT_NE(reason.find("70000-byte payload"), std::string::npos) << reason;
}

TEST(ChannelMalformed, UnknownStreamIdGetsResetSessionSurvives) {
    RawHost r;
    ASSERT_TRUE(r.handshake(1));
    r.host->send(FrameType::data, 0, 99, encode_u32(1));
    r.host->send(FrameType::ping, 0, 0, encode_u64(1234));
    ASSERT_TRUE(r.wait([&] { return r.host->find(FrameType::ping) != nullptr; }));
    const auto* rst = r.host->find(FrameType::reset, 99);
    ASSERT_TRUE(rst);
    EXPECT_EQ(load_u64(r.host->find(FrameType::ping)->payload.data()), 1234u);
    EXPECT_TRUE(r.guest->established());
}

TEST(ChannelMalformed, WindowOverrunResetsOnlyThatStream) {
    RawHost r;
    ASSERT_TRUE(r.handshake(1));
    r.host->send_open(1, "a");
    r.host->send_open(3, "b");
    ASSERT_TRUE(r.wait([&] { return r.host->count(FrameType::accept) == 2; }));
    // Nobody reads: 256 KiB window; send 300 KiB in 64 KiB frames on stream 1.
    std::vector<std::uint8_t> chunk(65536, 7);
    for (int i = 0; i < 5; ++i) r.host->send(FrameType::data, 0, 1, chunk);
    r.host->send(FrameType::data, 0, 3, encode_u32(5));
    ASSERT_TRUE(r.wait([&] { return r.host->find(FrameType::reset, 1) != nullptr; }));
    std::uint32_t code;
    std::string reason, err;
    ASSERT_TRUE(decode_code_reason(r.host->find(FrameType::reset, 1)->payload, code, reason, err));
    EXPECT_EQ(code, static_cast<std::uint32_t>(ResetCode::protocol_error));
    EXPECT_EQ(reason, "window overrun");
    EXPECT_TRUE(r.incoming[0]->finished());
    EXPECT_FALSE(r.incoming[1]->finished());
    EXPECT_EQ(r.incoming[1]->buffered_bytes(), 4u);
    EXPECT_TRUE(r.guest->established());
}

TEST(ChannelMalformed, OpenFloodIsRefusedNotBuffered) {
    auto go = guest_options();
    go.max_pending_opens = 8;
    go.max_streams = 32;
    RawHost r(go);
    r.hold_pending = true;
    ASSERT_TRUE(r.handshake(1));
    constexpr std::uint32_t kOpens = 5000;
    std::vector<std::uint8_t> flood;
    for (std::uint32_t i = 0; i < kOpens; ++i) {
        auto f = encode_frame(
            {FrameType::open, 0, 2 * i + 1, 0},
            std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>("docker"), 6));
        flood.insert(flood.end(), f.begin(), f.end());
    }
    r.host->write_bytes(flood);
    ASSERT_TRUE(r.wait([&] { return r.host->count(FrameType::reset) == kOpens - 8; }));
    EXPECT_EQ(r.guest->stats().open_streams, 8u);
    std::uint32_t code;
    std::string reason, err;
    ASSERT_TRUE(decode_code_reason(r.host->find(FrameType::reset)->payload, code, reason, err));
    EXPECT_EQ(code, static_cast<std::uint32_t>(ResetCode::too_many_pending_opens));
    // Accepting the pending ones frees the slots: streams are then capped by max_streams.
    for (auto& s : r.incoming) s->accept();
    r.hold_pending = false;
    ASSERT_TRUE(r.wait([&] { return r.host->count(FrameType::accept) == 8; }));
    std::size_t answered = r.host->count(FrameType::reset) + r.host->count(FrameType::accept);
    for (std::uint32_t i = kOpens; i < kOpens + 40; ++i) {
        r.host->send_open(2 * i + 1, "docker");
        ++answered;
        ASSERT_TRUE(r.wait([&] {
            return r.host->count(FrameType::reset) + r.host->count(FrameType::accept) == answered;
        }));
    }
    EXPECT_EQ(r.host->count(FrameType::reset), kOpens - 8 + 16);
    std::string last_reason;
    decode_code_reason(r.host->frames.back().payload, code, last_reason, err);
    EXPECT_EQ(code, static_cast<std::uint32_t>(ResetCode::too_many_streams));
    EXPECT_EQ(r.guest->stats().open_streams, 32u);
    EXPECT_TRUE(r.guest->established());
}

TEST(ChannelMalformed, ProtocolViolationsOnStreams) {
    RawHost r;
    ASSERT_TRUE(r.handshake(1));
    // Service name with a space: refused, session fine.
    r.host->send_open(1, "bad name");
    ASSERT_TRUE(r.wait([&] { return r.host->find(FrameType::reset, 1) != nullptr; }));
    std::uint32_t code;
    std::string reason, err;
    decode_code_reason(r.host->find(FrameType::reset, 1)->payload, code, reason, err);
    EXPECT_EQ(code, static_cast<std::uint32_t>(ResetCode::invalid_service_name));
    // Reusing an id is a session-level protocol error.
    r.host->send_open(1, "again");
    ASSERT_TRUE(r.wait([&] { return r.host->count(FrameType::go_away) == 1; }));
    decode_code_reason(r.host->find(FrameType::go_away)->payload, code, reason, err);
    EXPECT_NE(reason.find("reuses an id"), std::string::npos) << reason;
}

TEST(ChannelResync, HostReconnectsWhileGuestKeepsTheDevice) {
    // The guest's fd stays open (like /dev/virtio-ports/...). Host 1 talks, leaves a
    // truncated frame behind and goes away; host 2 connects on the same "device" and
    // must get a working session.
    boost::asio::io_context io;
    auto [dev_host_end, dev_guest_end] = socket_pair();
    auto guest = Session::create(io, std::move(dev_guest_end), guest_options());
    std::vector<std::shared_ptr<Stream>> in;
    guest->set_stream_handler([&](std::shared_ptr<Stream> s, const std::string&) {
        in.push_back(s);
        if (in.size() > 1)
            echo(s);
        else
            s->accept();
    });
    int guest_handshakes = 0;
    guest->start([&](error_code ec, const PeerInfo&) {
        if (!ec)
            ++guest_handshakes;
    });

    auto host1 = Session::create(io, UniqueFd(::dup(dev_host_end.get())), host_options());
    bool h1 = false;
    host1->start([&](error_code ec, const PeerInfo&) { h1 = !ec; });
    ASSERT_TRUE(run_until(io, [&] { return h1; }));
    std::shared_ptr<Stream> s1;
    host1->open("echo", [&](error_code, std::shared_ptr<Stream> s) { s1 = s; });
    ASSERT_TRUE(run_until(io, [&] { return s1 && in.size() == 1; }));
    auto old_reader = std::make_shared<Collector>();
    old_reader->s = in[0];
    old_reader->start();
    // Stale bytes: a DATA header promising 200 bytes that never come from host 1.
    auto stale = encode_frame({FrameType::data, 0, s1->id(), 0}, std::vector<std::uint8_t>(50, 9));
    stale[11] = 200;  // length field says 200, only 50 follow
    ASSERT_EQ(::write(dev_host_end.get(), stale.data(), stale.size()),
              static_cast<ssize_t>(stale.size()));
    // Host 1 dies without a word: its fd is closed but the device (dev_host_end) stays.
    host1->close("simulated crash");
    ASSERT_TRUE(run_until(io, [&] { return host1->closed(); }));
    run_for(io, 50ms);

    auto host2 = Session::create(io, UniqueFd(::dup(dev_host_end.get())), host_options());
    bool h2 = false;
    error_code h2ec;
    host2->start([&](error_code ec, const PeerInfo&) {
        h2 = true;
        h2ec = ec;
    });
    ASSERT_TRUE(run_until(
        io, [&] { return h2; }, 10s));
    EXPECT_FALSE(h2ec) << h2ec.message();
    EXPECT_EQ(guest_handshakes, 2);
    ASSERT_TRUE(run_until(io, [&] { return old_reader->done; }));
    EXPECT_TRUE(old_reader->ec) << "the old stream must end with an error";
    // The new session works end to end.
    std::shared_ptr<Stream> s2;
    host2->open("echo", [&](error_code ec, std::shared_ptr<Stream> s) {
        EXPECT_FALSE(ec) << ec.message();
        s2 = s;
    });
    ASSERT_TRUE(run_until(io, [&] { return s2 != nullptr; }));
    EXPECT_EQ(s2->id(), 1u);  // a fresh id space
    auto c = std::make_shared<Collector>();
    c->s = s2;
    c->start();
    write_all(io, s2, "after reconnect");
    s2->shutdown_send();
    ASSERT_TRUE(run_until(io, [&] { return c->done; }));
    EXPECT_EQ(c->data, "after reconnect");
    host2->close("done");
    guest->close("done");
    run_for(io, 20ms);
}

TEST(ChannelResync, GuestSurvivesEofAndAnswersTheNextHost) {
    // EOF on the guest's transport resets the session without closing it.
    boost::asio::io_context io;
    auto [h, g] = socket_pair();
    auto guest = Session::create(io, std::move(g), guest_options());
    bool closed = false;
    guest->set_close_handler([&](error_code, const std::string&) { closed = true; });
    int handshakes = 0;
    guest->start([&](error_code ec, const PeerInfo&) { handshakes += !ec; });
    RawPeer host(std::move(h));
    host.send_hello(1);
    ASSERT_TRUE(run_until(io, [&] { return handshakes == 1; }));
    ::shutdown(host.fd.get(), SHUT_WR);  // EOF for the guest
    ASSERT_TRUE(run_until(io, [&] { return guest->stats().session_resets == 1; }));
    run_for(io, 200ms);  // polls, no busy loop, no close
    EXPECT_FALSE(closed);
    EXPECT_FALSE(guest->closed());
    guest->close("done");
    ASSERT_TRUE(run_until(io, [&] { return closed; }));
}

// SessionOptions::trim_heap_when_idle: one malloc_trim per quiet spell after streams
// ended, none while streams keep coming and going, none where it is off.
TEST(ChannelSession, TrimsTheHeapOnceStreamsStopComingAndGoing) {
    auto ho = host_options();
    ho.trim_heap_when_idle = 150ms;
    Pair p(ho, guest_options());
    p.guest->set_stream_handler(
        [](std::shared_ptr<Stream> s, const std::string&) { echo(std::move(s)); });
    ASSERT_TRUE(p.wait_ready());
    auto one_stream = [&] {
        auto s = p.open(p.host, "echo");
        ASSERT_TRUE(s);
        auto c = std::make_shared<Collector>();
        c->s = s;
        c->start();
        write_all(p.io, s, "x");
        s->shutdown_send();
        ASSERT_TRUE(run_until(p.io, [&] { return c->done; }));
    };
    for (int i = 0; i < 6; ++i) {  // a stream every ~50 ms: never quiet for 150 ms
        one_stream();
        run_for(p.io, 50ms);
        EXPECT_EQ(p.host->stats().heap_trims, 0u) << "trimmed while streams came and went";
    }
    ASSERT_TRUE(run_until(p.io, [&] { return p.host->stats().heap_trims > 0; }));
    run_for(p.io, 400ms);
    EXPECT_EQ(p.host->stats().heap_trims, 1u);   // once per quiet spell
    EXPECT_EQ(p.guest->stats().heap_trims, 0u);  // off by default
    one_stream();
    ASSERT_TRUE(run_until(p.io, [&] { return p.host->stats().heap_trims == 2; }));
}
