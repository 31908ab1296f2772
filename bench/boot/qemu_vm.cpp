#include "qemu_vm.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cordon/error.hpp"
#include "cordon/quiet_asio.hpp"  // GCC 12 false positive in Asio (see the header)
#include "cordon/rpc/codec.hpp"

namespace cordon::harness {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string image_dir() {
    if (const char* e = std::getenv("CORDON_IMAGE_DIR"); e && *e)
        return e;
#ifdef CORDON_IMAGE_DIR
    return CORDON_IMAGE_DIR;
#else
    return "build/images/out";
#endif
}

std::string image_missing(const std::string& dir) {
    for (const char* f : {"manifest.json", "vmlinuz", "initramfs.img", "rootfs.squashfs"}) {
        if (!fs::exists(fs::path(dir) / f))
            return (fs::path(dir) / f).string();
    }
    return {};
}

void make_blank_disk(const std::string& path, std::uint64_t bytes) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd)
        throw_errno("cannot create the disk image", path);
    if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0)
        throw_errno("cannot size the disk image", path);
}

QemuVm::QemuVm(VmConfig config) : cfg_(std::move(config)) {
    socket_path_ = cfg_.work_dir + "/channel.sock";
    console_path_ = cfg_.work_dir + "/console.log";
}

QemuVm::~QemuVm() {
    if (session_)
        session_->close("test done");
    rpc_stream_.reset();
    session_.reset();
    io_.poll();
    // qemu_ (ChildProcess) kills QEMU if it still runs.
}

void QemuVm::start() {
    const fs::path img(cfg_.image_dir);
    std::ifstream mf(img / "manifest.json");
    json manifest = json::parse(mf, nullptr, false);
    if (manifest.is_discarded())
        throw Error("cannot parse the image manifest", (img / "manifest.json").string());
    std::string cmdline = manifest.value("cmdline", "console=ttyS0 quiet panic=-1");
    if (!cfg_.extra_cmdline.empty())
        cmdline += " " + cfg_.extra_cmdline;
    fs::remove(socket_path_);
    fs::remove(console_path_);

    std::vector<std::string> argv = {
        "qemu-system-x86_64",
        "-accel",
        cfg_.accel,
        "-cpu",
        cfg_.accel == "kvm" ? "host" : "qemu64",
        "-smp",
        std::to_string(cfg_.cpus),
        "-m",
        std::to_string(cfg_.memory_mib),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "file:" + console_path_,
        "-kernel",
        (img / manifest.value("kernel", "vmlinuz")).string(),
        "-initrd",
        (img / manifest.value("initrd", "initramfs.img")).string(),
        "-append",
        cmdline,
        "-drive",
        "file=" + (img / manifest.value("rootfs", "rootfs.squashfs")).string() +
            ",if=none,id=root,format=raw,readonly=on",
        "-device",
        "virtio-blk-pci,drive=root,serial=cordon-root"};
    if (cfg_.data_disk) {
        argv.insert(
            argv.end(),
            {"-drive", "file=" + *cfg_.data_disk + ",if=none,id=data,format=raw,cache=unsafe",
             "-device", "virtio-blk-pci,drive=data,serial=cordon-data"});
    }
    argv.insert(argv.end(), {"-nic", "user,model=virtio-net-pci", "-chardev",
                             "socket,id=ch0,path=" + socket_path_ + ",server=on,wait=off",
                             "-device", "virtio-serial", "-device",
                             "virtserialport,chardev=ch0,name=org.cordon.channel.0"});
    UniqueFd log(::open((cfg_.work_dir + "/qemu.log").c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    guest::SpawnOptions o;
    o.argv = argv;
    o.output_fd = log.get();
    t0_ = Clock::now();
    qemu_ = guest::ChildProcess::spawn(o);
}

bool QemuVm::run_until(const std::function<bool()>& done, Clock::time_point deadline) {
    while (!done()) {
        if (Clock::now() >= deadline)
            return false;
        if (io_.stopped())
            io_.restart();
        io_.run_for(5ms);
    }
    return true;
}

void QemuVm::connect(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    int fd = -1;
    while (fd < 0) {
        if (qemu_.try_reap()) {
            throw Error("QEMU exited before the channel was up: " +
                            guest::describe_wait_status(qemu_.wait_status()),
                        cfg_.work_dir + "/qemu.log");
        }
        UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path_.c_str());
        if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
            fd = s.release();
            break;
        }
        if (Clock::now() >= deadline)
            throw Error("QEMU's channel socket never accepted", socket_path_);
        std::this_thread::sleep_for(5ms);
    }
    channel::SessionOptions so;
    so.role = channel::Role::host;
    so.agent_version = "cordon-boot-harness";
    so.hello_interval = 50ms;  // the guest opens its port during boot: ask often
    session_ = channel::Session::create(io_, UniqueFd(fd), so);
    bool ready = false;
    boost::system::error_code result;
    session_->start([&](boost::system::error_code ec, const channel::PeerInfo&) {
        ready = true;
        result = ec;
    });
    if (!run_until([&] { return ready; }, deadline)) {
        throw Error("no channel handshake with the guest agent in time", socket_path_,
                    "see the console log " + console_path_);
    }
    if (result)
        throw Error("channel handshake failed: " + result.message(), socket_path_);
}

