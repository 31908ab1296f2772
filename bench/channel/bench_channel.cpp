// bench-channel: throughput and latency of the channel against a raw socketpair, in one run.
// Host and guest each run on their own thread and io_context (as two processes would).
// usage: bench-channel [MiB_total (default 512)] [round_trips (default 20000)] [reps (3)]
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positive inside Asio
// clang-format on

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>
#include <vector>

#include "cordon/channel/session.hpp"
#include "cordon/log.hpp"

using namespace cordon;
using namespace cordon::channel;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;

namespace {

constexpr std::size_t kChunk = 256 * 1024;
constexpr std::size_t kSmall = 64;

std::pair<int, int> make_pair_fds() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        std::abort();
    return {sv[0], sv[1]};
}

bool write_full(int fd, const std::uint8_t* p, std::size_t n) {
    while (n) {
        ssize_t w = ::write(fd, p, n);
        if (w <= 0)
            return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

// ---------------------------------------------------------------- raw baseline

double raw_throughput(std::size_t total) {
    auto [a, b] = make_pair_fds();
    std::vector<std::uint8_t> buf(kChunk, 0xab);
    const auto t0 = Clock::now();
    std::thread reader([fd = b, total] {
        std::vector<std::uint8_t> in(kChunk);
        std::size_t got = 0;
        while (got < total) {
            ssize_t r = ::read(fd, in.data(), in.size());
            if (r <= 0)
                break;
            got += static_cast<std::size_t>(r);
        }
    });
    for (std::size_t sent = 0; sent < total; sent += kChunk) write_full(a, buf.data(), kChunk);
    reader.join();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    ::close(a);
    ::close(b);
    return static_cast<double>(total) / (1 << 20) / s;
}

std::vector<double> raw_latency(int rounds) {
    auto [a, b] = make_pair_fds();
    std::thread echo([fd = b, rounds] {
        std::uint8_t m[kSmall];
        for (int i = 0; i < rounds; ++i) {
            std::size_t got = 0;
            while (got < kSmall) {
                ssize_t r = ::read(fd, m + got, kSmall - got);
                if (r <= 0)
                    return;
                got += static_cast<std::size_t>(r);
            }
            write_full(fd, m, kSmall);
        }
    });
    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(rounds));
    std::uint8_t m[kSmall] = {1};
    for (int i = 0; i < rounds; ++i) {
        const auto t0 = Clock::now();
        write_full(a, m, kSmall);
        std::size_t got = 0;
        while (got < kSmall) {
            ssize_t r = ::read(a, m + got, kSmall - got);
            if (r <= 0)
                break;
            got += static_cast<std::size_t>(r);
        }
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    echo.join();
    ::close(a);
    ::close(b);
    return us;
}

// ---------------------------------------------------------------- channel

struct Side {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::thread thread;
    std::shared_ptr<Session> session;
    void run() {
        thread = std::thread([this] { io.run(); });
    }
    void stop() {
        asio::post(io, [this] {
            session->close("bench done");
            work.reset();
        });
        thread.join();
    }
};

struct Sink : std::enable_shared_from_this<Sink> {
    std::shared_ptr<Stream> s;
    std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(kChunk);
    std::function<void()> on_eof;
    void read() {
        s->async_read_some(asio::buffer(buf),
                           [self = shared_from_this()](error_code ec, std::size_t) {
                               if (ec) {
                                   self->on_eof();
                                   return;
                               }
                               self->read();
                           });
    }
};

void echo(std::shared_ptr<Stream> s, std::shared_ptr<std::vector<std::uint8_t>> buf) {
    s->async_read_some(asio::buffer(*buf), [s, buf](error_code ec, std::size_t n) {
        if (ec)
            return;
        s->async_write(asio::buffer(buf->data(), n), [s, buf](error_code wec, std::size_t) {
            if (!wec)
                echo(s, buf);
        });
    });
}

struct Writer : std::enable_shared_from_this<Writer> {
    std::shared_ptr<Stream> s;
    const std::vector<std::uint8_t>* chunk;
    std::size_t left;
    void write() {
        if (left == 0) {
            s->shutdown_send();
            return;
        }
        const std::size_t n = std::min(left, chunk->size());
        s->async_write(asio::buffer(chunk->data(), n),
                       [self = shared_from_this(), n](error_code ec, std::size_t) {
                           if (ec)
                               return;
                           self->left -= n;
                           self->write();
                       });
    }
};

struct Channel {
    Side host, guest;
    std::atomic<int> sinks_done{0};

    Channel() {
        auto [a, b] = make_pair_fds();
        SessionOptions ho;
        ho.role = Role::host;
        ho.agent_version = "bench host";
        SessionOptions go = ho;
        go.role = Role::guest;
        go.agent_version = "bench guest";
        host.session = Session::create(host.io, UniqueFd(a), ho);
        guest.session = Session::create(guest.io, UniqueFd(b), go);
        guest.session->set_stream_handler(
            [this](std::shared_ptr<Stream> s, const std::string& svc) {
                if (svc == "echo") {
                    echo(s, std::make_shared<std::vector<std::uint8_t>>(kChunk));
                    return;
                }
                auto k = std::make_shared<Sink>();
                k->s = s;
                k->on_eof = [this] { ++sinks_done; };
                k->read();
            });
        std::promise<void> hr, gr;
        host.session->start([&](error_code ec, const PeerInfo&) {
            if (ec)
                std::abort();
            hr.set_value();
        });
        guest.session->start([&](error_code ec, const PeerInfo&) {
            if (ec)
                std::abort();
            gr.set_value();
        });
        host.run();
        guest.run();
        hr.get_future().wait();
        gr.get_future().wait();
    }
    ~Channel() {
        host.stop();
        guest.stop();
    }

    double throughput(std::size_t total, int streams) {
        static const std::vector<std::uint8_t> chunk(kChunk, 0xcd);
        sinks_done = 0;
        const auto t0 = Clock::now();
        asio::post(host.io, [this, total, streams] {
            for (int i = 0; i < streams; ++i) {
                host.session->open("sink",
                                   [total, streams](error_code ec, std::shared_ptr<Stream> s) {
                                       if (ec)
                                           std::abort();
                                       auto w = std::make_shared<Writer>();
                                       w->s = s;
                                       w->chunk = &chunk;
                                       w->left = total / static_cast<std::size_t>(streams);
                                       w->write();
                                   });
            }
        });
        while (sinks_done.load() < streams)
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        return static_cast<double>(total) / (1 << 20) / s;
    }

    std::vector<double> latency(int rounds) {
        std::promise<std::vector<double>> done;
        struct Pinger : std::enable_shared_from_this<Pinger> {
            std::shared_ptr<Stream> s;
            std::uint8_t out[kSmall] = {1};
            std::uint8_t in[kSmall];
            std::size_t got = 0;
            int left;
            Clock::time_point t0;
            std::vector<double> us;
            std::promise<std::vector<double>>* done;
            void round() {
                if (left-- == 0) {
                    s->reset();
                    done->set_value(std::move(us));
                    return;
                }
                t0 = Clock::now();
                got = 0;
                s->async_write(asio::buffer(out),
                               [self = shared_from_this()](error_code ec, std::size_t) {
                                   if (ec)
                                       std::abort();
                                   self->read();
                               });
            }
            void read() {
                s->async_read_some(asio::buffer(in + got, kSmall - got), [self =
                                                                              shared_from_this()](
                                                                             error_code ec,
                                                                             std::size_t n) {
                    if (ec)
                        std::abort();
                    self->got += n;
                    if (self->got < kSmall)
                        return self->read();
                    self->us.push_back(
                        std::chrono::duration<double, std::micro>(Clock::now() - self->t0).count());
                    self->round();
                });
            }
        };
        asio::post(host.io, [this, rounds, &done] {
            host.session->open("echo", [rounds, &done](error_code ec, std::shared_ptr<Stream> s) {
                if (ec)
                    std::abort();
                auto p = std::make_shared<Pinger>();
                p->s = s;
                p->left = rounds;
                p->done = &done;
                p->us.reserve(static_cast<std::size_t>(rounds));
                p->round();
            });
        });
        return done.get_future().get();
    }
};

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    log::set_level(log::Level::error);
    const std::size_t total = (argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 512) << 20;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 20000;

    std::printf("bench-channel: %zu MiB per throughput run, %d round trips of %zu bytes\n",
                total >> 20, rounds, kSmall);
    std::printf(
        "(host and guest sessions on separate threads, over one AF_UNIX socketpair;\n"
        " the raw baseline uses blocking read/write on one socketpair)\n\n");

    // Machines here are shared: interleave raw and channel runs and keep the best of
    // `reps` for throughput (noise only ever slows a run down); latency pools all samples.
    const int reps = argc > 3 ? std::max(1, std::atoi(argv[3])) : 3;
    double raw_tp = 0, ch1 = 0, ch8 = 0;
    std::vector<double> raw_lat, ch_lat;
    Channel ch;
    for (int r = 0; r < reps; ++r) {
        raw_tp = std::max(raw_tp, raw_throughput(total));
        ch1 = std::max(ch1, ch.throughput(total, 1));
        ch8 = std::max(ch8, ch.throughput(total, 8));
        auto rl = raw_latency(rounds / reps);
        auto cl = ch.latency(rounds / reps);
        raw_lat.insert(raw_lat.end(), rl.begin(), rl.end());
        ch_lat.insert(ch_lat.end(), cl.begin(), cl.end());
    }
    std::printf("best of %d interleaved runs (load average matters: see uptime)\n\n", reps);
    const double r50 = percentile(raw_lat, 0.50), r99 = percentile(raw_lat, 0.99);
    const double c50 = percentile(ch_lat, 0.50), c99 = percentile(ch_lat, 0.99);
    std::printf("%-34s %12s %12s %10s\n", "throughput", "MiB/s", "raw MiB/s", "ratio");
    std::printf("%-34s %12.0f %12.0f %9.2fx\n", "channel, 1 stream", ch1, raw_tp, ch1 / raw_tp);
    std::printf("%-34s %12.0f %12.0f %9.2fx\n", "channel, 8 concurrent streams", ch8, raw_tp,
                ch8 / raw_tp);
    std::printf("\n%-34s %12s %12s %10s\n", "round trip (64 B)", "channel us", "raw us", "ratio");
    std::printf("%-34s %12.1f %12.1f %9.2fx\n", "p50", c50, r50, c50 / r50);
    std::printf("%-34s %12.1f %12.1f %9.2fx\n", "p99", c99, r99, c99 / r99);
    return 0;
}
