#pragma once
// A host loopback port nobody listens on right now (>= 1024: the test may not run as root).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace cordon::e2e {

inline std::uint16_t free_host_port() {
    for (int attempt = 0; attempt < 50; ++attempt) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
            const std::uint16_t p = ntohs(a.sin_port);
            ::close(fd);
            if (p >= 1024 && p < 60000)
                return p;
        } else {
            ::close(fd);
        }
    }
    return 0;
}

}  // namespace cordon::e2e