json QemuVm::call(const std::string& method, const json& params,
                  std::chrono::milliseconds timeout) {
    if (!session_)
        throw Error("not connected", method);
    const auto deadline = Clock::now() + timeout;
    if (!rpc_stream_) {
        bool done = false;
        boost::system::error_code err;
        session_->open("rpc",
                       [&](boost::system::error_code ec, std::shared_ptr<channel::Stream> s) {
                           done = true;
                           err = ec;
                           rpc_stream_ = std::move(s);
                       });
        if (!run_until([&] { return done; }, deadline))
            throw Error("opening the rpc stream timed out", method);
        if (err) {
            rpc_stream_.reset();
            throw Error("cannot open the rpc stream: " + err.message(), method);
        }
    }
    const std::uint64_t id = next_id_++;
    auto request = std::make_shared<std::string>(rpc::encode_request(id, method, params));
    bool written = false;
    boost::system::error_code werr;
    rpc_stream_->async_write(boost::asio::buffer(*request),
                             [&, request](boost::system::error_code ec, std::size_t) {
                                 written = true;
                                 werr = ec;
                             });
    if (!run_until([&] { return written; }, deadline))
        throw Error("sending the request timed out", method);
    if (werr)
        throw Error("cannot send the request: " + werr.message(), method);

    std::array<char, 16384> buf{};
    for (;;) {
        std::string line;
        while (decoder_.next(line) == rpc::LineDecoder::Status::line) {
            rpc::Message m;
            rpc::RemoteError perr;
            std::optional<std::uint64_t> eid;
            if (!rpc::decode_message(line, m, perr, eid))
                throw Error("malformed reply: " + perr.message, method);
            if (m.kind != rpc::Message::Kind::response || m.id != id)
                continue;
            if (m.error)
                throw rpc::CallError(m.error->code, m.error->message, method, m.error->hint);
            return m.result;
        }
        bool got = false;
        std::size_t n = 0;
        boost::system::error_code rerr;
        rpc_stream_->async_read_some(boost::asio::buffer(buf),
                                     [&](boost::system::error_code ec, std::size_t k) {
                                         got = true;
                                         n = k;
                                         rerr = ec;
                                     });
        if (!run_until([&] { return got; }, deadline)) {
            rpc_stream_->reset("timeout");
            rpc_stream_.reset();
            throw Error("no reply within the timeout", method);
        }
        if (rerr) {
            rpc_stream_.reset();
            throw Error("the rpc stream ended: " + rerr.message(), method);
        }
        decoder_.feed(std::string_view(buf.data(), n));
    }
}

std::string QemuVm::docker_get(const std::string& path, std::chrono::milliseconds timeout) {
    if (!session_)
        throw Error("not connected", "docker");
    const auto deadline = Clock::now() + timeout;
    std::shared_ptr<channel::Stream> stream;
    bool done = false;
    boost::system::error_code err;
    session_->open("docker", [&](boost::system::error_code ec, std::shared_ptr<channel::Stream> s) {
        done = true;
        err = ec;
        stream = std::move(s);
    });
    if (!run_until([&] { return done; }, deadline))
        throw Error("opening a docker stream timed out", path);
    if (err) {
        throw Error("the guest refused the docker stream: " + err.message() +
                        (stream ? " (" + stream->reset_reason() + ")" : std::string()),
                    path);
    }
    auto request =
        std::make_shared<std::string>("GET " + path + " HTTP/1.0\r\nHost: docker\r\n\r\n");
    bool written = false;
    stream->async_write(boost::asio::buffer(*request),
                        [&, request](boost::system::error_code ec, std::size_t) {
                            written = true;
                            err = ec;
                        });
    if (!run_until([&] { return written; }, deadline))
        throw Error("sending to docker timed out", path);
    if (err)
        throw Error("cannot send to docker: " + err.message(), path);
    std::string response;
    std::array<char, 4096> buf{};
    for (;;) {
        bool got = false;
        std::size_t n = 0;
        boost::system::error_code rerr;
        stream->async_read_some(boost::asio::buffer(buf),
                                [&](boost::system::error_code ec, std::size_t k) {
                                    got = true;
                                    n = k;
                                    rerr = ec;
                                });
        if (!run_until([&] { return got; }, deadline)) {
            stream->reset("timeout");
            throw Error("no answer from docker within the timeout", path);
        }
        response.append(buf.data(), n);
        if (rerr) {
            if (response.empty()) {
                throw Error("the docker stream ended without an answer: " + rerr.message() + " " +
                                stream->reset_reason(),
                            path);
            }
            break;
        }
    }
    return response.substr(0, response.find("\r\n"));
}

