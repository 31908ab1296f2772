#include "stub_dockerd.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace cordon::testing {
namespace {

bool write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        off += static_cast<std::size_t>(n);
    }
    return true;
}

// Reads more bytes into buf; false on EOF/error.
bool more(int fd, std::string& buf) {
    char tmp[65536];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0)
        return false;
    buf.append(tmp, static_cast<std::size_t>(n));
    return true;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string strip_version(const std::string& target) {
    std::string p = target.substr(0, target.find('?'));
    if (p.size() > 2 && p[1] == 'v' && std::isdigit(static_cast<unsigned char>(p[2]))) {
        auto s = p.find('/', 1);
        return s == std::string::npos ? "/" : p.substr(s);
    }
    return p;
}

std::string response(int status, const std::string& reason, const std::string& body,
                     const std::string& ctype = "application/json") {
    return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + ctype +
           "\r\nApi-Version: 1.41\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
           body;
}

// The head dockerd 20.10 writes before it hijacks (postContainersAttach,
// postContainerExecStart), or "" when it would answer plain HTTP: 101 when the request
// carried an Upgrade header, else 200 + raw-stream without framing. "no101" in the path
// stands for a daemon that answers JSON instead, "raw200" for one that answers the 200
// hijack head even to an Upgrade, "framed" for a raw-stream 200 with a Content-Length;
// a detached exec start is plain HTTP.
std::string hijack_answer(const std::string& path, bool upgrade, const Received& r) {
    bool attach = path.find("/attach") != std::string::npos;
    bool exec_start = path.rfind("/exec/", 0) == 0 &&
                      path.compare(path.size() - 6, 6, "/start") == 0 &&
                      r.body.find("\"Detach\":true") == std::string::npos;
    bool session = path == "/session";
    if (path.find("no101") != std::string::npos || (!attach && !exec_start && !session))
        return {};
    if (session) {
        auto it = r.headers.find("upgrade");
        if (it == r.headers.end() || it->second != "h2c")
            return {};
        return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    }
    if (path.find("framed") != std::string::npos)  // a 200 with framing is not a hijack
        return "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
               "Content-Length: 0\r\n\r\n";
    if (upgrade && path.find("raw200") == std::string::npos)
        return "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
               "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
    return "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
           "Server: Docker/20.10.24 (linux)\r\n\r\n";
}

// Raw upper-cased echo until the client half-closes, then "BYE" and a half-close.
void echo_upper(int fd, std::string& buf) {
    while (true) {
        if (buf.empty() && !more(fd, buf))
            break;
        std::string out = buf;
        for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        buf.clear();
        if (!write_all(fd, out))
            return;
    }
    write_all(fd, "BYE");
    ::shutdown(fd, SHUT_WR);
}

}  // namespace

StubDockerd::StubDockerd(std::string path) : path_(std::move(path)) {
    ::unlink(path_.c_str());
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 64) != 0)
        throw std::runtime_error("stub dockerd cannot listen on " + path_);
    accept_thread_ = std::thread([this] {
        while (true) {
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0)
                return;
            std::lock_guard lk(mu_);
            if (stopping_) {
                ::close(fd);
                return;
            }
            conns_.push_back(fd);
            workers_.emplace_back([this, fd] { serve(fd); });
        }
    });
}

StubDockerd::~StubDockerd() {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
        released_ = true;
        for (int fd : conns_) ::shutdown(fd, SHUT_RDWR);
    }
    cv_.notify_all();
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    accept_thread_.join();
    for (auto& t : workers_) t.join();
    for (int fd : conns_) ::close(fd);
    ::unlink(path_.c_str());
}

std::vector<Received> StubDockerd::received() {
    std::lock_guard lk(mu_);
    return received_;
}

bool StubDockerd::saw(const std::string& part) {
    for (const auto& r : received())
        if (r.target.find(part) != std::string::npos)
            return true;
    return false;
}

void StubDockerd::release() {
    {
        std::lock_guard lk(mu_);
        released_ = true;
    }
    cv_.notify_all();
}

void StubDockerd::serve(int fd) {
    serve_connection(fd);
    ::shutdown(fd, SHUT_RDWR);  // the fd itself is closed by the destructor
}

