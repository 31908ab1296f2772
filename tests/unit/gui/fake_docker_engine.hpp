#pragma once
// A stand-in for the engine on a unix socket for unit tests: each connection's
// request (line, headers and body read by Content-Length) goes to a handler that
// returns the raw HTTP reply. Requests are recorded in order.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace cordon::gui::test {

class RoutingFakeEngine {
  public:
    // request_line: "GET /containers/json?all=1 HTTP/1.1"
    using Handler = std::function<std::string(const std::string& request_line)>;

    RoutingFakeEngine(std::filesystem::path path, Handler handler)
        : path_(std::move(path)), handler_(std::move(handler)) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
        ::unlink(path_.c_str());
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0)
            throw std::runtime_error("bind failed");
        thread_ = std::thread([this] { serve(); });
    }
    ~RoutingFakeEngine() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    RoutingFakeEngine(const RoutingFakeEngine&) = delete;
    RoutingFakeEngine& operator=(const RoutingFakeEngine&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::vector<std::string> requests() const {
        std::lock_guard lock(mu_);
        return requests_;
    }

  private:
    void serve() {
        for (;;) {
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0)
                return;
            std::string req;
            char buf[4096];
            while (req.find("\r\n\r\n") == std::string::npos) {
                const ssize_t n = ::read(c, buf, sizeof buf);
                if (n <= 0)
                    break;
                req.append(buf, static_cast<std::size_t>(n));
            }
            const std::string line = req.substr(0, req.find("\r\n"));
            {
                std::lock_guard lock(mu_);
                requests_.push_back(line);
            }
            const std::string reply = handler_(line);
            (void)!::write(c, reply.data(), reply.size());
            ::close(c);
        }
    }
    std::filesystem::path path_;
    Handler handler_;
    int fd_ = -1;
    mutable std::mutex mu_;
    std::vector<std::string> requests_;
    std::thread thread_;
};

inline std::string httpReply(int status, const std::string& body,
                             const std::string& contentType = "application/json") {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + contentType +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// A frame of the engine's multiplexed log stream (1 stdout, 2 stderr).
inline std::string logFrame(int stream, const std::string& text) {
    std::string f(8, '\0');
    f[0] = static_cast<char>(stream);
    const auto n = static_cast<std::uint32_t>(text.size());
    f[4] = static_cast<char>((n >> 24) & 0xff);
    f[5] = static_cast<char>((n >> 16) & 0xff);
    f[6] = static_cast<char>((n >> 8) & 0xff);
    f[7] = static_cast<char>(n & 0xff);
    return f + text;
}

}  // namespace cordon::gui::test