json QemuVm::wait_data_disk(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    json last;
    while (Clock::now() < deadline) {
        last = call("info", json::object(), 30s);
        const std::string st = last["data_disk"].value("state", "");
        if (st != "checking" && st != "unknown")
            return last;
        run_until([] { return false; }, Clock::now() + 100ms);
    }
    throw Error("the data disk was never reported; last info: " + last.dump(), "data disk");
}

json QemuVm::wait_engine_ready(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    json last;
    while (Clock::now() < deadline) {
        last = call("info", json::object(), 30s);
        if (last["engine"].value("ready", false))
            return last;
        const std::string st = last["engine"].value("state", "");
        if (st == "unavailable")
            break;
        run_until([] { return false; }, Clock::now() + 200ms);
    }
    throw Error("dockerd did not become ready; last info: " + last.dump(), "engine");
}

void QemuVm::serve_docker_socket(const std::string& path) {
    using local = boost::asio::local::stream_protocol;
    fs::remove(path);
    auto acceptor = std::make_shared<local::acceptor>(io_, local::endpoint(path));
    docker_acceptor_ = acceptor;
    auto accept_next = std::make_shared<std::function<void()>>();
    std::weak_ptr<local::acceptor> weak = acceptor;
    *accept_next = [this, weak, accept_next] {
        auto a = weak.lock();
        if (!a)
            return;
        a->async_accept(
            [this, weak, accept_next](boost::system::error_code ec, local::socket sock) {
                if (ec || !weak.lock())
                    return;
                auto sp = std::make_shared<local::socket>(std::move(sock));
                if (session_) {
                    session_->open("docker", [sp](boost::system::error_code oec,
                                                  std::shared_ptr<channel::Stream> st) {
                        if (oec || !st)
                            return;  // sp closes: the client sees EOF
                        channel::splice(st, std::move(*sp));
                    });
                }
                (*accept_next)();
            });
    };
    (*accept_next)();
}

int QemuVm::serve_http_on_loopback(const std::string& body) {
    using tcp = boost::asio::ip::tcp;
    auto acceptor = std::make_shared<tcp::acceptor>(
        io_, tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
    http_acceptor_ = acceptor;
    auto reply = std::make_shared<std::string>(
        "HTTP/1.0 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body);
    auto accept_next = std::make_shared<std::function<void()>>();
    std::weak_ptr<tcp::acceptor> weak = acceptor;
    *accept_next = [weak, reply, accept_next] {
        auto a = weak.lock();
        if (!a)
            return;
        a->async_accept([weak, reply, accept_next](boost::system::error_code ec, tcp::socket sock) {
            if (ec || !weak.lock())
                return;
            auto sp = std::make_shared<tcp::socket>(std::move(sock));
            auto buf = std::make_shared<std::array<char, 2048>>();
            sp->async_read_some(boost::asio::buffer(*buf),
                                [sp, buf, reply](boost::system::error_code, std::size_t) {
                                    boost::asio::async_write(
                                        *sp, boost::asio::buffer(*reply),
                                        [sp, reply](boost::system::error_code, std::size_t) {
                                            boost::system::error_code ignored;
                                            sp->shutdown(tcp::socket::shutdown_both, ignored);
                                        });
                                });
            (*accept_next)();
        });
    };
    (*accept_next)();
    return acceptor->local_endpoint().port();
}

QemuVm::CommandResult QemuVm::run_host_command(const std::vector<std::string>& argv,
                                               std::chrono::milliseconds timeout) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw_errno("cannot create a pipe", argv.empty() ? "" : argv[0]);
    UniqueFd wr(fds[1]);
    auto rd = std::make_shared<boost::asio::posix::stream_descriptor>(io_, fds[0]);
    guest::SpawnOptions o;
    o.argv = argv;
    o.output_fd = wr.get();
    auto child = guest::ChildProcess::spawn(o);
    wr.reset();
    CommandResult r;
    auto buf = std::make_shared<std::array<char, 4096>>();
    bool eof = false;
    std::function<void()> read_more = [&] {
        rd->async_read_some(boost::asio::buffer(*buf),
                            [&, buf, rd](boost::system::error_code ec, std::size_t n) {
                                r.output.append(buf->data(), n);
                                if (ec) {
                                    eof = true;
                                    return;
                                }
                                read_more();
                            });
    };
    read_more();
    const auto deadline = Clock::now() + timeout;
    const bool done = run_until([&] { return child.try_reap() && eof; }, deadline);
    if (!done) {
        child.signal(SIGKILL);
        child.wait();
        rd->close();
        io_.poll();
        r.status = -1;
        return r;
    }
    r.status = child.wait_status();
    return r;
}

std::optional<int> QemuVm::wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        if (qemu_.try_reap())
            return qemu_.wait_status();
        if (io_.stopped())
            io_.restart();
        io_.run_for(20ms);
    }
    return std::nullopt;
}

std::string QemuVm::console() const {
    std::ifstream in(console_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace cordon::harness