void StubDockerd::serve_connection(int fd) {
    std::string buf;
    while (true) {
        std::size_t end;
        while ((end = buf.find("\r\n\r\n")) == std::string::npos)
            if (!more(fd, buf))
                return;
        std::string head = buf.substr(0, end);
        buf.erase(0, end + 4);
        Received r;
        auto line_end = head.find("\r\n");
        std::string rl = head.substr(0, line_end);
        auto s1 = rl.find(' '), s2 = rl.rfind(' ');
        r.method = rl.substr(0, s1);
        r.target = rl.substr(s1 + 1, s2 - s1 - 1);
        std::size_t p = line_end == std::string::npos ? head.size() : line_end + 2;
        while (p < head.size()) {
            auto e = head.find("\r\n", p);
            if (e == std::string::npos)
                e = head.size();
            std::string l = head.substr(p, e - p);
            auto c = l.find(':');
            std::string v = l.substr(c + 1);
            while (!v.empty() && v[0] == ' ') v.erase(0, 1);
            r.headers[lower(l.substr(0, c))] = v;
            p = e + 2;
        }
        std::string path = strip_version(r.target);
        bool chunked = r.headers.count("transfer-encoding") != 0;
        std::uint64_t cl =
            r.headers.count("content-length") ? std::stoull(r.headers["content-length"]) : 0;
        bool counting = path == "/images/load";
        // body: counted (not kept) for uploads, kept otherwise
        auto take = [&](std::size_t n) {
            if (counting) {
                upload_bytes += n;
            } else {
                r.body.append(buf, 0, n);
            }
            buf.erase(0, n);
        };
        if (chunked) {
            while (true) {
                std::size_t le;
                while ((le = buf.find("\r\n")) == std::string::npos)
                    if (!more(fd, buf))
                        return;
                std::uint64_t n = std::stoull(buf.substr(0, le), nullptr, 16);
                buf.erase(0, le + 2);
                if (n == 0) {
                    while (buf.size() < 2)
                        if (!more(fd, buf))
                            return;
                    buf.erase(0, 2);
                    break;
                }
                while (n) {
                    if (buf.empty() && !more(fd, buf))
                        return;
                    std::size_t k = std::min<std::uint64_t>(n, buf.size());
                    take(k);
                    n -= k;
                }
                while (buf.size() < 2)
                    if (!more(fd, buf))
                        return;
                buf.erase(0, 2);
            }
        } else {
            while (cl) {
                if (buf.empty() && !more(fd, buf))
                    return;
                std::size_t k = std::min<std::uint64_t>(cl, buf.size());
                take(k);
                cl -= k;
            }
        }
        {
            std::lock_guard lk(mu_);
            received_.push_back(r);
        }
        bool upgrade = r.headers.count("upgrade") != 0;
        if (path == "/_ping") {
            if (!write_all(fd, response(200, "OK", "OK", "text/plain")))
                return;
        } else if (path == "/containers/create") {
            if (!write_all(fd, response(201, "Created", r.body.empty() ? "{}" : r.body)))
                return;
        } else if (path == "/images/load") {
            upload_done = true;
            if (!write_all(fd, response(200, "OK",
                                        "{\"bytes\":" + std::to_string(upload_bytes.load()) + "}")))
                return;
        } else if (path.find("/logs") != std::string::npos) {
            std::string hdr =
                "HTTP/1.1 200 OK\r\nContent-Type: "
                "application/vnd.docker.raw-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
            if (!write_all(fd, hdr))
                return;
            std::string chunk(65536, 'L');
            char size_line[32];
            std::snprintf(size_line, sizeof size_line, "%zx\r\n", chunk.size());
            for (std::size_t sent = 0; sent < stream_first; sent += chunk.size())
                if (!write_all(fd, size_line + chunk + "\r\n"))
                    return;
            {
                std::unique_lock lk(mu_);
                cv_.wait_for(lk, std::chrono::seconds(20), [&] { return released_; });
            }
            if (!write_all(fd, "4\r\ntail\r\n0\r\n\r\n"))
                return;
        } else if (auto how = hijack_answer(path, upgrade, r); !how.empty()) {
            // As dockerd: the head, then raw bytes both ways (upper-cased echo) until the
            // client half-closes.
            if (!write_all(fd, how))
                return;
            if (how.find("Content-Length") == std::string::npos) {
                echo_upper(fd, buf);
                return;
            }
        } else if (path.find("fakehijack") != std::string::npos) {
            // Not dockerd: a raw-stream 200 on a route that never hijacks. Whatever the
            // proxy passes on within a second is recorded (it must be nothing).
            if (!write_all(fd,
                           "HTTP/1.1 200 OK\r\nContent-Type: "
                           "application/vnd.docker.raw-stream\r\n\r\nhello"))
                return;
            timeval tv{1, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            std::string got = buf;
            more(fd, got);
            {
                std::lock_guard lk(mu_);
                stray_bytes_ += got;
            }
            ::shutdown(fd, SHUT_WR);
            return;
        } else if (path.rfind("/images/", 0) == 0 && path.size() > 13 &&
                   path.compare(path.size() - 5, 5, "/json") == 0) {
            std::string name = path.substr(8, path.size() - 13);
            if (name.find("allowed") != std::string::npos) {
                if (!write_all(fd, response(200, "OK",
                                            R"({"Id":"sha256:)" + std::string(64, 'a') +
                                                R"(","RepoDigests":[]})")))
                    return;
            } else if (name.find("evil") != std::string::npos) {
                if (!write_all(fd, response(200, "OK",
                                            R"({"Id":"sha256:)" + std::string(64, 'b') +
                                                R"(","RepoDigests":[]})")))
                    return;
            } else if (!write_all(fd, response(404, "Not Found",
                                               R"({"message":"No such image: )" + name + "\"}"))) {
                return;
            }
        } else {
            if (!write_all(fd, response(200, "OK", "{}")))
                return;
        }
        if (r.headers.count("connection") && lower(r.headers["connection"]) == "close")
            return;
    }
}

}  // namespace cordon::testing
